"""Attention, feed-forward and Transformer blocks shared by every model, and weight init in one place.

Shapes: B batch, T (Tq, Tk) sequence lengths, C = d_model, H heads, D = C // H head size.
Boolean masks follow the ecosystem: True means "may attend".
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

AttnImpl = Literal["sdpa", "reference"]
ATTN_IMPLS = ("sdpa", "reference")
ACTIVATIONS = {"gelu": lambda x: F.gelu(x), "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"), "relu": F.relu}

# A cache for one attention layer: keys and values, each (B, H, T, D).
KV = tuple[Tensor, Tensor]


def causal_mask(tq: int, tk: int, device: torch.device | None = None) -> Tensor:
    """Boolean (Tq, Tk) mask where query i sees keys up to i + (Tk - Tq): aligned bottom-right, as with a cache."""
    offset = tk - tq
    return torch.ones(tq, tk, dtype=torch.bool, device=device).tril(diagonal=offset)


def padding_mask(attention_mask: Tensor) -> Tensor:
    """Turn a (B, Tk) attention_mask (1/True = real token) into a (B, 1, 1, Tk) boolean key mask."""
    return attention_mask.bool()[:, None, None, :]


def attention_reference(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    attn_mask: Tensor | None = None,
    is_causal: bool = False,
    dropout_p: float = 0.0,
) -> Tensor:
    """softmax(Q Kᵀ / √D) V, written out. q: (B, H, Tq, D); k, v: (B, H, Tk, D); returns (B, H, Tq, D).

    A query row that may attend to nothing gets zeros rather than the NaN of softmax over all -inf.
    """
    tq, tk = q.size(-2), k.size(-2)
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))  # (B, H, Tq, Tk)
    allowed = torch.ones(tq, tk, dtype=torch.bool, device=q.device)
    if is_causal:
        allowed = causal_mask(tq, tk, q.device)
    if attn_mask is not None:
        allowed = allowed & attn_mask
    scores = scores.masked_fill(~allowed, float("-inf"))
    weights = torch.softmax(scores.float(), dim=-1).nan_to_num(0.0).to(q.dtype)
    if dropout_p > 0.0:
        weights = F.dropout(weights, p=dropout_p)
    return weights @ v


def attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    attn_mask: Tensor | None = None,
    is_causal: bool = False,
    dropout_p: float = 0.0,
    impl: AttnImpl = "sdpa",
) -> Tensor:
    """Scaled dot-product attention through PyTorch's fused kernels, or the explicit reference path.

    attn_mask is boolean, broadcastable to (B, H, Tq, Tk). With is_causal and Tq != Tk (a KV cache),
    the causal mask is aligned bottom-right, which SDPA's own is_causal does not do, so it is made explicit.
    """
    if impl == "reference":
        return attention_reference(q, k, v, attn_mask, is_causal, dropout_p)
    tq, tk = q.size(-2), k.size(-2)
    if is_causal and (attn_mask is not None or tq != tk):
        if tq == 1:  # one new token sees every cached key
            is_causal = False
        else:
            cm = causal_mask(tq, tk, q.device)
            attn_mask = cm if attn_mask is None else attn_mask & cm
            is_causal = False
    if attn_mask is None:
        return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p, is_causal=is_causal)
    # Rows that may attend to nothing (a fully padded sequence) would be NaN: let them attend everywhere,
    # then zero them, so the result matches the reference path.
    has_key = attn_mask.any(dim=-1, keepdim=True)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask | ~has_key, dropout_p=dropout_p)
    return out * has_key.to(out.dtype)


class MultiHeadAttention(nn.Module):
    """Multi-head attention: fused QKV projection for self-attention, Q and fused KV for cross-attention."""

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        dropout: float = 0.0,
        bias: bool = True,
        cross: bool = False,
        attn_impl: AttnImpl = "sdpa",
    ) -> None:
        super().__init__()
        check_heads(d_model, n_heads)
        self.n_heads, self.head_dim, self.cross = n_heads, d_model // n_heads, cross
        self.dropout, self.attn_impl = dropout, attn_impl
        if cross:
            self.q = nn.Linear(d_model, d_model, bias=bias)
            self.kv = nn.Linear(d_model, 2 * d_model, bias=bias)
        else:
            self.qkv = nn.Linear(d_model, 3 * d_model, bias=bias)
        self.proj = nn.Linear(d_model, d_model, bias=bias)
        self.resid_dropout = nn.Dropout(dropout)

    def _heads(self, x: Tensor) -> Tensor:
        b, t, _ = x.shape
        return x.view(b, t, self.n_heads, self.head_dim).transpose(1, 2)  # (B, H, T, D)

    def forward(
        self,
        x: Tensor,
        attn_mask: Tensor | None = None,
        is_causal: bool = False,
        memory: Tensor | None = None,
        past_kv: KV | None = None,
        use_cache: bool = False,
    ) -> tuple[Tensor, KV | None]:
        """x: (B, Tq, C); memory: (B, Tk, C) for cross-attention. Returns (B, Tq, C) and the new cache."""
        b, t, c = x.shape
        if self.cross:
            q = self._heads(self.q(x))
            if past_kv is not None:  # the encoder output does not change while decoding: reuse its K, V
                k, v = past_kv
            else:
                if memory is None:
                    raise ValueError("cross-attention needs `memory` (the encoder output)")
                k, v = (self._heads(z) for z in self.kv(memory).split(c, dim=-1))
        else:
            q, k, v = (self._heads(z) for z in self.qkv(x).split(c, dim=-1))
            if past_kv is not None:
                k = torch.cat([past_kv[0], k], dim=2)
                v = torch.cat([past_kv[1], v], dim=2)
        y = attention(q, k, v, attn_mask, is_causal, self.dropout if self.training else 0.0, impl=self.attn_impl)
        y = y.transpose(1, 2).reshape(b, t, c)  # (B, Tq, C)
        return self.resid_dropout(self.proj(y)), ((k, v) if use_cache else None)


class FeedForward(nn.Module):
    """Position-wise MLP: Linear(C, d_ff), activation, Linear(d_ff, C), dropout."""

    def __init__(
        self, d_model: int, d_ff: int, dropout: float = 0.0, activation: str = "gelu", bias: bool = True
    ) -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation={activation!r} is not one of {sorted(ACTIVATIONS)}")
        self.fc1 = nn.Linear(d_model, d_ff, bias=bias)
        self.fc2 = nn.Linear(d_ff, d_model, bias=bias)
        self.act = ACTIVATIONS[activation]
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        """(B, T, C) -> (B, T, C)."""
        return self.dropout(self.fc2(self.act(self.fc1(x))))


class TransformerBlock(nn.Module):
    """Self-attention (+ optional cross-attention) + MLP, with residuals, pre-LN or post-LN.

    Post-LN (original Transformer, BERT): x = LN(x + sublayer(x)).
    Pre-LN (GPT-2 and later): x = x + sublayer(LN(x)); trains stably deeper, needs a final LayerNorm.
    """

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        d_ff: int,
        dropout: float = 0.0,
        norm_first: bool = False,
        activation: str = "gelu",
        layer_norm_eps: float = 1e-5,
        cross_attention: bool = False,
        bias: bool = True,
        attn_impl: AttnImpl = "sdpa",
    ) -> None:
        super().__init__()
        self.norm_first = norm_first
        self.attn = MultiHeadAttention(d_model, n_heads, dropout, bias, attn_impl=attn_impl)
        self.ln1 = nn.LayerNorm(d_model, eps=layer_norm_eps)
        self.cross_attn = None
        if cross_attention:
            self.cross_attn = MultiHeadAttention(d_model, n_heads, dropout, bias, cross=True, attn_impl=attn_impl)
            self.ln_cross = nn.LayerNorm(d_model, eps=layer_norm_eps)
        self.ff = FeedForward(d_model, d_ff, dropout, activation, bias)
        self.ln2 = nn.LayerNorm(d_model, eps=layer_norm_eps)

    def _sublayer(self, x: Tensor, ln: nn.LayerNorm, fn) -> tuple[Tensor, KV | None]:  # noqa: ANN001
        if self.norm_first:
            y, cache = fn(ln(x))
            return x + y, cache
        y, cache = fn(x)
        return ln(x + y), cache

    def forward(
        self,
        x: Tensor,
        attn_mask: Tensor | None = None,
        is_causal: bool = False,
        memory: Tensor | None = None,
        memory_mask: Tensor | None = None,
        past_kv: tuple[KV | None, KV | None] | None = None,
        use_cache: bool = False,
    ) -> tuple[Tensor, tuple[KV | None, KV | None] | None]:
        """x: (B, T, C). past_kv / the returned cache is (self-attention KV, cross-attention KV or None)."""
        self_past, cross_past = past_kv if past_kv is not None else (None, None)
        x, self_kv = self._sublayer(
            x, self.ln1, lambda h: self.attn(h, attn_mask, is_causal, past_kv=self_past, use_cache=use_cache)
        )
        cross_kv = None
        if self.cross_attn is not None:
            x, cross_kv = self._sublayer(
                x,
                self.ln_cross,
                lambda h: self.cross_attn(h, memory_mask, memory=memory, past_kv=cross_past, use_cache=use_cache),
            )
        x, _ = self._sublayer(x, self.ln2, lambda h: (self.ff(h), None))
        return x, ((self_kv, cross_kv) if use_cache else None)


def init_weights(module: nn.Module, std: float = 0.02) -> None:
    """The one weight init of the library (BERT / GPT-2 style): N(0, std) weights, zero biases, unit norms.

    Use as `model.apply(lambda m: init_weights(m, std))`.
    """
    if isinstance(module, nn.Linear):
        nn.init.normal_(module.weight, mean=0.0, std=std)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Embedding):
        nn.init.normal_(module.weight, mean=0.0, std=std)
        if module.padding_idx is not None:
            with torch.no_grad():
                module.weight[module.padding_idx].zero_()
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


def set_attn_impl(model: nn.Module, impl: AttnImpl) -> nn.Module:
    """Switch every attention layer of a model between the SDPA and the reference path (for tests, teaching)."""
    if impl not in ATTN_IMPLS:
        raise ValueError(f"attention implementation {impl!r} is not one of {ATTN_IMPLS}")
    for m in model.modules():
        if isinstance(m, MultiHeadAttention):
            m.attn_impl = impl
    return model


def check_choice(name: str, value: object, allowed: tuple | list) -> None:
    """Raise a ValueError naming the config field, the bad value and what is allowed."""
    if value not in allowed:
        raise ValueError(f"{name}={value!r} is not allowed; choose one of {list(allowed)}")


def check_positive(**fields: float) -> None:
    """Raise a ValueError for each config field that is not > 0."""
    for name, value in fields.items():
        if not value > 0:
            raise ValueError(f"{name}={value!r} must be > 0")


def check_heads(d_model: int, n_heads: int) -> None:
    """Raise a ValueError unless the heads split d_model evenly."""
    if d_model % n_heads != 0:
        raise ValueError(f"d_model={d_model} must be divisible by n_heads={n_heads}; each head gets d_model // n_heads")


def check_dropout(dropout: float) -> None:
    """Raise a ValueError unless 0 <= dropout < 1."""
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout={dropout!r} must be in [0, 1)")


def check_seq_len(t: int, max_len: int) -> None:
    """Raise a ValueError when an input is longer than the model's position table."""
    if t > max_len:
        raise ValueError(f"sequence length {t} exceeds max_len={max_len}; truncate the input or raise max_len")
