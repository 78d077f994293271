"""Pre-training the course's tiny BERT on ToyWorld documents, in about a minute on two CPU cores.

Documents are cut at sentence ends into pieces of at most `seq_len` word pieces and laid out as BERT's
sentence pairs, `[CLS] A [SEP] B [SEP]`, then masked (`MLMCollator`). Short pieces cost less per step than
whole padded documents, so a minute sees more text. The settings are those the ToyWorld learnability check
(benchmarks/learnability.py) validated: pre-training beats random initialisation there on sentiment, NLI and
span QA by more than the spread over six seeds.
"""

from __future__ import annotations

import dataclasses
import random
import statistics
import time
from collections.abc import Collection
from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader

from selfsup.bert import BertConfig, BertForPretraining
from selfsup.data.batching import LengthGroupedBatches
from selfsup.data.collate import CausalLMCollator, MLMCollator, pad_sequences
from selfsup.masking import IGNORE_INDEX
from selfsup.train import TrainConfig, train

OBJECTIVES = ("mlm", "causal")


@dataclass(frozen=True)
class PretrainSettings:
    """The model and the pre-training run (defaults: the validated 1200 steps of 32 pieces of 64 tokens)."""

    d_model: int = 128
    n_layers: int = 2
    n_heads: int = 4
    post_ln: bool = False  # the original BERT is post-LN; pre-LN pre-trains faster in a minute
    n_docs: int = 6000
    seq_len: int = 64
    batch_size: int = 32
    steps: int = 1200
    lr: float = 2e-3
    beta2: float = 0.999
    mlm_probability: float = 0.25
    mask_ratio: float = 0.8  # of the chosen positions: [MASK]
    random_ratio: float = 0.1  # a random token; the rest keep their token
    nsp: bool = False
    max_len: int = 160
    # No dropout in pre-training, as in ch4's seq2seq and ch7's GPT: on 2 CPU cores it took a third of each step,
    # and 150 steps without it ended at a lower MLM loss (4.56 against 4.61 nats). Fine-tuning turns it on
    # (finetuning.FINETUNE_DROPOUT).
    dropout: float = 0.0
    # "mlm": BERT's masked LM. "causal": the same encoder with causal attention, trained to predict the next
    # token at every position (BERT's left-to-right ablation), on the same pieces with the same steps.
    objective: str = "mlm"

    def __post_init__(self) -> None:
        """Reject an objective the pre-training cannot run."""
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective={self.objective!r} is not allowed; choose one of {list(OBJECTIVES)}")

    def replace(self, **changes: object) -> PretrainSettings:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)


def bert_config(vocab_size: int, s: PretrainSettings) -> BertConfig:
    """The tiny BERT of these settings (d_ff = 4 d_model, as in BERT)."""
    return BertConfig(
        vocab_size=vocab_size,
        d_model=s.d_model,
        n_heads=s.n_heads,
        n_layers=s.n_layers,
        d_ff=4 * s.d_model,
        max_len=s.max_len,
        norm_first=not s.post_ln,
        causal=s.objective == "causal",
        dropout=s.dropout,
    )


