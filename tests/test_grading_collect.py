"""Collecting submissions: a plain folder, Canvas and Moodle zips, a roster CSV, and clear errors."""

from __future__ import annotations

import hashlib
import shutil
import zipfile
from pathlib import Path

import pytest
from grading_helpers import FIXTURE, make_course

from selfsup.grading import gradebook, release
from selfsup.grading.collect import collect, read_roster

AID = "00-toy"


@pytest.fixture(scope="module")
def base_state(tmp_path_factory):
    """A state folder with the gradebook made once (making one costs seconds), copied for each test."""
    course = make_course(tmp_path_factory.mktemp("collect") / "grading", FIXTURE / "solutions", FIXTURE / "exercises")
    release.sync(course, AID)
    return course.state


@pytest.fixture
def course(base_state, tmp_path):
    shutil.copytree(base_state, tmp_path / "grading")
    return make_course(tmp_path / "grading", FIXTURE / "solutions", FIXTURE / "exercises")


def _zip(path: Path, files: dict[str, str]) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        for name, text in files.items():
            z.writestr(name, text)
    return path


def _digest(folder: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        h.update(str(p.relative_to(folder)).encode())
        if p.is_file():
            h.update(p.read_bytes())
    return h.hexdigest()


def _collected(course) -> dict[str, list[str]]:
    return {
        s.name: sorted(str(p.relative_to(s / AID)) for p in (s / AID).rglob("*") if p.is_file())
        for s in sorted(course.collected.iterdir())
    }


def test_canvas_zip_without_roster_uses_the_canvas_ids(course, tmp_path):
    archive = _zip(
        tmp_path / "submissions.zip",
        {
            "doejane_1001_5001_00-toy.ipynb": "{}",
            "roesam_LATE_1002_5002_00-toy-1.ipynb": "{}",
            "roesam_LATE_1002_5003_helper.py": "x = 1",
        },
    )
    report = collect(course, archive, AID)
    assert report.students == {"1001": ["00-toy.ipynb"], "1002": ["00-toy-1.ipynb", "helper.py"]}
    assert _collected(course) == report.students
    assert (course.collected / "1002" / AID / "helper.py").read_text() == "x = 1"
    students, _, _ = gradebook.table(course)
    assert students == ["1001", "1002"]


def test_moodle_zip_with_a_roster_by_name(course, tmp_path):
    archive = _zip(
        tmp_path / "moodle.zip",
        {
            "00-toy-20240101/Jane Doe_1001_assignsubmission_file_/00-toy.ipynb": "{}",
            "00-toy-20240101/Sam Roe_1002_assignsubmission_file_/work/00-toy.ipynb": "{}",
            "00-toy-20240101/Sam Roe_1002_assignsubmission_onlinetext_/onlinetext.html": "<p>hi</p>",
        },
    )
    roster = tmp_path / "roster.csv"
    roster.write_text('student_id,name\njdoe,"Doe, Jane"\nsroe,Sam Roe\nabsent,Max Absent\n')
    report = collect(course, archive, AID, roster)
    assert report.students == {"jdoe": ["00-toy.ipynb"], "sroe": ["work/00-toy.ipynb"]}
    assert report.skipped == [
        "Sam Roe_1002_assignsubmission_onlinetext_: a Moodle onlinetext entry, not a file submission"
    ]
    assert not report.unmatched
    # Everyone on the roster is in the gradebook, so the export lists who handed nothing in.
    assert gradebook.table(course)[0] == ["absent", "jdoe", "sroe"]


def test_plain_folder_one_per_student_and_never_changed(course, tmp_path):
    export = tmp_path / "class"
    (export / "alice").mkdir(parents=True)
    (export / "alice" / "00-toy.ipynb").write_text("{}")
    (export / "bob" / AID).mkdir(parents=True)
    (export / "bob" / AID / "00-toy.ipynb").write_text("{}")
    (export / "bob" / "other-course.txt").write_text("not for this assignment")
    (export / "bob" / AID / ".ipynb_checkpoints").mkdir()
    (export / "bob" / AID / ".ipynb_checkpoints" / "00-toy-checkpoint.ipynb").write_text("{}")
    (export / "stray.ipynb").write_text("{}")
    before = _digest(export)
    report = collect(course, export, AID)
    assert report.students == {"alice": ["00-toy.ipynb"], "bob": ["00-toy.ipynb"]}
    assert report.skipped == ["stray.ipynb: not in a student folder, and not named like a Canvas or Moodle download"]
    assert _digest(export) == before, "collect changed the instructor's files"


def test_collecting_again_replaces_a_students_files_only(course, tmp_path):
    collect(course, _zip(tmp_path / "a.zip", {"x_1001_1_00-toy.ipynb": "old", "y_1002_2_00-toy.ipynb": "bob"}), AID)
    collect(course, _zip(tmp_path / "b.zip", {"x_1001_3_00-toy-2.ipynb": "new"}), AID)
    assert _collected(course) == {"1001": ["00-toy-2.ipynb"], "1002": ["00-toy.ipynb"]}
    assert (course.collected / "1001" / AID / "00-toy-2.ipynb").read_text() == "new"


def test_roster_by_lms_id_and_unmatched_submissions(course, tmp_path):
    roster = tmp_path / "roster.csv"
    roster.write_text("\ufeffstudent_id,lms_id,name\ns001,1001,Jane Doe\n")  # Excel's BOM is fine
    archive = _zip(tmp_path / "c.zip", {"doejane_1001_1_00-toy.ipynb": "{}", "newkid_1009_2_00-toy.ipynb": "{}"})
    report = collect(course, archive, AID, roster)
    assert sorted(report.students) == ["1009", "s001"]
    assert report.unmatched == ["newkid_1009_2_00-toy.ipynb (collected as '1009')"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("id,name\n1,Jane\n", "needs a header row with student_id"),
        ("student_id,email\ns1,a@b\n", "needs a header row with student_id and at least one of lms_id, name"),
        ("student_id,lms_id\n", "has a header but no students"),
        ("student_id,lms_id\n,1001\n", "line 2: the student_id is empty"),
        ("student_id,lms_id\ns1,1001\ns2,1001\n", "line 3: lms_id '1001' already belongs to 's1'"),
        ("student_id,lms_id\nJane Doe,1001\n", "line 2: student_id 'Jane Doe' is not allowed"),
    ],
)
def test_malformed_roster(tmp_path, text, message):
    roster = tmp_path / "roster.csv"
    roster.write_text(text)
    with pytest.raises(ValueError, match=message):
        read_roster(roster)


