"""GPT: a decoder-only Transformer language model, trained to predict the next token, and its sampler.

The architecture is GPT-2's (pre-LN blocks, learned positions, a final LayerNorm, an output layer tied to the
token embedding), laid out so that it converts weight for weight to `transformers.GPT2LMHeadModel`.
Shapes: B batch, T sequence length, C = d_model, V vocabulary size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from selfsup.layers import (
    ACTIVATIONS,
    ATTN_IMPLS,
    KV,
    TransformerBlock,
    check_choice,
    check_dropout,
    check_heads,
    check_positive,
    check_seq_len,
    init_weights,
    padding_mask,
)


@dataclass
class GPTConfig:
    """Sizes and options of a GPT; GPT-2 small is d_model=768, n_heads=12, n_layers=12, max_len=1024."""

    vocab_size: int
    d_model: int = 256
    n_heads: int = 4
    n_layers: int = 4
    d_ff: int | None = None  # None: 4 * d_model, as in GPT-2
    max_len: int = 256
    dropout: float = 0.1
    layer_norm_eps: float = 1e-5
    activation: str = "gelu_tanh"  # GPT-2 was trained with the tanh approximation of GELU
    bias: bool = True
    init_std: float = 0.02
    attn_impl: str = "sdpa"

    model_type: ClassVar[str] = "gpt"

    def __post_init__(self) -> None:
        """Fill in d_ff and reject sizes and options the model cannot be built with."""
        if self.d_ff is None:
            self.d_ff = 4 * self.d_model
        check_positive(
            vocab_size=self.vocab_size,
            d_model=self.d_model,
            n_heads=self.n_heads,
            n_layers=self.n_layers,
            d_ff=self.d_ff,
            max_len=self.max_len,
            layer_norm_eps=self.layer_norm_eps,
            init_std=self.init_std,
        )
        check_heads(self.d_model, self.n_heads)
        check_dropout(self.dropout)
        check_choice("activation", self.activation, tuple(ACTIVATIONS))
        check_choice("attn_impl", self.attn_impl, ATTN_IMPLS)
        check_choice("bias", self.bias, (True, False))


@dataclass
class CausalLMOutput:
    """What GPT returns: the next-token loss (None without labels), logits (B, T, V) and the KV cache."""

    loss: Tensor | None
    logits: Tensor
    past_key_values: tuple[KV, ...] | None = None  # one (keys, values) pair per layer, each (B, H, T_total, D)


def top_k_filter(logits: Tensor, k: int) -> Tensor:
    """Keep the k largest logits of each row (and any tied with the k-th), set the others to -inf."""
    if k < 1:
        raise ValueError(f"top_k={k!r} must be >= 1")
    k = min(k, logits.size(-1))
    kth_largest = torch.topk(logits, k, dim=-1).values[..., -1:]  # (..., 1)
    return logits.masked_fill(logits < kth_largest, float("-inf"))


def top_p_filter(logits: Tensor, p: float) -> Tensor:
    """Nucleus filter: keep the fewest most likely tokens whose probabilities sum to at least p; -inf the rest."""
    if not 0.0 < p <= 1.0:
        raise ValueError(f"top_p={p!r} must be in (0, 1]")
    sorted_logits, order = logits.sort(dim=-1, descending=True)
    probs = sorted_logits.softmax(dim=-1)
    # A token is dropped when the more likely tokens before it already reach p, so the top one always stays.
    mass_before = probs.cumsum(dim=-1) - probs
    drop_sorted = mass_before >= p
    drop = drop_sorted.scatter(-1, order, drop_sorted)  # back to vocabulary order
    return logits.masked_fill(drop, float("-inf"))


def sample_next_token(
    logits: Tensor,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Pick one token per row from (B, V) logits: greedy at temperature 0, else sample the filtered softmax."""
    if temperature == 0:
        return logits.argmax(dim=-1)  # (B,)
    logits = logits / temperature
    if top_k is not None:
        logits = top_k_filter(logits, top_k)
    if top_p is not None and top_p < 1.0:
        logits = top_p_filter(logits, top_p)
    probs = logits.float().softmax(dim=-1)
    return torch.multinomial(probs, num_samples=1, generator=generator).squeeze(-1)  # (B,)


