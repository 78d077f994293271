"""Fine-tuning the tiny BERT on ToyWorld tasks: encoding, batching, scoring, and one fine-tuning run.

The four ways to use BERT, each a head from `selfsup.heads` on the same body:
    sentiment   Case 1, [CLS] text [SEP] -> label                      accuracy
    pos         Case 2, a tag for every word (scored at its first word piece)   token accuracy
    nli         Case 3, [CLS] premise [SEP] hypothesis [SEP] -> label  accuracy
    qa          Case 4, [CLS] question [SEP] context [SEP] -> span     exact match of (start, end)
    dna         Case 1 on the DNA-like motif task (letters as words)   accuracy
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from datasets import DatasetDict
from torch import nn
from torch.utils.data import DataLoader

from selfsup.bert import BertConfig, BertForPretraining, BertModel
from selfsup.data import ToyWorld
from selfsup.data.collate import pad_sequences
from selfsup.experiments.pretraining import PretrainSettings, bert_config
from selfsup.heads import (
    BertForQuestionAnswering,
    BertForSequenceClassification,
    BertForTokenClassification,
    best_span,
    freeze,
)
from selfsup.masking import IGNORE_INDEX
from selfsup.train import TrainConfig, train

TASKS = ("sentiment", "pos", "nli", "qa")
NUM_LABELS = {"sentiment": 2, "nli": 3, "pos": 14}
MAX_LEN = 160
SIZES = (500, 200, 500)  # labelled examples: train, validation, test


def task_data(tw: ToyWorld, task: str, seed: int, sizes: tuple[int, int, int] = SIZES) -> DatasetDict:
    """A task's splits for one seed (drawn with seed 100 + seed, apart from the pre-training text's seeds).

    Sentiment and QA are validated and tested on wordings training lacks (`held_out=True`): sentiment on
    adjectives no labelled review uses, whose polarity shows only in pre-training text; QA on phrasings of
    the asked fact that no training context uses.
    """
    if task in ("sentiment", "qa"):
        return getattr(tw, task)(*sizes, seed=100 + seed, held_out=True)
    return getattr(tw, task)(*sizes, seed=100 + seed)


def sentiment_eval_texts(tw: ToyWorld, seed: int, sizes: tuple[int, int, int] = SIZES) -> set[str]:
    """The validation and test reviews of seed's sentiment task: pre-training text must not contain them."""
    dd = task_data(tw, "sentiment", seed, sizes)
    return {r["text"] for split in ("validation", "test") for r in dd[split]}


def encode(task: str, rows: Sequence[dict], tok: object) -> list[dict]:
    """Tokenize a split into feature dicts (pairs as segments A / B; tags and QA spans mapped to word pieces)."""
    out = []
    for r in rows:
        if task in ("sentiment", "dna"):
            text = r["text"] if task == "sentiment" else " ".join(r["sequence"])
            enc = tok(text, truncation=True, max_length=MAX_LEN)
            out.append({"input_ids": enc["input_ids"], "token_type_ids": enc["token_type_ids"], "labels": r["label"]})
        elif task == "nli":
            enc = tok(r["premise"], r["hypothesis"], truncation=True, max_length=MAX_LEN)
            out.append({"input_ids": enc["input_ids"], "token_type_ids": enc["token_type_ids"], "labels": r["label"]})
        elif task == "pos":
            enc = tok(r["tokens"], is_split_into_words=True, truncation=True, max_length=MAX_LEN)
            labels, previous = [], None
            for word in enc.word_ids():
                # a word's tag is predicted at its first piece; other pieces and specials are not scored
                labels.append(IGNORE_INDEX if word is None or word == previous else r["tags"][word])
                previous = word
            out.append({"input_ids": enc["input_ids"], "token_type_ids": enc["token_type_ids"], "labels": labels})
        elif task == "qa":
            out.append(_encode_qa(r, tok))
        else:
            raise ValueError(f"unknown task {task!r}; known: {(*TASKS, 'dna')}")
    return out


def _encode_qa(r: dict, tok: object) -> dict:
    """Question as segment A, context as B; the answer's characters mapped to its first and last word piece."""
    enc = tok(r["question"], r["context"], truncation=True, max_length=MAX_LEN, return_offsets_mapping=True)
    seq, offsets = enc.sequence_ids(), enc["offset_mapping"]
    a, b = r["answer_start"], r["answer_start"] + len(r["answer_text"])
    context = [i for i, s in enumerate(seq) if s == 1]
    start = next(i for i in context if offsets[i][0] <= a < offsets[i][1])
    end = next(i for i in context if offsets[i][0] < b <= offsets[i][1])
    return {
        "input_ids": enc["input_ids"],
        "token_type_ids": enc["token_type_ids"],
        "start_positions": start,
        "end_positions": end,
    }


def collate(examples: list[dict]) -> dict[str, torch.Tensor]:
    """Pad a list of feature dicts into a batch (per-token labels padded with -100)."""
    ids, mask = pad_sequences([e["input_ids"] for e in examples], 0)
    types, _ = pad_sequences([e["token_type_ids"] for e in examples], 0)
    batch = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
    if "labels" in examples[0] and isinstance(examples[0]["labels"], list):
        batch["labels"] = pad_sequences([e["labels"] for e in examples], IGNORE_INDEX)[0]
    for key in ("labels", "start_positions", "end_positions"):
        if key in examples[0] and key not in batch:
            batch[key] = torch.tensor([e[key] for e in examples])
    return batch


