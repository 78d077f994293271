"""Model FLOPs of training: the usual count, 6 FLOPs per weight per token plus attention, and totals of a run.

    fpt = train_flops_per_token(model, seq_len=64)          # one training token, forward and backward
    total = train_flops(model, tokens=1200 * 32 * 64, seq_len=64)
    bert_base = params_flops(110e6, tokens=256 * 512 * 1_000_000)   # the paper-level estimate, 6 N D

A multiply-add is 2 FLOPs, so a forward pass costs 2 per weight that takes part in a matrix multiply, and the
backward twice that (the gradient with respect to the input and to the weight): 6 per weight per token.
Attention adds Q Kᵀ and A V, which have no weights: 2 * 2 * T * d_model per token and layer forward, x 3 with
the backward. Embedding lookups, biases, LayerNorms, softmax and the optimizer are left out; at the sizes here
they are a few per cent.
"""

from __future__ import annotations

from torch import nn

MLM_RATE = 0.15  # the share of positions a BERT batch masks and scores (BERT's 15 %)


def matmul_params(model: nn.Module) -> int:
    """Weights that take part in a matrix multiply: every Linear's weight, a tied output layer counted once."""
    seen, n = set(), 0
    for m in model.modules():
        if isinstance(m, nn.Linear) and id(m.weight) not in seen:
            seen.add(id(m.weight))
            n += m.weight.numel()
    return n


def _config(model: nn.Module) -> object:
    """The config of the model, or of its first submodule that has one (a task head's body)."""
    for m in model.modules():
        if hasattr(m, "config"):
            return m.config
    raise ValueError(f"{type(model).__name__} has no .config; pass n_layers and d_model")


def train_flops_per_token(
    model: nn.Module,
    seq_len: int,
    *,
    mlm_rate: float = MLM_RATE,
    n_layers: int | None = None,
    d_model: int | None = None,
) -> float:
    """Model FLOPs of one training token: 6 * P_matmul + 12 * n_layers * seq_len * d_model.

    The attention term counts the full T x T scores (no discount for a causal mask). A BERT MLM head
    (transform and tied decoder, at `model.mlm`) is needed only at the masked positions, so it counts at
    `mlm_rate` of the tokens: that is the model's useful work, whether an implementation skips the rest or
    not. n_layers and d_model default to the model's config.
    """
    config = None if n_layers is not None and d_model is not None else _config(model)
    n_layers = n_layers if n_layers is not None else config.n_layers
    d_model = d_model if d_model is not None else config.d_model
    p = matmul_params(model)
    mlm = getattr(model, "mlm", None)
    if mlm is not None:
        p -= (1 - mlm_rate) * matmul_params(mlm)
    return 6 * p + 12 * n_layers * seq_len * d_model


def train_flops(model: nn.Module, tokens: float, seq_len: int, *, mlm_rate: float = MLM_RATE) -> float:
    """Model FLOPs of training on `tokens` tokens in sequences of `seq_len`."""
    return tokens * train_flops_per_token(model, seq_len, mlm_rate=mlm_rate)


def params_flops(n_params: float, tokens: float) -> float:
    """The paper-level estimate of training compute, 6 N D: N parameters, D tokens (attention left out)."""
    return 6 * n_params * tokens
