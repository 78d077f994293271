"""Adversarial submissions, graded sandboxed in ONE batch: each gets the score it deserves and a clear status.

The course has the fixture assignment 00-toy (count_masks 3 points, its tests first; mask_every 5 points) and
00-guard, built here, whose tests use math.isclose, numpy.testing and torch.testing (2 points each). Most
attacks sit in a solution cell in front of the right code, so the honest cells keep their points; an attack
that stops its cell (a bomb, an exit) costs that function's points only. One `batch.autograde` with two jobs
grades every student; the tests then read its records, the graded notebooks, the feedback pages, the gradebook
and the machine (no listener contacted, no file written outside, no process left behind).
"""

from __future__ import annotations

import copy
import json
import shutil
import socket
import sqlite3
import threading
from pathlib import Path

import nbformat
import pytest
from grading_helpers import FIXTURE, hand_in, is_test, make_course, read, solution_student

from selfsup.grading import batch, feedback, gradebook, release, sandbox
from selfsup.grading.autograde import Limits
from selfsup.grading.executor import OUTPUT_CUT
from selfsup.grading.sandbox import SandboxLimits

pytestmark = pytest.mark.skipif(sandbox.problem() is not None, reason=f"no sandbox here: {sandbox.problem()}")

TOY, GUARD = "00-toy", "00-guard"
LIMITS = Limits(
    student_seconds=15, grace_seconds=60, sandbox=SandboxLimits(memory_mb=2048, processes=64, output_kb=256)
)
MASK_EVERY = """def mask_every(tokens, k, mask=MASK):
    return [mask if (i + 1) % k == 0 else t for i, t in enumerate(tokens)]"""
COUNT_MASKS = """def count_masks(tokens, mask=MASK):
    return sum(1 for t in tokens if t == mask)"""
MARK = "pwned-3f9a"  # what a successful attack would leave behind


def _cell(cell_id: str, source: str, *, solution: bool = False, points: int = 0) -> nbformat.NotebookNode:
    """A cell of an nbgrader source notebook: markdown (read-only), a solution, or a test worth `points`."""
    cell = nbformat.v4.new_code_cell(source) if solution or points else nbformat.v4.new_markdown_cell(source)
    cell.id = cell_id
    meta = {"grade": bool(points), "grade_id": cell_id, "locked": not solution, "schema_version": 3}
    meta.update({"solution": solution, "task": False, **({"points": points} if points else {})})
    cell.metadata["nbgrader"] = meta
    return cell


def guard_assignment(folder: Path) -> None:
    """00-guard: three functions whose tests use math.isclose, numpy.testing and torch.testing."""
    hidden = "### BEGIN HIDDEN TESTS\n{}\n### END HIDDEN TESTS"
    cells = [
        _cell("intro", "# 00-guard: tests that call library checks"),
        nbformat.v4.new_code_cell("import math\nimport numpy as np\nimport torch", id="setup"),
        _cell(
            "area-solution",
            "def area(r):\n    ### BEGIN SOLUTION\n    return math.pi * r * r\n    ### END SOLUTION",
            solution=True,
        ),
        _cell(
            "area-test",
            "assert math.isclose(area(1.0), math.pi)\n"
            + hidden.format("assert math.isclose(area(2.0), 4 * math.pi)  # hidden-canary-area"),
            points=2,
        ),
        _cell(
            "double-solution",
            "def double(x):\n    ### BEGIN SOLUTION\n    return np.asarray(x) * 2\n    ### END SOLUTION",
            solution=True,
        ),
        _cell(
            "double-test",
            "np.testing.assert_allclose(double([1.0, 2.0]), [2.0, 4.0])\n"
            + hidden.format("np.testing.assert_allclose(double([0.25]), [0.5])  # hidden-canary-double"),
            points=2,
        ),
        _cell(
            "halve-solution",
            "def halve(t):\n    ### BEGIN SOLUTION\n    return t / 2\n    ### END SOLUTION",
            solution=True,
        ),
        _cell(
            "halve-test",
            "torch.testing.assert_close(halve(torch.tensor([2.0, 4.0])), torch.tensor([1.0, 2.0]))\n"
            + hidden.format(
                "torch.testing.assert_close(halve(torch.tensor([3.0])), torch.tensor([1.5]))  # hidden-canary-halve"
            ),
            points=2,
        ),
    ]
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    (folder / GUARD).mkdir(parents=True)
    nbformat.write(nb, folder / GUARD / f"{GUARD}.ipynb")


def _with(nb, cell_id: str, source: str):
    nb = copy.deepcopy(nb)
    next(c for c in nb.cells if c.id == cell_id).source = source
    return nb


