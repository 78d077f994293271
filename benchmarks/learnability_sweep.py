"""Run the learnability check for several settings and many seeds at once, to choose robust defaults.

Each (setting, seed) is one `learnability.py --seeds 1` process; N run in parallel (on a GPU they share it).
The summary reports, per setting and task, the mean over seeds of pre-trained and scratch accuracy, and the
share of all 3-seed subsets on which the check (gap > spread, neither perfect) passes: a setting that passes
on 3 seeds only by luck shows up as a low share.

    python benchmarks/learnability_sweep.py --out DIR [--seeds 6] [--workers 12] [--device cuda] [--budget-s 420]
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from learnability import TASKS, check_passes  # noqa: E402  (the sweep applies the check's own rule)

SETTINGS: dict[str, list[str]] = {
    "default": [],
    "pb64x600": ["--pretrain-batch", "64", "--pretrain-steps", "600"],
    "nsp": ["--nsp"],
    "mlm15": ["--mlm-probability", "0.15"],
    "plr3e-3": ["--pretrain-lr", "3e-3"],
    "plr3e-3_b98": ["--pretrain-lr", "3e-3", "--pretrain-beta2", "0.98"],
    "p1800": ["--pretrain-steps", "1800"],
    "ft300": ["--finetune-steps", "300"],
    "ft1000": ["--finetune-steps", "1000"],
    "ftlr3": ["--finetune-lrs", "1e-4", "3e-4", "1e-3"],
    "L3d96": ["--n-layers", "3", "--d-model", "96"],
    "n300": ["--n-train", "300"],
}


def summarize(out: Path) -> dict:
    """Gather every finished (setting, seed) report in `out` into per-setting statistics."""
    found: dict[str, dict[int, dict]] = {}
    for f in sorted(out.glob("*__seed*.json")):
        name, seed = f.stem.rsplit("__seed", 1)
        found.setdefault(name, {})[int(seed)] = json.loads(f.read_text())
    summary = {}
    for name, by_seed in found.items():
        seeds = sorted(by_seed)
        row: dict = {"seeds": seeds, "mlm_loss": [by_seed[s]["pretraining"][0]["mlm_loss_last"] for s in seeds]}
        per_task = {}
        for task in TASKS:
            pre = [by_seed[s]["tasks"][task]["pretrained"][0] for s in seeds]
            scr = [by_seed[s]["tasks"][task]["scratch"][0] for s in seeds]
            per_task[task] = (pre, scr)
            row[task] = {"pretrained": pre, "scratch": scr, "mean_gap": statistics.mean(pre) - statistics.mean(scr)}
        subsets = list(itertools.combinations(range(len(seeds)), 3))
        passed = {}
        for task in TASKS:
            pre, scr = per_task[task]
            passed[task] = [check_passes([pre[i] for i in c], [scr[i] for i in c]) for c in subsets]
            row[task]["pass_share"] = sum(passed[task]) / len(subsets) if subsets else None
        all_ok = [all(passed[t][k] for t in TASKS) for k in range(len(subsets))]
        row["all_tasks_pass_share"] = sum(all_ok) / len(all_ok) if all_ok else None
        row["seconds_per_seed"] = statistics.median(by_seed[s]["seconds"] for s in seeds)
        summary[name] = row
    return summary


def main() -> None:
    """Run the jobs until the budget is spent, then write summary.json and print it."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    ap.add_argument("--seeds", type=int, default=6)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1, help="torch threads per job")
    ap.add_argument("--budget-s", type=float, default=420, help="start no job after this many seconds")
    ap.add_argument("--summarize-only", action="store_true", help="run nothing; summarize the reports in --out")
    ap.add_argument("--extra", nargs=argparse.REMAINDER, default=[], help="arguments added to every job")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    jobs = [] if args.summarize_only else [(name, seed) for seed in range(args.seeds) for name in args.settings]

    def run(job: tuple[str, int]) -> None:
        name, seed = job
        if time.perf_counter() - start > args.budget_s:
            return
        report = args.out / f"{name}__seed{seed}.json"
        cmd = [
            sys.executable, str(HERE / "learnability.py"), "--seeds", "1", "--first-seed", str(seed),
            "--device", args.device, "--threads", str(args.threads), "--out", str(report),
            *SETTINGS[name], *args.extra,
        ]  # fmt: skip
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if not report.exists():
            print(f"{name} seed {seed}: no report (rc {proc.returncode})\n{proc.stderr[-2000:]}", flush=True)
        else:
            print(f"{name} seed {seed}: {time.perf_counter() - t0:.0f} s", flush=True)

    with ThreadPoolExecutor(args.workers) as pool:
        list(pool.map(run, jobs))
    summary = summarize(args.out)
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1))
    print(f"\n{'setting':22s} n  mlm    " + "  ".join(f"{t:>24s}" for t in TASKS) + "  all-pass")
    for name, row in sorted(summary.items(), key=lambda kv: -(kv[1]["all_tasks_pass_share"] or 0)):
        cells = []
        for t in TASKS:
            r = row[t]
            share = "-" if r["pass_share"] is None else f"{r['pass_share']:.2f}"
            cells.append(
                f"{statistics.mean(r['pretrained']):.3f}/{statistics.mean(r['scratch']):.3f} p{share:>4s}".rjust(24)
            )
        all_share = "-" if row["all_tasks_pass_share"] is None else f"{row['all_tasks_pass_share']:.2f}"
        print(f"{name:22s} {len(row['seeds'])} {statistics.mean(row['mlm_loss']):.2f}  " + "  ".join(cells), all_share)
    print(f"{time.perf_counter() - start:.0f} s in all", flush=True)


if __name__ == "__main__":
    main()
