"""The record that grading one (student, assignment) produces, and where records are kept.

A record is plain data (JSON on disk, picklable between processes), so that whoever runs the grading, a loop
here or a task on another machine, hands back the same thing.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from selfsup.grading.course import Course

# What a status means; every record has one of these.
STATUSES = {
    "ok": "graded",
    "timeout": "graded; a cell was interrupted or the notebook ran out of time, later cells may not have run",
    "kernel-died": "graded up to the cell where the kernel died; later cells did not run",
    "missing": "nothing handed in: 0",
    "no-notebook": "no notebook to grade among the files handed in: 0",
    "unreadable": "the notebook could not be read: 0",
    "killed": "grading ran past the hard limit and was killed: 0",
    "error": "grading failed (not the student's fault): 0 until it is graded again",
}


@dataclass
class GradeResult:
    """What grading one student's assignment gave.

    Attributes:
        student: the student id.
        assignment: the assignment id.
        status: a key of `STATUSES`.
        notes: sentences for the student and the instructor (what was repaired, where the kernel died, ...).
        score: points, summed over the graded cells.
        max_score: the points there are.
        cells: {grade cell id: [score, max score]}.
        seconds: wall-clock seconds the grading took.
    """

    student: str
    assignment: str
    status: str
    notes: list[str] = field(default_factory=list)
    score: float = 0.0
    max_score: float = 0.0
    cells: dict[str, list[float]] = field(default_factory=dict)
    seconds: float = 0.0

    def line(self) -> str:
        """One line for a terminal: who, what, score, status, notes."""
        notes = f" ({'; '.join(self.notes)})" if self.notes else ""
        return (
            f"{self.student:>12} {self.assignment}: {self.score:g}/{self.max_score:g} {self.status} "
            f"[{self.seconds:.1f} s]{notes}"
        )


def record_path(course: Course, assignment: str, student: str) -> Path:
    """Where the record of a student's assignment is kept."""
    return course.results / assignment / f"{student}.json"


def save(course: Course, result: GradeResult) -> Path:
    """Write a record (replacing an earlier one for the same student and assignment)."""
    path = record_path(course, result.assignment, result.student)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(result), indent=1))
    tmp.replace(path)
    return path


def load(course: Course, assignment: str, student: str) -> GradeResult | None:
    """The record of a student's assignment, or None if it was never graded."""
    path = record_path(course, assignment, student)
    return GradeResult(**json.loads(path.read_text())) if path.is_file() else None


def load_all(course: Course, assignments: list[str] | None = None) -> list[GradeResult]:
    """Every record, or those of the given assignments, sorted by assignment and student."""
    if not course.results.is_dir():
        return []
    paths = sorted(course.results.glob("*/*.json"))
    found = [GradeResult(**json.loads(p.read_text())) for p in paths]
    return [r for r in found if assignments is None or r.assignment in assignments]
