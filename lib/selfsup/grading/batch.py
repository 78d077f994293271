"""The loop over a class: grade every collected submission of the chosen assignments, one record each.

The loop only enumerates (student, assignment) pairs and saves what `grade_isolated` returns; a broken
submission becomes a record with its status, never an exception that stops the others.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from selfsup.grading import release, result, sandbox
from selfsup.grading.autograde import Limits, grade_isolated, grade_submission
from selfsup.grading.course import Course, check_id
from selfsup.grading.result import GradeResult


def collected_students(course: Course, assignment: str) -> list[str]:
    """Students with a collected folder for the assignment."""
    if not course.collected.is_dir():
        return []
    return sorted(p.name for p in course.collected.iterdir() if (p / assignment).is_dir())


def autograde(
    course: Course,
    assignments: list[str] | None = None,
    students: list[str] | None = None,
    limits: Limits | None = None,
    jobs: int = 1,
    isolate: bool = True,
    on_result: Callable[[GradeResult], None] | None = None,
) -> list[GradeResult]:
    """Grade the submissions of the given assignments (all by default) and save a record for each.

    Args:
        course: the course.
        assignments: assignment ids; all by default.
        students: student ids; by default everyone with a collected folder (a named student without one is
            recorded as "missing").
        limits: time limits per student and assignment, and the sandbox (`Limits.sandbox`; None: unsandboxed).
        jobs: submissions graded at the same time (each in its own process and kernel).
        isolate: grade each submission in a child process with a hard time limit (the default).
        on_result: called with each record as soon as it is saved (progress output).

    Returns:
        The records, in the order of (assignment, student).
    """
    if jobs < 1:
        raise ValueError(f"jobs must be at least 1 (got {jobs})")
    limits = limits or Limits()
    if limits.sandbox is not None:
        sandbox.require()  # refuses, saying how to install bubblewrap, before anything is graded
    chosen = course.select(assignments)
    for student in students or []:
        check_id(student, "student id")
    tasks = []
    for assignment in chosen:
        # The gradebook's tests and the restoring template follow solutions/ as it is now.
        release.sync(course, assignment)
        tasks += [(assignment, s) for s in (sorted(students) if students else collected_students(course, assignment))]
    grade = grade_isolated if isolate else grade_submission

    def run(task: tuple[str, str]) -> GradeResult:
        record = grade(course, task[0], task[1], limits)
        result.save(course, record)
        if on_result is not None:
            on_result(record)
        return record

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(run, tasks))
