"""BERT: a bidirectional Transformer encoder, pre-trained by masked language modelling and next-sentence prediction.

The architecture is the original one (post-LN, learned positions, token types, a tanh pooler), laid out so
that `selfsup.hf` converts it weight for weight to `transformers.BertForPreTraining`.
Shapes: B batch, T sequence length, C = d_model, V vocabulary size.
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
class BertConfig:
    """Sizes and options of a BERT encoder; BERT-base is d_model=768, n_heads=12, n_layers=12, d_ff=3072."""

    vocab_size: int
    d_model: int = 256
    n_heads: int = 4
    n_layers: int = 4
    d_ff: int = 1024
    max_len: int = 128
    type_vocab_size: int = 2
    dropout: float = 0.1
    layer_norm_eps: float = 1e-12
    pad_token_id: int = 0
    activation: str = "gelu"
    norm_first: bool = False
    init_std: float = 0.02
    attn_impl: str = "sdpa"
    # A token attends only to itself and the tokens before it: a left-to-right encoder, as in BERT's "LTR"
    # ablation and GPT. Off for BERT, which reads both ways; chapter 3 compares the two on span QA.
    causal: bool = False

    model_type: ClassVar[str] = "bert"

    def __post_init__(self) -> None:
        """Reject sizes and options the model cannot be built with."""
        check_positive(
            vocab_size=self.vocab_size,
            d_model=self.d_model,
            n_heads=self.n_heads,
            n_layers=self.n_layers,
            d_ff=self.d_ff,
            max_len=self.max_len,
            type_vocab_size=self.type_vocab_size,
            layer_norm_eps=self.layer_norm_eps,
            init_std=self.init_std,
        )
        check_heads(self.d_model, self.n_heads)
        check_dropout(self.dropout)
        if not 0 <= self.pad_token_id < self.vocab_size:
            raise ValueError(f"pad_token_id={self.pad_token_id!r} must be in [0, vocab_size={self.vocab_size})")
        check_choice("activation", self.activation, tuple(ACTIVATIONS))
        check_choice("attn_impl", self.attn_impl, ATTN_IMPLS)


@dataclass
class BertModelOutput:
    """What the encoder returns: per-token states, the pooled [CLS] state, optionally every layer's states."""

    last_hidden_state: Tensor  # (B, T, C)
    pooler_output: Tensor  # (B, C)
    hidden_states: tuple[Tensor, ...] | None = None  # n_layers + 1 tensors (B, T, C), embeddings first


@dataclass
class BertPretrainingOutput:
    """Pre-training output: the summed loss, its two parts, MLM logits and NSP logits (B, 2).

    `logits` are (B, T, V) when no labels are given. With labels they are (N, V): the scores at the N
    positions where labels != -100, in row-major order (`labels[labels != -100]` are their targets),
    because the MLM head only runs where a word was hidden.
    """

    loss: Tensor | None
    logits: Tensor
    nsp_logits: Tensor
    mlm_loss: Tensor | None = None
    nsp_loss: Tensor | None = None
    hidden_states: tuple[Tensor, ...] | None = None


class BertEmbeddings(nn.Module):
    """Word + position + token-type embeddings, then LayerNorm and dropout."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.max_len = config.max_len
        # padding_idx keeps the [PAD] vector at zero and out of the gradient, as in the reference BERT code
        self.word = nn.Embedding(config.vocab_size, config.d_model, padding_idx=config.pad_token_id)
        self.position = nn.Embedding(config.max_len, config.d_model)
        self.token_type = nn.Embedding(config.type_vocab_size, config.d_model)
        self.ln = nn.LayerNorm(config.d_model, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, input_ids: Tensor, token_type_ids: Tensor | None = None) -> Tensor:
        """(B, T) ids -> (B, T, C) embeddings."""
        t = input_ids.size(1)
        check_seq_len(t, self.max_len)
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        pos = torch.arange(t, device=input_ids.device)  # (T,), broadcast over the batch
        x = self.word(input_ids) + self.position(pos) + self.token_type(token_type_ids)
        return self.dropout(self.ln(x))


class BertModel(nn.Module):
    """The BERT body: embeddings, a stack of post-LN Transformer blocks, and the [CLS] pooler."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.config = config
        self.embeddings = BertEmbeddings(config)
        self.layers = nn.ModuleList(
            TransformerBlock(
                config.d_model,
                config.n_heads,
                config.d_ff,
                dropout=config.dropout,
                norm_first=config.norm_first,
                activation=config.activation,
                layer_norm_eps=config.layer_norm_eps,
                attn_impl=config.attn_impl,
            )
            for _ in range(config.n_layers)
        )
        # Pre-LN blocks leave the residual stream un-normalised, so they need a final LayerNorm; post-LN does not.
        self.ln_f = nn.LayerNorm(config.d_model, eps=config.layer_norm_eps) if config.norm_first else None
        self.pooler = nn.Linear(config.d_model, config.d_model)
        self.apply(lambda m: init_weights(m, config.init_std))

    def forward(
        self,
        input_ids: Tensor,
        attention_mask: Tensor | None = None,
        token_type_ids: Tensor | None = None,
        output_hidden_states: bool = False,
    ) -> BertModelOutput:
        """input_ids, attention_mask, token_type_ids: (B, T). Every token attends to every real token (with
        config.causal, to every real token up to itself)."""
        x = self.embeddings(input_ids, token_type_ids)  # (B, T, C)
        # No mask at all when there is no padding lets SDPA pick its fastest kernel.
        # An all-ones mask is dropped too (one host sync): on a GPU any mask rules out the flash kernel.
        mask = None
        if attention_mask is not None and not attention_mask.bool().all():
            mask = padding_mask(attention_mask)  # (B, 1, 1, T)
        hidden = [x] if output_hidden_states else None
        for block in self.layers:
            x, _ = block(x, attn_mask=mask, is_causal=self.config.causal)
            if hidden is not None:
                hidden.append(x)
        if self.ln_f is not None:
            x = self.ln_f(x)
            if hidden is not None:
                hidden[-1] = x
        # [CLS] sits at position 0; its state after a Linear + tanh summarises the whole input (used by NSP).
        pooled = torch.tanh(self.pooler(x[:, 0]))  # (B, C)
        return BertModelOutput(x, pooled, tuple(hidden) if hidden is not None else None)