@torch.no_grad()
def accuracy(task: str, model: nn.Module, feats: list[dict], batch_size: int = 64) -> float:
    """Accuracy (classification), token accuracy (pos) or exact span match (qa) on encoded examples."""
    model.eval()
    right = total = 0
    device = next(model.parameters()).device
    for i in range(0, len(feats), batch_size):
        batch = {k: v.to(device) for k, v in collate(feats[i : i + batch_size]).items()}
        out = model(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
        if task == "qa":
            context = (batch["token_type_ids"] == 1) & (batch["attention_mask"] == 1)
            start, end = best_span(out.start_logits, out.end_logits, context)
            right += ((start == batch["start_positions"]) & (end == batch["end_positions"])).sum().item()
            total += len(start)
        elif task == "pos":
            scored = batch["labels"] != IGNORE_INDEX
            right += (out.logits.argmax(-1)[scored] == batch["labels"][scored]).sum().item()
            total += scored.sum().item()
        else:
            right += (out.logits.argmax(-1) == batch["labels"]).sum().item()
            total += len(batch["labels"])
    return right / total


# Dropout while fine-tuning the whole model: BERT's 0.1, the setting every chapter's fine-tuning runs were
# validated with. Pre-training runs without (pretraining.PretrainSettings.dropout); a frozen body has none.
FINETUNE_DROPOUT = 0.1


def finetune_config(config: BertConfig, frozen: bool) -> BertConfig:
    """The body's config for a task model: FINETUNE_DROPOUT when it is fine-tuned, none when frozen."""
    return dataclasses.replace(config, dropout=0.0 if frozen else FINETUNE_DROPOUT)


def head_for(
    task: str,
    body: BertModel | BertForPretraining | None,
    vocab_size: int,
    s: PretrainSettings,
    frozen: bool = False,
) -> nn.Module:
    """The task's head on a copy of `body`, or on a randomly initialised body of the same shape when None.

    With `frozen` the body's parameters get no gradient and its dropout is off: a fixed feature extractor
    under a trainable head (a linear probe, for the classification tasks).
    """
    if task == "qa":
        cls, extra = BertForQuestionAnswering, ()
    elif task == "pos":
        cls, extra = BertForTokenClassification, (NUM_LABELS["pos"],)
    else:
        cls, extra = BertForSequenceClassification, (NUM_LABELS.get(task, 2),)
    source = body.bert if isinstance(body, BertForPretraining) else body
    model = cls(finetune_config(source.config if source is not None else bert_config(vocab_size, s), frozen), *extra)
    if source is not None:
        model.bert.load_state_dict(source.state_dict())
    if frozen:
        freeze(model.bert)
    return model


@dataclass
class FinetuneResult:
    """Validation and test scores, the per-step training loss, and the evaluations along the way."""

    validation: float
    test: float
    loss: list[float] = field(default_factory=list)
    curve: list[dict[str, float]] = field(default_factory=list)  # {"step", "validation"} every eval_every steps


def finetune(
    task: str,
    body: BertModel | BertForPretraining | None,
    data: dict[str, list[dict]],
    *,
    vocab_size: int,
    settings: PretrainSettings,
    seed: int,
    lr: float,
    steps: int,
    batch_size: int = 16,
    frozen: bool = False,
    eval_every: int | None = None,
    device: str = "cpu",
) -> FinetuneResult:
    """Fine-tune a fresh head on `body` (random body when None) with encoded train/validation/test splits.

    With `frozen`, the body is frozen and kept in eval mode (no dropout), so only the head learns: a linear
    probe of the pre-trained features. With `eval_every`, validation accuracy is recorded along the way.
    """
    torch.manual_seed(seed)
    model = head_for(task, body, vocab_size, settings, frozen)
    g = torch.Generator().manual_seed(seed)
    loader = DataLoader(data["train"], batch_size=batch_size, shuffle=True, generator=g, collate_fn=collate)
    cfg = TrainConfig(max_steps=steps, lr=lr, warmup_steps=steps // 10, seed=seed, eval_every=eval_every)
    eval_fn: Callable[[nn.Module], dict[str, float]] | None = None
    if eval_every:
        eval_fn = lambda m: {"validation": accuracy(task, m, data["validation"])}  # noqa: E731
    hist = train(model, loader, cfg, eval_fn=eval_fn, device=device, progress=False)
    return FinetuneResult(
        validation=accuracy(task, model, data["validation"]),
        test=accuracy(task, model, data["test"]),
        loss=[round(x, 4) for x in hist.loss],
        curve=[{"step": e["step"], "validation": e["validation"]} for e in hist.eval] if eval_every else [],
    )


def best_of_lrs(run: Callable[[float], FinetuneResult], lrs: Sequence[float]) -> tuple[float, FinetuneResult]:
    """Run once per learning rate and keep the best on validation (never on test): (lr, result)."""
    runs = {lr: run(lr) for lr in lrs}
    lr = max(runs, key=lambda r: runs[r].validation)
    return lr, runs[lr]
