"""Grade one student's assignment: a self-contained, idempotent step that returns a `GradeResult`.

`grade_submission` reads the student's collected files, repairs the notebook against the release
(`submission.prepare`), runs nbgrader's autograde on it with `GradingExecute` (the notebook's own deadline),
and reads the scores back from the gradebook. Running it again gives the same record: it starts from the
collected files each time and overwrites nbgrader's copies and grades.

`grade_isolated` runs the same function in a child process and kills it at a hard limit (the notebook's
time limit plus a grace period) if the kernel side ever fails to stop; the student then gets 0 and the status
"killed". A batch loop (batch.py) or a task on a remote worker calls this one.
"""

from __future__ import annotations

import multiprocessing
import shutil
import time
from dataclasses import asdict, dataclass, field
from multiprocessing.connection import Connection
from typing import Any

import nbformat
from nbgrader.apps import NbGraderAPI
from nbgrader.converters import Autograde
from nbgrader.preprocessors import Execute

from selfsup.grading import gradebook, release
from selfsup.grading.course import Course, check_id
from selfsup.grading.executor import CELL_TIMEOUT, KERNEL_DIED, NOT_RUN, TIME_LIMIT, GradingExecute, events
from selfsup.grading.result import GradeResult
from selfsup.grading.sandbox import SandboxLimits
from selfsup.grading.submission import SubmissionError, prepare


@dataclass(frozen=True)
class Limits:
    """Time limits of one grading.

    Attributes:
        student_seconds: wall-clock seconds for one student's notebook, kernel start included; cells left when
            it runs out are not run (and score 0).
        cell_seconds: seconds one cell may run before it is interrupted; None keeps nbgrader_config.py's
            `Execute.timeout`.
        grace_seconds: how long past `student_seconds` an isolated grading may take (nbgrader's own work,
            shutting a stuck kernel down) before its process is killed.
        sandbox: the kernel's sandbox and its limits (memory, CPU, processes, file and output size); None runs
            the kernel unsandboxed, as the grader's own user (only the output limit of `SandboxLimits()` stays).
    """

    student_seconds: float = 300.0
    cell_seconds: int | None = None
    grace_seconds: float = 60.0
    sandbox: SandboxLimits | None = field(default_factory=SandboxLimits)

    def __post_init__(self) -> None:
        if self.student_seconds <= 0 or self.grace_seconds < 0 or (self.cell_seconds or 1) <= 0:
            raise ValueError(f"time limits must be positive (got {self})")


def _autograde_preprocessors() -> list:
    # nbgrader's own list, with its Execute replaced by ours.
    default = Autograde.class_traits()["autograde_preprocessors"].default()
    return [GradingExecute if p is Execute else p for p in default]


def _status(found: list[tuple[str, str, str]]) -> tuple[str, list[str]]:
    """The status and notes that the executor's events in a graded notebook amount to."""
    notes, status = [], "ok"
    not_run = sum(1 for name, _, _ in found if name == NOT_RUN)
    for name, cell, message in found:
        if name == KERNEL_DIED:
            status = "kernel-died"
            notes.append(f"in cell {cell}: {message}")
        elif name in (TIME_LIMIT, CELL_TIMEOUT):
            status = "timeout" if status == "ok" else status
            notes.append(f"in cell {cell}: {message}")
    if not_run:
        notes.append(f"{not_run} later code cells were not run")
    return status, notes


def _result(course: Course, assignment: str, student: str, status: str, notes: list[str], start: float) -> GradeResult:
    cells = gradebook.cell_scores(course, assignment, student)
    if not cells:
        cells = {name: (0.0, points) for name, points in gradebook.max_scores(course, assignment).items()}
    return GradeResult(
        student=student,
        assignment=assignment,
        status=status,
        notes=notes,
        score=sum(score for score, _ in cells.values()),
        max_score=sum(points for _, points in cells.values()),
        cells={name: [score, points] for name, (score, points) in sorted(cells.items())},
        seconds=round(time.monotonic() - start, 2),
    )


