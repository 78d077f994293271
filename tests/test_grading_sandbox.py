"""The sandbox's parts: the command it builds, a real sandboxed kernel, the in-kernel guard, --jobs, the CLI."""

from __future__ import annotations

import asyncio
import copy
import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from grading_helpers import FIXTURE, REPO, hand_in, load_mutants, make_course, mutant_students, read, solution_student

from selfsup.cli import main
from selfsup.grading import batch, guard, release, sandbox
from selfsup.grading.autograde import Limits
from selfsup.grading.sandbox import HOME, SandboxKernelManager, SandboxLimits, kernel_command, make_box, remove_box

AID = "00-toy"
needs_bwrap = pytest.mark.skipif(sandbox.problem() is not None, reason=f"no sandbox here: {sandbox.problem()}")


def test_the_command_binds_python_read_only_and_nothing_of_the_course(tmp_path):
    cmd = kernel_command(["python", "-m", "ipykernel_launcher"], tmp_path, 200123, SandboxLimits(memory_mb=1000))
    text = " ".join(cmd)
    for flag in ("--unshare-net", "--unshare-pid", "--die-with-parent", "--clearenv", "--new-session"):
        assert flag in cmd
    binds = {cmd[i + 2]: cmd[i] for i, a in enumerate(cmd) if a in ("--ro-bind", "--bind")}
    assert binds[str(Path(sys.prefix).resolve())] == "--ro-bind"
    assert binds[HOME] == "--bind" and binds["/tmp"] == "--bind"
    writable = {target for target, kind in binds.items() if kind == "--bind"}
    assert writable == {HOME, "/tmp", str(tmp_path / "run")}
    assert str(REPO) not in binds and "/" not in binds and "/root" not in binds  # the course stays outside
    # Of the repository, only the library (an editable install) and the venv: not tests/, solutions/, grading/.
    assert {t for t in binds if Path(t).is_relative_to(REPO)} <= {str(REPO / "lib"), str(REPO / ".venv")}
    assert "--reuid=200123" in cmd and f"--as={1000 * 1024 * 1024}" in cmd and "--nproc=128" in cmd
    assert "SELFSUP_GRADEBOOK_URL" not in text  # the grader's environment is not passed on


def test_a_course_checked_out_under_tmp_is_still_visible_to_the_kernel(tmp_path, monkeypatch):
    """bwrap applies mounts in order: the private /tmp must come before the venv's bind, or it hides a venv
    that lives under /tmp (a CI clone there got "kernel died" for every student)."""
    venv = Path("/tmp/some-course/.venv")
    monkeypatch.setattr(sandbox, "python_folders", lambda: [venv])
    cmd = kernel_command(["python", "-m", "ipykernel_launcher"], tmp_path, 200123, SandboxLimits())
    mounts = [(cmd[i + 2], i) for i, a in enumerate(cmd) if a in ("--ro-bind", "--bind")]
    where = dict(mounts)
    assert where["/tmp"] < where[str(venv)]
    assert cmd[-3:] == ["python", "-m", "ipykernel_launcher"]


def test_limits_must_be_positive():
    with pytest.raises(ValueError, match="positive"):
        SandboxLimits(memory_mb=0)


PROBE = """
import json, os, socket
out = {"uid": os.getuid(), "cwd": os.getcwd(), "home": sorted(os.listdir('.')), "root": sorted(os.listdir('/'))}
out["limits"] = [l for l in open('/proc/self/limits') if l.startswith(('Max processes', 'Max address'))]
try:
    socket.create_connection(('127.0.0.1', PORT), timeout=2)
    out["net"] = "connected"
except OSError as e:
    out["net"] = type(e).__name__
for name, path in (("repo", REPO), ("state", STATE)):
    out[name] = os.path.exists(path)
try:
    open('/usr/x', 'w')
    out["usr"] = "written"
except OSError as e:
    out["usr"] = type(e).__name__
print(json.dumps(out))
"""


