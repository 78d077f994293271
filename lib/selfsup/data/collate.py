"""Batch collation: lists of tokenized examples -> dicts of tensors ready for `model(**batch)`.

An example is a list of ids, a 1-D tensor, or a dict with "input_ids" (and, for BERT, optionally
"token_type_ids" and "next_sentence_label"). Padding is on the right; attention_mask is 1 for real tokens;
labels are -100 where nothing is to be predicted. The collators are plain callables, so they serve as
`torch.utils.data.DataLoader(..., collate_fn=MLMCollator(tok))`.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from selfsup.masking import (
    IGNORE_INDEX,
    document_rotation,
    mask_tokens,
    sentence_permutation,
    span_corrupt,
    text_infilling,
    token_deletion,
    token_masking,
)

Example = Sequence[int] | Tensor | Mapping[str, Any]


def pad_sequences(
    seqs: Sequence[Sequence[int]] | Sequence[Tensor], pad_id: int, max_len: int | None = None
) -> tuple[Tensor, Tensor]:
    """Right-pad to the longest sequence (cut at max_len when given): (ids (B, T) long, attention_mask (B, T) long)."""
    if len(seqs) == 0:
        raise ValueError("pad_sequences needs at least one sequence")
    if max_len is not None and max_len < 1:
        raise ValueError(f"max_len={max_len!r} must be >= 1 or None")
    rows = [s.tolist() if isinstance(s, Tensor) else list(s) for s in seqs]
    if max_len is not None:
        rows = [r[:max_len] for r in rows]
    t = max(1, max(len(r) for r in rows))  # T >= 1 so that a batch of empty sequences still has a shape
    ids = torch.full((len(rows), t), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(rows), t), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r, dtype=torch.long)
        attention_mask[i, : len(r)] = 1
    return ids, attention_mask


def _input_ids(example: Example) -> list[int]:
    """The token ids of one example, whatever its form."""
    ids = example["input_ids"] if isinstance(example, Mapping) else example
    return ids.tolist() if isinstance(ids, Tensor) else list(ids)


def _field(examples: Sequence[Example], key: str) -> list | None:
    """The values of `key` when every example is a dict that has it, else None."""
    if all(isinstance(e, Mapping) and key in e for e in examples):
        return [e[key] for e in examples]
    return None


class MLMCollator:
    """Pad, then mask with `mask_tokens` (BERT 80/10/10); passes token_type_ids and, with NSP, next_sentence_label.

    `with_nsp=True` requires a "next_sentence_label" in every example; with False that field is dropped,
    so one data set serves pre-training with and without NSP. `generator=None` uses torch's global RNG,
    which `torch.manual_seed` and the DataLoader's per-worker seeding control.
    """

    def __init__(
        self,
        tokenizer: Any,
        mlm_probability: float = 0.15,
        generator: torch.Generator | None = None,
        with_nsp: bool = False,
        max_len: int | None = None,
        mask_ratio: float = 0.8,
        random_ratio: float = 0.1,
    ) -> None:
        """Read the pad / mask / special ids and the vocabulary size from a transformers tokenizer.

        mask_ratio and random_ratio split the chosen positions as in `mask_tokens` (BERT: 0.8 and 0.1).
        """
        if tokenizer.mask_token_id is None or tokenizer.pad_token_id is None:
            raise ValueError("MLMCollator needs a tokenizer with a mask token and a pad token (see train_wordpiece)")
        if not 0.0 < mlm_probability <= 1.0:
            raise ValueError(f"mlm_probability={mlm_probability!r} must be in (0, 1]")
        self.pad_id = tokenizer.pad_token_id
        self.mask_id = tokenizer.mask_token_id
        self.vocab_size = len(tokenizer)
        self.special_ids = sorted(set(tokenizer.all_special_ids))
        self.mlm_probability = mlm_probability
        self.mask_ratio = mask_ratio
        self.random_ratio = random_ratio
        self.generator = generator
        self.with_nsp = with_nsp
        self.max_len = max_len

    def __call__(self, examples: Sequence[Example]) -> dict[str, Tensor]:
        """Collate a list of examples into input_ids, attention_mask, labels (+ token_type_ids, next_sentence_label)."""
        ids, attention_mask = pad_sequences([_input_ids(e) for e in examples], self.pad_id, self.max_len)
        input_ids, labels = mask_tokens(
            ids,
            mask_token_id=self.mask_id,
            vocab_size=self.vocab_size,
            special_ids=self.special_ids,
            mlm_probability=self.mlm_probability,
            mask_ratio=self.mask_ratio,
            random_ratio=self.random_ratio,
            generator=self.generator or torch.default_generator,
            attention_mask=attention_mask,
        )
        batch = {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}
        token_type_ids = _field(examples, "token_type_ids")
        if token_type_ids is not None:
            batch["token_type_ids"] = pad_sequences(token_type_ids, 0, self.max_len)[0]
        if self.with_nsp:
            nsp = _field(examples, "next_sentence_label")
            if nsp is None:
                raise KeyError("with_nsp=True needs a 'next_sentence_label' in every example (see make_nsp_pairs)")
            batch["next_sentence_label"] = torch.tensor([int(v) for v in nsp], dtype=torch.long)
        return batch


class CausalLMCollator:
    """Pad for a decoder-only LM: labels = input_ids with padded positions set to -100 (the model shifts them).

    Padding is found by position (attention_mask), not by id, because GPT-style tokenizers pad with
    `<|endoftext|>`, which is also a real token that the model must learn to predict.
    """

    def __init__(self, pad_id: int, max_len: int | None = None) -> None:
        """Remember the pad id and an optional length cap."""
        self.pad_id = pad_id
        self.max_len = max_len

    def __call__(self, examples: Sequence[Example]) -> dict[str, Tensor]:
        """Collate a list of examples into input_ids, attention_mask, labels."""
        input_ids, attention_mask = pad_sequences([_input_ids(e) for e in examples], self.pad_id, self.max_len)
        labels = input_ids.masked_fill(attention_mask == 0, IGNORE_INDEX)
        return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}


NOISES = ("infilling", "masking", "deletion", "permutation", "rotation", "span")


class Seq2SeqCollator:
    """Noise each example for an encoder-decoder: input_ids / attention_mask = noised text, labels = clean text.

    The noise is one of BART's ("infilling", "masking", "deletion", "permutation", "rotation") or T5's
    "span" corruption, for which labels are the sentinel targets instead of the clean text. Examples hold
    content ids; `bos_id` / `eos_id`, when given, are put around both sides after noising, so they are never
    noised. "permutation" needs sentences: a "sentences" field (a list of id lists) in each example, or
    `sentence_end_ids` (such as the id of ".") to split input_ids after. Labels are padded with -100; the
    model makes its decoder inputs by shifting labels right.
    """

    def __init__(
        self,
        pad_id: int,
        noise: str = "infilling",
        *,
        mask_token_id: int | None = None,
        p: float = 0.3,
        poisson_lambda: float = 3.0,
        sentinel_ids: Sequence[int] | None = None,
        noise_density: float = 0.15,
        mean_span_length: float = 3.0,
        sentence_end_ids: Collection[int] = (),
        bos_id: int | None = None,
        eos_id: int | None = None,
        generator: torch.Generator | None = None,
        max_len: int | None = None,
    ) -> None:
        """Check that the chosen noise has what it needs (a mask id, sentinels)."""
        if noise not in NOISES:
            raise ValueError(f"noise={noise!r} is not allowed; choose one of {list(NOISES)}")
        if noise in ("infilling", "masking") and mask_token_id is None:
            raise ValueError(f"noise={noise!r} needs mask_token_id")
        if noise == "span" and not sentinel_ids:
            raise ValueError("noise='span' needs sentinel_ids (one per corrupted span, plus one)")
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p={p!r} must be in [0, 1]")
        self.pad_id = pad_id
        self.noise = noise
        self.mask_token_id = mask_token_id
        self.p = p
        self.poisson_lambda = poisson_lambda
        self.sentinel_ids = list(sentinel_ids or [])
        self.noise_density = noise_density
        self.mean_span_length = mean_span_length
        self.sentence_end_ids = set(sentence_end_ids)
        self.bos = [] if bos_id is None else [bos_id]
        self.eos = [] if eos_id is None else [eos_id]
        self.generator = generator
        self.max_len = max_len

    def _sentences(self, example: Example) -> list[list[int]]:
        """The sentences of an example: its "sentences" field, or input_ids cut after each sentence-end id."""
        if isinstance(example, Mapping) and "sentences" in example:
            return [_input_ids(s) for s in example["sentences"]]
        if not self.sentence_end_ids:
            raise ValueError("noise='permutation' needs a 'sentences' field in each example or sentence_end_ids")
        sentences, current = [], []
        for t in _input_ids(example):
            current.append(t)
            if t in self.sentence_end_ids:
                sentences.append(current)
                current = []
        return sentences + ([current] if current else [])

    def _noise(self, example: Example, g: torch.Generator) -> tuple[list[int], list[int]]:
        """(noised source, target) for one example, without bos / eos."""
        if self.noise == "permutation":
            sentences = self._sentences(example)
            return sentence_permutation(sentences, g), [t for s in sentences for t in s]
        ids = _input_ids(example)
        if self.noise == "infilling":
            return text_infilling(ids, self.mask_token_id, self.p, self.poisson_lambda, g), ids
        if self.noise == "masking":
            return token_masking(ids, self.mask_token_id, self.p, g), ids
        if self.noise == "deletion":
            return token_deletion(ids, self.p, g), ids
        if self.noise == "rotation":
            return document_rotation(ids, g), ids
        inputs, targets = span_corrupt(
            ids,
            sentinel_ids=self.sentinel_ids,
            noise_density=self.noise_density,
            mean_span_length=self.mean_span_length,
            generator=g,
        )
        return inputs, targets

    def __call__(self, examples: Sequence[Example]) -> dict[str, Tensor]:
        """Collate a list of examples into input_ids, attention_mask (the noised source) and labels."""
        g = self.generator or torch.default_generator
        sources, targets = [], []
        for e in examples:
            src, tgt = self._noise(e, g)
            sources.append(self.bos + list(src) + self.eos)
            targets.append(self.bos + list(tgt) + self.eos)
        input_ids, attention_mask = pad_sequences(sources, self.pad_id, self.max_len)
        labels, label_mask = pad_sequences(targets, self.pad_id, self.max_len)
        labels = labels.masked_fill(label_mask == 0, IGNORE_INDEX)
        return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}
