"""`selfsup check NOTEBOOK`: the student's run of the visible tests, with an exit status that means something."""

from __future__ import annotations

import copy
import json

import nbformat
import pytest
from grading_helpers import FIXTURE, read, solution_student

from selfsup.cli import main

RELEASE = FIXTURE / "exercises" / "00-toy" / "00-toy.ipynb"


@pytest.fixture(scope="module")
def solution():
    return solution_student(read(FIXTURE / "solutions" / "00-toy" / "00-toy.ipynb"), read(RELEASE))


def test_the_blank_release_fails_with_the_error_and_the_points(capsys):
    before = RELEASE.read_bytes()
    assert main(["check", str(RELEASE)]) == 1
    out = capsys.readouterr().out
    assert "0 of 4 test cells passed, 0 of 8 points" in out
    assert "FAILED  mask_every-test-hidden    0/3 points  NotImplementedError" in out
    assert RELEASE.read_bytes() == before, "check wrote to the notebook"


def test_a_solution_passes(solution, tmp_path, capsys):
    nbformat.write(solution, tmp_path / "00-toy.ipynb")
    assert main(["check", str(tmp_path / "00-toy.ipynb")]) == 0
    out = capsys.readouterr().out
    assert "4 of 4 test cells passed, 8 of 8 points" in out and "FAILED" not in out


def test_a_wrong_answer_shows_the_first_line_of_the_test_message(solution, tmp_path, capsys):
    nb = copy.deepcopy(solution)
    cell = next(c for c in nb.cells if c.id == "mask_every-solution")
    cell.source = (
        "def mask_every(tokens, k, mask=MASK):\n    return [mask if i % k == 0 else t for i, t in enumerate(tokens)]"
    )
    nbformat.write(nb, tmp_path / "mine.ipynb")
    assert main(["check", str(tmp_path / "mine.ipynb")]) == 1
    out = capsys.readouterr().out
    assert "FAILED  mask_every-test-visible   0/2 points  AssertionError: tokens 2 and 4 are masked" in out
    assert "passed  count_masks-test-visible  1/1 points" in out


def test_a_dead_kernel_fails_the_cells_after_it(solution, tmp_path, capsys):
    nb = copy.deepcopy(solution)
    next(c for c in nb.cells if c.id == "mask_every-solution").source = "import os\nos._exit(3)"
    nbformat.write(nb, tmp_path / "dies.ipynb")
    assert main(["check", str(tmp_path / "dies.ipynb")]) == 1
    out = capsys.readouterr().out
    assert "passed  count_masks-test-hidden" in out
    assert "FAILED  mask_every-test-visible   0/2 points  CellNotRun: the kernel died in an earlier cell" in out


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no notebook at"),
        ("{broken", "is not valid JSON"),
        (json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": []}), "has no graded test cells"),
    ],
)
def test_an_unreadable_notebook_exits_2(tmp_path, capsys, content, message):
    path = tmp_path / "x.ipynb"
    if content is not None:
        path.write_text(content)
    assert main(["check", str(path)]) == 2
    assert message in capsys.readouterr().err
