"""The harness that proves the grading right: simulated students for every assignment.

The contract with the assignments (solutions/<aid>/<aid>.ipynb):

- Every cell has a stable `id`. A graded function `<fn>` has one solution cell with id (and nbgrader grade_id)
  `<fn>-solution`, and test cells whose ids start with `<fn>-test`; hidden parts of tests sit between
  `### BEGIN HIDDEN TESTS` and `### END HIDDEN TESTS`.
- `tests/exercise_mutants/<aid>.py` defines `MUTANTS: dict[str, list[tuple[str, str]]]`: for a solution cell
  id, plausible wrong implementations as (description, replacement cell source); at least two per graded
  function.

The simulated students of an assignment, all graded in ONE autograde batch (one fork server, one gradebook):

- `solution`: the release with each solution cell filled in from solutions/ (markers removed); full marks.
- `blank`: the release as handed out; zero, without a crash.
- `mutant-k` (k = 1, 2): the solution with the k-th mutant of every solution cell that has one applied at
  once; for each mutated `<fn>-solution`, the points of the `<fn>-test*` cells must fall below their maximum
  (other functions are not checked, since functions may call each other).
- `edited`: the solution with a test cell's source replaced by `assert True`, another test cell deleted and the
  cells in reverse order; after grading the original tests are back and the scores equal `solution`'s.
"""

from __future__ import annotations

import copy
import importlib.util
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import nbformat
from nbformat import NotebookNode

from selfsup.grading.course import Course, sqlite_url

REPO = Path(__file__).resolve().parents[1]
FIXTURE = REPO / "tests" / "fixtures" / "grading"
BEGIN_HIDDEN, END_HIDDEN = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"


def nbgrader_meta(cell: NotebookNode) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def is_test(cell: NotebookNode) -> bool:
    meta = nbgrader_meta(cell)
    return cell.cell_type == "code" and bool(meta.get("grade")) and not meta.get("solution")


def make_course(state: Path, source: Path, release: Path) -> Course:
    """A course over the given sources and release, grading into its own state folder and SQLite gradebook."""
    return Course(root=REPO, source=source, release=release, state=state, db_url=sqlite_url(state / "gradebook.db"))


def read(path: Path) -> NotebookNode:
    return nbformat.read(path, as_version=4)


def strip_solution_markers(source: str) -> str:
    return "\n".join(
        line for line in source.split("\n") if line.strip() not in ("### BEGIN SOLUTION", "### END SOLUTION")
    )


def graded_functions(source_nb: NotebookNode) -> dict[str, tuple[str, list[str]]]:
    """{fn: (solution cell id, [its test cell ids])} for every `<fn>-solution` cell."""
    out = {}
    tests = [c.id for c in source_nb.cells if is_test(c)]
    for cell in source_nb.cells:
        if nbgrader_meta(cell).get("solution") and cell.id.endswith("-solution"):
            fn = cell.id.removesuffix("-solution")
            out[fn] = (cell.id, [t for t in tests if t.startswith(f"{fn}-test")])
    return out


def solution_student(source_nb: NotebookNode, template: NotebookNode) -> NotebookNode:
    """The release with every solution cell holding the solution."""
    solutions = {c.id: strip_solution_markers(c.source) for c in source_nb.cells if nbgrader_meta(c).get("solution")}
    nb = copy.deepcopy(template)
    for cell in nb.cells:
        if cell.id in solutions:
            cell.source = solutions[cell.id]
    return nb