def pack(docs: list[list[str]], tok: object, seq_len: int, nsp_rng: random.Random | None = None) -> list[dict]:
    """Documents cut at sentence ends into pieces of at most `seq_len` word pieces, as BERT's sentence pairs.

    A piece of two or more sentences becomes `[CLS] A [SEP] B [SEP]` (its first half of sentences, then the
    rest) with token_type_ids 0 then 1, as in BERT's pre-training, so that NLI and QA, which put their second
    text in segment B, fine-tune a model that has seen pairs. With `nsp_rng`, each piece's B segment is
    replaced, with probability 1/2, by the B segment of another piece (next_sentence_label 1), as in BERT.
    The replacement has the same length as the B it replaces, so that the length of a pair says nothing about
    its label (a truncated random B made NotNext pairs longer or shorter than IsNext ones: from 7% to 72%
    NotNext, depending on the length). A piece of one sentence has no B: its label is IGNORE_INDEX.
    """
    pieces: list[list[list[int]]] = []
    for doc in docs:
        piece: list[list[int]] = []
        for sentence in doc:
            ids = tok(sentence, add_special_tokens=False)["input_ids"][: seq_len - 3]
            if piece and sum(map(len, piece)) + len(ids) > seq_len - 3:
                pieces.append(piece)
                piece = []
            piece.append(ids)
        pieces.append(piece)
    halves = []
    for piece in pieces:
        k = max(1, len(piece) // 2)
        halves.append(([t for sent in piece[:k] for t in sent], [t for sent in piece[k:] for t in sent]))
    same_length: dict[int, list[int]] = {}  # len(B) -> the pieces with a B of that length
    for i, (_, b) in enumerate(halves):
        same_length.setdefault(len(b), []).append(i)
    rank = {i: r for group in same_length.values() for r, i in enumerate(group)}
    out = []
    for i, (a, b) in enumerate(halves):
        example: dict = {}
        if nsp_rng is not None and not b:
            example["next_sentence_label"] = IGNORE_INDEX
        elif nsp_rng is not None:  # BERT's next-sentence prediction: half the B segments come from another piece
            others = same_length[len(b)]
            label = int(nsp_rng.random() < 0.5 and len(others) > 1)
            if label:
                b = halves[others[(rank[i] + nsp_rng.randrange(1, len(others))) % len(others)]][1]
            example["next_sentence_label"] = label
        first = [tok.cls_token_id, *a, tok.sep_token_id]
        second = [*b, tok.sep_token_id] if b else []
        example.update(input_ids=first + second, token_type_ids=[0] * len(first) + [1] * len(second))
        out.append(example)
    return out


class NextTokenCollator:
    """Batches of packed pieces for the "causal" objective: each position's label is the token after it.

    BERT's MLM head then scores every real position (the last one has no next token), so a left-to-right
    encoder learns from every token where MLM learns from the masked quarter.
    """

    def __init__(self, pad_id: int) -> None:
        """Pad with `pad_id`; padded positions get no label."""
        self.lm = CausalLMCollator(pad_id)

    def __call__(self, examples: list[dict]) -> dict[str, torch.Tensor]:
        """input_ids, attention_mask, token_type_ids and the next-token labels, (B, T) each."""
        batch = self.lm(examples)
        labels = batch["labels"]  # the inputs themselves, -100 on padding
        batch["labels"] = torch.cat([labels[:, 1:], torch.full_like(labels[:, :1], IGNORE_INDEX)], dim=1)
        batch["token_type_ids"] = pad_sequences([e["token_type_ids"] for e in examples], 0)[0]
        return batch


def contains_any(text: str, sentences: set[str]) -> bool:
    """Whether a sentence of the set is in the text, whole or as a clause ("... and <sentence>")."""
    return any(" " + s in text for s in sentences)


def pretrain_bert(
    docs: list[list[str]],
    tok: object,
    settings: PretrainSettings,
    seed: int,
    device: str = "cpu",
    held_out: set[str] = frozenset(),
    snapshot_steps: Collection[int] = (),
) -> tuple[BertForPretraining, dict]:
    """MLM (and, with settings.nsp, NSP) on documents, leaving out any that contain a held-out sentence.

    With settings.objective "causal", a left-to-right encoder learns to predict the next token instead.

    Returns the model and a summary: the loss history (per step), the MLM loss over the last 20 steps, the
    seconds taken, and how many documents were dropped. With `snapshot_steps`, the summary also holds
    "snapshots": {step: a copy of the weights (CPU) after that step}, 0 being the initialisation.
    """
    s = settings
    torch.manual_seed(seed)
    kept = [d for d in docs if not contains_any(" " + " ".join(d), held_out)] if held_out else docs
    ids = pack(kept, tok, s.seq_len, random.Random(seed) if s.nsp else None)
    g = torch.Generator().manual_seed(seed)
    if s.objective == "causal":
        collator = NextTokenCollator(tok.pad_token_id)
    else:
        collator = MLMCollator(
            tok,
            mlm_probability=s.mlm_probability,
            mask_ratio=s.mask_ratio,
            random_ratio=s.random_ratio,
            generator=g,
            with_nsp=s.nsp,
        )
    # Batches of similar lengths: drawn at random, a third of each batch would be padding (selfsup.data.batching).
    batches = LengthGroupedBatches([len(e["input_ids"]) for e in ids], s.batch_size, generator=g)
    loader = DataLoader(ids, batch_sampler=batches, generator=g, collate_fn=collator)
    model = BertForPretraining(bert_config(len(tok), s))
    snapshots = {0: _weights(model)} if 0 in snapshot_steps else {}

    def keep(m: BertForPretraining) -> dict[str, float]:
        # called after every step (eval_every=1) when snapshots are asked for; the step is the count so far
        step = len(snapshots_seen) + 1
        snapshots_seen.append(step)
        if step in snapshot_steps:
            snapshots[step] = _weights(m)
        return {}

    snapshots_seen: list[int] = []
    t0 = time.perf_counter()
    cfg = TrainConfig(
        max_steps=s.steps,
        lr=s.lr,
        betas=(0.9, s.beta2),
        warmup_steps=s.steps // 10,
        seed=seed,
        eval_every=1 if snapshot_steps else None,
    )
    hist = train(model, loader, cfg, eval_fn=keep if snapshot_steps else None, device=device, progress=False)
    info = {
        "loss": [round(x, 4) for x in hist.loss],
        "mlm_loss_last": statistics.mean(hist.loss[-20:]),
        "seconds": time.perf_counter() - t0,
        "documents_dropped_for_leakage": len(docs) - len(kept),
        "sequences": len(ids),
    }
    if snapshot_steps:
        info["snapshots"] = snapshots
    return model.cpu().eval(), info


def _weights(model: BertForPretraining) -> dict[str, torch.Tensor]:
    """A copy of the model's weights on the CPU."""
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
