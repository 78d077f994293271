"""The reads and writes of nbgrader's gradebook that the grading steps share.

Every function opens its own short `nbgrader.api.Gradebook` session, so that a process grading one submission
holds no connection while a kernel runs (SQLite allows one writer at a time; PostgreSQL serves many).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager

from nbgrader.api import Gradebook, MissingEntry
from sqlalchemy.exc import SAWarning

from selfsup.grading.course import Course, ensure_state


@contextmanager
def quiet() -> Iterator[None]:
    """Silence the SQLAlchemy 2 warnings nbgrader 0.9's own queries raise (harmless, and many)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SAWarning)
        yield


@contextmanager
def _open(course: Course) -> Iterator[Gradebook]:
    ensure_state(course)
    with quiet(), Gradebook(course.db_url, course.course_id) as gb:
        yield gb


def has_assignment(course: Course, assignment: str) -> bool:
    """Whether the gradebook knows the assignment (its notebooks and test cells)."""
    with _open(course) as gb:
        try:
            return bool(gb.find_assignment(assignment).notebooks)
        except MissingEntry:
            return False


def add_students(course: Course, students: list[str]) -> None:
    """Register students, so that the export lists them even when they hand nothing in."""
    with _open(course) as gb:
        for student in students:
            gb.update_or_create_student(student)


def cell_scores(course: Course, assignment: str, student: str) -> dict[str, tuple[float, float]]:
    """{grade cell id: (score, max score)} of a submission; empty when the gradebook has none."""
    with _open(course) as gb:
        try:
            submission = gb.find_submission(assignment, student)
        except MissingEntry:
            return {}
        return {
            grade.name: (float(grade.score), float(grade.max_score))
            for notebook in submission.notebooks
            for grade in notebook.grades
        }


def max_scores(course: Course, assignment: str) -> dict[str, float]:
    """{grade cell id: points} of an assignment."""
    with _open(course) as gb:
        return {
            cell.name: float(cell.max_score)
            for notebook in gb.find_assignment(assignment).notebooks
            for cell in notebook.grade_cells
        }


def record_zero(course: Course, assignment: str, student: str) -> None:
    """Give every grade cell of the submission an automatic score of 0 (creating the submission if needed).

    Used when a submission cannot be run at all, or its grading was killed, so that no earlier score remains.
    """
    with _open(course) as gb:
        gb.update_or_create_student(student)
        submission = gb.update_or_create_submission(assignment, student)
        for notebook in submission.notebooks:
            for grade in notebook.grades:
                grade.auto_score = 0.0
                grade.needs_manual_grade = False
        gb.db.commit()


def table(course: Course) -> tuple[list[str], list[str], dict[tuple[str, str], tuple[float, float]]]:
    """(students, assignments, {(student, assignment): (score, max score)} for the submissions there are)."""
    with _open(course) as gb:
        assignments = sorted(a.name for a in gb.assignments)
        students = sorted(s.id for s in gb.students)
        scores = {}
        for assignment in gb.assignments:
            for submission in assignment.submissions:
                scores[submission.student.id, assignment.name] = (float(submission.score), float(assignment.max_score))
        return students, assignments, scores
