"""Autograding broken submissions of the fixture assignment: each gets a clear status and the score it deserves.

One batch grades them all (the batch must not stop at any of them); the tests read its records.
count_masks is worth 3 points (its tests run first), mask_every 5: a student whose mask_every cell kills or
hangs the kernel keeps the 3.
"""

from __future__ import annotations

import copy
import json
import shutil

import nbformat
import pytest
from grading_helpers import FIXTURE, hand_in, is_test, make_course, read, solution_student

from selfsup.grading import batch, gradebook, release
from selfsup.grading.autograde import Limits, grade_isolated, grade_submission
from selfsup.grading.result import load

AID = "00-toy"
LIMITS = Limits(student_seconds=12, grace_seconds=45)


def _with_cell(nb, cell_id, source):
    nb = copy.deepcopy(nb)
    next(c for c in nb.cells if c.id == cell_id).source = source
    return nb


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    course = make_course(tmp_path_factory.mktemp("broken") / "grading", FIXTURE / "solutions", FIXTURE / "exercises")
    template = read(release.sync(course, AID))
    solution = solution_student(read(course.source_notebook(AID)), template)
    stale = copy.deepcopy(template)  # the blank release, with outputs that claim every test passed
    for cell in stale.cells:
        if cell.cell_type == "code":
            cell.execution_count = 1
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="all tests passed\n")]
            if is_test(cell):
                cell.outputs.append(nbformat.v4.new_output("execute_result", data={"text/plain": "8"}))
    hand_in(course, "renamed", AID, solution, name="my work (final).ipynb")
    hand_in(course, "junk", AID, '{"cells": [ this is not json')
    hand_in(course, "not-a-notebook", AID, json.dumps({"cells": []}))
    hand_in(course, "future", AID, json.dumps({"nbformat": 5, "nbformat_minor": 0, "cells": [], "metadata": {}}))
    hand_in(course, "v3", AID, nbformat.writes(nbformat.convert(copy.deepcopy(solution), 3), version=3))
    hand_in(course, "dies", AID, _with_cell(solution, "mask_every-solution", "import os\nos._exit(1)"))
    hand_in(course, "loops", AID, _with_cell(solution, "mask_every-solution", "while True:\n    pass"))
    stubborn = "import signal, time\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    time.sleep(0.1)"
    hand_in(course, "stubborn", AID, _with_cell(solution, "mask_every-solution", stubborn))
    hand_in(course, "stale", AID, stale)
    (course.collected / "no-notebook" / AID).mkdir(parents=True)
    (course.collected / "no-notebook" / AID / "answers.txt").write_text("I did it on paper")
    hand_in(course, "two", AID, solution, name="a.ipynb")
    hand_in(course, "two", AID, solution, name="b.ipynb")
    students = sorted(p.name for p in course.collected.iterdir()) + ["ghost"]
    records = {r.student: r for r in batch.autograde(course, [AID], students, LIMITS)}
    return course, records, solution


def test_every_student_has_a_record(graded):
    course, records, _ = graded
    assert len(records) == 12
    for student, record in records.items():
        assert load(course, AID, student) == record
        assert record.max_score == 8


@pytest.mark.parametrize(
    ("student", "status", "score", "says"),
    [
        ("renamed", "ok", 8, "my work (final).ipynb"),
        ("v3", "ok", 8, "nbformat 3"),
        ("junk", "unreadable", 0, "not valid JSON"),
        ("not-a-notebook", "unreadable", 0, "not a Jupyter notebook"),
        ("future", "unreadable", 0, "nbformat 5"),
        ("dies", "kernel-died", 3, "the kernel died"),
        ("loops", "timeout", 3, "time limit of 12 s"),
        ("stubborn", "kernel-died", 3, "stopped answering"),
        ("stale", "ok", 0, ""),
        ("no-notebook", "no-notebook", 0, "answers.txt"),
        ("two", "no-notebook", 0, "a.ipynb, b.ipynb"),
        ("ghost", "missing", 0, "nothing was handed in"),
    ],
)
def test_status_and_score(graded, student, status, score, says):
    record = graded[1][student]
    assert (record.status, record.score) == (status, score), record.line()
    assert says in " ".join(record.notes), record.notes


