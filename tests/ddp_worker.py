"""A tiny model for the training tests, and the script each torchrun worker runs in tests/test_ddp.py.

Usage: python -m torch.distributed.run --standalone --nproc_per_node=2 tests/ddp_worker.py OUT_DIR [DEVICE]
Each rank trains the same tiny model on the same batch list and saves its parameters and history to OUT_DIR.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from selfsup.train import TrainConfig, train


@dataclass
class TinyConfig:
    vocab_size: int = 23
    d_model: int = 16
    max_len: int = 8
    dropout: float = 0.0

    model_type: ClassVar[str] = "tiny-test"

    def __post_init__(self) -> None:
        if self.d_model <= 0:
            raise ValueError(f"d_model={self.d_model} must be > 0")


@dataclass
class TinyOutput:
    loss: torch.Tensor | None
    logits: torch.Tensor
    aux_logits: torch.Tensor


class TinyLM(nn.Module):
    """Embeddings, a position-mixing MLP with dropout and LayerNorm, a vocabulary head: just enough to train."""

    def __init__(self, config: TinyConfig) -> None:
        super().__init__()
        self.config = config
        self.tok = nn.Embedding(config.vocab_size, config.d_model)
        self.pos = nn.Embedding(config.max_len, config.d_model)
        self.mix = nn.Linear(config.d_model, config.d_model)
        self.drop = nn.Dropout(config.dropout)
        self.ln = nn.LayerNorm(config.d_model)
        self.head = nn.Linear(config.d_model, config.vocab_size)
        # An output outside the loss, like BERT's NSP logits when pre-training by MLM alone: DDP must cope.
        self.aux = nn.Linear(config.d_model, 2)

    def forward(self, input_ids, attention_mask=None, labels=None):
        t = input_ids.size(1)
        x = self.tok(input_ids) + self.pos(torch.arange(t, device=input_ids.device))
        x = self.ln(x + self.drop(torch.tanh(self.mix(x))))
        logits = self.head(x)
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=-100)
        return TinyOutput(loss, logits, self.aux(x[:, 0]))


class TinyClassifier(TinyLM):
    """A head with an extra constructor argument, to check that checkpoints rebuild it."""

    def __init__(self, config: TinyConfig, num_labels: int) -> None:
        super().__init__(config)
        self.num_labels = num_labels
        self.cls = nn.Linear(config.d_model, num_labels)


def make_batches(n: int, batch_size: int = 4, seq: int = 8, vocab: int = 23, seed: int = 0) -> list[dict]:
    """n batches of random token ids; labels are the ids shifted by one (a learnable next-token rule)."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        ids = torch.randint(0, vocab, (batch_size, seq), generator=g)
        out.append({"input_ids": ids, "labels": (ids + 1) % vocab})
    return out


DDP_CONFIG = dict(max_steps=3, lr=1e-2, warmup_steps=1, grad_accum=2, schedule="linear", seed=0)


def main(out_dir: str, device: str = "cpu") -> None:
    torch.manual_seed(0)
    model = TinyLM(TinyConfig())
    history = train(
        model,
        make_batches(12),
        TrainConfig(**DDP_CONFIG),
        device=device,
        progress=False,
        checkpoint_dir=Path(out_dir) / "ckpt",
    )
    rank = int(os.environ["RANK"])  # train() has already closed the process group it opened
    torch.save({"state": model.state_dict(), "loss": history.loss}, Path(out_dir) / f"rank{rank}.pt")


if __name__ == "__main__":
    main(*sys.argv[1:])
