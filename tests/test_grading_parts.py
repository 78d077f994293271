"""The grading pieces that need no kernel: repairing a submission, hiding hidden tests, limits, Make targets."""

from __future__ import annotations

import copy
import json
import re
import subprocess

import nbformat
import pytest
from grading_helpers import FIXTURE, REPO, nbgrader_meta, read

from selfsup.grading.autograde import Limits
from selfsup.grading.feedback import HIDDEN_NOTE, HideHiddenTests, hidden_blocks, leaks
from selfsup.grading.submission import SubmissionError, pick_notebook, read_notebook, restore_structure

TEMPLATE = read(FIXTURE / "exercises" / "00-toy" / "00-toy.ipynb")


def _ids(nb):
    return [nbgrader_meta(c).get("grade_id") or c.get("id") for c in nb.cells]


def test_restore_puts_tests_back_in_order_and_keeps_the_students_work():
    nb = copy.deepcopy(TEMPLATE)
    cells = {c.id: c for c in nb.cells}
    cells["count_masks-solution"].source = "def count_masks(tokens, mask=MASK):\n    return 42"
    cells["count_masks-test-visible"].source = "pass"
    scratch = nbformat.v4.new_code_cell("helper = 1")
    duplicate = copy.deepcopy(cells["mask_every-test-visible"])  # a copied test cell (same grade_id)
    duplicate.id = "my-copy"
    nb.cells = [c for c in nb.cells if c.id != "mask_every-test-hidden" and c.id != "setup"]
    nb.cells.insert(nb.cells.index(cells["count_masks-solution"]) + 1, scratch)
    nb.cells.reverse()
    nb.cells.append(duplicate)
    restored, notes = restore_structure(nb, TEMPLATE)
    # An added cell stays after the cell it followed in the student's order (reversed: count_masks's visible
    # test; the copy: intro); the release's order and its deleted cells come back.
    assert _ids(restored) == [
        "intro",
        "my-copy",
        "setup",
        "count_masks-text",
        "count_masks-solution",
        "count_masks-test-visible",
        scratch.id,
        "count_masks-test-hidden",
        "mask_every-text",
        "mask_every-solution",
        "mask_every-test-visible",
        "mask_every-test-hidden",
        "outro",
    ]
    by_id = {c.id: c for c in restored.cells}
    assert by_id["count_masks-solution"].source.endswith("return 42")
    assert by_id["count_masks-test-visible"].source == "".join(
        next(c for c in TEMPLATE.cells if c.id == "count_masks-test-visible").source
    )
    assert "nbgrader" not in by_id["my-copy"].metadata, "a copy of a test must not be graded twice"
    assert notes == [
        "restored edited read-only cells: count_masks-test-visible",
        "restored deleted cells: setup, mask_every-test-hidden",
        "put the cells back in the release's order",
    ]
    nbformat.validate(restored)


def test_restore_leaves_a_clean_submission_alone():
    restored, notes = restore_structure(copy.deepcopy(TEMPLATE), TEMPLATE)
    assert notes == [] and _ids(restored) == _ids(TEMPLATE)


def test_a_deleted_answer_cell_is_not_replaced_by_the_stub():
    nb = copy.deepcopy(TEMPLATE)
    nb.cells = [c for c in nb.cells if c.id != "count_masks-solution"]
    nb.cells.insert(1, nbformat.v4.new_code_cell("def count_masks(tokens, mask='[MASK]'):\n    return 0"))
    restored, notes = restore_structure(nb, TEMPLATE)
    assert "count_masks-solution" not in _ids(restored)
    assert notes == ["no answer cell count_masks-solution (deleted?)"]


def test_read_notebook_rejects_what_is_not_a_notebook(tmp_path):
    cases = {
        "binary.ipynb": (b"\xff\xfe\x00", "not a text file"),
        "cut.ipynb": (b'{"cells": [', "not valid JSON (line 1, column 12"),
        "list.ipynb": (b"[1, 2]", "not a Jupyter notebook"),
        "v2.ipynb": (json.dumps({"nbformat": 2, "worksheets": []}).encode(), "nbformat 2"),
        "broken.ipynb": (
            json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [1]}).encode(),
            "not a readable notebook",
        ),
    }
    for name, (content, message) in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(SubmissionError, match=re.escape(message)) as e:
            read_notebook(tmp_path / name)
        assert e.value.status == "unreadable"


