"""The four ways to use BERT: a small task head on a shared, usually pre-trained, `BertModel` body.

Case 1  one sentence -> one label (sentiment):           BertForSequenceClassification
Case 2  one sentence -> a label per token (POS tags):     BertForTokenClassification
Case 3  two sentences -> one label (NLI):                 BertForSequenceClassification with token_type_ids
Case 4  question + document -> an answer span (QA):       BertForQuestionAnswering, then best_span
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Self

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from selfsup.bert import BertConfig, BertForPretraining, BertModel
from selfsup.layers import check_positive, init_weights


@dataclass
class ClassifierOutput:
    """Loss (None without labels) and logits: (B, num_labels) per sequence or (B, T, num_labels) per token."""

    loss: Tensor | None
    logits: Tensor
    hidden_states: tuple[Tensor, ...] | None = None


@dataclass
class QuestionAnsweringOutput:
    """Loss (None without positions), start and end logits (B, T), and both stacked as logits (B, T, 2)."""

    loss: Tensor | None
    logits: Tensor
    start_logits: Tensor
    end_logits: Tensor
    hidden_states: tuple[Tensor, ...] | None = None


def freeze(module: nn.Module, frozen: bool = True) -> nn.Module:
    """Stop (or, with frozen=False, restart) gradient updates of every parameter of a module; returns it.

    Freezing the body of a head gives the "frozen features" setting: only the head learns. Dropout still
    follows train()/eval(), so call eval() on the body as well for deterministic features.
    """
    module.requires_grad_(not frozen)
    return module


class BertHead(nn.Module):
    """A task head on a `BertModel` body at `.bert`; subclasses add the head and the forward."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.config = config
        self.bert = BertModel(config)

    def _init_head(self, *modules: nn.Module) -> None:
        for m in modules:
            m.apply(lambda x: init_weights(x, self.config.init_std))

    @classmethod
    def from_pretrained_body(cls, body: BertModel | BertForPretraining, *args: object, **kwargs: object) -> Self:
        """Build the head on body.config with a fresh head and a copy of the body's weights (the body is unchanged)."""
        bert = body.bert if isinstance(body, BertForPretraining) else body
        head = cls(bert.config, *args, **kwargs)
        head.bert.load_state_dict(bert.state_dict())
        return head


class _LinearClassifierHead(BertHead):
    """A dropout and a fresh Linear(d_model, num_labels) on top of the body: what Cases 1-3 share."""

    def __init__(self, config: BertConfig, num_labels: int) -> None:
        super().__init__(config)
        check_positive(num_labels=num_labels)
        self.num_labels = num_labels
        self.dropout = nn.Dropout(config.dropout)
        self.classifier = nn.Linear(config.d_model, num_labels)
        self._init_head(self.classifier)


class BertForSequenceClassification(_LinearClassifierHead):
    """Cases 1 and 3: classify a sentence or a sentence pair from the pooled [CLS] state."""

    def forward(
        self,
        input_ids: Tensor,
        attention_mask: Tensor | None = None,
        token_type_ids: Tensor | None = None,
        labels: Tensor | None = None,
        output_hidden_states: bool = False,
    ) -> ClassifierOutput:
        """input_ids: (B, T); for a pair, token_type_ids mark sentence B with 1. labels: (B,) class ids."""
        out = self.bert(input_ids, attention_mask, token_type_ids, output_hidden_states)
        logits = self.classifier(self.dropout(out.pooler_output))  # (B, num_labels)
        loss = F.cross_entropy(logits, labels.flatten()) if labels is not None else None
        return ClassifierOutput(loss, logits, out.hidden_states)


class BertForTokenClassification(_LinearClassifierHead):
    """Case 2: one label per token from that token's final state."""

    def forward(
        self,
        input_ids: Tensor,
        attention_mask: Tensor | None = None,
        token_type_ids: Tensor | None = None,
        labels: Tensor | None = None,
        output_hidden_states: bool = False,
    ) -> ClassifierOutput:
        """labels: (B, T), -100 for tokens without a label ([CLS], [SEP], padding, later word pieces)."""
        out = self.bert(input_ids, attention_mask, token_type_ids, output_hidden_states)
        logits = self.classifier(self.dropout(out.last_hidden_state))  # (B, T, num_labels)
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=-100)
        return ClassifierOutput(loss, logits, out.hidden_states)


class BertForQuestionAnswering(BertHead):
    """Case 4: extractive QA; each token scores as the answer's start and as its end."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__(config)
        # Row 0 of the weight is the learned "start" vector, row 1 the "end" vector: one matmul gives, for every
        # token, its dot product with both (plus a bias, which shifts all tokens alike and so does not matter).
        self.qa = nn.Linear(config.d_model, 2)
        self._init_head(self.qa)

    def forward(
        self,
        input_ids: Tensor,
        attention_mask: Tensor | None = None,
        token_type_ids: Tensor | None = None,
        start_positions: Tensor | None = None,
        end_positions: Tensor | None = None,
        output_hidden_states: bool = False,
    ) -> QuestionAnsweringOutput:
        """Question as sentence A, document as sentence B; start/end_positions: (B,) token indices of the answer."""
        out = self.bert(input_ids, attention_mask, token_type_ids, output_hidden_states)
        logits = self.qa(out.last_hidden_state)  # (B, T, 2)
        start_logits, end_logits = logits.unbind(dim=-1)  # (B, T) each
        loss = None
        if start_positions is not None and end_positions is not None:
            # Softmax over positions: the start is a T-way classification, and so is the end.
            start_loss = F.cross_entropy(start_logits, start_positions.flatten(), ignore_index=-100)
            end_loss = F.cross_entropy(end_logits, end_positions.flatten(), ignore_index=-100)
            loss = (start_loss + end_loss) / 2
        return QuestionAnsweringOutput(loss, logits, start_logits, end_logits, out.hidden_states)


def best_span(
    start_logits: Tensor,
    end_logits: Tensor,
    context_mask: Tensor | None = None,
    max_answer_len: int = 30,
) -> tuple[Tensor, Tensor]:
    """The answer span with the highest start + end score, per example: (start, end) indices, each (B,).

    Only spans with start <= end, end - start + 1 <= max_answer_len and both ends inside context_mask (B, T)
    (True = a document token) count. An example with no allowed span gets (0, 0), the [CLS] "no answer".
    Logits may also be 1-D (T,), giving 0-d indices.
    """
    check_positive(max_answer_len=max_answer_len)
    squeeze = start_logits.dim() == 1
    if squeeze:
        start_logits, end_logits = start_logits[None], end_logits[None]
        context_mask = context_mask[None] if context_mask is not None else None
    b, t = start_logits.shape
    scores = start_logits[:, :, None] + end_logits[:, None, :]  # (B, T, T): [b, i, j] = span i..j
    i = torch.arange(t, device=scores.device)
    length = i[None, :] - i[:, None]  # (T, T): j - i
    allowed = ((length >= 0) & (length < max_answer_len))[None]  # (1, T, T)
    if context_mask is not None:
        m = context_mask.bool()
        allowed = allowed & m[:, :, None] & m[:, None, :]
    scores = scores.masked_fill(~allowed, float("-inf"))
    flat = scores.flatten(1).argmax(dim=1)  # (B,)
    none = ~allowed.expand(b, t, t).flatten(1).any(dim=1)
    flat = flat.masked_fill(none, 0)
    start, end = flat // t, flat % t
    return (start[0], end[0]) if squeeze else (start, end)