def test_bad_input_is_a_clear_error(course, tmp_path):
    with pytest.raises(FileNotFoundError, match="no submissions at .*one sub-folder per student"):
        collect(course, tmp_path / "nowhere", AID)
    with pytest.raises(FileNotFoundError, match="no roster CSV"):
        collect(course, tmp_path, AID, tmp_path / "roster.csv")
    with pytest.raises(ValueError, match="unknown assignment '01-nope'.*00-toy"):
        collect(course, tmp_path, "01-nope")
    with pytest.raises(ValueError, match="holds no files"):
        collect(course, _zip(tmp_path / "empty.zip", {}), AID)
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ValueError, match="is a file but not a zip"):
        collect(course, tmp_path / "notes.txt", AID)
    with pytest.raises(ValueError, match="member outside its folder"):
        collect(course, _zip(tmp_path / "evil.zip", {"../../evil_1_1_00-toy.ipynb": "{}"}), AID)
    (tmp_path / "flat").mkdir()
    (tmp_path / "flat" / "00-toy.ipynb").write_text("{}")
    with pytest.raises(ValueError, match="no submissions found .*00-toy.ipynb: not in a student folder"):
        collect(course, tmp_path / "flat", AID)
    (tmp_path / "named" / "Jane Doe").mkdir(parents=True)
    (tmp_path / "named" / "Jane Doe" / "00-toy.ipynb").write_text("{}")
    with pytest.raises(ValueError, match="student id of 'Jane Doe'"):
        collect(course, tmp_path / "named", AID)
    assert not course.collected.exists(), "a failed collect left files behind"
