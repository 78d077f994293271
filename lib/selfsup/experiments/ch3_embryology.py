"""Chapter 3's embryology: snapshots of a BERT along its pre-training, each probed with its encoder frozen.

After Chiang et al. (2020), "Pretrained language model embryology": what does the model know at step s?
Three measurements per snapshot, none of which changes the snapshot:
    mlm_loss    the masked-LM loss on held-out documents, with the same masks at every snapshot
    pos         a linear probe (ridge regression onto one-hot tags, closed form) on each word's frozen output
                vector: token accuracy
    sentiment   a linear probe on the mean of a review's frozen output vectors, tested on reviews whose
                adjectives no training review uses (their polarity can only come from pre-training)
A probe is fitted on the task's training split and scored on its test split; a fresh probe per snapshot.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import numpy as np
import torch

from selfsup.bert import BertForPretraining
from selfsup.data.collate import MLMCollator, pad_sequences
from selfsup.experiments.finetuning import encode, sentiment_eval_texts, task_data
from selfsup.experiments.pretraining import PretrainSettings, pack, pretrain_bert
from selfsup.experiments.zoo import toy_tokenizer, toy_world
from selfsup.masking import IGNORE_INDEX

EVAL_SEED = 9300  # held-out documents for the MLM loss: a seed no pre-training corpus uses
PROBES = ("pos", "sentiment")
RIDGE = 1.0  # the probes' L2 penalty on standardised features


def snapshots(settings: PretrainSettings, seed: int, steps: Sequence[int], device: str = "cpu") -> tuple[dict, dict]:
    """Pre-train as `zoo.toy_bert(seed)` does with these settings (same documents, held-out reviews, masking)
    and keep the weights at each of `steps` (0 = the random initialisation): ({step: state_dict}, info)."""
    tw = toy_world()
    docs = tw.documents(settings.n_docs, seed=seed)
    _, info = pretrain_bert(
        docs, toy_tokenizer(), settings, seed, device, sentiment_eval_texts(tw, seed), snapshot_steps=set(steps)
    )
    return info.pop("snapshots"), info


@torch.no_grad()
def _hidden(model: BertForPretraining, feats: Sequence[dict], batch_size: int = 128) -> list[torch.Tensor]:
    """The frozen last-layer states (T_i, C) of each encoded example (padding cut off)."""
    model.eval()
    out = []
    for i in range(0, len(feats), batch_size):
        chunk = feats[i : i + batch_size]
        ids, mask = pad_sequences([f["input_ids"] for f in chunk], 0)
        types, _ = pad_sequences([f["token_type_ids"] for f in chunk], 0)
        h = model.bert(ids, mask, types).last_hidden_state
        out += [h[j, : len(f["input_ids"])] for j, f in enumerate(chunk)]
    return out


def _features(task: str, model: BertForPretraining, feats: Sequence[dict], special: torch.Tensor) -> tuple:
    """(X, y): a row per tagged word (pos) or the mean over a review's non-special tokens (sentiment)."""
    xs, ys = [], []
    for f, h in zip(feats, _hidden(model, feats), strict=True):
        if task == "pos":
            labels = torch.tensor(f["labels"])
            keep = labels != IGNORE_INDEX
            xs.append(h[keep])
            ys.append(labels[keep])
        else:
            keep = ~torch.isin(torch.tensor(f["input_ids"]), special)
            xs.append(h[keep].mean(0, keepdim=True))
            ys.append(torch.tensor([f["labels"]]))
    return torch.cat(xs).numpy(), torch.cat(ys).numpy()


def ridge_probe(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray) -> float:
    """Test accuracy of a linear probe fitted in closed form: ridge regression onto one-hot labels, argmax.

    Features are standardised on the training split, so one penalty (RIDGE per feature) fits every snapshot.
    """
    mean, std = x_train.mean(0), x_train.std(0) + 1e-6
    x_train, x_test = (x_train - mean) / std, (x_test - mean) / std
    x_train = np.hstack([x_train, np.ones((len(x_train), 1))])
    x_test = np.hstack([x_test, np.ones((len(x_test), 1))])
    classes = np.unique(y_train)
    targets = (y_train[:, None] == classes[None, :]).astype(np.float64)
    gram = x_train.T @ x_train + RIDGE * np.eye(x_train.shape[1])
    weights = np.linalg.solve(gram, x_train.T @ targets)
    return float(np.mean(classes[(x_test @ weights).argmax(1)] == y_test))


def probe(task: str, model: BertForPretraining, data: dict[str, list[dict]]) -> float:
    """Test accuracy of a linear probe (`ridge_probe`) on the frozen features of the snapshot."""
    special = torch.tensor(toy_tokenizer().all_special_ids)
    x_train, y_train = _features(task, model, data["train"], special)
    x_test, y_test = _features(task, model, data["test"], special)
    return ridge_probe(x_train.astype(np.float64), y_train, x_test.astype(np.float64), y_test)


def mlm_eval_batches(n_docs: int, seq_len: int, seed: int, batch_size: int = 64) -> list[dict]:
    """Held-out pieces, masked once (the same masks for every snapshot), as batches."""
    tok = toy_tokenizer()
    pieces = pack(toy_world().documents(n_docs, seed=EVAL_SEED + seed), tok, seq_len)
    random.Random(seed).shuffle(pieces)
    collator = MLMCollator(tok, mlm_probability=0.15, generator=torch.Generator().manual_seed(EVAL_SEED + seed))
    return [collator(pieces[i : i + batch_size]) for i in range(0, len(pieces), batch_size)]


@torch.no_grad()
def mlm_loss(model: BertForPretraining, batches: Sequence[dict]) -> float:
    """Mean masked-LM loss over the masked positions of the batches."""
    model.eval()
    total = count = 0.0
    for b in batches:
        n = (b["labels"] != IGNORE_INDEX).sum().item()
        total += model(**b).mlm_loss.item() * n
        count += n
    return total / count


def probe_data(seed: int, sizes: tuple[int, int, int]) -> dict[str, dict[str, list[dict]]]:
    """The probes' encoded splits for the seed (sentiment tested on adjectives no training review uses)."""
    tok = toy_tokenizer()
    out = {}
    for task in PROBES:
        dd = task_data(toy_world(), task, seed, sizes)
        out[task] = {split: encode(task, dd[split], tok) for split in ("train", "test")}
    return out


def majority(data: dict[str, list[dict]]) -> float:
    """The share of the most frequent label of the training split, on the test split (per word for POS)."""

    def labels(split: str) -> list[int]:
        return [y for f in data[split] for y in (f["labels"] if isinstance(f["labels"], list) else [f["labels"]])]

    train = [y for y in labels("train") if y != IGNORE_INDEX]
    test = [y for y in labels("test") if y != IGNORE_INDEX]
    top = max(set(train), key=train.count)
    return test.count(top) / len(test)