def test_read_notebook_converts_nbformat_3(tmp_path):
    (tmp_path / "old.ipynb").write_text(nbformat.writes(nbformat.convert(copy.deepcopy(TEMPLATE), 3), version=3))
    nb, notes = read_notebook(tmp_path / "old.ipynb")
    assert nb.nbformat == 4 and notes == ["converted old.ipynb from nbformat 3 to 4"]
    assert [nbgrader_meta(c).get("grade_id") for c in nb.cells] == [
        nbgrader_meta(c).get("grade_id") for c in TEMPLATE.cells
    ]


def test_pick_notebook(tmp_path):
    folder = tmp_path / "s"
    with pytest.raises(SubmissionError, match="nothing was handed in"):
        pick_notebook(folder, "00-toy")
    (folder / ".ipynb_checkpoints").mkdir(parents=True)
    (folder / ".ipynb_checkpoints" / "x-checkpoint.ipynb").write_text("{}")
    (folder / "sub").mkdir()
    (folder / "sub" / "Untitled.ipynb").write_text("{}")
    path, notes = pick_notebook(folder, "00-toy")
    assert path.name == "Untitled.ipynb" and "'sub/Untitled.ipynb'" in notes[0]
    (folder / "00-toy.ipynb").write_text("{}")
    assert pick_notebook(folder, "00-toy") == (folder / "00-toy.ipynb", [])


def test_hidden_tests_and_their_tracebacks_are_hidden():
    source = "x = 1\n    ### BEGIN HIDDEN TESTS\n    assert secret_check(x)\n    ### END HIDDEN TESTS\nprint(x)"
    shown, hidden = hidden_blocks(source, "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")
    assert shown == f"x = 1\n    {HIDDEN_NOTE}\nprint(x)" and hidden == ["    assert secret_check(x)"]
    cell = nbformat.v4.new_code_cell(source)
    cell.outputs = [
        nbformat.v4.new_output(
            "error",
            ename="AssertionError",
            evalue="x is wrong",
            traceback=["--> 3 assert secret_check(x)", "AssertionError: x is wrong"],
        )
    ]
    nb = nbformat.v4.new_notebook(cells=[cell])
    nb, _ = HideHiddenTests(notes=["status: ok"]).preprocess(nb, {})
    assert "secret_check" not in json.dumps(nb)
    assert nb.cells[1].outputs[0].traceback == ["AssertionError: x is wrong"]
    assert nb.cells[0].source == "**Grading notes**\n\n- status: ok"


def test_the_feedback_guard_finds_a_leak():
    page = "<pre><span class='k'>assert</span> <span>secret_check</span>(x)</pre>"
    page += "<p>---&gt; 3 assert out == [&quot;w0&quot;]</p>"
    assert leaks(page, {"assert secret_check(x)", 'assert out == ["w0"]', "not there"}) == [
        'assert out == ["w0"]',
        "assert secret_check(x)",
    ]


def test_limits_are_checked():
    with pytest.raises(ValueError, match="time limits must be positive"):
        Limits(student_seconds=0)


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("lab", "jupyter lab"),
        ("release ASSIGNMENT=01-masking", "selfsup grade release 01-masking"),
        (
            "collect SUBMISSIONS=class.zip ASSIGNMENT=01-masking ROSTER=ids.csv",
            "selfsup grade collect class.zip --assignment 01-masking --roster ids.csv",
        ),
        ("autograde", "selfsup grade autograde"),
        ("autograde ASSIGNMENT=01-masking JOBS=2", "selfsup grade autograde 01-masking --jobs 2"),
        ("feedback", "selfsup grade feedback"),
        ("export OUT=grades.csv", "selfsup grade export --out grades.csv"),
    ],
)
def test_make_targets(target, expected):
    proc = subprocess.run(
        ["make", "-n", "-o", "setup", "-o", ".venv/.installed", *target.split()],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert expected in " ".join(proc.stdout.split()), proc.stdout