@needs_bwrap
def test_a_sandboxed_kernel_sees_only_its_scratch(tmp_path):
    import socket

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    folder = tmp_path / "state" / "autograded" / "s1"
    folder.mkdir(parents=True)
    (folder / "data.csv").write_text("a,b\n")
    notebook = tmp_path / "nb.ipynb"
    notebook.write_text("{}")
    code = PROBE.replace("PORT", str(server.getsockname()[1])).replace("REPO", repr(str(REPO / "solutions")))
    code = code.replace("STATE", repr(str(tmp_path / "state")))

    async def run() -> dict:
        km = SandboxKernelManager(kernel_name="python3", limits={"processes": 50}, notebook=str(notebook))
        await km.start_kernel(cwd=str(folder))
        kc = km.client()
        kc.start_channels()
        await kc.wait_for_ready(timeout=120)
        lines = []
        await kc.execute_interactive(code, timeout=60, output_hook=lambda m: lines.append(m["content"].get("text")))
        box = km._box
        kc.stop_channels()
        await km.shutdown_kernel(now=True)
        return json.loads("".join(t for t in lines if t)), box

    out, box = asyncio.run(run())
    server.close()
    assert out["uid"] >= sandbox.UID_BASE and out["cwd"] == HOME
    assert out["home"] == [".cache", "data.csv", "nb.ipynb"]  # .cache: links to the grader's cached models
    assert out["net"] in ("ConnectionRefusedError", "OSError", "TimeoutError")
    assert (out["repo"], out["state"], out["usr"]) == (False, False, "OSError") or out["usr"] == "PermissionError"
    assert any("50" in line for line in out["limits"] if line.startswith("Max processes"))
    assert not box.exists()  # the scratch folder goes with the kernel


def test_make_box_copies_only_the_students_files(tmp_path):
    folder = tmp_path / "autograded"
    folder.mkdir()
    (folder / "other.ipynb").write_text("{}")  # a notebook there (nbgrader's copy) is not the scratch's
    (folder / "data.txt").write_text("x")
    box = make_box(12345, folder, None)
    try:
        assert sorted(p.name for p in (box / "home").iterdir()) == [".cache", "data.txt"]
        assert (box / "home").stat().st_uid == 12345 and (box / "home" / sandbox.CACHE).stat().st_uid == 12345
    finally:
        remove_box(box)


def test_rewrite_asserts_keeps_layout_and_messages():
    source = "x = 1\nassert f(x) == [1, 2], 'msg'\nassert g(\n    x\n) == 3\nassert a < b\nassert ok"
    out = guard.rewrite_asserts(source, "EQ")
    assert out.split("\n")[0] == "x = 1"
    assert "assert EQ((f(x)), ([1, 2])), 'msg'" in out
    assert "assert EQ((g(\n    x\n)), (3))" in out and out.endswith("assert a < b\nassert ok")
    assert guard.rewrite_asserts("assert (", "EQ") == "assert ("  # not Python: left alone


def test_the_guard_restores_patches_and_equality_is_strict():
    code = guard.setup_code("G", "EQ", "numpy", [sys.prefix, sys.base_prefix], "### BEGIN HIDDEN TESTS")
    check = textwrap.dedent(
        """
        import builtins, math, numpy as np
        math.isclose = lambda *a, **k: True
        builtins.isinstance = lambda *a: True
        np.testing.assert_allclose = lambda *a, **k: None
        G()
        assert not math.isclose(1.0, 2.0) and not isinstance(1, str)
        try:
            np.testing.assert_allclose([1.0], [2.0])
            raise SystemExit("numpy.testing still patched")
        except AssertionError:
            pass
        class Yes(list):
            def __eq__(self, other):
                return True
        assert not EQ(Yes(), [1]) and not EQ([Yes()], [[1]]) and not EQ({"a": Yes()}, {"a": [2]})
        assert EQ([1, (2, 3.0)], [1, (2, 3)]) and EQ(1.0, 1) and not EQ([1], [2]) and EQ({1, 2}, {2, 1})
        assert EQ(np.int64(3), 3) and not EQ("abc", ["a", "b", "c"])
        print("guard ok")
        """
    )
    run = subprocess.run([sys.executable, "-c", code + check], capture_output=True, text=True, timeout=120)
    assert run.stdout.strip() == "guard ok", run.stderr


