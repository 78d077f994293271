"""Collect a class's submissions of one assignment into `grading/collected/<student>/<aid>/`.

Accepted, as a folder or a zip of it (a single wrapping folder is looked through):

- one folder per student, named by the student id: `<student>/<files>` or `<student>/<aid>/<files>`;
- Canvas's "Download submissions": files `doejane_12345_67890_<original name>` (`doejane_LATE_12345_...` when
  late), 12345 being the student's Canvas id;
- Moodle's "Download all submissions": folders `Jane Doe_12345_assignsubmission_file_/<files>` (or files
  `Jane Doe_12345_assignsubmission_file_<original name>`), 12345 being the participant id.

An optional roster CSV maps those to student ids: a header with `student_id` and at least one of `lms_id`
(the number in the file name) and `name` ("Jane Doe", "Doe, Jane" and Canvas's "doejane" all match).
Without a roster the LMS number is the student id. The instructor's files are only read: everything is copied,
and a student collected again gets the new files in place of the old ones.
"""

from __future__ import annotations

import csv
import re
import shutil
import tempfile
import unicodedata
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from selfsup.grading.course import Course, check_id

CANVAS_RE = re.compile(r"(?P<name>[^_/]+)_(?:LATE_)?(?P<lms_id>\d+)_\d+_(?P<file>.+)")
MOODLE_RE = re.compile(r"(?P<name>.+?)_(?P<lms_id>\d+)_assignsubmission_(?P<plugin>[a-z]+)_(?P<file>.*)")
IGNORED = ("__MACOSX", ".DS_Store", "Thumbs.db")


@dataclass
class Submission:
    """One student's files as found in the export, before they are copied.

    Attributes:
        origin: the file or folder name in the export (for messages).
        files: {name to store it under: path in the export}.
        lms_id: the Canvas or Moodle number, if the export has one.
        name: the student's name as the export spells it, if any.
        folder: the folder name of a plain one-folder-per-student layout.
    """

    origin: str
    files: dict[str, Path] = field(default_factory=dict)
    lms_id: str | None = None
    name: str | None = None
    folder: str | None = None


@dataclass
class CollectReport:
    """What `collect` did.

    Attributes:
        assignment: the assignment id.
        students: {student id: names of the files copied}.
        skipped: entries of the export that are not submissions, each with the reason.
        unmatched: submissions the roster does not name, collected under their LMS number or folder name.
    """

    assignment: str
    students: dict[str, list[str]] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)


def _visible(path: Path) -> bool:
    return not path.name.startswith(".") and path.name not in IGNORED


def _files(folder: Path) -> dict[str, Path]:
    """{relative name: path} of the visible files under a folder."""
    return {
        str(p.relative_to(folder)): p
        for p in sorted(folder.rglob("*"))
        if p.is_file() and all(_visible(Path(part)) for part in p.relative_to(folder).parts)
    }


def name_keys(name: str) -> set[str]:
    """Spellings of a name to match on: letters and digits only, lower case, in either word order."""
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    words = [w for w in re.split(r"[^a-z0-9]+", plain) if w]
    if not words:
        return set()
    return {"".join(words), "".join(words[-1:] + words[:-1]), "".join(words[1:] + words[:1])}


@dataclass
class Roster:
    """A CSV that maps LMS numbers and names to student ids."""

    ids: set[str]
    by_lms_id: dict[str, str]
    by_name: dict[str, str]

    def find(self, sub: Submission) -> str | None:
        """The student id of a submission, or None if the roster does not name it."""
        if sub.lms_id and sub.lms_id in self.by_lms_id:
            return self.by_lms_id[sub.lms_id]
        if sub.folder and sub.folder in self.ids:
            return sub.folder
        for key in name_keys(sub.name or sub.folder or ""):
            if key in self.by_name:
                return self.by_name[key]
        return None


def read_roster(path: Path) -> Roster:
    """Read a roster CSV (see the module docstring); raises ValueError saying what is wrong with it."""
    if not path.is_file():
        raise FileNotFoundError(f"no roster CSV at {path}")
    allowed = "a header row with student_id and at least one of lms_id, name"
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        header = [h.strip() for h in reader.fieldnames or []]
        if "student_id" not in header or not {"lms_id", "name"} & set(header):
            raise ValueError(f"roster {path} has the columns {header}; it needs {allowed}")
        rows = [{(k or "").strip(): (v or "").strip() for k, v in row.items()} for row in reader]
    if not rows:
        raise ValueError(f"roster {path} has a header but no students")
    roster = Roster(set(), {}, {})
    for line, row in enumerate(rows, start=2):
        student = row.get("student_id", "")
        if not student:
            raise ValueError(f"roster {path}, line {line}: the student_id is empty")
        check_id(student, f"roster {path}, line {line}: student_id")
        roster.ids.add(student)
        keys = [("lms_id", row.get("lms_id", ""), roster.by_lms_id)]
        keys += [("name", key, roster.by_name) for key in name_keys(row.get("name", ""))]
        for column, key, table in keys:
            if key and table.setdefault(key, student) != student:
                raise ValueError(
                    f"roster {path}, line {line}: {column} {row.get(column)!r} already belongs to {table[key]!r}"
                )
    return roster