def grade_submission(course: Course, assignment: str, student: str, limits: Limits | None = None) -> GradeResult:
    """Grade `collected/<student>/<assignment>/` in this process and return the record (not saved).

    Args:
        course: the course.
        assignment: the assignment id.
        student: the student id.
        limits: time limits (defaults: `Limits()`).

    Returns:
        The record: status, notes, scores per graded cell, seconds.
    """
    limits = limits or Limits()
    start = time.monotonic()
    check_id(student, "student id")
    course.require(assignment)
    template = release.ensure_synced(course, assignment)
    for stale in (course.submitted / student / assignment, course.autograded / student / assignment):
        shutil.rmtree(stale, ignore_errors=True)  # grading's own copies, rebuilt from collected/ every time
    try:
        folder = course.collected / student / assignment
        notes = prepare(folder, assignment, template, course.submitted / student / assignment / f"{assignment}.ipynb")
    except SubmissionError as e:
        gradebook.record_zero(course, assignment, student)
        return _result(course, assignment, student, e.status, [str(e)], start)

    box = limits.sandbox or SandboxLimits()
    sections: dict[str, dict[str, Any]] = {
        "Autograde": {"autograde_preprocessors": _autograde_preprocessors()},
        "GradingExecute": {
            "deadline": time.time() + limits.student_seconds,
            "time_limit": limits.student_seconds,
            "sandbox": limits.sandbox is not None,
            "sandbox_limits": {k: v for k, v in asdict(box).items() if k != "output_kb"},
            "output_limit_kb": box.output_kb,
            "student_notebook": str(course.submitted / student / assignment / f"{assignment}.ipynb"),
        },
    }
    if limits.cell_seconds:
        sections["Execute"] = {"timeout": int(limits.cell_seconds)}
    with gradebook.quiet():
        api = NbGraderAPI(config=course.nbgrader_config(**sections))
        outcome = api.autograde(assignment, student, force=True, create=True)
    executed = course.autograded / student / assignment / f"{assignment}.ipynb"
    if not outcome["success"] or not executed.is_file():
        gradebook.record_zero(course, assignment, student)
        return _result(
            course, assignment, student, "error", [*notes, str(release.nbgrader_error("grade", outcome))], start
        )
    status, event_notes = _status(events(nbformat.read(executed, as_version=4)))
    return _result(course, assignment, student, status, notes + event_notes, start)


def _die_with_parent() -> None:
    """Ask Linux to kill this process when its parent dies (a grading whose worker was killed stops too)."""
    try:
        import ctypes
        import signal

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _child(conn: Connection, course: Course, assignment: str, student: str, limits: Limits) -> None:
    _die_with_parent()
    try:
        result = grade_submission(course, assignment, student, limits)
    except Exception as e:  # noqa: BLE001 (reported as the record's status, the batch goes on)
        result = GradeResult(student, assignment, "error", [f"{type(e).__name__}: {e}"])
    conn.send(result)
    conn.close()


_context: Any = None


def _mp_context() -> Any:  # noqa: ANN401
    """A fork server that has imported this module (nbgrader takes seconds), else plain spawn."""
    global _context
    if _context is None:
        if "forkserver" in multiprocessing.get_all_start_methods():
            _context = multiprocessing.get_context("forkserver")
            # The main module too: each child would import it again otherwise (the CLI imports torch).
            _context.set_forkserver_preload(["__main__", __name__])
        else:
            _context = multiprocessing.get_context("spawn")
    return _context


def grade_isolated(course: Course, assignment: str, student: str, limits: Limits | None = None) -> GradeResult:
    """`grade_submission` in a child process, killed if it runs past `student_seconds + grace_seconds`.

    The kernel is the child's child; ipykernel exits when its parent process is gone.
    """
    limits = limits or Limits()
    start = time.monotonic()
    ctx = _mp_context()
    receive, send = ctx.Pipe(duplex=False)
    process = ctx.Process(target=_child, args=(send, course, assignment, student, limits), daemon=True)
    process.start()
    send.close()
    hard = limits.student_seconds + limits.grace_seconds
    result = None
    if receive.poll(hard):
        try:
            result = receive.recv()
        except EOFError:  # the child died before it could answer
            process.join(10)
    if result is None:
        alive = process.is_alive()
        if alive:
            process.kill()
        process.join()
        status, note = (
            ("killed", f"grading ran longer than the hard limit of {hard:g} s and was killed")
            if alive
            else ("error", f"the grading process died (exit code {process.exitcode})")
        )
        gradebook.record_zero(course, assignment, student)
        result = _result(course, assignment, student, status, [note], start)
    process.join()
    receive.close()
    return result
