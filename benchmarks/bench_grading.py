"""Grading at class scale: students per minute, the sandbox's cost per notebook, the memory of a sandboxed kernel.

    .venv/bin/python benchmarks/bench_grading.py [--students 40] [--out benchmarks/results/grading.json]

40 synthetic submissions of the fixture assignment 00-toy (the solution, its mutants, the blank release, in
turn) are graded three times into fresh state folders: sandboxed with 1 job, sandboxed with 2 jobs, and
unsandboxed with 1 job (nbgrader's execution as the grader's user; the same executor otherwise). Reported:
students per minute of each run, the sandbox's extra seconds per notebook (sandboxed minus unsandboxed, 1
job), and, apart, the start-to-ready time and resident memory of one kernel with and without the sandbox
(memory summed over the kernel's process tree: bwrap and its init included; after `import numpy`).
The machine's load average is recorded with the numbers: timings on a shared machine are pessimistic.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from grading_helpers import FIXTURE, hand_in, load_mutants, make_course, mutant_students, read, solution_student  # noqa: E402

from selfsup.grading import batch, release  # noqa: E402
from selfsup.grading.autograde import Limits  # noqa: E402
from selfsup.grading.course import Course  # noqa: E402
from selfsup.grading.sandbox import SandboxKernelManager, SandboxLimits  # noqa: E402

AID = "00-toy"


def _class(course: Course, n: int) -> None:
    template = read(release.sync(course, AID))
    solution = solution_student(read(course.source_notebook(AID)), template)
    mutants_file = FIXTURE / "exercise_mutants" / f"{AID}.py"
    mutants = [m["nb"] for m in mutant_students(solution, load_mutants(mutants_file)).values()]
    kinds = [solution, *mutants, template]
    for i in range(n):
        hand_in(course, f"s{i:03d}", AID, kinds[i % len(kinds)])


def grade_run(n: int, jobs: int, sandboxed: bool) -> dict:
    """Grade `n` synthetic submissions in a fresh state folder; wall time and scores."""
    top = Path(tempfile.mkdtemp(prefix="bench-grading-"))
    try:
        course = make_course(top / "grading", FIXTURE / "solutions", FIXTURE / "exercises")
        _class(course, n)
        limits = Limits(student_seconds=120, sandbox=SandboxLimits() if sandboxed else None)
        start = time.monotonic()
        records = batch.autograde(course, [AID], limits=limits, jobs=jobs)
        seconds = time.monotonic() - start
        return {
            "students": n,
            "jobs": jobs,
            "sandboxed": sandboxed,
            "seconds": round(seconds, 1),
            "students_per_minute": round(60 * n / seconds, 1),
            "seconds_per_notebook_median": statistics.median(r.seconds for r in records),
            "scores": sorted(r.score for r in records),
            "statuses": sorted({r.status for r in records}),
            "load_before_after": None,
        }
    finally:
        shutil.rmtree(top, ignore_errors=True)


def _tree_rss_kb(root_pid: int) -> int:
    children: dict[int, list[int]] = {}
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(proc.name))
    total, todo = 0, [root_pid]
    while todo:
        pid = todo.pop()
        todo += children.get(pid, [])
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


async def _kernel(sandboxed: bool) -> dict:
    from jupyter_client.manager import AsyncKernelManager

    km = SandboxKernelManager(kernel_name="python3") if sandboxed else AsyncKernelManager(kernel_name="python3")
    start = time.monotonic()
    await km.start_kernel(cwd=tempfile.gettempdir())
    kc = km.client()
    kc.start_channels()
    await kc.wait_for_ready(timeout=120)
    ready = time.monotonic() - start
    await kc.execute_interactive("import numpy", timeout=120)
    rss = _tree_rss_kb(km.provisioner.process.pid)
    kc.stop_channels()
    await km.shutdown_kernel(now=True)
    return {"ready_seconds": ready, "rss_mib": rss / 1024}


def kernels(repeats: int) -> dict:
    """Start-to-ready seconds and resident memory of a kernel, plain and sandboxed (medians of `repeats`)."""
    out = {}
    for sandboxed in (False, True):
        runs = [asyncio.run(_kernel(sandboxed)) for _ in range(repeats)]
        out["sandboxed" if sandboxed else "plain"] = {
            "ready_seconds_median": round(statistics.median(r["ready_seconds"] for r in runs), 2),
            "rss_mib_median": round(statistics.median(r["rss_mib"] for r in runs), 1),
        }
    return out


def main() -> None:
    """Run the three gradings and the kernel measurements; write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=40)
    parser.add_argument("--kernel-repeats", type=int, default=5)
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "grading.json"))
    args = parser.parse_args()
    result = {
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
        "load_average_before": os.getloadavg(),
        "kernel": kernels(args.kernel_repeats),
    }
    runs = {}
    for name, jobs, sandboxed in (("sandbox_1_job", 1, True), ("sandbox_2_jobs", 2, True), ("plain_1_job", 1, False)):
        before = os.getloadavg()[0]
        runs[name] = grade_run(args.students, jobs, sandboxed)
        runs[name]["load_before_after"] = [before, os.getloadavg()[0]]
        print(name, runs[name], flush=True)
    result["runs"] = runs
    n = args.students
    result["sandbox_overhead_seconds_per_notebook"] = round(
        (runs["sandbox_1_job"]["seconds"] - runs["plain_1_job"]["seconds"]) / n, 2
    )
    result["same_scores_1_and_2_jobs"] = runs["sandbox_1_job"]["scores"] == runs["sandbox_2_jobs"]["scores"]
    result["load_average_after"] = os.getloadavg()
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