@pytest.fixture(scope="module")
def class_of_four(tmp_path_factory):
    course = make_course(tmp_path_factory.mktemp("jobs") / "grading", FIXTURE / "solutions", FIXTURE / "exercises")
    template = read(release.sync(course, AID))
    solution = solution_student(read(course.source_notebook(AID)), template)
    mutants = mutant_students(solution, load_mutants(FIXTURE / "exercise_mutants" / f"{AID}.py"))
    for student, nb in {"a": solution, "b": mutants["mutant-1"]["nb"], "c": mutants["mutant-2"]["nb"]}.items():
        hand_in(course, student, AID, copy.deepcopy(nb))
    hand_in(course, "d", AID, template)
    return course


@needs_bwrap
def test_two_jobs_give_the_scores_of_one(class_of_four):
    limits = Limits(student_seconds=60, sandbox=SandboxLimits(memory_mb=2048))
    one = {r.student: (r.status, r.cells) for r in batch.autograde(class_of_four, [AID], limits=limits, jobs=1)}
    two = {r.student: (r.status, r.cells) for r in batch.autograde(class_of_four, [AID], limits=limits, jobs=2)}
    assert one == two and len(one) == 4
    assert [sum(s for s, _ in one[k][1].values()) for k in "ad"] == [8, 0]


@pytest.fixture
def course_root(tmp_path, monkeypatch):
    monkeypatch.delenv("SELFSUP_GRADEBOOK_URL", raising=False)
    shutil.copy(REPO / "nbgrader_config.py", tmp_path)
    shutil.copytree(FIXTURE / "solutions", tmp_path / "solutions")
    return tmp_path


def test_without_bwrap_the_cli_refuses_and_says_how_to_install(course_root, monkeypatch, capsys):
    monkeypatch.setattr(sandbox, "problem", lambda: f"bubblewrap (bwrap) is not installed: `{sandbox.INSTALL}`")
    assert main(["grade", "autograde", "--root", str(course_root)]) == 2
    err = capsys.readouterr().err
    assert "apt-get install -y bubblewrap" in err and "--unsandboxed" in err


def test_unsandboxed_warns_loudly(course_root, monkeypatch, capsys):
    monkeypatch.setattr(sandbox, "problem", lambda: "no bwrap")
    monkeypatch.setattr(batch, "autograde", lambda *a, **k: [])
    assert main(["grade", "autograde", "--root", str(course_root), "--unsandboxed"]) == 0
    assert "WARNING: --unsandboxed" in capsys.readouterr().err


@needs_bwrap
def test_the_cli_grades_on_a_local_dask_cluster(course_root, capsys):
    from selfsup.grading.course import load_course
    from selfsup.grading.result import load

    course = load_course(course_root)
    solution = solution_student(read(course.source_notebook(AID)), read(release.sync(course, AID)))
    hand_in(course, "s1", AID, solution)
    hand_in(course, "s2", AID, "not a notebook")
    args = ["grade", "autograde", "--root", str(course_root), "--scheduler", "local", "--workers", "1"]
    assert main([*args, "--time-limit", "60"]) == 0
    assert (load(course, AID, "s1").score, load(course, AID, "s2").status) == (8, "unreadable")
    assert "graded 2 submissions" in capsys.readouterr().out


def test_the_kernel_gets_the_model_cache_read_only(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "public.pt").write_bytes(b"a")
    (cache / "private.pt").write_bytes(b"b")
    (cache / "private.pt").chmod(0o600)
    (cache / "private.pt.lock").write_bytes(b"")
    monkeypatch.setenv("SELFSUP_CACHE", str(cache))
    box = make_box(54321, None, None)
    try:
        shared = box / "home" / sandbox.CACHE
        assert sorted(p.name for p in shared.iterdir()) == ["private.pt", "public.pt"]
        assert (shared / "public.pt").stat().st_ino == (cache / "public.pt").stat().st_ino  # a link, root's
        assert (shared / "private.pt").stat().st_uid == 54321 and (shared / "private.pt").read_bytes() == b"b"
        assert (cache / "private.pt").stat().st_uid == 0
    finally:
        remove_box(box)