def _listener() -> tuple[socket.socket, list]:
    """A server on the grader's loopback that records every connection made to it."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.5)
    seen: list = []

    def serve() -> None:
        while server.fileno() != -1:
            try:
                conn, addr = server.accept()
            except OSError:
                continue
            seen.append(addr)
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    return server, seen


# (student, assignment, status, score, words in the notes); the submissions are built in `graded`.
EXPECTED = [
    ("honest", TOY, "ok", 8, ""),
    ("infinite-loop", TOY, "timeout", 3, "time limit of 15 s"),
    ("segfault", TOY, "kernel-died", 3, "the kernel died"),
    ("os-exit", TOY, "kernel-died", 3, "the kernel died"),
    ("memory-bomb", TOY, "ok", 3, ""),
    ("fork-bomb", TOY, "ok", 3, ""),
    ("big-output", TOY, "ok", 8, ""),
    ("sys-exit", TOY, "ok", 3, ""),
    ("network", TOY, "ok", 8, ""),
    ("reads-gradebook", TOY, "ok", 8, ""),
    ("reads-others", TOY, "ok", 8, ""),
    ("writes-outside", TOY, "ok", 8, ""),
    ("background", TOY, "ok", 8, ""),
    ("always-equal", TOY, "ok", 0, ""),
    ("patch-builtins", TOY, "ok", 6, ""),
    ("edits-tests", TOY, "ok", 3, "restored"),
    ("exfiltrates", TOY, "ok", 8, ""),
    ("fake-result", TOY, "ok", 5, ""),
    ("renamed", TOY, "ok", 8, "not '00-toy.ipynb'"),
    ("invalid-json", TOY, "unreadable", 0, "not valid JSON"),
    ("nbformat-5", TOY, "unreadable", 0, "nbformat 5"),
    ("stale-outputs", TOY, "ok", 0, ""),
    ("honest", GUARD, "ok", 6, ""),
    ("patch-isclose", GUARD, "ok", 4, ""),
    ("patch-numpy", GUARD, "ok", 4, ""),
    ("patch-torch", GUARD, "ok", 4, ""),
    ("silent-errors", GUARD, "ok", 0, ""),
]


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    top = tmp_path_factory.mktemp("adversarial")
    source = top / "solutions"
    shutil.copytree(FIXTURE / "solutions" / TOY, source / TOY)
    guard_assignment(source)
    course = make_course(top / "grading", source, top / "exercises")
    toy = solution_student(read(course.source_notebook(TOY)), read(release.sync(course, TOY)))
    guard = solution_student(read(course.source_notebook(GUARD)), read(release.sync(course, GUARD)))
    server, seen = _listener()
    port = server.getsockname()[1]
    gradebook_file = course.db_url.removeprefix("sqlite:///")
    other = course.collected / "honest" / TOY / f"{TOY}.ipynb"
    outside = [top / f"{MARK}.txt", course.state / f"{MARK}.txt", Path("/tmp") / f"{MARK}.txt"]

    def toy_with(attack: str, then: str = MASK_EVERY) -> nbformat.NotebookNode:
        return _with(toy, "mask_every-solution", f"{attack}\n{then}")

    attacks = {
        "honest": toy,
        "infinite-loop": toy_with("while True:\n    pass"),
        "segfault": toy_with("import ctypes\nctypes.string_at(0)"),
        "os-exit": toy_with("import os\nos._exit(3)"),
        "memory-bomb": toy_with("chunks = []\nwhile True:\n    chunks.append(bytearray(128 * 1024 * 1024))"),
        "fork-bomb": toy_with("import os\nwhile True:\n    os.fork()"),
        "big-output": toy_with("print('x' * 50_000_000)"),
        "sys-exit": toy_with("import sys\nsys.exit(1)"),
        "network": toy_with(
            f"import socket\ntry:\n    socket.create_connection(('127.0.0.1', {port}), timeout=3).send(b'{MARK}')\n"
            "    print('connected')\nexcept OSError as e:\n    print('no network:', type(e).__name__)"
        ),
        "reads-gradebook": toy_with(
            f"for p in [{gradebook_file!r}, {str(course.source_notebook(TOY))!r}, {str(course.state)!r}]:\n"
            "    try:\n        print(open(p, 'rb').read()[:200])\n    except OSError as e:\n"
            "        print('cannot read', type(e).__name__)"
        ),
        "reads-others": toy_with(
            f"import os\nfor p in [{str(course.collected)!r}, '/var/tmp', '/home']:\n"
            "    try:\n        print(p, os.listdir(p))\n    except OSError as e:\n        print(p, type(e).__name__)\n"
            f"try:\n    print(open({str(other)!r}).read()[:100])\nexcept OSError as e:\n    print(type(e).__name__)"
        ),
        "writes-outside": toy_with(
            "\n".join(
                f"try:\n    open({str(p)!r}, 'w').write('{MARK}')\nexcept OSError as e:\n    print(type(e).__name__)"
                for p in [*outside, other, gradebook_file]
            )
        ),
        "background": toy_with(
            f"import subprocess\nsubprocess.Popen(['sh', '-c', 'sleep 600; echo {MARK}'])\n"
            f"subprocess.Popen(['sh', '-c', '(sleep 601 &) ; echo {MARK}'])"
        ),
        "always-equal": _with(
            toy_with(
                "class AlwaysEqual(list):\n    def __eq__(self, other):\n        return True\n"
                "    def __len__(self):\n        return 7",
                "def mask_every(tokens, k, mask=MASK):\n    return AlwaysEqual()",
            ),
            "count_masks-solution",
            "class Yes(int):\n    def __eq__(self, other):\n        return True\n    __hash__ = int.__hash__\n"
            "def count_masks(tokens, mask=MASK):\n    return Yes(0)",
        ),
        "patch-builtins": _with(
            toy,
            "count_masks-solution",
            "import builtins\n_isinstance = isinstance\n"
            "builtins.isinstance = lambda x, t: type(x) is float or _isinstance(x, t)\n"
            "def count_masks(tokens, mask=MASK):\n    return float(sum(1 for t in tokens if t == mask))",
        ),
        "exfiltrates": _with(
            toy,
            "count_masks-solution",
            "import inspect\ndef count_masks(tokens, mask=MASK):\n"
            "    print('caller:', inspect.stack()[1].code_context)\n    return sum(1 for t in tokens if t == mask)",
        ),
        "fake-result": _with(
            toy,
            "count_masks-solution",
            "import sys\ndef count_masks(tokens, mask=MASK):\n    sys.displayhook(3)\n    return 0",
        ),
        "renamed": toy,
        "stale-outputs": copy.deepcopy(toy),
    }
    later = nbformat.v4.new_code_cell(
        "import linecache\nprint('cache:', [e[2] for e in linecache.cache.values()])\nprint('history:', In, _ih)"
    )
    attacks["exfiltrates"].cells.append(later)
    edited = _with(toy, "mask_every-solution", "def mask_every(tokens, k, mask=MASK):\n    return tokens")
    tests = [c for c in edited.cells if is_test(c)]
    tests[2].source = "pass"
    edited.cells = [c for c in edited.cells if c is not tests[3]][::-1]
    attacks["edits-tests"] = edited
    stale = copy.deepcopy(read(course.template(TOY)))
    for cell in stale.cells:
        if cell.cell_type == "code":
            cell.execution_count = 1
            cell.outputs = [nbformat.v4.new_output("execute_result", data={"text/plain": "8"}, execution_count=1)]
    attacks["stale-outputs"] = stale
    for student, nb in attacks.items():
        hand_in(course, student, TOY, nb, name="homework.ipynb" if student == "renamed" else None)
    hand_in(course, "invalid-json", TOY, '{"cells": [ oops')
    hand_in(course, "nbformat-5", TOY, json.dumps({"nbformat": 5, "nbformat_minor": 0, "cells": [], "metadata": {}}))

    def guard_with(cell_id: str, source: str) -> nbformat.NotebookNode:
        return _with(guard, cell_id, source)

    guard_attacks = {
        "honest": guard,
        "patch-isclose": guard_with(
            "area-solution", "math.isclose = lambda *args, **kwargs: True\ndef area(r):\n    return 0.0"
        ),
        "patch-numpy": guard_with(
            "double-solution",
            "import numpy.testing._private.utils as npu\nnp.testing.assert_allclose = lambda *a, **k: None\n"
            "npu.assert_allclose = npu.assert_array_compare = lambda *a, **k: None\ndef double(x):\n    return x",
        ),
        "patch-torch": guard_with(
            "halve-solution",
            "torch.testing.assert_close = lambda *a, **k: None\ntorch.Tensor.__eq__ = lambda *a: True\n"
            "def halve(t):\n    return t",
        ),
        "silent-errors": _with(
            _with(
                guard_with(
                    "area-solution",
                    "ip = get_ipython()\nip.showtraceback = lambda *a, **k: None\n"
                    "ip._showtraceback = lambda *a, **k: None\ndef area(r):\n    return 0.0",
                ),
                "double-solution",
                "def double(x):\n    return x",
            ),
            "halve-solution",
            "def halve(t):\n    return t",
        ),
    }
    for student, nb in guard_attacks.items():
        hand_in(course, student, GUARD, nb)

    students = sorted({s for s, _, _, _, _ in EXPECTED})
    by_key = {}
    for aid in (TOY, GUARD):
        chosen = sorted({s for s, a, _, _, _ in EXPECTED if a == aid})
        for record in batch.autograde(course, [aid], chosen, LIMITS, jobs=2):
            by_key[record.student, aid] = record
    pages = feedback.feedback(course, [TOY, GUARD], students)
    server.close()
    return {"course": course, "records": by_key, "seen": seen, "outside": outside, "other": other, "pages": pages}


@pytest.mark.parametrize(
    ("student", "aid", "status", "score", "says"), EXPECTED, ids=[f"{a}-{s}" for s, a, *_ in EXPECTED]
)
def test_status_and_score(graded, student, aid, status, score, says):
    record = graded["records"][student, aid]
    assert (record.status, record.score) == (status, score), record.line()
    assert says in " ".join(record.notes), record.notes


def test_there_are_at_least_18_kinds():
    assert len({s for s, _, _, _, _ in EXPECTED if s != "honest"}) >= 18


def _outputs(course, student, aid) -> str:
    nb = read(course.autograded / student / aid / f"{aid}.ipynb")
    return json.dumps([c.get("outputs", []) for c in nb.cells])


def test_the_sandbox_held(graded):
    course = graded["course"]
    assert graded["seen"] == [], "a kernel reached the grader's loopback"
    assert "no network" in _outputs(course, "network", TOY)
    for path in graded["outside"]:
        assert not path.exists(), path
    assert json.loads(graded["other"].read_text())["nbformat"] == 4  # the other student's file is untouched
    reads = _outputs(course, "reads-gradebook", TOY)
    assert "cannot read FileNotFoundError" in reads and "SQLite" not in reads
    others = _outputs(course, "reads-others", TOY)
    assert "FileNotFoundError" in others and "honest" not in others
    # No process of any sandbox is left: the PID namespace ended with each kernel.
    left = []
    for proc in Path("/proc").iterdir():
        try:
            if MARK in (proc / "cmdline").read_bytes().decode(errors="replace"):
                left.append(proc.name)
        except OSError:
            continue
    assert left == []


def test_the_gradebook_is_intact(graded):
    course, records = graded["course"], graded["records"]
    path = course.db_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as db:
        assert db.execute("pragma integrity_check").fetchone() == ("ok",)
    for (student, aid), record in records.items():
        if record.status != "unreadable":
            cells = gradebook.cell_scores(course, aid, student)
            assert {k: [s, m] for k, (s, m) in cells.items()} == record.cells, (student, aid)


def test_no_hidden_test_reaches_the_student(graded):
    course = graded["course"]
    assert len(graded["pages"]) == len(graded["records"])
    for page in graded["pages"]:
        assert "hidden-canary" not in page.read_text(), page
    for (student, aid), record in graded["records"].items():
        if record.status not in ("unreadable",):
            assert "hidden-canary" not in _outputs(course, student, aid), (student, aid)


def test_output_is_cut_with_a_note(graded):
    course = graded["course"]
    executed = course.autograded / "big-output" / TOY / f"{TOY}.ipynb"
    assert executed.stat().st_size < 1_000_000
    executed = read(course.autograded / "big-output" / TOY / f"{TOY}.ipynb")
    texts = [o.get("text", "") for c in executed.cells if c.cell_type == "code" for o in c.outputs]
    assert OUTPUT_CUT.format(kb=LIMITS.sandbox.output_kb) in texts
    assert sum(len(t) for t in texts) < 300 * 1024


def test_patched_checks_and_silenced_errors_score_zero(graded):
    cells = {s: graded["records"][s, GUARD].cells for s in ("patch-isclose", "patch-numpy", "patch-torch")}
    assert cells["patch-isclose"]["area-test"] == [0.0, 2.0]
    assert cells["patch-numpy"]["double-test"] == [0.0, 2.0]
    assert cells["patch-torch"]["halve-test"] == [0.0, 2.0]
    assert all(score == 0 for score, _ in graded["records"]["silent-errors", GUARD].cells.values())
    assert graded["records"]["fake-result", TOY].cells["count_masks-test-visible"] == [0.0, 1.0]


def test_without_bwrap_autograde_refuses(graded, monkeypatch):
    monkeypatch.setattr(sandbox, "problem", lambda: "bubblewrap (bwrap) is not installed: install it")
    with pytest.raises(sandbox.SandboxUnavailable, match="--unsandboxed"):
        batch.autograde(graded["course"], [TOY], ["honest"], LIMITS)