class GPT(nn.Module):
    """GPT-2-style language model: token + position embeddings, pre-LN Transformer blocks, tied output layer."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.config = config
        self.tok_emb = nn.Embedding(config.vocab_size, config.d_model)
        self.pos_emb = nn.Embedding(config.max_len, config.d_model)
        self.drop = nn.Dropout(config.dropout)
        self.layers = nn.ModuleList(
            TransformerBlock(
                config.d_model,
                config.n_heads,
                config.d_ff,
                dropout=config.dropout,
                norm_first=True,
                activation=config.activation,
                layer_norm_eps=config.layer_norm_eps,
                bias=config.bias,
                attn_impl=config.attn_impl,
            )
            for _ in range(config.n_layers)
        )
        # Pre-LN blocks leave the residual stream un-normalised, so it is normalised once before the output layer.
        self.ln_f = nn.LayerNorm(config.d_model, eps=config.layer_norm_eps)
        self.lm_head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        # Weight tying: reading a token and predicting it use one vector per token. It saves V x C parameters
        # and every output step also trains the input embeddings of rare tokens (Press & Wolf 2017; GPT-2).
        self.lm_head.weight = self.tok_emb.weight

        self.apply(lambda m: init_weights(m, config.init_std))
        # Each block adds two outputs (attention, MLP) to the residual stream, so its variance grows with depth;
        # GPT-2 scales the init of those two projections by 1/sqrt(2 * n_layers) to keep it about constant.
        residual_std = config.init_std / math.sqrt(2 * config.n_layers)
        for block in self.layers:
            nn.init.normal_(block.attn.proj.weight, mean=0.0, std=residual_std)
            nn.init.normal_(block.ff.fc2.weight, mean=0.0, std=residual_std)

    def forward(
        self,
        input_ids: Tensor,
        attention_mask: Tensor | None = None,
        labels: Tensor | None = None,
        past_key_values: tuple[KV, ...] | None = None,
        use_cache: bool = False,
    ) -> CausalLMOutput:
        """input_ids: (B, T). labels: (B, T), usually input_ids itself; the model shifts them by one, -100 ignored.

        attention_mask (1 = real token, padding on the right) covers the cached tokens too: (B, T_past + T).
        With a cache, positions continue after the cached tokens.
        """
        b, t = input_ids.shape
        past_len = past_key_values[0][0].size(2) if past_key_values is not None else 0
        check_seq_len(past_len + t, self.config.max_len)
        mask = None
        if attention_mask is not None:
            if attention_mask.shape != (b, past_len + t):
                raise ValueError(
                    f"attention_mask has shape {tuple(attention_mask.shape)}; expected (batch, cached + new tokens) "
                    f"= {(b, past_len + t)}"
                )
            # An all-ones mask is dropped (one host sync) so that SDPA can still take its fastest causal kernel.
            if not attention_mask.bool().all():
                mask = padding_mask(attention_mask)  # (B, 1, 1, T_past + T)

        pos = torch.arange(past_len, past_len + t, device=input_ids.device)  # (T,), broadcast over the batch
        x = self.drop(self.tok_emb(input_ids) + self.pos_emb(pos))  # (B, T, C)
        new_cache = []
        for i, block in enumerate(self.layers):
            past = (past_key_values[i], None) if past_key_values is not None else None
            x, cache = block(x, attn_mask=mask, is_causal=True, past_kv=past, use_cache=use_cache)
            if use_cache:
                new_cache.append(cache[0])
        logits = self.lm_head(self.ln_f(x))  # (B, T, V)

        loss = None
        if labels is not None:
            # Position i predicts token i + 1: shift the labels left and ignore the last position. Shifting the
            # small labels tensor instead of slicing the (B, T, V) logits saves a copy of the largest activation.
            targets = F.pad(labels[:, 1:], (0, 1), value=-100)  # (B, T)
            loss = F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten(), ignore_index=-100)
        return CausalLMOutput(loss, logits, tuple(new_cache) if use_cache else None)

    @torch.no_grad()
    def generate(
        self,
        input_ids: Tensor,
        max_new_tokens: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        eos_token_id: int | None = None,
        generator: torch.Generator | None = None,
        use_cache: bool = True,
    ) -> Tensor:
        """Continue each prompt of input_ids (B, T) by up to max_new_tokens tokens; returns (B, T + new).

        temperature 0 is greedy decoding. Rows that have produced eos_token_id are padded with it, and
        generation stops once every row has. Runs in eval mode (no dropout) and restores the mode after.
        """
        if max_new_tokens < 0:
            raise ValueError(f"max_new_tokens={max_new_tokens!r} must be >= 0")
        if temperature < 0:
            raise ValueError(f"temperature={temperature!r} must be >= 0 (0 = greedy)")
        if top_k is not None and top_k < 1:
            raise ValueError(f"top_k={top_k!r} must be >= 1 (or None for no top-k filter)")
        if top_p is not None and not 0.0 < top_p <= 1.0:
            raise ValueError(f"top_p={top_p!r} must be in (0, 1] (or None for no nucleus filter)")
        if input_ids.size(1) + max_new_tokens > self.config.max_len:
            raise ValueError(
                f"prompt length {input_ids.size(1)} + max_new_tokens={max_new_tokens} exceeds "
                f"max_len={self.config.max_len}; shorten the prompt or ask for fewer tokens"
            )
        was_training = self.training
        self.eval()
        try:
            ids, cache = input_ids, None
            finished = torch.zeros(input_ids.size(0), dtype=torch.bool, device=input_ids.device)
            for _ in range(max_new_tokens):
                if use_cache:  # feed only what the cache has not seen: the prompt, then one token at a time
                    out = self(ids if cache is None else ids[:, -1:], past_key_values=cache, use_cache=True)
                    cache = out.past_key_values
                else:
                    out = self(ids)
                next_token = sample_next_token(out.logits[:, -1], temperature, top_k, top_p, generator)  # (B,)
                if eos_token_id is not None:
                    next_token = next_token.masked_fill(finished, eos_token_id)
                    finished |= next_token == eos_token_id
                ids = torch.cat([ids, next_token[:, None]], dim=1)
                if eos_token_id is not None and finished.all():
                    break
            return ids
        finally:
            self.train(was_training)
