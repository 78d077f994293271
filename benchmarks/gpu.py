"""GPU training throughput and model FLOP utilisation: bf16 autocast, SDPA flash attention, with and without compile.

BERT (MLM + NSP) and GPT at GPT-2-small size (d_model 768, 12 layers, 12 heads, 1024 tokens), fused AdamW,
dropout 0.1. Utilisation = model FLOP/s (6 * matmul params + 12 * n_layers * T * d_model per token, see
common.train_flops_per_token) over the H200's dense bf16 peak, 989 TFLOP/s. BERT batches are full-length
(packed) sequences without an attention_mask, so SDPA can take the flash kernel; attention is forced onto the
flash kernel and the run says so if that is refused. transformers (eager) runs on the same weights for comparison.

    python benchmarks/gpu.py                     # on the lent H200; JSON to $OUT/gpu.json when $OUT is set
    python benchmarks/gpu.py --smoke             # tiny sizes, any device (CPU too): checks that the script works
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import Size, build_selfsup, make_batch, median, quiet_transformers, to_transformers  # noqa: E402
from common import train_flops_per_token as flops_per_token  # noqa: E402

H200_BF16_DENSE_PEAK = 989e12
FULL = {
    "bert": Size(
        "gpt2-small-size", vocab_size=30522, d_model=768, n_layers=12, n_heads=12, seq_len=1024, batch_size=16
    ),
    "gpt": Size("gpt2-small-size", vocab_size=50304, d_model=768, n_layers=12, n_heads=12, seq_len=1024, batch_size=16),
}
SMOKE = {
    "bert": Size("smoke", vocab_size=500, d_model=64, n_layers=2, n_heads=4, seq_len=64, batch_size=2),
    "gpt": Size("smoke", vocab_size=500, d_model=64, n_layers=2, n_heads=4, seq_len=64, batch_size=2),
}


def _sdpa_context(device: torch.device, force_flash: bool) -> contextlib.AbstractContextManager:
    if device.type != "cuda" or not force_flash:
        return contextlib.nullcontext()
    from torch.nn.attention import SDPBackend, sdpa_kernel

    return sdpa_kernel([SDPBackend.FLASH_ATTENTION])


def run_one(
    kind: str, impl: str, size: Size, device: torch.device, compiled: bool, steps: int, repeats: int, force_flash: bool
) -> dict:
    """Median tokens/s, model FLOP/s, utilisation and peak memory of one (model, implementation, compile) case."""
    model = build_selfsup(kind, size)
    fpt = flops_per_token(model, size)
    if impl == "transformers":
        model = to_transformers(kind, model)
    model = model.to(device).train()
    batch = {k: v.to(device) for k, v in make_batch(kind, size).items()}
    batch.pop("attention_mask", None)  # full-length sequences: no mask, so the flash kernel applies
    fused = device.type == "cuda"
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=fused)
    fwd = torch.compile(model) if compiled else model
    autocast = torch.autocast(device.type, dtype=torch.bfloat16)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        with autocast, _sdpa_context(device, force_flash):
            loss = fwd(**batch).loss
        loss.backward()
        opt.step()

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    t0 = time.perf_counter()
    step()
    sync()
    first_step_s = time.perf_counter() - t0
    for _ in range(2):
        step()
    sync()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    rates = []
    tokens = steps * size.batch_size * size.seq_len
    for _ in range(repeats):
        sync()
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        sync()
        rates.append(tokens / (time.perf_counter() - t0))
    rate = median(rates)
    result = {
        "kind": kind,
        "impl": impl,
        "compiled": compiled,
        "first_step_s": first_step_s,
        "tokens_per_s": rates,
        "median_tokens_per_s": rate,
        "flops_per_token": fpt,
        "model_tflops_per_s": rate * fpt / 1e12,
        "mfu_vs_h200_bf16_peak": rate * fpt / H200_BF16_DENSE_PEAK,
    }
    if device.type == "cuda":
        result["peak_memory_gb"] = torch.cuda.max_memory_allocated(device) / 2**30
    return result


def _write(results: dict, out: Path | None) -> None:
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=1))


def main() -> None:
    """Run every case, print a table and the JSON, and write the JSON to $OUT/gpu.json (or --out)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes and few steps; runs on CPU")
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile cases")
    parser.add_argument("--no-transformers", action="store_true", help="skip the transformers comparison")
    parser.add_argument("--kinds", nargs="+", default=["gpt", "bert"], choices=["gpt", "bert"])
    parser.add_argument("--steps", type=int, default=None, help="steps per timed block (default 10, smoke 2)")
    parser.add_argument("--repeats", type=int, default=None, help="timed blocks (default 3, smoke 1)")
    parser.add_argument("--out", type=Path, default=None, help="JSON file (default $OUT/gpu.json when $OUT is set)")
    args = parser.parse_args()
    quiet_transformers()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True  # only matters outside autocast (the optimizer, the loss)
    sizes = SMOKE if args.smoke else FULL
    steps = args.steps or (2 if args.smoke else 10)
    repeats = args.repeats or (1 if args.smoke else 3)
    cases = [(k, "selfsup", False) for k in args.kinds]
    if not args.no_transformers:
        cases += [(k, "transformers", False) for k in args.kinds]
    if not args.no_compile:
        cases += [(k, "selfsup", True) for k in args.kinds]
    results = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "smoke": args.smoke,
        "sizes": {k: asdict(v) for k, v in sizes.items()},
        "dtype": "bf16 autocast",
        "peak_flops_assumed": H200_BF16_DENSE_PEAK,
        "runs": [],
    }
    out = args.out or (Path(os.environ["OUT"]) / "gpu.json" if os.environ.get("OUT") else None)
    print(
        f"{'model':6} {'impl':13} {'compiled':8} {'tok/s':>12} {'TFLOP/s':>9} {'MFU':>6} {'1st step s':>10}", flush=True
    )
    for kind, impl, compiled in cases:
        try:
            r = run_one(kind, impl, sizes[kind], device, compiled, steps, repeats, force_flash=True)
            r["flash_forced"] = device.type == "cuda"
        except RuntimeError as err:  # flash refused (e.g. an unsupported head size): record it, run with SDPA's pick
            if device.type != "cuda":
                raise
            r = run_one(kind, impl, sizes[kind], device, compiled, steps, repeats, force_flash=False)
            r["flash_forced"], r["flash_error"] = False, str(err)[:500]
        results["runs"].append(r)
        if device.type == "cuda":
            torch.cuda.empty_cache()  # the next case starts from an empty cache: its peak memory is its own
        print(
            f"{kind:6} {impl:13} {compiled!s:8} {r['median_tokens_per_s']:12,.0f} {r['model_tflops_per_s']:9.1f} "
            f"{100 * r['mfu_vs_h200_bf16_peak']:5.1f}% {r['first_step_s']:10.1f}",
            flush=True,
        )
        _write(results, out)  # after every case: a run cut short by its time limit still leaves what it measured
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
