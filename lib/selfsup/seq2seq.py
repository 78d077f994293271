"""A BART-like encoder-decoder, pre-trained by corrupting a text and reconstructing it.

The encoder reads the corrupted input bidirectionally; the decoder writes the original text left to right,
attending to its own past (causal self-attention) and to the encoder output (cross-attention).
Shapes: B batch, S source length, T target length, C = d_model, V vocabulary size.
"""

from __future__ import annotations

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

# A decoder cache: per layer, (self-attention keys and values, cross-attention keys and values).
DecoderCache = tuple[tuple[KV, KV], ...]


@dataclass
class Seq2SeqConfig:
    """Sizes and options of the encoder-decoder; BART-base is d_model=768, n_heads=12, 6 + 6 layers.

    decoder_start_token_id is the first decoder input. Left as None it becomes eos_token_id, as in BART,
    so one of the two must be set.
    """

    vocab_size: int
    d_model: int = 256
    n_heads: int = 4
    n_encoder_layers: int = 3
    n_decoder_layers: int = 3
    d_ff: int | None = None  # None: 4 * d_model
    max_len: int = 256
    dropout: float = 0.1
    pad_token_id: int = 0
    decoder_start_token_id: int | None = None
    eos_token_id: int | None = None
    layer_norm_eps: float = 1e-5
    activation: str = "gelu"
    norm_first: bool = True
    init_std: float = 0.02
    attn_impl: str = "sdpa"

    model_type: ClassVar[str] = "seq2seq"

    def __post_init__(self) -> None:
        """Fill in d_ff and decoder_start_token_id, and reject what the model cannot be built with."""
        if self.d_ff is None:
            self.d_ff = 4 * self.d_model
        if self.decoder_start_token_id is None:
            if self.eos_token_id is None:
                raise ValueError(
                    "decoder_start_token_id=None needs eos_token_id to fall back on (BART starts decoding from eos); "
                    "set decoder_start_token_id or eos_token_id"
                )
            self.decoder_start_token_id = self.eos_token_id
        check_positive(
            vocab_size=self.vocab_size,
            d_model=self.d_model,
            n_heads=self.n_heads,
            n_encoder_layers=self.n_encoder_layers,
            n_decoder_layers=self.n_decoder_layers,
            d_ff=self.d_ff,
            max_len=self.max_len,
            layer_norm_eps=self.layer_norm_eps,
            init_std=self.init_std,
        )
        check_heads(self.d_model, self.n_heads)
        check_dropout(self.dropout)
        for name in ("pad_token_id", "decoder_start_token_id", "eos_token_id"):
            value = getattr(self, name)
            if value is not None and not 0 <= value < self.vocab_size:
                raise ValueError(f"{name}={value!r} must be in [0, vocab_size={self.vocab_size})")
        check_choice("activation", self.activation, tuple(ACTIVATIONS))
        check_choice("norm_first", self.norm_first, (True, False))
        check_choice("attn_impl", self.attn_impl, ATTN_IMPLS)


@dataclass
class Seq2SeqOutput:
    """What Seq2Seq returns: the reconstruction loss (None without labels) and decoder logits (B, T, V)."""

    loss: Tensor | None
    logits: Tensor
    encoder_last_hidden_state: Tensor | None = None  # (B, S, C)


def shift_right(labels: Tensor, decoder_start_token_id: int, pad_token_id: int) -> Tensor:
    """Decoder inputs from labels (B, T): prepend the start token, drop the last label, turn -100 into pad."""
    shifted = labels.new_full(labels.shape, pad_token_id)
    shifted[:, 1:] = labels[:, :-1]
    shifted[:, 0] = decoder_start_token_id
    return shifted.masked_fill(shifted == -100, pad_token_id)


