"""`make bench`: every benchmark in one run; writes benchmarks/results/latest.json and latest.md and prints the tables.

.venv/bin/python benchmarks/run.py                  # everything (4-5 minutes on 2 cores)
.venv/bin/python benchmarks/run.py --only train gen # a subset: train, memory, compile, gen, book
.venv/bin/python benchmarks/run.py --quick          # fewer repeats, no torch.compile: a smoke run
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_book import book_build  # noqa: E402
from bench_generate import generation  # noqa: E402
from bench_train import memory_in_subprocess, throughput  # noqa: E402
from common import IMPLS, KINDS, RESULTS, SIZES, machine, matmul_peak_flops, quiet_transformers  # noqa: E402

PARTS = ("train", "memory", "compile", "gen", "book")


def _fmt(x: float, digits: int = 0) -> str:
    return f"{x:,.{digits}f}"


def train_table(rows: list[dict], peak: float) -> str:
    """Markdown: median tokens/s, ratio, model FLOP/s and the fraction of the measured matmul peak."""
    lines = [
        "| model | size | selfsup tok/s | transformers tok/s | ratio (median) | paired ratios (median) "
        "| selfsup GFLOP/s | % of matmul peak |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        med = r["median_tokens_per_s"]
        flops = r["median_flops_per_s"]["selfsup"]
        lines.append(
            f"| {r['kind']}{' (compiled)' if r['compiled_selfsup'] else ''} | {r['size']} | {_fmt(med['selfsup'])} "
            f"| {_fmt(med['transformers'])} | {r['ratio_selfsup_over_transformers']:.2f}x "
            f"| {r['median_of_paired_ratios']:.2f}x | {flops / 1e9:.1f} | {100 * flops / peak:.0f}% |"
        )
    return "\n".join(lines)


def compile_table(rows: list[dict], eager: dict[tuple[str, str], dict]) -> str:
    """Markdown: torch.compile'd selfsup against eager transformers, with the compile time."""
    lines = [
        "| model | size | compile + first step (s) | compiled selfsup tok/s | transformers tok/s | ratio "
        "| eager selfsup ratio (train run) |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        med = r["median_tokens_per_s"]
        e = eager.get((r["kind"], r["size"]))
        eager_ratio = f"{e['ratio_selfsup_over_transformers']:.2f}x" if e else "-"
        lines.append(
            f"| {r['kind']} | {r['size']} | {r['compile_s']:.0f} | {_fmt(med['selfsup'])} "
            f"| {_fmt(med['transformers'])} | {r['ratio_selfsup_over_transformers']:.2f}x | {eager_ratio} |"
        )
    return "\n".join(lines)


def memory_table(rows: list[dict]) -> str:
    """Markdown: peak resident memory of training steps above the memory before them."""
    by = {(r["kind"], r["size"], r["impl"]): r for r in rows}
    lines = [
        "| model | size | weights MB | selfsup peak MB | transformers peak MB | ratio |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for kind in KINDS:
        for size in SIZES:
            s, t = by.get((kind, size, "selfsup")), by.get((kind, size, "transformers"))
            if s and t:
                a, b = s["peak_above_before_mb"], t["peak_above_before_mb"]
                lines.append(f"| {kind} | {size} | {s['weights_mb']:.1f} | {a:.0f} | {b:.0f} | {a / b:.2f}x |")
    return "\n".join(lines)


def gen_table(g: dict) -> str:
    """Markdown: generation tokens/s of each way, the cache speed-up and the ratio to transformers."""
    lines = [
        f"| {g['new_tokens']} new tokens, greedy, GPT {g['size']} | tok/s (median) | same tokens |",
        "|---|---:|---|",
    ]
    for name, v in g["median_tokens_per_s"].items():
        same = g["same_tokens_as_selfsup_no_cache"].get(name, "reference")
        lines.append(f"| {name} | {v:,.0f} | {same} |")
    lines.append(f"\nKV-cache speed-up: {g['kv_cache_speedup']:.1f}x (target >= 3x); selfsup / transformers with "
                 f"cache: {g['selfsup_over_transformers_with_cache']:.2f}x")  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    """Run the chosen parts, print Markdown tables, write JSON and Markdown results."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="+", choices=PARTS, default=list(PARTS))
    parser.add_argument("--quick", action="store_true", help="fewer repeats and no torch.compile")
    parser.add_argument("--repeats", type=int, default=None, help="training repeats (default 7, quick 3)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for latest.json / latest.md")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    quiet_transformers()
    parts = [p for p in args.only if not (args.quick and p == "compile")]
    repeats = args.repeats or (3 if args.quick else 7)
    started = time.perf_counter()
    results: dict = {"machine": machine(), "command": "python benchmarks/run.py " + " ".join(sys.argv[1:])}
    peaks = [matmul_peak_flops()]
    m = results["machine"]
    md = [
        f"Measured {m['date']} on {m['cpu']}, {m['cores']} cores, torch {m['torch']} ({m['torch_threads']} threads), "
        f"transformers {m['transformers']}; 1-min load average at start {m['load_avg_1min']:.1f}."
    ]

    def section(title: str, body: str) -> None:
        md.append(f"\n### {title}\n\n{body}")
        print(f"\n### {title}\n\n{body}", flush=True)

    eager: dict[tuple[str, str], dict] = {}
    if "train" in parts:
        rows = []
        for kind in KINDS:
            for size in SIZES.values():
                rows.append(throughput(kind, size, repeats=repeats))
                eager[(kind, size.name)] = rows[-1]
                peaks.append(matmul_peak_flops())
        results["train"] = rows
    if "compile" in parts:
        # Compiling costs about a minute per model on 2 cores, so only the small size, where it can pay off.
        results["compile"] = [throughput(k, SIZES["small"], repeats=max(3, repeats // 2), compile_selfsup=True)
                              for k in KINDS]  # fmt: skip
        peaks.append(matmul_peak_flops())
    peak = max(peaks)
    results["matmul_peak_flops"] = {"best": peak, "samples": peaks, "method": "2048x2048 fp32 torch.mm, best of 5"}
    md.append(f"\nfp32 matmul peak of this machine (2048x2048 torch.mm, best of the run): {peak / 1e9:.1f} GFLOP/s.")
    if "train" in parts:
        section("Training step (forward + backward + AdamW), fp32, dropout 0.1", train_table(results["train"], peak))
    if "compile" in parts:
        section("torch.compile (selfsup compiled, transformers eager)", compile_table(results["compile"], eager))
    if "memory" in parts:
        mem = [memory_in_subprocess(k, s, i) for k in KINDS for s in SIZES for i in IMPLS]
        results["memory"] = mem
        section("Peak memory of 3 training steps above the resident memory before them", memory_table(mem))
    if "gen" in parts:
        results["generation"] = generation(repeats=2 if args.quick else 3)
        section("Generation", gen_table(results["generation"]))
    if "book" in parts:
        b = book_build(rebuilds=1 if args.quick else 2)
        results["book"] = b
        section(
            "Book build",
            f"`{b['command']}` on a fresh copy ({len(b['pages'])} pages): cold {b['cold_s']:.1f} s, no-change rebuild "
            f"{b['median_no_change_rebuild_s']:.1f} s (median of {len(b['no_change_rebuild_s'])}).",
        )
    results["total_s"] = time.perf_counter() - started
    md.append(f"\nWhole run: {results['total_s']:.0f} s.")
    print(f"\nWhole run: {results['total_s']:.0f} s.")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "latest.json").write_text(json.dumps(results, indent=1))
    (args.out / "latest.md").write_text("\n".join(md) + "\n")


if __name__ == "__main__":
    main()
