"""Chapter 1, BERT pre-training: what the masked positions are replaced with, and next-sentence prediction.

    from selfsup.experiments import ch1
    r = ch1.mlm_mix(seed=0)   80/10/10 against 100 % [MASK]: visible tokens, frozen and fine-tuned POS tagging
    r = ch1.nsp(seed=0)       MLM with and without NSP: NSP on held-out and on swapped pairs; NLI fine-tuning

Both pre-train their models with `zoo.toy_bert` at a shorter setting than the chapter's shared model (300
steps instead of 1200 at the book preset), so that two pre-trainings and the evaluations fit in a minute; the
models land in the cache like every other.
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from selfsup.bert import BertForPretraining
from selfsup.data.collate import pad_sequences
from selfsup.experiments import Check, experiment, pick_preset
from selfsup.experiments.finetuning import encode, finetune, task_data
from selfsup.experiments.pretraining import pack
from selfsup.experiments.zoo import bert_preset, toy_bert, toy_tokenizer, toy_world

EVAL_SEED = 9100  # held-out text for measurements: a seed no pre-training corpus uses


@dataclass(frozen=True)
class Ch1Settings:
    """Which shared pre-training preset, and the downstream runs (labelled sizes, steps, learning rates)."""

    pretrain: str  # a preset of zoo.BERT_PRESETS
    changes: tuple[tuple[str, object], ...] = ()  # pre-training settings changed from that preset
    sizes: tuple[int, int, int] = (500, 200, 500)
    pos_steps: int = 150
    probe_lr: float = 3e-3
    finetune_lr: float = 1e-3
    nli_steps: int = 300
    eval_sentences: int = 400
    eval_docs: int = 300


PRESETS = {
    "tiny": Ch1Settings("tiny", sizes=(64, 32, 32), pos_steps=5, nli_steps=5, eval_sentences=20, eval_docs=20),
    "book": Ch1Settings("book", changes=(("steps", 300), ("n_docs", 3000))),
    "full": Ch1Settings("full", sizes=(2000, 500, 1000), pos_steps=600, nli_steps=2000),
}

MIXES = {  # of the chosen 15-25 % of positions: share replaced by [MASK], share by a random token (rest kept)
    "80/10/10": {"mask_ratio": 0.8, "random_ratio": 0.1},
    "100% [MASK]": {"mask_ratio": 1.0, "random_ratio": 0.0},
}


# ---------------------------------------------------------------------------------------------------------
# Measurements


@torch.no_grad()
def visible_identity(model: BertForPretraining, tok: object, sentences: Sequence[str], batch_size: int = 64) -> float:
    """How often the MLM head, given a sentence with nothing masked, predicts each (non-special) input token.

    A model trained with 10 % unchanged positions is asked to reproduce tokens it can see; one that only ever
    saw [MASK] at a scored position is never trained on the output of a visible token.
    """
    model.eval()
    right = total = 0
    for i in range(0, len(sentences), batch_size):
        ids, mask = pad_sequences([tok(s)["input_ids"] for s in sentences[i : i + batch_size]], tok.pad_token_id)
        logits = model(input_ids=ids, attention_mask=mask).logits  # (B, T, V)
        real = mask.bool() & ~torch.isin(ids, torch.tensor(tok.all_special_ids))
        right += (logits.argmax(-1)[real] == ids[real]).sum().item()
        total += real.sum().item()
    return right / total


def sentence_pairs(docs: list[list[str]], tok: object, seq_len: int, seed: int) -> dict[str, list[dict]]:
    """Held-out pairs, laid out as in pre-training: NSP pairs (half with a random B) and order pairs.

    "nsp": `pack`'s pairs with next_sentence_label (0 = B follows A, 1 = B from elsewhere). "order": the pieces
    with both halves, each once in order (label 0) and once swapped, `[CLS] B [SEP] A [SEP]` (label 1): the
    same two texts, so topic cannot tell them apart (ALBERT's sentence-order prediction).
    """
    nsp = [e for e in pack(docs, tok, seq_len, random.Random(seed)) if 1 in e["token_type_ids"]]
    order = []
    for e in pack(docs, tok, seq_len):
        n_a = e["token_type_ids"].count(0)
        a, b = e["input_ids"][1 : n_a - 1], e["input_ids"][n_a:-1]
        if not b:
            continue
        for label, (x, y) in enumerate([(a, b), (b, a)]):
            first, second = [tok.cls_token_id, *x, tok.sep_token_id], [*y, tok.sep_token_id]
            order.append(
                {
                    "input_ids": first + second,
                    "token_type_ids": [0] * len(first) + [1] * len(second),
                    "next_sentence_label": label,
                }
            )
    return {"nsp": nsp, "order": order}


@torch.no_grad()
def nsp_predictions(model: BertForPretraining, pairs: Sequence[dict], batch_size: int = 64) -> torch.Tensor:
    """The NSP head's predicted label (0 = IsNext, 1 = NotNext) for each pair."""
    model.eval()
    out = []
    for i in range(0, len(pairs), batch_size):
        chunk = pairs[i : i + batch_size]
        ids, mask = pad_sequences([e["input_ids"] for e in chunk], 0)
        types, _ = pad_sequences([e["token_type_ids"] for e in chunk], 0)
        out.append(model(input_ids=ids, attention_mask=mask, token_type_ids=types).nsp_logits.argmax(-1))
    return torch.cat(out)


def _labels(pairs: Sequence[dict]) -> torch.Tensor:
    return torch.tensor([e["next_sentence_label"] for e in pairs])


def _downstream(task: str, model: BertForPretraining, seed: int, c: Ch1Settings, frozen: bool, steps: int) -> float:
    """Test score of one fine-tuning run of `task` on `model` (the body frozen, or all of it trained)."""
    tok = toy_tokenizer()
    dd = task_data(toy_world(), task, seed, c.sizes)
    data = {split: encode(task, dd[split], tok) for split in ("train", "validation", "test")}
    lr = c.probe_lr if frozen else c.finetune_lr
    s = bert_preset(c.pretrain).replace(**dict(c.changes))
    return finetune(
        task, model, data, vocab_size=len(tok), settings=s, seed=seed, lr=lr, steps=steps, frozen=frozen
    ).test


# ---------------------------------------------------------------------------------------------------------
# 80/10/10 against 100 % [MASK]

# The seed-to-seed spread of fine-tuned POS accuracy at the book preset: the larger range (max - min over
# seeds 0-4) of the two mixes, 0.0039, rounded up (benchmarks/results/exploration/ch1.json). A difference
# between the mixes within it is no larger than what changing the seed does.
POS_NOISE_BAND = 0.004


@dataclass
class MixResult:
    """Per mix: MLM loss at the end of pre-training, identity at visible tokens, frozen and fine-tuned POS."""

    seed: int
    preset: str
    mlm_loss: dict[str, float] = field(default_factory=dict)
    identity: dict[str, float] = field(default_factory=dict)
    probe: dict[str, float] = field(default_factory=dict)
    finetuned: dict[str, float] = field(default_factory=dict)
    loss_curves: dict[str, list[float]] = field(default_factory=dict)
    seconds: float = 0.0
    noise_band: float = POS_NOISE_BAND


def _mix_numbers(r: MixResult) -> dict[str, float]:
    out = {}
    for key, name in (("identity", "visible identity"), ("probe", "frozen POS"), ("finetuned", "fine-tuned POS")):
        for mix, v in getattr(r, key).items():
            out[f"{name}, {mix}"] = v
    return out


def _gap(r: MixResult, key: str) -> float:
    values = getattr(r, key)
    return values["80/10/10"] - values["100% [MASK]"]


@experiment(
    "ch1.mlm_mix",
    title="MLM replacement mix: 80/10/10 against 100% [MASK]",
    paper=(
        "Devlin et al. 2019, Table 8: fine-tuning barely depends on the mix (MNLI dev 84.2 with 80/10/10, "
        "84.3 with 100% [MASK]), while frozen features for NER drop (94.9 to 94.0 dev F1)"
    ),
    checks=[
        Check(
            "the 100%-[MASK] model has not learned to reproduce the tokens it sees (identity lower by > 0.2)",
            lambda r: _gap(r, "identity") > 0.2,
            lambda r: " vs ".join(f"{m} {v:.3f}" for m, v in r.identity.items()),
        ),
        Check(
            "a frozen linear POS tagger does worse on the 100%-[MASK] model's features (by > 0.02)",
            lambda r: _gap(r, "probe") > 0.02,
            lambda r: " vs ".join(f"{m} {v:.3f}" for m, v in r.probe.items()),
        ),
        Check(
            "fine-tuned POS accuracy of the two mixes is within the seed noise band",
            lambda r: abs(_gap(r, "finetuned")) <= r.noise_band,
            lambda r: " vs ".join(f"{m} {v:.3f}" for m, v in r.finetuned.items()) + f", band {r.noise_band}",
        ),
    ],
    numbers=_mix_numbers,
)
def mlm_mix(seed: int = 0, preset: str = "book", device: str = "cpu") -> MixResult:
    """Pre-train with each mix; measure visible-token identity, a frozen POS probe, and POS fine-tuning."""
    c = pick_preset(PRESETS, preset)
    t0 = time.perf_counter()
    tok = toy_tokenizer()
    sentences = toy_world().sentences(c.eval_sentences, seed=EVAL_SEED)
    r = MixResult(seed=seed, preset=preset)
    for mix, changes in MIXES.items():
        model, info = toy_bert(seed, c.pretrain, device, **dict(c.changes), **changes)
        r.mlm_loss[mix] = info["mlm_loss_last"]
        r.loss_curves[mix] = info["loss"]
        r.identity[mix] = visible_identity(model, tok, sentences)
        r.probe[mix] = _downstream("pos", model, seed, c, frozen=True, steps=c.pos_steps)
        r.finetuned[mix] = _downstream("pos", model, seed, c, frozen=False, steps=c.pos_steps)
    r.seconds = time.perf_counter() - t0
    return r


# ---------------------------------------------------------------------------------------------------------
# NSP on and off

# The seed-to-seed spread of fine-tuned NLI accuracy at the book preset: the larger range (max - min over seeds
# 0-4) of the two models, 0.196, rounded up (benchmarks/results/exploration/ch1.json; with the length-matched
# NSP pairs and length-grouped batches of 2026-12-03 the ranges are 0.226 and 0.204, and the band was kept).
# NLI after 300 steps of pre-training and 300 of fine-tuning varies a lot from seed to seed; a difference
# within it says nothing.
NLI_NOISE_BAND = 0.2


@dataclass
class NspResult:
    """NSP head on held-out NSP pairs and on order pairs; NLI fine-tuned from MLM+NSP and from MLM only."""

    seed: int
    preset: str
    nsp_accuracy: float = 0.0  # the NSP-trained head on held-out NSP pairs (balanced)
    order_accuracy: float = 0.0  # the same head on order pairs: in order = IsNext, swapped = NotNext (balanced)
    swapped_called_next: float = 0.0  # share of swapped pairs the head calls IsNext
    nli: dict[str, float] = field(default_factory=dict)
    mlm_loss: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    noise_band: float = NLI_NOISE_BAND


def _nsp_numbers(r: NspResult) -> dict[str, float]:
    out = {
        "NSP accuracy": r.nsp_accuracy,
        "order accuracy": r.order_accuracy,
        "swapped called IsNext": r.swapped_called_next,
    }
    out.update({f"NLI, {k}": v for k, v in r.nli.items()})
    out.update({f"MLM loss, {k}": v for k, v in r.mlm_loss.items()})
    return out


@experiment(
    "ch1.nsp",
    title="Next-sentence prediction on and off",
    paper=(
        "Devlin et al. 2019, Table 5: without NSP, QNLI 84.9 vs 88.4 and MNLI 83.9 vs 84.4; Liu et al. 2019 "
        "(RoBERTa), Table 2: without NSP, MNLI 84.7 vs 84.0; Lan et al. 2020 (ALBERT), Table 5: an NSP-trained "
        "model scores 90.5 on NSP but 52.0 on sentence order"
    ),
    checks=[
        # With a random B cut to fit, a pair's length gave its label away and the head scored 0.61-0.67;
        # with the NotNext B as long as the real one (pretraining.pack), only content is left, and 300 steps
        # of a tiny model do not learn it. The check states that finding at this scale.
        Check(
            "with lengths matched, the NSP head does not tell a real next text from a random one "
            "(balanced accuracy < 0.55)",
            lambda r: r.nsp_accuracy < 0.55,
            lambda r: f"{r.nsp_accuracy:.3f}; order pairs {r.order_accuracy:.3f}",
        ),
        Check(
            "at equal steps, the MLM loss is higher with NSP than without (by > 0.2 nats)",
            lambda r: r.mlm_loss["with NSP"] - r.mlm_loss["without NSP"] > 0.2,
            lambda r: " vs ".join(f"{m} {v:.2f}" for m, v in r.mlm_loss.items()),
        ),
        Check(
            "NLI fine-tuned with and without NSP pre-training is within the seed noise band",
            lambda r: abs(r.nli["with NSP"] - r.nli["without NSP"]) <= r.noise_band,
            lambda r: " vs ".join(f"{m} {v:.3f}" for m, v in r.nli.items()) + f", band {r.noise_band}",
        ),
    ],
    numbers=_nsp_numbers,
)
def nsp(seed: int = 0, preset: str = "book", device: str = "cpu") -> NspResult:
    """Pre-train with MLM + NSP and with MLM only; probe the NSP head; fine-tune NLI from both."""
    c = pick_preset(PRESETS, preset)
    t0 = time.perf_counter()
    tok = toy_tokenizer()
    r = NspResult(seed=seed, preset=preset)
    docs = toy_world().documents(c.eval_docs, seed=EVAL_SEED + seed)
    pairs = sentence_pairs(docs, tok, bert_preset(c.pretrain).replace(**dict(c.changes)).seq_len, seed)
    for name, on in (("with NSP", True), ("without NSP", False)):
        model, info = toy_bert(seed, c.pretrain, device, **dict(c.changes), nsp=on)
        r.mlm_loss[name] = info["mlm_loss_last"]
        if on:
            pred = nsp_predictions(model, pairs["nsp"])
            gold = _labels(pairs["nsp"])
            r.nsp_accuracy = _balanced(pred, gold)
            pred, gold = nsp_predictions(model, pairs["order"]), _labels(pairs["order"])
            r.order_accuracy = _balanced(pred, gold)
            r.swapped_called_next = (pred[gold == 1] == 0).float().mean().item()
        r.nli[name] = _downstream("nli", model, seed, c, frozen=False, steps=c.nli_steps)
    r.seconds = time.perf_counter() - t0
    return r


def _balanced(pred: torch.Tensor, gold: torch.Tensor) -> float:
    """Mean of the per-class accuracies (chance is 0.5 whatever the class balance)."""
    return sum((pred[gold == k] == k).float().mean().item() for k in (0, 1)) / 2


__all__ = ["MIXES", "PRESETS", "mlm_mix", "nsp", "nsp_predictions", "sentence_pairs", "visible_identity"]