class Seq2Seq(nn.Module):
    """Encoder-decoder Transformer with one token embedding shared by encoder, decoder and output layer."""

    def __init__(self, config: Seq2SeqConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        # padding_idx keeps the pad vector at zero and out of the embedding gradient, as in BART
        self.tok_emb = nn.Embedding(c.vocab_size, c.d_model, padding_idx=c.pad_token_id)
        self.enc_pos = nn.Embedding(c.max_len, c.d_model)
        self.dec_pos = nn.Embedding(c.max_len, c.d_model)
        self.drop = nn.Dropout(c.dropout)

        def block(cross: bool) -> TransformerBlock:
            return TransformerBlock(
                c.d_model,
                c.n_heads,
                c.d_ff,
                dropout=c.dropout,
                norm_first=c.norm_first,
                activation=c.activation,
                layer_norm_eps=c.layer_norm_eps,
                cross_attention=cross,
                attn_impl=c.attn_impl,
            )

        self.encoder = nn.ModuleList(block(cross=False) for _ in range(c.n_encoder_layers))
        self.decoder = nn.ModuleList(block(cross=True) for _ in range(c.n_decoder_layers))
        # One LayerNorm per stack. Pre-LN leaves the residual stream un-normalised, so it goes at the end;
        # post-LN normalises every block's output already, and BART normalises the embeddings as well.
        self.enc_ln = nn.LayerNorm(c.d_model, eps=c.layer_norm_eps)
        self.dec_ln = nn.LayerNorm(c.d_model, eps=c.layer_norm_eps)
        self.lm_head = nn.Linear(c.d_model, c.vocab_size, bias=False)
        self.apply(lambda m: init_weights(m, c.init_std))
        # Tie after init so the pad row stays zero: reading and writing a token share one vector,
        # which saves V x C parameters and suits reconstruction, where input and output vocabularies are one.
        self.lm_head.weight = self.tok_emb.weight

    def _embed(self, ids: Tensor, pos_emb: nn.Embedding, ln: nn.LayerNorm, start: int = 0) -> Tensor:
        check_seq_len(start + ids.size(1), self.config.max_len)
        pos = torch.arange(start, start + ids.size(1), device=ids.device)  # (T,), broadcast over the batch
        x = self.tok_emb(ids) + pos_emb(pos)  # (B, T, C)
        return self.drop(x if self.config.norm_first else ln(x))

    def encode(self, input_ids: Tensor, attention_mask: Tensor | None = None) -> Tensor:
        """Encode input_ids (B, S), attention_mask (B, S) 1 = real token, into states (B, S, C)."""
        x = self._embed(input_ids, self.enc_pos, self.enc_ln)
        # No mask at all when there is no padding lets SDPA pick its fastest kernel.
        mask = padding_mask(attention_mask) if attention_mask is not None else None  # (B, 1, 1, S)
        for block in self.encoder:
            x, _ = block(x, attn_mask=mask)
        return self.enc_ln(x) if self.config.norm_first else x

    def decode(
        self,
        decoder_input_ids: Tensor,
        memory: Tensor,
        attention_mask: Tensor | None = None,
        decoder_attention_mask: Tensor | None = None,
        past_key_values: DecoderCache | None = None,
        use_cache: bool = False,
    ) -> tuple[Tensor, DecoderCache | None]:
        """Logits (B, T, V) for decoder_input_ids (B, T) given the encoder output memory (B, S, C), and the cache.

        attention_mask (B, S) masks padding in the source; decoder_attention_mask (B, T_past + T) in the target.
        """
        past_len = past_key_values[0][0][0].size(2) if past_key_values is not None else 0
        x = self._embed(decoder_input_ids, self.dec_pos, self.dec_ln, start=past_len)  # (B, T, C)
        self_mask = padding_mask(decoder_attention_mask) if decoder_attention_mask is not None else None
        memory_mask = padding_mask(attention_mask) if attention_mask is not None else None  # (B, 1, 1, S)
        new_cache = []
        for i, block in enumerate(self.decoder):
            past = past_key_values[i] if past_key_values is not None else None
            x, cache = block(
                x,
                attn_mask=self_mask,
                is_causal=True,
                memory=memory,
                memory_mask=memory_mask,
                past_kv=past,
                use_cache=use_cache,
            )
            new_cache.append(cache)
        if self.config.norm_first:
            x = self.dec_ln(x)
        return self.lm_head(x), (tuple(new_cache) if use_cache else None)

    def forward(
        self,
        input_ids: Tensor,
        attention_mask: Tensor | None = None,
        decoder_input_ids: Tensor | None = None,
        decoder_attention_mask: Tensor | None = None,
        labels: Tensor | None = None,
    ) -> Seq2SeqOutput:
        """input_ids: corrupted text (B, S); labels: original text (B, T), -100 ignored.

        Without decoder_input_ids the decoder reads the labels shifted right (teacher forcing).
        """
        if decoder_input_ids is None:
            if labels is None:
                raise ValueError("pass labels or decoder_input_ids: the decoder needs an input")
            decoder_input_ids = shift_right(labels, self.config.decoder_start_token_id, self.config.pad_token_id)
        memory = self.encode(input_ids, attention_mask)  # (B, S, C)
        logits, _ = self.decode(decoder_input_ids, memory, attention_mask, decoder_attention_mask)  # (B, T, V)
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits.flatten(0, 1).float(), labels.flatten(), ignore_index=-100)
        return Seq2SeqOutput(loss, logits, memory)

    @torch.no_grad()
    def generate(
        self,
        input_ids: Tensor,
        attention_mask: Tensor | None = None,
        max_new_tokens: int = 64,
        use_cache: bool = True,
    ) -> Tensor:
        """Greedy decoding; returns (B, 1 + new) starting with decoder_start_token_id, as in transformers.

        A row that has produced eos_token_id is padded with pad_token_id; decoding stops once every row has.
        The encoder runs once, and with the cache the cross-attention keys and values are computed once too.
        Runs in eval mode (no dropout) and restores the mode after.
        """
        cfg = self.config
        if max_new_tokens < 0:
            raise ValueError(f"max_new_tokens={max_new_tokens!r} must be >= 0")
        if max_new_tokens > cfg.max_len:
            raise ValueError(f"max_new_tokens={max_new_tokens} exceeds max_len={cfg.max_len} decoder positions")
        was_training = self.training
        self.eval()
        try:
            memory = self.encode(input_ids, attention_mask)  # (B, S, C)
            ids = input_ids.new_full((input_ids.size(0), 1), cfg.decoder_start_token_id)  # (B, 1)
            finished = torch.zeros(input_ids.size(0), dtype=torch.bool, device=input_ids.device)
            cache = None
            for _ in range(max_new_tokens):
                if use_cache:  # feed only the newest token; the cache holds the rest
                    logits, cache = self.decode(
                        ids[:, -1:], memory, attention_mask, past_key_values=cache, use_cache=True
                    )
                else:
                    logits, _ = self.decode(ids, memory, attention_mask)
                next_token = logits[:, -1].argmax(dim=-1)  # (B,)
                next_token = next_token.masked_fill(finished, cfg.pad_token_id)
                if cfg.eos_token_id is not None:
                    finished |= next_token == cfg.eos_token_id
                ids = torch.cat([ids, next_token[:, None]], dim=1)
                if finished.all():
                    break
            return ids
        finally:
            self.train(was_training)
