"""Training-step throughput, model FLOP/s and peak memory: selfsup against transformers on identical configurations.

Throughput: both models of a pair live in one process and take turns (the order flips every repeat), so a noisy
neighbour slows both alike; each repeat times a block of steps, and the medians are quoted.
Memory: one fresh interpreter per (model, implementation, size), since a process's allocator keeps what it once
held; the figure is the peak resident memory during a few training steps above the resident memory just before
them (weights and batch already there), so it counts gradients, AdamW state, activations and temporaries.

    .venv/bin/python benchmarks/bench_train.py                 # every configuration, printed as JSON
    .venv/bin/python benchmarks/bench_train.py memory bert tiny selfsup
    .venv/bin/python benchmarks/bench_train.py profile bert small
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    IMPLS,
    KINDS,
    SIZES,
    Size,
    build,
    build_selfsup,
    make_batch,
    matmul_params,
    median,
    quiet_transformers,
    rss_bytes,
    rss_reset_peak,
    run_json_subprocess,
    time_calls,
    to_transformers,
    train_flops_per_token,
    train_step_fn,
)


def throughput(
    kind: str, size: Size, repeats: int = 5, block_s: float = 1.0, compile_selfsup: bool = False, seed: int = 0
) -> dict:
    """Tokens/s of selfsup and transformers training steps (same weights, same batch), alternating; medians."""
    selfsup = build_selfsup(kind, size, seed)
    hf = to_transformers(kind, selfsup)
    flops_per_token = train_flops_per_token(selfsup, size)
    batch = make_batch(kind, size, seed)
    models = {"selfsup": selfsup, "transformers": hf}
    compile_s = None
    if compile_selfsup:
        models["selfsup"] = torch.compile(selfsup)
    steps = {name: train_step_fn(m, batch) for name, m in models.items()}
    # Warm-up: the first steps allocate optimizer state and (with compile) build the graph.
    for name, step in steps.items():
        t0 = time.perf_counter()
        step()
        if name == "selfsup" and compile_selfsup:
            compile_s = time.perf_counter() - t0
        step()
    # Enough steps per block that a block lasts about block_s; the same count for both implementations.
    one = min(time_calls(s, 1) for s in steps.values())
    n = max(1, round(block_s / max(one, 1e-6)))
    tokens = n * size.batch_size * size.seq_len
    rates: dict[str, list[float]] = {name: [] for name in steps}
    for r in range(repeats):
        order = list(steps) if r % 2 == 0 else list(reversed(steps))
        for name in order:
            rates[name].append(tokens / time_calls(steps[name], n))
    med = {name: median(v) for name, v in rates.items()}
    per_repeat = [a / b for a, b in zip(rates["selfsup"], rates["transformers"], strict=True)]
    return {
        "kind": kind,
        "size": size.name,
        "compiled_selfsup": compile_selfsup,
        "compile_s": compile_s,
        "steps_per_block": n,
        "tokens_per_step": size.batch_size * size.seq_len,
        "params": sum(p.numel() for p in selfsup.parameters()),
        "matmul_params": matmul_params(selfsup),
        "flops_per_token": flops_per_token,
        "tokens_per_s": rates,
        "median_tokens_per_s": med,
        "median_flops_per_s": {name: v * flops_per_token for name, v in med.items()},
        "ratio_selfsup_over_transformers": med["selfsup"] / med["transformers"],
        "median_of_paired_ratios": median(per_repeat),
    }


def memory(kind: str, size: Size, impl: str, steps: int = 3, seed: int = 0) -> dict:
    """Peak resident memory of a few training steps above the memory just before them (run in a fresh process)."""
    quiet_transformers()
    model = build(kind, impl, size, seed)
    batch = make_batch(kind, size, seed)
    step = train_step_fn(model, batch)
    before = rss_bytes()
    if not rss_reset_peak():
        raise RuntimeError("cannot reset the peak-RSS counter (/proc/self/clear_refs); Linux only")
    for _ in range(steps):
        step()
    peak = rss_bytes("VmHWM")
    return {
        "kind": kind,
        "size": size.name,
        "impl": impl,
        "rss_before_mb": before / 2**20,
        "peak_above_before_mb": (peak - before) / 2**20,
        "weights_mb": sum(p.numel() * p.element_size() for p in model.parameters()) / 2**20,
    }


def memory_in_subprocess(kind: str, size_name: str, impl: str) -> dict:
    """memory() in a fresh interpreter, so that no other configuration's allocations linger."""
    return run_json_subprocess([str(Path(__file__).resolve()), "memory", kind, size_name, impl])


def profile(kind: str, size: Size, row_limit: int = 12, seed: int = 0) -> dict[str, str]:
    """Per-operator CPU time of one training step of each implementation (after warm-up), as printed tables."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    selfsup = build_selfsup(kind, size, seed)
    models = {"selfsup": selfsup, "transformers": to_transformers(kind, selfsup)}
    batch = make_batch(kind, size, seed)
    tables = {}
    for name, model in models.items():
        step = train_step_fn(model, batch)
        step()
        step()
        with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(3):
                step()
        tables[name] = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=row_limit)
    return tables


def main() -> None:
    """Command line: all throughputs (default), one memory measurement, or a profile."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", nargs="?", default="throughput", choices=["throughput", "memory", "profile"])
    parser.add_argument("kind", nargs="?", choices=KINDS)
    parser.add_argument("size", nargs="?", choices=list(SIZES))
    parser.add_argument("impl", nargs="?", choices=IMPLS)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    quiet_transformers()
    kinds = [args.kind] if args.kind else list(KINDS)
    sizes = [SIZES[args.size]] if args.size else list(SIZES.values())
    if args.what == "memory":
        print(json.dumps(memory(args.kind, SIZES[args.size], args.impl)))
    elif args.what == "profile":
        for kind in kinds:
            for size in sizes:
                for name, table in profile(kind, size).items():
                    print(f"\n## {kind} {size.name} {name}\n{table}")
    else:
        out = [throughput(k, s, args.repeats) for k in kinds for s in sizes]
        print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