def test_a_dead_kernel_keeps_the_points_earned_before(graded):
    record = graded[1]["dies"]
    assert record.cells["count_masks-test-hidden"] == [2.0, 2.0]
    assert record.cells["mask_every-test-visible"] == [0.0, 2.0]
    assert any("mask_every-solution" in n for n in record.notes) and any("not run" in n for n in record.notes)


def test_the_time_limit_bounds_an_infinite_loop(graded):
    for student in ("loops", "stubborn"):
        # The notebook's limit plus the shutdown of a kernel that ignores interrupts, far below the hard limit.
        assert graded[1][student].seconds < LIMITS.student_seconds + 25, graded[1][student].line()


def test_stale_outputs_do_not_count(graded):
    course, records, _ = graded
    executed = read(course.autograded / "stale" / AID / f"{AID}.ipynb")
    assert all(c.outputs[-1].output_type == "error" for c in executed.cells if is_test(c))
    assert gradebook.cell_scores(course, AID, "stale") == {k: (0.0, v[1]) for k, v in records["stale"].cells.items()}


def test_grading_again_gives_the_same_record_in_process(graded):
    course, records, _ = graded
    again = grade_submission(course, AID, "renamed", LIMITS)
    assert (again.status, again.notes, again.cells) == (
        records["renamed"].status,
        records["renamed"].notes,
        records["renamed"].cells,
    )


def test_a_grading_past_the_hard_limit_is_killed_and_scores_zero(graded, tmp_path):
    course, _, solution = graded
    assert gradebook.cell_scores(course, AID, "renamed")["mask_every-test-hidden"] == (3.0, 3.0)
    record = grade_isolated(course, AID, "renamed", Limits(student_seconds=0.5, grace_seconds=0))
    assert (record.status, record.score) == ("killed", 0), record.line()
    # No earlier score survives in the gradebook.
    assert all(score == 0 for score, _ in gradebook.cell_scores(course, AID, "renamed").values())


def test_collected_files_are_never_changed(graded):
    course = graded[0]
    renamed = course.collected / "renamed" / AID
    assert sorted(p.name for p in renamed.iterdir()) == ["my work (final).ipynb"]
    assert (course.collected / "junk" / AID / f"{AID}.ipynb").read_text() == '{"cells": [ this is not json'


def test_a_missing_assignment_or_bad_student_id_is_a_clear_error(graded, tmp_path):
    course = graded[0]
    with pytest.raises(ValueError, match="unknown assignment 'nope'.*00-toy"):
        batch.autograde(course, ["nope"])
    with pytest.raises(ValueError, match="student id 'a b' is not allowed"):
        batch.autograde(course, [AID], ["a b"])
    empty = make_course(tmp_path / "grading", tmp_path / "nothing", tmp_path / "exercises")
    shutil.rmtree(tmp_path / "nothing", ignore_errors=True)
    with pytest.raises(ValueError, match="none yet"):
        empty.require(AID)


def test_the_cell_timeout_interrupts_one_cell_and_the_rest_still_run(graded):
    course = graded[0]
    record = grade_submission(course, AID, "loops", Limits(student_seconds=60, cell_seconds=2))
    assert (record.status, record.score) == ("timeout", 3), record.line()
    assert "ran longer than 2 s" in " ".join(record.notes) and "not run" not in " ".join(record.notes)
    executed = read(course.autograded / "loops" / AID / f"{AID}.ipynb")
    test = next(c for c in executed.cells if c.id == "mask_every-test-visible")
    assert test.outputs[-1].ename == "NameError"  # it ran, and found no mask_every
