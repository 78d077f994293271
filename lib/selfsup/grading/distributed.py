"""Grading on a Dask cluster: one task per (student, assignment), a shared gradebook, retries when a worker dies.

`autograde_distributed` is batch.autograde for classes that outgrow one machine. The client regenerates the
assignments once (release.sync, which fills the gradebook's test cells), then submits `grade_task` for every
(student, assignment) to Dask's `distributed` scheduler: a cluster given by its address (`--scheduler
tcp://host:8786`), or a local cluster of `workers` processes.

A task is idempotent: it grades from the collected files and overwrites everything of that submission (its
copies, its gradebook rows, its record), so running it twice gives the same record. When a worker dies during a
task, the scheduler runs the task again on another worker (up to `distributed.scheduler.allowed-failures`);
a task that raises is retried `retries` times. Workers share the gradebook: PostgreSQL
(`SELFSUP_GRADEBOOK_URL=postgresql+psycopg://...`) for several machines, while SQLite is fine for a local
cluster. Workers on other machines need the course's folders at the same paths (a shared file system).
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable

from selfsup.grading import release, result, sandbox
from selfsup.grading.autograde import Limits, grade_isolated, grade_submission
from selfsup.grading.batch import collected_students
from selfsup.grading.course import Course, check_id
from selfsup.grading.result import GradeResult


def grade_task(course: Course, assignment: str, student: str, limits: Limits) -> GradeResult:
    """One Dask task: grade a submission (in a killable child process when the worker may have children), save it."""
    if multiprocessing.current_process().daemon:  # a daemonic worker cannot start the isolating child
        record = grade_submission(course, assignment, student, limits)
    else:
        record = grade_isolated(course, assignment, student, limits)
    result.save(course, record)
    return record


def local_cluster(workers: int) -> object:
    """A Dask cluster on this machine: `workers` processes of one thread, allowed to start child processes."""
    import dask
    from distributed import LocalCluster

    with dask.config.set({"distributed.worker.daemon": False}):
        return LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=40
        )


def autograde_distributed(
    course: Course,
    assignments: list[str] | None = None,
    students: list[str] | None = None,
    limits: Limits | None = None,
    scheduler: str | None = None,
    workers: int = 2,
    retries: int = 2,
    on_result: Callable[[GradeResult], None] | None = None,
    client: object | None = None,
) -> list[GradeResult]:
    """Grade on a Dask cluster; same arguments and records as batch.autograde.

    Args:
        course: the course (its db_url is the gradebook every worker writes).
        assignments: assignment ids; all by default.
        students: student ids; by default everyone with a collected folder.
        limits: time and sandbox limits of each grading.
        scheduler: a Dask scheduler address; None or "local" starts a local cluster of `workers` processes.
        workers: processes of the local cluster.
        retries: extra tries of a task that raised (a dead worker is handled by the scheduler).
        on_result: called with each record as it arrives.
        client: an existing `distributed.Client` (tests); overrides `scheduler`.

    Returns:
        The records, in the order of (assignment, student).
    """
    from distributed import Client, as_completed

    limits = limits or Limits()
    if limits.sandbox is not None:
        sandbox.require()
    for student in students or []:
        check_id(student, "student id")
    tasks = []
    for assignment in course.select(assignments):
        release.sync(course, assignment)
        tasks += [(assignment, s) for s in (sorted(students) if students else collected_students(course, assignment))]
    cluster = None
    if client is None:
        if scheduler in (None, "", "local"):
            cluster = local_cluster(workers)
            client = Client(cluster)
        else:
            client = Client(scheduler)
    try:
        futures = {
            client.submit(grade_task, course, a, s, limits, key=f"grade-{a}-{s}", retries=retries, pure=False): (a, s)
            for a, s in tasks
        }
        records = {}
        for future in as_completed(futures):
            record = future.result()
            records[futures[future]] = record
            if on_result is not None:
                on_result(record)
        return [records[t] for t in tasks]
    finally:
        if cluster is not None:
            client.close()
            cluster.close()
