"""Chapter 4, pre-training an encoder-decoder by corrupting text and reconstructing it (BART, T5).

    from selfsup.experiments import ch4
    r = ch4.noises(seed=0)              one tiny seq2seq per BART noise, equal compute, then closed-book fact QA
    r = ch4.fact_qa(seed=0)             fact QA from random init and after salient-span pre-training
    cases = ch4.reconstructions(seed=0) texts corrupted by a noise and the model pre-trained under it writing back
    rows = ch4.noise_examples(doc)      one document under every noise, as token rows for a figure

The downstream task is closed-book: "where was x born ?" for people that fine-tuning never asks about, so the
answer can come only from what pre-training stored. The pre-training that stores the facts within the book's
minute corrupts one span per sentence that is a name or a place (REALM's salient spans) in BART's form: the span
becomes one [MASK] and the decoder writes the whole sentence back. Random spans stored no facts in that budget in
T5's form (the target is only the spans) and fewer in BART's (benchmarks/results/exploration/ch4.json).
The noises that hide tokens (masking, deletion, infilling, span corruption) make the model predict the hidden
words, birthplaces among them; the noises that only move tokens (sentence permutation, document rotation) show
every word in the input and let the model copy, so they should store no facts. Models are cached per
(noise, seed, settings) (`ch4_seq2seq.toy_seq2seq`).
`noises` is not a registered experiment: five pre-trainings that store facts exceed the minute of the book preset.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field

import torch

from selfsup.data import majority_baseline
from selfsup.experiments import Check, experiment, pick_preset
from selfsup.experiments.ch4_qa import QASettings, answers, finetune_fact_qa, qa_examples
from selfsup.experiments.ch4_seq2seq import (
    BART_NOISES,
    SETTINGS,
    collator,
    new_seq2seq,
    salient_ids,
    toy_seq2seq,
    windows,
)
from selfsup.experiments.zoo import toy_tokenizer, toy_world
from selfsup.masking import salient_spans

LOCAL = ("masking", "deletion", "infilling")  # the model must restore hidden tokens
GLOBAL = ("permutation", "rotation")  # every token is in the input; only the order is changed
ORDER_GAP = 0.1  # how far the mean of LOCAL must beat the mean of GLOBAL (fact-QA exact match)
SCRATCH_SLACK = 0.05  # "about the majority baseline": at most this far above it
PRETRAINED_GAP = 0.1  # "well above": at least this far above the majority
QA_SIZES = (30, 0, 70)  # people asked in fine-tuning / validation / test (disjoint; the world has 100)
FACT_NOISE = "salient"  # random spans stored no facts in the book budget (exploration/ch4.json)
NOISES_CHANGES = {"window": 2, "max_tokens": 32}  # sentence permutation needs sentences to shuffle
QA_SETTINGS = {"tiny": QASettings(steps=5), "book": QASettings(), "full": QASettings(steps=60, lr=1e-4)}


def fact_data(seed: int) -> tuple[dict[str, list[dict]], float]:
    """The birthplace questions of the seed (people disjoint across splits), encoded, and the majority baseline."""
    dd = toy_world().fact_qa(*QA_SIZES, seed=seed)
    tok = toy_tokenizer()
    return {k: qa_examples(dd[k], tok) for k in ("train", "validation", "test")}, majority_baseline(dd)


NOISES_CHECK = Check(
    f"the noises that hide tokens (masking, deletion, infilling) beat those that only reorder them "
    f"(permutation, rotation) by more than {ORDER_GAP} in mean exact match",
    lambda r: r.gap() > ORDER_GAP,
    lambda r: (
        f"{r.local_mean:.3f} vs {r.global_mean:.3f}; " + ", ".join(f"{n} {r.accuracy[n]:.3f}" for n in BART_NOISES)
    ),
)

# The noise comparison ------------------------------------------------------------------------------------------------


@dataclass
class NoisesResult:
    """Per noise: fact-QA exact match on test people, the final pre-training loss, its loss curve; the majority."""

    accuracy: dict[str, float]
    majority: float
    pretrain_loss: dict[str, list[float]]
    seconds: float
    local_mean: float = 0.0
    global_mean: float = 0.0

    def gap(self) -> float:
        """Mean exact match of the noises that hide tokens minus that of the noises that move them."""
        return self.local_mean - self.global_mean


def noises(seed: int = 0, preset: str = "book", device: str = "cpu") -> NoisesResult:
    """Pre-train one model per BART noise (same text, steps, batch and init), fine-tune each on fact QA.

    Not registered as an experiment: at the book preset it pre-trains five models of 1000 steps on windows of
    two sentences (several CPU minutes), and its ordering check (NOISES_CHECK) is not validated over seeds.
    """
    q = pick_preset(QA_SETTINGS, preset)
    t0 = time.perf_counter()
    data, majority = fact_data(seed)
    r = NoisesResult({}, majority, {}, 0.0)
    for noise in BART_NOISES:
        model, info = toy_seq2seq(noise, seed, preset, device, **NOISES_CHANGES)
        r.accuracy[noise], _ = finetune_fact_qa(model, data, toy_tokenizer(), q, seed, device)
        r.pretrain_loss[noise] = info["loss"]
    r.local_mean = statistics.mean(r.accuracy[n] for n in LOCAL)
    r.global_mean = statistics.mean(r.accuracy[n] for n in GLOBAL)
    r.seconds = round(time.perf_counter() - t0, 2)
    return r


# Fact QA: random init against span corruption -----------------------------------------------------------------------


@dataclass
class FactQAResult:
    """Exact match on test people from random init and after pre-training; the majority; fine-tuning losses."""

    scratch: float
    pretrained: float
    majority: float
    seconds: float
    loss: dict[str, list[float]] = field(default_factory=dict)
    examples: list[dict] = field(default_factory=list)  # a few test questions with both models' answers


@experiment(
    "ch4.fact_qa",
    title="Closed-book birthplace QA: random init against span-corruption pre-training (salient spans)",
    paper="CS224n (2021) minGPT assignment: 'where was x born?' scores 1.4% without pre-training (about "
    "always answering the most frequent place) and above 10% after span-corruption pre-training on text "
    "that states the facts; Guu et al. 2020 (REALM) and Roberts et al. 2020 (T5 closed-book QA): masking "
    "salient spans (names, places, dates) stores more facts than random spans",
    checks=[
        Check(
            f"without pre-training, about the majority baseline (at most {SCRATCH_SLACK} above it)",
            lambda r: r.scratch <= r.majority + SCRATCH_SLACK,
            lambda r: f"exact match {r.scratch:.3f} vs majority {r.majority:.3f}",
        ),
        Check(
            f"after span-corruption pre-training (one name or place per sentence) on text that states the "
            f"facts, well above it (by more than {PRETRAINED_GAP})",
            lambda r: r.pretrained - r.majority > PRETRAINED_GAP,
            lambda r: f"exact match {r.pretrained:.3f} vs majority {r.majority:.3f}",
        ),
    ],
    numbers=lambda r: {"scratch": r.scratch, "pretrained": r.pretrained, "majority": r.majority},
)
def fact_qa(seed: int = 0, preset: str = "book", device: str = "cpu") -> FactQAResult:
    """Fine-tune a random-init model and the FACT_NOISE model of the seed on the same birthplace questions."""
    s, q = pick_preset(SETTINGS, preset), pick_preset(QA_SETTINGS, preset)
    tok = toy_tokenizer()
    t0 = time.perf_counter()
    data, majority = fact_data(seed)
    scratch = new_seq2seq(tok, s, seed)
    acc_scratch, loss_scratch = finetune_fact_qa(scratch, data, tok, q, seed, device)
    pretrained, _ = toy_seq2seq(FACT_NOISE, seed, preset, device)
    acc_pre, loss_pre = finetune_fact_qa(pretrained, data, tok, q, seed, device)
    said_scratch = answers(scratch, data["test"][:8], tok)
    said_pre = answers(pretrained, data["test"][:8], tok)
    dd = toy_world().fact_qa(*QA_SIZES, seed=seed)["test"]
    examples = [
        {"question": dd[i]["question"], "answer": dd[i]["answer"], "scratch": a, "pretrained": b}
        for i, (a, b) in enumerate(zip(said_scratch, said_pre, strict=True))
    ]
    return FactQAResult(
        acc_scratch,
        acc_pre,
        majority,
        round(time.perf_counter() - t0, 2),
        {"random init": loss_scratch, FACT_NOISE: loss_pre},
        examples,
    )


# The figure of the noises and the reconstruction demo ------------------------------------------------------------


def noise_examples(sentences: list[str], seed: int = 0) -> dict[str, tuple[list[str], list[str]]]:
    """One window of sentences under each noise: noise -> (input tokens, target tokens), word pieces as text."""
    tok = toy_tokenizer()
    s = SETTINGS["book"].replace(max_tokens=10_000, window=len(sentences))
    example = windows([sentences], tok, s)[0]
    out = {}
    for noise in (*BART_NOISES, "span", "salient"):
        batch = collator(noise, tok, s, torch.Generator().manual_seed(seed))([example])
        src = batch["input_ids"][0][batch["attention_mask"][0] == 1].tolist()
        tgt = [t for t in batch["labels"][0].tolist() if t != -100]
        out[noise] = (_pieces(src), _pieces(tgt))
    return out


def _pieces(ids: list[int]) -> list[str]:
    """Word pieces of ids, with T5's sentinels written <X0>, <X1>, ..."""
    tok = toy_tokenizer()
    n = len(tok)
    return [f"<X{i - n}>" if i >= n else tok.convert_ids_to_tokens(i) for i in ids]


