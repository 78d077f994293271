"""A CSV of scores: one row per student and assignment, scores from the gradebook, statuses from the records.

The gradebook is the authority on scores (a grader's manual changes in nbgrader's formgrader count); the
grading records add the status and notes. A student the gradebook knows who handed nothing in for an
assignment gets a row with 0 and the status "missing".
"""

from __future__ import annotations

import csv
from pathlib import Path

from selfsup.grading import gradebook, result
from selfsup.grading.course import Course

COLUMNS = ("student_id", "assignment", "score", "max_score", "status", "notes", "seconds")


def rows(course: Course, assignments: list[str] | None = None) -> list[dict[str, str]]:
    """The rows of the export, sorted by student and assignment."""
    students, known, scores = gradebook.table(course)
    chosen = [a for a in known if not assignments or a in assignments]
    maxima = {a: sum(gradebook.max_scores(course, a).values()) for a in chosen}
    out = []
    for student in students:
        for assignment in chosen:
            record = result.load(course, assignment, student)
            score, max_score = scores.get((student, assignment), (0.0, maxima[assignment]))
            if (student, assignment) in scores:
                status = record.status if record else "ok"
            else:
                status = "missing"
            out.append(
                {
                    "student_id": student,
                    "assignment": assignment,
                    "score": f"{score:g}",
                    "max_score": f"{max_score:g}",
                    "status": status,
                    "notes": "; ".join(record.notes) if record else "",
                    "seconds": f"{record.seconds:.1f}" if record else "",
                }
            )
    return out


def export(course: Course, out: Path, assignments: list[str] | None = None) -> list[dict[str, str]]:
    """Write the CSV (columns `COLUMNS`) to `out` and return its rows."""
    table = rows(course, assignments)
    if not table:
        raise ValueError("the gradebook has no students yet: collect and autograde submissions first")
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(table)
    return table
