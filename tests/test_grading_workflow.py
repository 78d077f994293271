"""The instructor's workflow end to end through `selfsup grade ...`, on a copy of the course with the fixture.

A Canvas zip of three students (one right, one partly wrong, one with a broken notebook) and a roster with a
fourth student who handed nothing in give the expected CSV.
"""

from __future__ import annotations

import copy
import csv
import json
import shutil
import subprocess
import zipfile

import nbformat
import pytest
from grading_helpers import FIXTURE, REPO, hidden_lines, load_mutants, read, shown_hidden_lines, solution_student

from selfsup.cli import main
from selfsup.grading.course import GRADEBOOK_ENV, load_course

AID = "00-toy"


@pytest.fixture(scope="module")
def course_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("course")
    shutil.copy(REPO / "nbgrader_config.py", root)
    shutil.copytree(FIXTURE / "solutions", root / "solutions")
    return root


@pytest.fixture(scope="module")
def workflow(course_root, tmp_path_factory):
    """Release, collect a Canvas zip with a roster, autograde, feedback, export: the outputs of each step."""
    mp = pytest.MonkeyPatch()
    mp.delenv(GRADEBOOK_ENV, raising=False)
    out = {}
    root = ["--root", str(course_root)]
    out["release"] = main(["grade", "release", *root])
    template = read(course_root / "exercises" / AID / f"{AID}.ipynb")
    right = solution_student(read(course_root / "solutions" / AID / f"{AID}.ipynb"), template)
    partly = copy.deepcopy(right)  # count_masks ignores its mask argument: the hidden test (2 points) fails
    wrong = load_mutants(FIXTURE / "exercise_mutants" / f"{AID}.py")["count_masks-solution"][1][1]
    next(c for c in partly.cells if c.id == "count_masks-solution").source = wrong
    tmp = tmp_path_factory.mktemp("canvas")
    archive = tmp / "submissions.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("doejane_1001_5001_00-toy.ipynb", nbformat.writes(right))
        z.writestr("roesam_LATE_1002_5002_00-toy-1.ipynb", nbformat.writes(partly))  # renamed by Canvas
        z.writestr("leeann_1003_5003_00-toy.ipynb", nbformat.writes(right)[:500])  # cut off: not JSON
    roster = tmp / "roster.csv"
    roster.write_text(
        "student_id,lms_id,name\ns001,1001,Jane Doe\ns002,1002,Sam Roe\ns003,1003,Ann Lee\ns004,,Max Absent\n"
    )
    out["collect"] = main(["grade", "collect", str(archive), "--assignment", AID, "--roster", str(roster), *root])
    out["autograde"] = main(["grade", "autograde", *root, "--time-limit", "60"])
    out["feedback"] = main(["grade", "feedback", *root])
    out["export"] = main(["grade", "export", *root, "--out", str(tmp / "grades.csv")])
    with (tmp / "grades.csv").open(newline="") as f:
        out["rows"] = list(csv.DictReader(f))
    mp.undo()
    return out


def test_every_step_succeeds(workflow):
    assert [workflow[k] for k in ("release", "collect", "autograde", "feedback", "export")] == [0, 0, 0, 0, 0]


def test_release_writes_what_is_committed(workflow, course_root):
    fresh = json.loads((course_root / "exercises" / AID / f"{AID}.ipynb").read_text())
    assert fresh == json.loads((FIXTURE / "exercises" / AID / f"{AID}.ipynb").read_text())


def test_the_canvas_class_gives_the_expected_csv(workflow):
    rows = [(r["student_id"], r["assignment"], r["score"], r["max_score"], r["status"]) for r in workflow["rows"]]
    assert rows == [
        ("s001", AID, "8", "8", "ok"),
        ("s002", AID, "6", "8", "ok"),
        ("s003", AID, "0", "8", "unreadable"),
        ("s004", AID, "0", "8", "missing"),
    ]
    notes = {r["student_id"]: r["notes"] for r in workflow["rows"]}
    assert "00-toy-1.ipynb" in notes["s002"] and "not valid JSON" in notes["s003"]
    assert list(workflow["rows"][0]) == ["student_id", "assignment", "score", "max_score", "status", "notes", "seconds"]


def test_feedback_for_everyone_graded_and_no_hidden_tests(workflow, course_root):
    course = load_course(course_root)
    hidden = hidden_lines(read(course.source_notebook(AID)), read(course.release / AID / f"{AID}.ipynb"))
    pages = {p.parts[-3]: p.read_text() for p in course.feedback.glob(f"*/{AID}/{AID}.html")}
    assert sorted(pages) == ["s001", "s002", "s003"]
    for student, page in pages.items():
        assert not shown_hidden_lines(page, hidden), student
    assert "not valid JSON" in pages["s003"]
    assert "00-toy-1.ipynb" in pages["s002"]  # the grading notes head the feedback
    assert "Score: 6.0 / 8.0" in pages["s002"]


def test_nbgraders_own_feedback_would_show_them(workflow, course_root):
    """The check above can fail: the same page from nbgrader alone shows the hidden tests."""
    from nbgrader.apps import NbGraderAPI

    course = load_course(course_root)
    hidden = hidden_lines(read(course.source_notebook(AID)), read(course.release / AID / f"{AID}.ipynb"))
    config = course.nbgrader_config(CourseDirectory={"feedback_directory": str(course.state / "raw-feedback")})
    assert NbGraderAPI(config=config).generate_feedback(AID, "s002")["success"]
    page = (course.state / "raw-feedback" / "s002" / AID / f"{AID}.html").read_text()
    assert shown_hidden_lines(page, hidden)


def test_the_gradebook_url_comes_from_the_environment(course_root, monkeypatch, tmp_path):
    monkeypatch.delenv(GRADEBOOK_ENV, raising=False)
    assert load_course(course_root).db_url == f"sqlite:///{course_root / 'grading' / 'gradebook.db'}"
    monkeypatch.setenv(GRADEBOOK_ENV, "postgresql+psycopg://grader@db.example.org/selfsup")
    assert load_course(course_root).db_url == "postgresql+psycopg://grader@db.example.org/selfsup"
    # nbgrader itself reads the same setting from nbgrader_config.py.
    code = "from traitlets.config.loader import PyFileConfigLoader as L; print(L('nbgrader_config.py', path='.')"
    code += ".load_config().CourseDirectory.db_url)"
    proc = subprocess.run(
        [REPO / ".venv" / "bin" / "python", "-c", code], cwd=course_root, capture_output=True, text=True
    )
    assert proc.stdout.strip() == "postgresql+psycopg://grader@db.example.org/selfsup", proc.stderr


def test_command_line_errors(course_root, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv(GRADEBOOK_ENV, raising=False)
    root = ["--root", str(course_root)]
    assert main(["grade", "collect", str(tmp_path / "missing"), "--assignment", AID, *root]) == 1
    assert "no submissions at" in capsys.readouterr().err
    assert main(["grade", "release", "99-nope", *root]) == 1
    assert "unknown assignment '99-nope'" in capsys.readouterr().err
    assert main(["grade", "release", "--root", str(tmp_path)]) == 1
    assert "no nbgrader_config.py" in capsys.readouterr().err


def test_git_ignores_the_grading_state():
    proc = subprocess.run(["git", "check-ignore", "grading/gradebook.db"], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, "grading/ is not ignored"
