"""Grading on a local Dask cluster into a real PostgreSQL gradebook, with a worker killed in the middle.

A throwaway server from Debian's `postgresql` (initdb and pg_ctl in a temporary folder, listening on loopback
only, run as the `postgres` user since PostgreSQL refuses root) holds the gradebook. Six students of the fixture
assignment are graded, sandboxed, by `autograde_distributed` on a local cluster of two workers; one student's
notebook sleeps so that its task is surely running when the test kills that worker's process. The scheduler
runs the task again elsewhere, and every record, and the gradebook, must equal a sequential run.
"""

from __future__ import annotations

import copy
import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest
from grading_helpers import FIXTURE, hand_in, load_mutants, make_course, read, solution_student

from selfsup.grading import gradebook, release, sandbox
from selfsup.grading.autograde import Limits
from selfsup.grading.course import Course
from selfsup.grading.sandbox import SandboxLimits

AID = "00-toy"
BINS = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
LIMITS = Limits(student_seconds=60, grace_seconds=60, sandbox=SandboxLimits(memory_mb=2048, processes=64))

pytestmark = [
    pytest.mark.skipif(not BINS, reason="PostgreSQL is not installed (apt-get install -y postgresql)"),
    pytest.mark.skipif(sandbox.problem() is not None, reason=f"no sandbox here: {sandbox.problem()}"),
]


def _as_postgres(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def postgres_url():
    """A PostgreSQL server for this module, on 127.0.0.1 only; yields the SQLAlchemy URL of an empty database."""
    bin_dir = Path(BINS[-1]).parent
    # Not under pytest's tmp folder: root's is 0700, and the server runs as postgres.
    top = Path(tempfile.mkdtemp(prefix="selfsup-postgres-"))
    data, sockets = top / "data", top / "sockets"
    sockets.mkdir()
    if os.geteuid() == 0:
        shutil.chown(top, "postgres")
        shutil.chown(sockets, "postgres")
    port = _free_port()
    init = [str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"]
    run = subprocess.run(_as_postgres(init), capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {sockets} -c fsync=off"
    start = [str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(top / "log"), "-w", "start"]
    subprocess.run(_as_postgres(start), check=True, capture_output=True)
    try:
        import psycopg

        with psycopg.connect(f"host=127.0.0.1 port={port} user=postgres dbname=postgres", autocommit=True) as conn:
            conn.execute("CREATE DATABASE course")
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/course"
    finally:
        stop = [str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]
        subprocess.run(_as_postgres(stop), capture_output=True)
        shutil.rmtree(top, ignore_errors=True)


def _students(course: Course) -> dict[str, float]:
    """Hand in six submissions; returns the score each deserves."""
    template = read(release.sync(course, AID))
    solution = solution_student(read(course.source_notebook(AID)), template)
    mutants = load_mutants(FIXTURE / "exercise_mutants" / f"{AID}.py")
    slow = copy.deepcopy(solution)  # its task is the one the test kills
    cell = next(c for c in slow.cells if c.id == "mask_every-solution")
    cell.source = "import time\ntime.sleep(12)\n" + cell.source
    wrong_count = copy.deepcopy(solution)
    next(c for c in wrong_count.cells if c.id == "count_masks-solution").source = mutants["count_masks-solution"][1][1]
    wrong_every = copy.deepcopy(solution)
    next(c for c in wrong_every.cells if c.id == "mask_every-solution").source = mutants["mask_every-solution"][0][1]
    class_ = {"s1": solution, "s2": slow, "s3": wrong_count, "s4": wrong_every, "s5": solution, "s6": template}
    for student, nb in class_.items():
        hand_in(course, student, AID, nb)
    return class_


@pytest.fixture(scope="module")
def graded(postgres_url, tmp_path_factory):
    from distributed import Client

    from selfsup.grading.distributed import autograde_distributed, local_cluster

    top = tmp_path_factory.mktemp("dask")
    course = make_course(top / "grading", FIXTURE / "solutions", FIXTURE / "exercises")
    course = Course(course.root, course.source, course.release, course.state, postgres_url)
    _students(course)
    cluster = local_cluster(2)
    client = Client(cluster)
    killed: dict = {}

    def kill_the_slow_task() -> None:
        key = f"grade-{AID}-s2"
        deadline = time.time() + 240
        while time.time() < deadline and not killed:
            processing = client.processing()
            for address, keys in processing.items():
                if key in keys:
                    time.sleep(4)  # inside the kernel's sleep by now
                    pids = client.run(os.getpid, workers=[address])
                    killed["address"], killed["pid"] = address, pids[address]
                    os.kill(pids[address], signal.SIGKILL)
                    return
            time.sleep(0.2)

    killer = threading.Thread(target=kill_the_slow_task, daemon=True)
    killer.start()
    try:
        records = autograde_distributed(course, [AID], limits=LIMITS, client=client)
        key = f"grade-{AID}-s2"
        # How often the scheduler sent the slow task to a worker: twice, once before the kill and once after.
        killed["runs"] = client.run_on_scheduler(
            lambda dask_scheduler: sum(1 for t in dask_scheduler.transition_log if t[0] == key and t[2] == "processing")
        )
    finally:
        killer.join(5)
        client.close()
        cluster.close()
    return course, {r.student: r for r in records}, killed


def test_a_worker_was_killed_mid_task(graded):
    _, _, killed = graded
    assert killed.get("pid"), "the slow task was never seen running"
    assert killed["runs"] == 2, killed


def test_every_submission_is_graded_once_with_its_score(graded):
    _, records, _ = graded
    # s3: count_masks ignores its mask argument (hidden test, 2 points); s4: mask_every's first mutant.
    assert {s: (r.status, r.score) for s, r in records.items()} == {
        "s1": ("ok", 8.0),
        "s2": ("ok", 8.0),
        "s3": ("ok", 6.0),
        "s4": ("ok", records["s4"].score),
        "s5": ("ok", 8.0),
        "s6": ("ok", 0.0),
    }
    assert records["s4"].score < 8


def test_the_postgres_gradebook_holds_the_records(graded):
    course, records, _ = graded
    assert course.db_url.startswith("postgresql+psycopg://")
    students, assignments, table = gradebook.table(course)
    assert students == sorted(records) and assignments == [AID]
    for student, record in records.items():
        assert table[student, AID] == (record.score, 8.0)
        cells = gradebook.cell_scores(course, AID, student)
        assert {k: [s, m] for k, (s, m) in cells.items()} == record.cells


def test_grading_again_sequentially_gives_the_same_records(graded):
    from selfsup.grading import batch

    course, records, _ = graded
    again = {r.student: r for r in batch.autograde(course, [AID], ["s3", "s4"], LIMITS, jobs=2)}
    for student in ("s3", "s4"):
        assert (again[student].status, again[student].cells) == (records[student].status, records[student].cells)
