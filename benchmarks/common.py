"""Shared pieces of the benchmarks: configurations, model pairs with equal weights, batches, timing, FLOPs, memory.

A "pair" is a selfsup model and the `transformers` model converted from it (same weights, same dropout), so the
two implementations do identical work on identical inputs.
"""

from __future__ import annotations

import os
import platform
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import torch
from torch import Tensor, nn

from selfsup import flops
from selfsup.flops import MLM_RATE, matmul_params  # noqa: F401 (the benchmarks import them from here)

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"


@dataclass(frozen=True)
class Size:
    """One benchmark configuration: model sizes and the batch shape of a training step."""

    name: str
    vocab_size: int
    d_model: int
    n_layers: int
    n_heads: int
    seq_len: int
    batch_size: int

    @property
    def d_ff(self) -> int:
        """4 * d_model, as in BERT and GPT-2."""
        return 4 * self.d_model


# tiny: the book's models (d_model 64, 2 layers, 4 heads, 64 tokens, the ToyWorld tokenizer's 2000 words);
# small: d_model 256, 4 layers, 4 heads, 128 tokens, a larger vocabulary.
SIZES = {
    "tiny": Size("tiny", vocab_size=2000, d_model=64, n_layers=2, n_heads=4, seq_len=64, batch_size=32),
    "small": Size("small", vocab_size=8000, d_model=256, n_layers=4, n_heads=4, seq_len=128, batch_size=16),
}
KINDS = ("bert", "gpt")
IMPLS = ("selfsup", "transformers")
DROPOUT = 0.1  # as in training


def quiet_transformers() -> None:
    """Silence transformers' warnings and progress bars (benchmarks print their own tables)."""
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()


def build_selfsup(kind: str, size: Size, seed: int = 0, max_len: int | None = None) -> nn.Module:
    """A selfsup BertForPretraining or GPT of the given size, seeded, in train mode."""
    torch.manual_seed(seed)
    max_len = max_len or size.seq_len
    if kind == "bert":
        from selfsup.bert import BertConfig as Config
        from selfsup.bert import BertForPretraining as Model
    elif kind == "gpt":
        from selfsup.gpt import GPT as Model
        from selfsup.gpt import GPTConfig as Config
    else:
        raise ValueError(f"kind={kind!r} is not one of {KINDS}")
    cfg = Config(
        vocab_size=size.vocab_size, d_model=size.d_model, n_heads=size.n_heads, n_layers=size.n_layers,
        d_ff=size.d_ff, max_len=max_len, dropout=DROPOUT,
    )  # fmt: skip
    return Model(cfg).train()


def to_transformers(kind: str, model: nn.Module) -> nn.Module:
    """The transformers twin of a selfsup model (BertForPreTraining / GPT2LMHeadModel), with SDPA attention."""
    from selfsup.hf import bert_to_hf, gpt_to_hf

    hf = bert_to_hf(model) if kind == "bert" else gpt_to_hf(model)
    if hf.config._attn_implementation != "sdpa":
        hf.set_attn_implementation("sdpa")
    return hf.train(model.training)


def build(kind: str, impl: str, size: Size, seed: int = 0) -> nn.Module:
    """One model of a pair; the transformers one is converted from the seeded selfsup one, so weights match."""
    model = build_selfsup(kind, size, seed)
    return model if impl == "selfsup" else to_transformers(kind, model)


def make_batch(kind: str, size: Size, seed: int = 0) -> dict[str, Tensor]:
    """A training batch with the ecosystem's argument names, accepted by both implementations.

    BERT: full-length pairs (as pre-training packs them) with an all-ones attention_mask as a collator gives,
    token types 0/1 for the two segments, 15% of positions with MLM labels, a random NSP label.
    GPT: input_ids and labels = input_ids (both models shift the labels inside).
    """
    g = torch.Generator().manual_seed(seed)
    b, t, v = size.batch_size, size.seq_len, size.vocab_size
    ids = torch.randint(5, v, (b, t), generator=g)
    if kind == "gpt":
        return {"input_ids": ids, "labels": ids.clone()}
    labels = torch.where(torch.rand(b, t, generator=g) < MLM_RATE, ids, torch.full_like(ids, -100))
    token_type_ids = (torch.arange(t) >= t // 2).long().expand(b, t).contiguous()
    return {
        "input_ids": ids,
        "attention_mask": torch.ones(b, t, dtype=torch.long),
        "token_type_ids": token_type_ids,
        "labels": labels,
        "next_sentence_label": torch.randint(0, 2, (b,), generator=g),
    }


def train_step_fn(model: nn.Module, batch: dict[str, Tensor], lr: float = 1e-4) -> Callable[[], Tensor]:
    """A closure doing one forward + backward + AdamW step on a fixed batch; returns the loss."""
    opt = torch.optim.AdamW(model.parameters(), lr=lr)

    def step() -> Tensor:
        opt.zero_grad(set_to_none=True)
        loss = model(**batch).loss
        loss.backward()
        opt.step()
        return loss.detach()

    return step


def time_calls(fn: Callable[[], object], n: int) -> float:
    """Seconds for n calls of fn."""
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return time.perf_counter() - t0


def median(xs: list[float]) -> float:
    """The median (benchmarks quote medians: the machine is shared and noisy)."""
    return statistics.median(xs)


def train_flops_per_token(model: nn.Module, size: Size) -> float:
    """Model FLOPs of one training token at this size (`selfsup.flops`: 6 * P_matmul + 12 * n_layers * T * d_model,
    BERT's MLM head at MLM_RATE of the tokens)."""
    return flops.train_flops_per_token(model, size.seq_len, n_layers=size.n_layers, d_model=size.d_model)


def matmul_peak_flops(n: int = 2048, repeats: int = 5, dtype: torch.dtype = torch.float32) -> float:
    """This machine's measured matmul peak (FLOP/s): the best of a few large torch.mm, in this process."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    torch.mm(a, b)  # warm-up: thread pool, page faults
    best = min(time_calls(lambda: torch.mm(a, b), 1) for _ in range(repeats))
    return 2 * n**3 / best


def rss_reset_peak() -> bool:
    """Reset the kernel's peak-RSS counter of this process (Linux: /proc/self/clear_refs); False if unavailable."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def rss_bytes(field: str = "VmRSS") -> int:
    """Current (VmRSS) or peak since the last reset (VmHWM) resident memory of this process, in bytes."""
    status = Path("/proc/self/status").read_text()
    return int(re.search(rf"{field}:\s+(\d+) kB", status).group(1)) * 1024


def machine() -> dict[str, object]:
    """What the numbers were measured on."""
    cpu = platform.processor() or ""
    try:
        cpu = re.search(r"model name\s*:\s*(.*)", Path("/proc/cpuinfo").read_text()).group(1)
    except (OSError, AttributeError):
        pass
    import transformers

    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "load_avg_1min": os.getloadavg()[0],
    }


def run_json_subprocess(args: list[str], timeout: float = 600) -> dict:
    """Run `python <args>` in a fresh interpreter and parse the JSON it prints last."""
    import json

    proc = subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def size_dict(size: Size) -> dict[str, object]:
    """A Size as a plain dict for the JSON results."""
    return asdict(size)
