"""Generate the student version of an assignment from its source with nbgrader, and fill the gradebook.

nbgrader's generate_assignment does both at once: it writes the release (solutions replaced by a stub,
hidden tests removed) and stores every graded cell, hidden tests included, in the gradebook. Autograding
restores the tests from there. `sync` regenerates into the state folder instead of exercises/, so grading
never depends on a stale or hand-edited release.
"""

from __future__ import annotations

from pathlib import Path

from nbgrader.apps import NbGraderAPI

from selfsup.grading import gradebook
from selfsup.grading.course import Course, ensure_state


def nbgrader_error(what: str, result: dict) -> RuntimeError:
    """An error naming what failed, with nbgrader's first logged error (its last line is only a summary)."""
    lines = (result.get("log") or "").splitlines()
    errors = [line.removeprefix("[ERROR] ") for line in lines if line.startswith("[ERROR]")]
    trace = (result.get("error") or "").strip().splitlines()
    detail = errors[0] if errors else (trace[-1] if trace else "no detail")
    return RuntimeError(f"nbgrader could not {what}: {detail}")


def generate(course: Course, assignment: str, release_dir: Path) -> Path:
    """Run nbgrader's generate_assignment into `release_dir/<aid>/`, updating the gradebook.

    Returns:
        The generated student notebook.
    """
    course.require(assignment)
    ensure_state(course)
    config = course.nbgrader_config(CourseDirectory={"release_directory": str(release_dir)})
    result = NbGraderAPI(config=config).generate_assignment(assignment, force=True, create=True)
    if not result["success"]:
        raise nbgrader_error(f"generate the release of {assignment}", result)
    return release_dir / assignment / f"{assignment}.ipynb"


def release(course: Course, assignments: list[str] | None = None) -> list[Path]:
    """Regenerate `exercises/<aid>/` for the given assignments (all by default); returns the notebooks."""
    return [generate(course, a, course.release) for a in course.select(assignments)]


def sync(course: Course, assignment: str) -> Path:
    """Bring the gradebook and the grading template of an assignment up to date with its source."""
    return generate(course, assignment, course.templates)


def ensure_synced(course: Course, assignment: str) -> Path:
    """The grading template, generated first if it or the gradebook's copy of the assignment is missing."""
    template = course.template(assignment)
    if template.is_file() and gradebook.has_assignment(course, assignment):
        return template
    return sync(course, assignment)
