"""Greedy generation speed: selfsup GPT with its KV cache, without it, and transformers `generate` on the same weights.

The model is the "small" GPT (d_model 256, 4 layers, 4 heads) with a 512-position table, one 16-token prompt,
256 new tokens, greedy, in eval mode. The implementations take turns; medians of the repeats are quoted.

    .venv/bin/python benchmarks/bench_generate.py
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SIZES, build_selfsup, median, quiet_transformers, time_calls, to_transformers  # noqa: E402


def generation(
    size_name: str = "small",
    new_tokens: int = 256,
    prompt_len: int = 16,
    repeats: int = 3,
    hf_no_cache: bool = False,
    seed: int = 0,
) -> dict:
    """New tokens per second of each way to generate, and whether their greedy outputs agree.

    transformers without its cache is the slowest run of all and tells little, so it is optional.
    """
    size = SIZES[size_name]
    model = build_selfsup("gpt", size, seed, max_len=prompt_len + new_tokens).eval()
    hf = to_transformers("gpt", model).eval()
    prompt = torch.randint(0, size.vocab_size, (1, prompt_len), generator=torch.Generator().manual_seed(seed))
    mask = torch.ones_like(prompt)
    hf_kwargs = {
        "attention_mask": mask,
        "max_new_tokens": new_tokens,
        "min_new_tokens": new_tokens,
        "do_sample": False,
        "pad_token_id": 0,
    }

    runs: dict[str, Callable[[], torch.Tensor]] = {
        "selfsup_kv_cache": lambda: model.generate(prompt, new_tokens, temperature=0.0, use_cache=True),
        "selfsup_no_cache": lambda: model.generate(prompt, new_tokens, temperature=0.0, use_cache=False),
        "transformers_kv_cache": lambda: hf.generate(prompt, use_cache=True, **hf_kwargs),
    }
    if hf_no_cache:
        runs["transformers_no_cache"] = lambda: hf.generate(prompt, use_cache=False, **hf_kwargs)
    with torch.no_grad():
        outputs = {name: fn() for name, fn in runs.items()}  # also the warm-up
        rates: dict[str, list[float]] = {name: [] for name in runs}
        for r in range(repeats):
            order = list(runs) if r % 2 == 0 else list(reversed(runs))
            for name in order:
                rates[name].append(new_tokens / time_calls(runs[name], 1))
    med = {name: median(v) for name, v in rates.items()}
    reference = outputs["selfsup_no_cache"]
    return {
        "size": size_name,
        "prompt_len": prompt_len,
        "new_tokens": new_tokens,
        "tokens_per_s": rates,
        "median_tokens_per_s": med,
        "kv_cache_speedup": med["selfsup_kv_cache"] / med["selfsup_no_cache"],
        "selfsup_over_transformers_with_cache": med["selfsup_kv_cache"] / med["transformers_kv_cache"],
        "same_tokens_as_selfsup_no_cache": {
            name: bool(torch.equal(out, reference)) for name, out in outputs.items() if name != "selfsup_no_cache"
        },
    }


def main() -> None:
    """Command line: print the generation benchmark as JSON."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--new-tokens", type=int, default=256)
    parser.add_argument("--size", default="small", choices=list(SIZES))
    parser.add_argument("--hf-no-cache", action="store_true", help="also time transformers without its cache")
    args = parser.parse_args()
    quiet_transformers()
    print(
        json.dumps(generation(args.size, args.new_tokens, repeats=args.repeats, hf_no_cache=args.hf_no_cache), indent=1)
    )


if __name__ == "__main__":
    main()