def reconstructions(
    seed: int = 0, preset: str = "book", n: int = 6, noises: tuple[str, ...] = (FACT_NOISE,)
) -> list[dict]:
    """Held-out sentences corrupted by each noise, and what the model pre-trained under that noise writes back.

    `noises` picks the models (each is pre-trained on a cache miss). Each case: noise, the clean text, the
    corrupted input and the model's greedy output (word pieces joined).
    """
    tok = toy_tokenizer()
    s = pick_preset(SETTINGS, preset)
    docs = toy_world().documents(4 * n, seed=10_000 + seed)  # documents no model was pre-trained on
    named = salient_ids(tok)
    cases = []
    for noise in noises:
        model, _ = toy_seq2seq(noise, seed, preset)
        examples = [e for e in windows(docs, tok, s) if salient_spans(e["input_ids"], named)][:n]
        batch = collator(noise, tok, s, torch.Generator().manual_seed(seed))(examples)
        out = model.generate(batch["input_ids"], batch["attention_mask"], max_new_tokens=s.max_tokens + 4)
        for i, ex in enumerate(examples):
            src = batch["input_ids"][i][batch["attention_mask"][i] == 1].tolist()
            cases.append(
                {
                    "noise": noise,
                    "clean": tok.decode(ex["input_ids"]),
                    "corrupted": " ".join(_pieces(src)),
                    "output": " ".join(_pieces([t for t in out[i].tolist() if t != tok.pad_token_id])),
                }
            )
    return cases
