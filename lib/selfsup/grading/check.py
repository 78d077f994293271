"""`selfsup check NOTEBOOK`: a student runs an exercise's visible tests in a fresh kernel before handing it in.

The notebook is run top to bottom as the autograder runs it (same executor, same scoring rule: a test cell
with an error, or with output on stderr, scores 0), and never written back. Unlike `nbgrader validate`, the
result is an exit status: 0 when every graded test cell passed, 1 when one failed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from nbformat import NotebookNode
from nbgrader.utils import determine_grade

from selfsup.grading.executor import GradingExecute
from selfsup.grading.submission import SubmissionError, read_notebook


class NotebookUnreadable(Exception):
    """The notebook cannot be checked (missing, not a notebook, no graded test cells)."""


@dataclass
class CellCheck:
    """The outcome of one graded test cell.

    Attributes:
        grade_id: the cell's nbgrader id.
        score: points it earned.
        points: points at stake.
        error: the first line of its error ("" when it passed).
    """

    grade_id: str
    score: float
    points: float
    error: str

    @property
    def passed(self) -> bool:
        """Whether the cell earned all its points."""
        return self.score >= self.points


@dataclass
class CheckReport:
    """Every graded test cell of a notebook, after one run."""

    notebook: Path
    cells: list[CellCheck]
    seconds: float

    @property
    def passed(self) -> bool:
        """Whether every graded test cell passed."""
        return all(c.passed for c in self.cells)

    def lines(self) -> list[str]:
        """The report for a terminal: a summary, then one line per test cell."""
        n = sum(c.passed for c in self.cells)
        score, points = sum(c.score for c in self.cells), sum(c.points for c in self.cells)
        width = max(len(c.grade_id) for c in self.cells)
        out = [
            f"{self.notebook.name}: {n} of {len(self.cells)} test cells passed, {score:g} of {points:g} points "
            f"in {self.seconds:.0f} s (visible tests only; the hidden tests run when it is graded)"
        ]
        for c in self.cells:
            verdict = "passed" if c.passed else "FAILED"
            out.append(f"  {verdict}  {c.grade_id:<{width}}  {c.score:g}/{c.points:g} points  {c.error}".rstrip())
        return out


def _first_error(cell: NotebookNode) -> str:
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            evalue = str(output.get("evalue", "")).strip()
            text = output.get("ename", "Error") + (f": {evalue}" if evalue else "")
            return text.splitlines()[0]
        if output.get("output_type") == "stream" and output.get("name") == "stderr":
            first = output.get("text", "").strip().splitlines()
            return "wrote to stderr (scores 0): " + (first[0] if first else "")
    return ""


def check_notebook(path: Path, time_limit: float = 600.0, cell_timeout: int = 120) -> CheckReport:
    """Run a notebook in a fresh kernel (in its own folder) and score its graded test cells.

    Args:
        path: the notebook.
        time_limit: seconds for the whole run; cells left when it runs out fail.
        cell_timeout: seconds one cell may run.

    Raises:
        NotebookUnreadable: the file is missing, not a notebook, or has no graded test cells.
    """
    if not path.is_file():
        raise NotebookUnreadable(f"no notebook at {path}")
    try:
        nb, _ = read_notebook(path)
    except SubmissionError as e:
        raise NotebookUnreadable(str(e)) from None

    def graded(cell: NotebookNode) -> bool:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        return cell.cell_type == "code" and bool(meta.get("grade")) and not meta.get("solution")

    if not any(graded(c) for c in nb.cells):
        raise NotebookUnreadable(f"{path.name} has no graded test cells: is it an exercise notebook from exercises/?")
    start = time.monotonic()
    executor = GradingExecute(timeout=cell_timeout, deadline=time.time() + time_limit, time_limit=time_limit)
    executor.preprocess(nb, {"metadata": {"path": str(path.parent.resolve())}})
    cells = []
    for cell in filter(graded, nb.cells):
        score, points = determine_grade(cell)
        cells.append(CellCheck(cell.metadata.nbgrader["grade_id"], float(score or 0.0), points, _first_error(cell)))
    return CheckReport(path, cells, time.monotonic() - start)
