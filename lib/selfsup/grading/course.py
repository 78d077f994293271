"""Where a course's files live: sources, the release, the grading state folder and the gradebook.

`load_course()` reads the repository's nbgrader_config.py, so `nbgrader ...` and `selfsup grade ...` agree on
every folder. Tests build a `Course` directly to grade in a temporary state folder.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CONFIG_FILE = "nbgrader_config.py"
GRADEBOOK_ENV = "SELFSUP_GRADEBOOK_URL"
# Student and assignment ids become folder names and nbgrader globs: no spaces, slashes or wildcards.
ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]*")


def check_id(value: str, what: str) -> str:
    """Return `value` if it is a safe id (letters, digits, `._@-`), else raise ValueError saying so."""
    if not ID_RE.fullmatch(value or ""):
        raise ValueError(
            f"{what} {value!r} is not allowed: use letters, digits and . _ @ - (starting with a letter or digit)"
        )
    return value


def sqlite_url(path: Path) -> str:
    """The SQLAlchemy URL of an SQLite file."""
    return f"sqlite:///{path.resolve()}"


@dataclass(frozen=True)
class Course:
    """The folders and the gradebook of one course.

    Attributes:
        root: the repository; nbgrader runs from here and reads `root/nbgrader_config.py` if it is there.
        source: nbgrader's source folder (solutions/), one sub-folder `<aid>/<aid>.ipynb` per assignment.
        release: the generated student versions (exercises/).
        state: the ignored folder for everything grading writes.
        db_url: the gradebook, an SQLAlchemy URL (SQLite by default, PostgreSQL for a large class).
        course_id: nbgrader's course id.
    """

    root: Path
    source: Path
    release: Path
    state: Path
    db_url: str
    course_id: str = "selfsup"

    @property
    def collected(self) -> Path:
        """Verbatim copies of what students handed in: `collected/<student>/<aid>/`."""
        return self.state / "collected"

    @property
    def submitted(self) -> Path:
        """The repaired notebooks nbgrader grades: `submitted/<student>/<aid>/<aid>.ipynb`."""
        return self.state / "submitted"

    @property
    def autograded(self) -> Path:
        """nbgrader's executed copies."""
        return self.state / "autograded"

    @property
    def feedback(self) -> Path:
        """HTML feedback, one file per student and assignment."""
        return self.state / "feedback"

    @property
    def results(self) -> Path:
        """Grading records `results/<aid>/<student>.json`."""
        return self.state / "results"

    @property
    def templates(self) -> Path:
        """The release generated at grading time, the template a submission's cells are restored from."""
        return self.state / "released"

    def assignments(self) -> list[str]:
        """Assignment ids: the folders of `source` that hold a notebook of the same name."""
        if not self.source.is_dir():
            return []
        return sorted(p.name for p in self.source.iterdir() if (p / f"{p.name}.ipynb").is_file())

    def require(self, assignment: str) -> str:
        """Return `assignment` if the course has it, else raise ValueError listing the ones it has."""
        known = self.assignments()
        if assignment not in known:
            raise ValueError(
                f"unknown assignment {assignment!r}; the assignments are the folders <aid>/<aid>.ipynb in "
                f"{self.source}: {', '.join(known) or 'none yet'}"
            )
        return assignment

    def select(self, assignments: list[str] | None) -> list[str]:
        """The given assignments, checked, or all of them when none are given."""
        return [self.require(a) for a in assignments] if assignments else self.assignments()

    def source_notebook(self, assignment: str) -> Path:
        """The instructor's notebook (solutions and hidden tests)."""
        return self.source / assignment / f"{assignment}.ipynb"

    def template(self, assignment: str) -> Path:
        """The student version generated into the state folder at grading time."""
        return self.templates / assignment / f"{assignment}.ipynb"

    def nbgrader_config(self, **sections: dict[str, Any]) -> Any:  # noqa: ANN401 (a traitlets Config)
        """nbgrader's configuration: `root/nbgrader_config.py`, then this course's folders, then `sections`.

        Args:
            **sections: extra settings by class name, e.g. `Execute={"timeout": 10}`.

        Returns:
            A `traitlets.config.Config` for `nbgrader.apps.NbGraderAPI(config=...)`.
        """
        from traitlets.config import Config
        from traitlets.config.loader import PyFileConfigLoader

        config = Config()
        if (self.root / CONFIG_FILE).is_file():
            config.merge(PyFileConfigLoader(CONFIG_FILE, path=str(self.root)).load_config())
        # Absolute folders: nbgrader accepts them as its "steps", so the state folder can be anywhere.
        config.CourseDirectory.root = str(self.root)
        config.CourseDirectory.course_id = self.course_id
        config.CourseDirectory.source_directory = str(self.source)
        config.CourseDirectory.release_directory = str(self.release)
        config.CourseDirectory.submitted_directory = str(self.submitted)
        config.CourseDirectory.autograded_directory = str(self.autograded)
        config.CourseDirectory.feedback_directory = str(self.feedback)
        config.CourseDirectory.solution_directory = str(self.state / "solution")
        config.CourseDirectory.db_url = self.db_url
        # The exchange (nbgrader's own hand-out and hand-in) is not used, but nbgrader's API looks for it.
        ensure_state(self)
        config.Exchange.root = str(self.state / "exchange")
        for name, values in sections.items():
            for key, value in values.items():
                config[name][key] = value
        return config


def find_root(start: Path | None = None) -> Path:
    """The nearest folder at or above `start` (default: the working directory) holding nbgrader_config.py."""
    start = (start or Path.cwd()).resolve()
    for folder in (start, *start.parents):
        if (folder / CONFIG_FILE).is_file():
            return folder
    raise FileNotFoundError(
        f"no {CONFIG_FILE} in {start} or any folder above it: run from the course repository or pass --root"
    )


def load_course(root: Path | None = None, db_url: str | None = None) -> Course:
    """The course described by `root/nbgrader_config.py` (root found upwards from the working directory).

    Args:
        root: the repository; by default the nearest folder with nbgrader_config.py.
        db_url: the gradebook; by default the config's, which reads SELFSUP_GRADEBOOK_URL.
    """
    from traitlets.config.loader import PyFileConfigLoader

    root = find_root(root)
    cfg = PyFileConfigLoader(CONFIG_FILE, path=str(root)).load_config().CourseDirectory

    def folder(key: str, default: str) -> Path:
        return (root / str(cfg.get(key, default))).resolve()

    # The state folder is the parent of nbgrader's submitted folder (grading/submitted -> grading/).
    state = folder("submitted_directory", "grading/submitted").parent
    url = db_url or os.environ.get(GRADEBOOK_ENV, "").strip() or str(cfg.get("db_url", ""))
    if not url:
        url = sqlite_url(state / "gradebook.db")
    return Course(
        root=root,
        source=folder("source_directory", "solutions"),
        release=folder("release_directory", "exercises"),
        state=state,
        db_url=url,
        course_id=str(cfg.get("course_id", "selfsup")) or "selfsup",
    )


def ensure_state(course: Course) -> None:
    """Create the state folder (SQLite needs the folder of its file); put this Python's tools on PATH.

    nbgrader runs the `alembic` command when it creates a gradebook; it sits next to the interpreter, which
    is not on PATH when the venv is used without activating it (`.venv/bin/selfsup`, make).
    """
    bin_dir = str(Path(sys.executable).parent)
    if shutil.which("alembic") is None and bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = os.pathsep.join([bin_dir, os.environ.get("PATH", "")])
    (course.state / "exchange").mkdir(parents=True, exist_ok=True)
    if course.db_url.startswith("sqlite:///"):
        Path(course.db_url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
