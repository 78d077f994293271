"""The proof, for every assignment, that its grading is right (the harness: tests/grading_helpers.py).

Each assignment (the fixture 00-toy, then every folder of solutions/) is graded once, in one autograde batch
with simulated students: the solution, the blank release, the mutants and a student who edited the tests.
The tests below read that batch's records, autograded notebooks and feedback pages.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from grading_helpers import (
    Assignment,
    assignments,
    edited_student,
    graded_functions,
    hand_in,
    hidden_lines,
    is_test,
    load_mutants,
    make_course,
    mutant_students,
    nbgrader_meta,
    read,
    shown_hidden_lines,
    solution_student,
)

from selfsup.grading import batch, release
from selfsup.grading.autograde import Limits
from selfsup.grading.course import Course
from selfsup.grading.feedback import feedback
from selfsup.grading.result import GradeResult

ASSIGNMENTS = assignments()
# Generous: a solution runs in at most 20 s, and CI shares two cores.
LIMITS = Limits(student_seconds=180, grace_seconds=60)


@dataclass
class Graded:
    """One assignment graded with its simulated students."""

    assignment: Assignment
    course: Course
    source: object  # the source notebook
    template: object  # the release generated now
    results: dict[str, GradeResult]
    mutants: dict[str, dict]
    emptied: str
    deleted: str
    pages: list[Path]

    def tests_of(self, fn: str, record: GradeResult) -> tuple[float, float]:
        cells = [v for k, v in record.cells.items() if k.startswith(f"{fn}-test")]
        return sum(s for s, _ in cells), sum(m for _, m in cells)


@pytest.fixture(scope="module", params=ASSIGNMENTS, ids=[a.aid for a in ASSIGNMENTS])
def graded(request, tmp_path_factory) -> Graded:
    a: Assignment = request.param
    course = make_course(tmp_path_factory.mktemp(a.aid) / "grading", a.source, a.release)
    template = read(release.sync(course, a.aid))
    source = read(course.source_notebook(a.aid))
    solution = solution_student(source, template)
    mutants = mutant_students(solution, load_mutants(a.mutants), most=2) if a.mutants.is_file() else {}
    edited, emptied, deleted = edited_student(solution)
    students = {"solution": solution, "blank": template, "edited": edited}
    students.update({name: m["nb"] for name, m in mutants.items()})
    for name, nb in students.items():
        hand_in(course, name, a.aid, nb)
    done = batch.autograde(course, [a.aid], limits=LIMITS, jobs=2, on_result=lambda r: print(r.line()))
    results = {r.student: r for r in done}
    pages = feedback(course, [a.aid])
    return Graded(a, course, source, template, results, mutants, emptied, deleted, pages)


def test_release_is_what_nbgrader_generates_today(graded: Graded, tmp_path):
    aid = graded.assignment.aid
    committed = graded.assignment.release / aid
    fresh = release.generate(graded.course, aid, tmp_path).parent
    files = sorted(p.relative_to(fresh) for p in fresh.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(committed) for p in committed.rglob("*") if p.is_file()), (
        f"exercises/{aid} has other files than nbgrader generates: run `selfsup grade release {aid}`"
    )
    for name in files:
        new, old = (fresh / name).read_bytes(), (committed / name).read_bytes()
        if name.suffix == ".ipynb":
            new, old = json.loads(new), json.loads(old)
        assert new == old, f"exercises/{aid}/{name} is stale or was edited: run `selfsup grade release {aid}`"


def test_contract_every_graded_function_has_visible_and_hidden_tests(graded: Graded):
    functions = graded_functions(graded.source)
    assert functions, "no graded function: a solution cell with id <fn>-solution"
    cells = {c.id: c for c in graded.source.cells}
    for fn, (_, tests) in functions.items():
        assert tests, f"{fn}: no test cell with an id starting {fn}-test"
        sources = [cells[t].source for t in tests]
        assert any("BEGIN HIDDEN TESTS" in s for s in sources), f"{fn}: no hidden tests"
        visible = [line for s in sources for line in s.split("### BEGIN HIDDEN TESTS")[0].splitlines()]
        assert any(line.strip() and not line.lstrip().startswith("#") for line in visible), f"{fn}: no visible test"


def test_solution_scores_full_marks(graded: Graded):
    record = graded.results["solution"]
    assert record.status == "ok", record.line()
    assert record.max_score > 0 and record.score == record.max_score, record.line() + f" {record.cells}"
    expected = {c.id: float(nbgrader_meta(c)["points"]) for c in graded.source.cells if is_test(c)}
    assert {k: v[1] for k, v in record.cells.items()} == expected, "the gradebook's points differ from the source"


def test_blank_release_scores_zero_without_a_crash(graded: Graded):
    record = graded.results["blank"]
    assert record.status == "ok", record.line()
    assert record.score == 0 and record.max_score == graded.results["solution"].max_score, record.cells


def test_every_graded_function_has_two_mutants(graded: Graded):
    path = graded.assignment.mutants
    assert path.is_file(), f"no mutants for {graded.assignment.aid}: write {path} (see tests/grading_helpers.py)"
    mutants = load_mutants(path)
    functions = graded_functions(graded.source)
    solution_cells = {cell for cell, _ in functions.values()}
    assert set(mutants) <= solution_cells, (
        f"mutants of cells that are not graded solutions: {set(mutants) - solution_cells}"
    )
    few = {fn: len(mutants.get(cell, [])) for fn, (cell, _) in functions.items() if len(mutants.get(cell, [])) < 2}
    assert not few, f"graded functions with fewer than two wrong implementations: {few}"


def test_every_mutant_loses_points(graded: Graded):
    assert graded.mutants, "no mutant students were graded"
    solution = graded.results["solution"]
    for name, mutant in graded.mutants.items():
        record = graded.results[name]
        assert record.status in ("ok", "timeout"), record.line()
        for cell, description in mutant["applied"].items():
            fn = cell.removesuffix("-solution")
            score, most = graded.tests_of(fn, record)
            assert graded.tests_of(fn, solution) == (most, most) and most > 0
            assert score < most, f"{name}: {fn} {description!r} still scores {score}/{most}: the tests miss it"


def test_edited_and_deleted_tests_are_restored(graded: Graded):
    record, solution = graded.results["edited"], graded.results["solution"]
    assert record.status == "ok", record.line()
    assert record.cells == solution.cells, "the edited student's scores differ from the solution's"
    notes = " ".join(record.notes)
    assert graded.emptied in notes and graded.deleted in notes and "order" in notes, record.notes
    aid = graded.assignment.aid
    executed = read(graded.course.autograded / "edited" / aid / f"{aid}.ipynb")
    ran = [(nbgrader_meta(c)["grade_id"], c.source.strip()) for c in executed.cells if is_test(c)]
    original = [(c.id, c.source.strip()) for c in graded.source.cells if is_test(c)]
    assert ran == original, "the autograded tests are not the source's tests, hidden ones included, in order"


def test_feedback_shows_no_hidden_test_source(graded: Graded):
    aid = graded.assignment.aid
    hidden = hidden_lines(graded.source, graded.template)
    assert hidden, "the assignment has no hidden test lines to keep secret"
    # The check can fail: nbgrader's autograded notebook does hold every hidden line.
    executed = read(graded.course.autograded / "solution" / aid / f"{aid}.ipynb")
    assert hidden <= {line.strip() for c in executed.cells for line in c.source.split("\n")}
    assert len(graded.pages) == len(graded.results)
    for page in graded.pages:
        text = page.read_text(encoding="utf-8")
        assert "Score" in text
        assert not shown_hidden_lines(text, hidden), f"{page} shows hidden tests"