def load_mutants(path: Path) -> dict[str, list[tuple[str, str]]]:
    spec = importlib.util.spec_from_file_location(f"mutants_{path.stem.replace('-', '_')}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.MUTANTS


def mutant_students(
    solution: NotebookNode, mutants: dict[str, list[tuple[str, str]]], most: int | None = None
) -> dict[str, dict]:
    """{"mutant-k": {"nb": notebook, "applied": {solution cell id: description}}} (see the module docstring).

    Student k carries the k-th mutant of every graded function. `most` caps the number of students: the real
    autograde path grades the first two of each function, and tests/test_exercise_sources.py runs all of them
    in-process against the same test cells.
    """
    out = {}
    n = max((len(v) for v in mutants.values()), default=0)
    for k in range(n if most is None else min(n, most)):
        nb, applied = copy.deepcopy(solution), {}
        for cell in nb.cells:
            options = mutants.get(cell.id, [])
            if k < len(options):
                applied[cell.id], cell.source = options[k]
        out[f"mutant-{k + 1}"] = {"nb": nb, "applied": applied}
    return out


def edited_student(solution: NotebookNode) -> tuple[NotebookNode, str, str]:
    """(the notebook, the id of the test cell emptied to `assert True`, the id of the test cell deleted)."""
    nb = copy.deepcopy(solution)
    tests = [c for c in nb.cells if is_test(c)]
    emptied, deleted = tests[0], tests[-1]
    emptied.source = "assert True  # the tests were in my way"
    nb.cells = [c for c in nb.cells if c is not deleted]
    nb.cells.reverse()
    nb.cells.append(nbformat.v4.new_code_cell("scratch = 'my own cell'"))
    return nb, emptied.id, deleted.id


def hand_in(course: Course, student: str, assignment: str, nb: NotebookNode | str, name: str | None = None) -> Path:
    """Put a submission where `collect` puts it; `nb` may be raw text (a broken file)."""
    folder = course.collected / student / assignment
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / (name or f"{assignment}.ipynb")
    if isinstance(nb, str):
        path.write_text(nb)
    else:
        nbformat.write(nb, path)
    return path


def hidden_lines(source_nb: NotebookNode, release_nb: NotebookNode) -> set[str]:
    """Lines of the hidden blocks that the release does not show anyway (an independent reading)."""
    hidden, inside = set(), False
    for cell in source_nb.cells:
        for line in cell.source.split("\n"):
            if BEGIN_HIDDEN in line:
                inside = True
            elif END_HIDDEN in line:
                inside = False
            elif inside and line.strip():
                hidden.add(line.strip())
    visible = "\n".join(cell.source for cell in release_nb.cells)
    return {line for line in hidden if line not in visible}  # shown in the release, even in a longer line


class _TextOf(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.chunks, self.skip = [], False

    def handle_starttag(self, tag, attrs):
        self.skip = tag in ("style", "script")

    def handle_endtag(self, tag):
        self.skip = False

    def handle_data(self, data):
        if not self.skip:
            self.chunks.append(data)


def text_of(page: str) -> str:
    parser = _TextOf()
    parser.feed(page)
    return re.sub(r"\x1b\[[0-9;]*m", "", "".join(parser.chunks))


def shown_hidden_lines(page: str, hidden: set[str]) -> list[str]:
    """Hidden lines a page shows, as a line of its text or inside a line (a quoted traceback)."""
    text = text_of(page)
    lines = {line.strip() for line in text.splitlines()}
    return sorted(h for h in hidden if h in lines or (len(h) >= 10 and h in text))


@dataclass
class Assignment:
    """Where an assignment under test comes from."""

    aid: str
    source: Path  # the solutions folder
    release: Path  # the exercises folder
    mutants: Path  # the mutants file


def assignments() -> list[Assignment]:
    """The fixture assignment, then every assignment in solutions/."""
    found = [
        Assignment("00-toy", FIXTURE / "solutions", FIXTURE / "exercises", FIXTURE / "exercise_mutants" / "00-toy.py")
    ]
    solutions = REPO / "solutions"
    if solutions.is_dir():
        for folder in sorted(p for p in solutions.iterdir() if (p / f"{p.name}.ipynb").is_file()):
            aid = folder.name
            found.append(
                Assignment(aid, solutions, REPO / "exercises", REPO / "tests" / "exercise_mutants" / f"{aid}.py")
            )
    return found