def _scan(root: Path, assignment: str) -> tuple[list[Submission], list[str]]:
    """The submissions in an export folder, and the entries skipped with their reasons."""
    entries = [p for p in sorted(root.iterdir()) if _visible(p)]
    # Look through a single wrapping folder (zips often have one) when it holds folders or LMS files.
    while len(entries) == 1 and entries[0].is_dir():
        inner = [p for p in sorted(entries[0].iterdir()) if _visible(p)]
        if not any(p.is_dir() or CANVAS_RE.fullmatch(p.name) or MOODLE_RE.fullmatch(p.name) for p in inner):
            break
        entries = inner
    found: list[Submission] = []
    skipped: list[str] = []
    for entry in entries:
        moodle, canvas = MOODLE_RE.fullmatch(entry.name), CANVAS_RE.fullmatch(entry.name)
        if moodle:
            sub = Submission(entry.name, lms_id=moodle["lms_id"], name=moodle["name"])
            if moodle["plugin"] != "file":
                skipped.append(f"{entry.name}: a Moodle {moodle['plugin']} entry, not a file submission")
                continue
            sub.files = _files(entry) if entry.is_dir() else {moodle["file"]: entry}
        elif canvas and entry.is_file():
            sub = Submission(entry.name, {canvas["file"]: entry}, lms_id=canvas["lms_id"], name=canvas["name"])
        elif entry.is_dir():
            inner = entry / assignment
            sub = Submission(entry.name, _files(inner if inner.is_dir() else entry), folder=entry.name)
        else:
            skipped.append(f"{entry.name}: not in a student folder, and not named like a Canvas or Moodle download")
            continue
        if sub.files:
            found.append(sub)
        else:
            skipped.append(f"{entry.name}: holds no files")
    return found, skipped


def _extract(archive: Path, into: Path) -> None:
    """Unzip, refusing members that would land outside `into`."""
    with zipfile.ZipFile(archive) as z:
        members = [m for m in z.infolist() if not m.is_dir()]
        if not members:
            raise ValueError(f"the zip {archive} holds no files")
        for m in members:
            target = (into / m.filename).resolve()
            if not target.is_relative_to(into.resolve()):
                raise ValueError(f"the zip {archive} has a member outside its folder: {m.filename!r}")
        z.extractall(into)


def collect(course: Course, source: Path, assignment: str, roster: Path | None = None) -> CollectReport:
    """Copy the submissions of `assignment` from a folder or zip into the course's collected folder.

    Args:
        course: the course.
        source: a folder or a .zip (see the module docstring for the layouts).
        assignment: the assignment id the submissions belong to.
        roster: an optional CSV mapping LMS numbers or names to student ids.

    Returns:
        Who was collected with which files, what was skipped, and who the roster did not name.
    """
    course.require(assignment)
    allowed = "a folder with one sub-folder per student, or a zip downloaded from Canvas or Moodle"
    if not source.exists():
        raise FileNotFoundError(f"no submissions at {source}: give {allowed}")
    table = read_roster(roster) if roster else None
    with tempfile.TemporaryDirectory(prefix="selfsup-collect-") as tmp:
        root = source
        if source.is_file():
            if not zipfile.is_zipfile(source):
                raise ValueError(f"{source} is a file but not a zip: give {allowed}")
            root = Path(tmp) / "export"
            _extract(source, root)
        found, skipped = _scan(root, assignment)
        if not found:
            why = f" (skipped: {'; '.join(skipped)})" if skipped else ""
            raise ValueError(f"no submissions found in {source}{why}: give {allowed}")
        report = CollectReport(assignment, skipped=skipped)
        by_student: dict[str, dict[str, Path]] = {}
        for sub in found:
            student = table.find(sub) if table else None
            if student is None:
                student = sub.lms_id or sub.folder or ""
                if table:
                    report.unmatched.append(f"{sub.origin} (collected as {student!r})")
            check_id(student, f"the student id of {sub.origin!r}")
            files = by_student.setdefault(student, {})
            for name, path in sub.files.items():
                if name in files:
                    raise ValueError(f"two submissions of student {student!r} both have a file {name!r}")
                files[name] = path
        for student, files in sorted(by_student.items()):
            _replace(course.collected / student / assignment, files)
            report.students[student] = sorted(files)
    from selfsup.grading import gradebook  # nbgrader is slow to import; the checks above do not need it

    gradebook.add_students(course, sorted(set(report.students) | (table.ids if table else set())))
    return report


def _replace(dest: Path, files: dict[str, Path]) -> None:
    """Make `dest` hold exactly `files`, written beside it first so a failure leaves the old copy whole."""
    staging = dest.with_name(dest.name + ".collecting")
    shutil.rmtree(staging, ignore_errors=True)
    for name, path in files.items():
        target = staging / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
    shutil.rmtree(dest, ignore_errors=True)
    staging.rename(dest)
