"""Every registered reproduction over five seeds: its numbers, the seeds in which each of its checks held, and
its time per seed. Writes benchmarks/results/reproductions.json and reproductions.md (the book's
Reproductions page includes the Markdown), then exits 1 if a check held in fewer than 4 of 5 seeds.

    .venv/bin/python benchmarks/reproduce.py                  # or `make reproduce`: preset "book", seeds 0-4, CPU
    .venv/bin/python benchmarks/reproduce.py --only ch1       # the experiments whose name contains "ch1"
    .venv/bin/python benchmarks/reproduce.py --preset full --device cuda
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
SHARE = 0.8  # a check must hold in at least this share of the seeds: 4 of 5


def needed(n_seeds: int) -> int:
    """In how many of n seeds a check must hold (4 of 5)."""
    return math.ceil(SHARE * n_seeds - 1e-9)


def run_one(exp: object, seeds: list[int], preset: str, device: str) -> dict:
    """Run one experiment for every seed; its numbers, check outcomes and seconds per seed.

    A seed whose run raises counts as a seed where no check held; its error is recorded.
    """
    per_seed, checks = {}, {c.claim: {"claim": c.claim, "held_in": [], "details": {}} for c in exp.checks}
    for seed in seeds:
        t0 = time.perf_counter()
        try:
            result = exp(seed=seed, preset=preset, device=device)
            numbers, outcomes, error = exp.numbers(result), exp.outcomes(result), None
        except Exception:  # noqa: BLE001 -- one failing seed must not hide the others
            numbers, outcomes, error = {}, [], traceback.format_exc(limit=3)
        seconds = time.perf_counter() - t0
        per_seed[str(seed)] = {"numbers": {k: float(v) for k, v in numbers.items()}, "seconds": seconds}
        if error:
            per_seed[str(seed)]["error"] = error
        for claim, held, detail in outcomes:
            checks[claim]["details"][str(seed)] = detail
            if held:
                checks[claim]["held_in"].append(seed)
        print(f"  {exp.name} seed {seed}: {seconds:.1f} s" + (" (raised)" if error else ""), flush=True)
    return {"title": exp.title, "paper": exp.paper, "seeds": per_seed, "checks": list(checks.values())}


def summary(values: list[float]) -> str:
    """Mean ± sample standard deviation, to 3 significant digits."""
    if not values:
        return "-"
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.fmean(values):.3g} ± {std:.2g}"


def failures(report: dict) -> list[str]:
    """`name: claim (k/n)` for every check that held in fewer seeds than needed."""
    return [
        f"{name}: {c['claim']} ({len(c['held_in'])}/{len(exp['seeds'])})"
        for name, exp in report["experiments"].items()
        for c in exp["checks"]
        if len(c["held_in"]) < needed(len(exp["seeds"]))
    ]


def cell(text: str) -> str:
    """Text for a Markdown table cell (a `|` in a claim would end the cell)."""
    return text.replace("|", "\\|")


def markdown(report: dict) -> str:
    """The reproduction tables: per experiment, its quantities (mean ± std over seeds), its checks (held in
    k of n seeds) and its median time per seed."""
    lines = [
        "Each experiment below says when, how and where it ran. A check passes when it holds in at least "
        f"{needed(5)} of 5 seeds ({SHARE:.0%} of the seeds run).",
        "",
    ]
    bad = failures(report)
    lines += ["**Checks below the bar:**", "", *(f"- {b}" for b in bad)] if bad else ["Every check passes."]
    lines.append("")
    for name, exp in report["experiments"].items():
        seeds = list(exp["seeds"].values())
        n = len(seeds)
        quantities = list(dict.fromkeys(q for s in seeds for q in s["numbers"]))
        lines += [f"### {exp['title']}", "", f"`{name}`. {exp['paper']}", ""]
        if quantities:
            lines += [f"| quantity | mean ± std over {n} seeds |", "|---|---|"]
            for q in quantities:
                lines.append(f"| {cell(q)} | {summary([s['numbers'][q] for s in seeds if q in s['numbers']])} |")
            lines.append("")
        lines += ["| check | held in |", "|---|---|"]
        for c in exp["checks"]:
            mark = "✓" if len(c["held_in"]) >= needed(n) else "✗"
            lines.append(f"| {cell(c['claim'])} | {len(c['held_in'])}/{n} {mark} |")
        errors = [seed for seed, s in exp["seeds"].items() if "error" in s]
        median = statistics.median(s["seconds"] for s in seeds)
        raised = f" Seeds that raised: {', '.join(errors)}." if errors else ""
        lines += ["", f"Time: {median:.1f} s per seed (median).{raised} {run_line(exp['run'])}"]
        lines.append("")
    return "\n".join(lines)


def run_line(run: dict) -> str:
    """When, how and where an experiment ran, in one sentence."""
    m = run["machine"]
    return (
        f"Run {run['date']} with `{run['command']}`: preset `{run['preset']}`, seeds "
        f"{', '.join(map(str, run['seeds']))}, on {m['device']} ({m['platform']}, {m['cpu_count']} CPU cores, "
        f"torch {m['torch']}, load {m.get('load_avg_1min', float('nan')):.1f} at the start)."
    )


def machine(device: str) -> dict:
    """Where the numbers were measured."""
    import torch

    name = device
    if device.startswith("cuda") and torch.cuda.is_available():
        name = f"{device} ({torch.cuda.get_device_name(torch.device(device))})"
    return {
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "device": name,
        "load_avg_1min": os.getloadavg()[0],
    }


def reproduce(experiments: dict, seeds: list[int], preset: str, device: str, out: Path, command: str) -> int:
    """Run the experiments and write reproductions.json and .md under out; 0 if every check held often enough.

    Experiments already in out's JSON that this run does not repeat are kept (each entry says how it was
    run), so `--only ch3` adds or replaces chapter 3's rows; a lock makes concurrent runs merge, not clobber.
    """
    from filelock import FileLock

    report = {
        "command": command,
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "preset": preset,
        "seeds": seeds,
        "machine": machine(device),
        "experiments": {},
    }
    fresh = {}
    for name, exp in experiments.items():
        print(f"{name}: {exp.title}", flush=True)
        run = {k: report[k] for k in ("command", "preset", "seeds")}
        run["machine"] = machine(device)
        run["date"] = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        fresh[name] = {**run_one(exp, seeds, preset, device), "run": run}
    out.mkdir(parents=True, exist_ok=True)
    with FileLock(str(out / "reproductions.lock")):
        path = out / "reproductions.json"
        kept = json.loads(path.read_text())["experiments"] if path.exists() else {}
        merged = {k: v for k, v in kept.items() if "run" in v and v["run"]["preset"] == preset} | fresh
        report["experiments"] = dict(sorted(merged.items(), key=lambda kv: order(kv[0])))
        path.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n")
        (out / "reproductions.md").write_text(markdown(report))
    bad = failures(report)
    print("\n".join(["checks below the bar:", *bad]) if bad else "every check held in enough seeds")
    print(f"written to {out / 'reproductions.json'} and {out / 'reproductions.md'}")
    return 1 if bad else 0


def order(name: str) -> tuple[int, str]:
    """Chapter order for an experiment name `ch12.x` (then by name); other names last."""
    head = name.split(".", 1)[0]
    return (int(head[2:]) if head[:2] == "ch" and head[2:].isdigit() else 10**6, name)


def main(argv: list[str] | None = None, registry: dict | None = None) -> int:
    """Command line: pick the experiments and seeds, run them, write the results; the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1 (default 5)")
    parser.add_argument("--preset", default="book", choices=("tiny", "book", "full"))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--only", action="append", default=[], help="run experiments whose name contains this")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if registry is None:
        from selfsup.experiments import all_experiments

        registry = all_experiments()
    chosen = {k: v for k, v in registry.items() if not args.only or any(o in k for o in args.only)}
    if not chosen:
        parser.error(f"no experiment matches {args.only}; registered: {sorted(registry)}")
    command = "python benchmarks/reproduce.py " + " ".join(argv if argv is not None else sys.argv[1:])
    return reproduce(chosen, list(range(args.seeds)), args.preset, args.device, args.out, command.strip())


if __name__ == "__main__":
    sys.exit(main())