class BertMLMHead(nn.Module):
    """Masked-LM head: a Linear + activation + LayerNorm transform, then scores against the word embeddings."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.d_model, config.d_model)
        self.act = ACTIVATIONS[config.activation]
        self.ln = nn.LayerNorm(config.d_model, eps=config.layer_norm_eps)
        # The weight is replaced by (tied to) the word embeddings in BertForPretraining; the bias is its own.
        self.decoder = nn.Linear(config.d_model, config.vocab_size)

    def forward(self, x: Tensor) -> Tensor:
        """(B, T, C) -> (B, T, V) logits."""
        return self.decoder(self.ln(self.act(self.dense(x))))


class BertForPretraining(nn.Module):
    """BERT with its two pre-training heads: masked language modelling and next-sentence prediction."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.config = config
        self.bert = BertModel(config)
        self.mlm = BertMLMHead(config)
        self.nsp = nn.Linear(config.d_model, 2)  # on the pooled [CLS]: is sentence B the real next sentence?
        # The body initialised itself, so a seed gives the same body here as under any fine-tuning head.
        for head in (self.mlm, self.nsp):
            head.apply(lambda m: init_weights(m, config.init_std))
        # Tie the output projection to the input embeddings (after init, so the [PAD] row stays zero):
        # predicting a token and reading it share one vector per word, which saves V x C parameters
        # and lets rare words learn from both ends, as in the original BERT.
        self.mlm.decoder.weight = self.bert.embeddings.word.weight

    def forward(
        self,
        input_ids: Tensor,
        attention_mask: Tensor | None = None,
        token_type_ids: Tensor | None = None,
        labels: Tensor | None = None,
        next_sentence_label: Tensor | None = None,
        output_hidden_states: bool = False,
    ) -> BertPretrainingOutput:
        """labels: (B, T) original ids at masked positions, -100 elsewhere; next_sentence_label: (B,), 0 = IsNext.

        The loss is the sum of the MLM and NSP losses that have labels, so leaving out next_sentence_label
        trains by MLM alone (RoBERTa-style).
        """
        out = self.bert(input_ids, attention_mask, token_type_ids, output_hidden_states)
        nsp_logits = self.nsp(out.pooler_output)  # (B, 2)
        mlm_loss = nsp_loss = loss = None
        if labels is None:
            logits = self.mlm(out.last_hidden_state)  # (B, T, V)
        else:
            # Score only the hidden words: about 85% of positions have no target, and the head's (., V)
            # output is the largest activation of the model, so this saves most of the head's time and memory.
            hidden = labels != -100  # (B, T)
            logits = self.mlm(out.last_hidden_state[hidden])  # (N, V)
            # A batch in which masking picked no position (short lines, small batches) has nothing to
            # predict: its loss is 0, not the 0/0 = NaN of a plain mean over no targets.
            mlm_loss = F.cross_entropy(logits, labels[hidden], reduction="sum") / max(logits.size(0), 1)
            loss = mlm_loss
        if next_sentence_label is not None:
            # A pair labelled -100 has no NSP target (a one-sentence piece); a batch of only those has loss 0.
            nsp_target = next_sentence_label.flatten()
            nsp_loss = F.cross_entropy(nsp_logits, nsp_target, reduction="sum") / max((nsp_target != -100).sum(), 1)
            loss = nsp_loss if loss is None else loss + nsp_loss
        return BertPretrainingOutput(loss, logits, nsp_logits, mlm_loss, nsp_loss, out.hidden_states)
