"""Chapter 7's first experiments on the tiny GPT (`ch7_lm`): next-token prediction (接龙) and decoding.

next_token(seed=0)   the shared GPT's held-out loss, a fact it learned, and a greedy 接龙 trace
sampling(seed=0)     greedy, temperature, top-k and top-p decoding of it
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

import torch
from torch import Tensor

from selfsup.experiments import Check, experiment, pick_preset
from selfsup.experiments.ch7_induction import attention_weights
from selfsup.experiments.ch7_lm import (
    EOT_ID,
    PRESETS,
    document_blocks,
    encode,
    gpt_tokenizer,
    tokens,
    toy_gpt,
    toy_world,
)
from selfsup.gpt import GPT

HELD_OUT_DOC_SEED = 1_000  # documents drawn with this seed (+ the model's seed) measure held-out loss


# Measuring it ---------------------------------------------------------------------------------------------------


@torch.no_grad()
def next_token_logits(model: GPT, prompts: list[list[int]], batch_size: int = 256) -> Tensor:
    """Logits (N, V) of the token after each prompt (prompts of any lengths, right-padded)."""
    out = []
    for i in range(0, len(prompts), batch_size):
        chunk = prompts[i : i + batch_size]
        t = max(map(len, chunk))
        ids = torch.full((len(chunk), t), EOT_ID)
        for j, p in enumerate(chunk):
            ids[j, : len(p)] = torch.tensor(p)
        last = torch.tensor([len(p) - 1 for p in chunk])
        logits = model(ids).logits  # causal: padding after a prompt does not change its logits
        out.append(logits[torch.arange(len(chunk)), last])
    return torch.cat(out)


@torch.no_grad()
def heldout_loss(model: GPT, blocks: list[list[int]]) -> float:
    """Mean next-token loss (nats) over blocks of text."""
    ids = torch.tensor(blocks)
    return sum(model(ids[i : i + 64], labels=ids[i : i + 64]).loss.item() for i in range(0, len(ids), 64)) / math.ceil(
        len(ids) / 64
    )


def unigram_loss(train_blocks: list[list[int]], test_blocks: list[list[int]]) -> float:
    """Loss of the best context-free guess: training-text word frequencies (add-one smoothed) on the test text."""
    counts = Counter(t for b in train_blocks for t in b)
    v, total = len(gpt_tokenizer()), sum(counts.values())
    test = [t for b in test_blocks for t in b[1:]]
    return -sum(math.log((counts[t] + 1) / (total + v)) for t in test) / len(test)


@torch.no_grad()
def gpt_attention(model: GPT, input_ids: Tensor) -> Tensor:
    """Every head's causal attention on one sequence (1, T): (layers, heads, T, T), rows summing to 1."""
    t = input_ids.size(1)
    x = model.tok_emb(input_ids) + model.pos_emb(torch.arange(t))  # (1, T, C); eval mode, no dropout
    out = []
    for block in model.layers:
        out.append(attention_weights(block.attn, block.ln1(x))[0])  # pre-LN: attention reads ln1(x)
        x, _ = block(x, is_causal=True)
    return torch.stack(out)


def birthplace_prompts() -> tuple[list[list[int]], list[int]]:
    """ "<|endoftext|> <name> was born in" for every person of the world, and the id of each true city."""
    people = toy_world().world.people
    return [[EOT_ID, *encode(f"{p.name} was born in")] for p in people], [encode(p.born_in)[0] for p in people]


# Experiment: next-token prediction -----------------------------------------------------------------------------


@dataclass
class NextTokenResult:
    """The shared GPT's pre-training and what it learned to predict."""

    loss: list[float]  # training loss per step (the mixture)
    heldout_loss: float  # on ToyWorld documents never trained on
    unigram_loss: float  # the best guess without context
    uniform_loss: float  # ln(vocabulary size): the untrained model
    birthplace_accuracy: float  # greedy next token after "<name> was born in" is the true city
    majority_birthplace: float  # share of the most common birthplace: the best constant answer
    trace_tokens: list[str] = field(default_factory=list)  # 接龙: greedy continuation of "<|endoftext|> <name> was"
    trace_top: list[list[tuple[str, float]]] = field(default_factory=list)  # top-5 next tokens at each step
    train_seconds: float = 0.0
    train_cpu_seconds: float = 0.0


@torch.no_grad()
def jielong_trace(model: GPT, prompt: list[int], steps: int = 12, top: int = 5) -> tuple[list[str], list[list]]:
    """Greedy 接龙 from a prompt: the tokens, and at each step the top next tokens with their probabilities."""
    ids, tops = list(prompt), []
    for _ in range(steps):
        probs = model(torch.tensor([ids])).logits[0, -1].softmax(-1)
        p, i = probs.topk(top)
        tops.append([(t, round(float(q), 4)) for t, q in zip(tokens(i), p, strict=True)])
        ids.append(int(i[0]))
    return tokens(ids), tops


@experiment(
    "ch7.next_token",
    title="A tiny GPT learns to predict the next word of ToyWorld",
    paper="GPT (Radford et al. 2018), GPT-2: a decoder-only LM trained by next-token prediction (接龙)",
    checks=[
        Check(
            "held-out next-token loss is far below the best context-free guess (unigram) ",
            holds=lambda r: r.heldout_loss < r.unigram_loss - 1.0,
            detail=lambda r: (
                f"{r.heldout_loss:.2f} vs unigram {r.unigram_loss:.2f} and uniform {r.uniform_loss:.2f} nats"
            ),
        ),
        Check(
            "it completes '<name> was born in' with the true city far more often than the best constant answer",
            holds=lambda r: r.birthplace_accuracy > 2 * r.majority_birthplace + 0.1,
            detail=lambda r: f"{r.birthplace_accuracy:.2f} vs {r.majority_birthplace:.2f}",
        ),
    ],
    numbers=lambda r: {
        "heldout_loss": r.heldout_loss,
        "unigram_loss": r.unigram_loss,
        "birthplace_accuracy": r.birthplace_accuracy,
        "train_seconds": r.train_seconds,
    },
)
def next_token(seed: int = 0, preset: str = "book", device: str = "cpu") -> NextTokenResult:
    """Pre-train (or load) the shared GPT; measure its held-out loss, a fact it learned, and a 接龙 trace."""
    s = pick_preset(PRESETS, preset)
    model, info = toy_gpt(seed, preset, device)
    test = document_blocks(max(50, s.n_docs // 20), s.seq_len, HELD_OUT_DOC_SEED + seed)
    prompts, cities = birthplace_prompts()
    pred = next_token_logits(model, prompts).argmax(-1)
    born = Counter(p.born_in for p in toy_world().world.people)
    trace, top = jielong_trace(model, prompts[0][:-2])  # "<|endoftext|> <first person> was": a sentence
    return NextTokenResult(
        loss=info["loss"],
        heldout_loss=heldout_loss(model, test),
        unigram_loss=unigram_loss(document_blocks(s.n_docs, s.seq_len, seed), test),
        uniform_loss=math.log(len(gpt_tokenizer())),
        birthplace_accuracy=(pred == torch.tensor(cities)).float().mean().item(),
        majority_birthplace=born.most_common(1)[0][1] / len(prompts),
        trace_tokens=trace,
        trace_top=top,
        train_seconds=info["seconds"],
        train_cpu_seconds=info.get("cpu_seconds", 0.0),
    )


# Experiment: sampling ----------------------------------------------------------------------------------------------

DECODINGS = {  # name -> keyword arguments of GPT.generate
    "greedy": {"temperature": 0.0},
    "T=0.7": {"temperature": 0.7},
    "T=1.0": {"temperature": 1.0},
    "T=1.5": {"temperature": 1.5},
    "top-k 5": {"temperature": 1.0, "top_k": 5},
    "top-p 0.8": {"temperature": 1.0, "top_p": 0.8},
}


@dataclass
class SamplingResult:
    """Per decoding: how often a sampled birthplace is true, how varied the texts are, and example texts."""

    birthplace_accuracy: dict[str, float]  # the sampled word after "<name> was born in" is the true city
    distinct_bigrams: dict[str, float]  # distinct word pairs / all word pairs, over the continuations
    samples: dict[str, list[str]]  # a few continuations of "<name> was born in" per decoding


def distinct_bigrams(texts: list[list[int]]) -> float:
    """Distinct adjacent pairs over all adjacent pairs, pooled over texts (1 = never a repeated pair)."""
    pairs = [(a, b) for t in texts for a, b in zip(t, t[1:], strict=False)]
    return len(set(pairs)) / max(1, len(pairs))


@experiment(
    "ch7.sampling",
    title="Greedy, temperature, top-k and top-p decoding of the tiny GPT",
    paper="Holtzman et al. 2020 (nucleus sampling); GPT-2's samples use top-k 40",
    checks=[
        Check(
            "a higher temperature states fewer true facts (birthplace sampled at T=0.7 vs T=1.5)",
            holds=lambda r: r.birthplace_accuracy["T=0.7"] > r.birthplace_accuracy["T=1.5"],
            detail=lambda r: (
                f"T=0.7 {r.birthplace_accuracy['T=0.7']:.2f} vs T=1.5 {r.birthplace_accuracy['T=1.5']:.2f}"
            ),
        ),
        Check(
            "a higher temperature gives more varied text (distinct word pairs, T=0.7 vs T=1.5)",
            holds=lambda r: r.distinct_bigrams["T=1.5"] > r.distinct_bigrams["T=0.7"],
            detail=lambda r: f"T=0.7 {r.distinct_bigrams['T=0.7']:.2f} vs T=1.5 {r.distinct_bigrams['T=1.5']:.2f}",
        ),
        Check(
            "top-p 0.8 cuts the unlikely tail: truer than plain sampling at T=1",
            holds=lambda r: r.birthplace_accuracy["top-p 0.8"] > r.birthplace_accuracy["T=1.0"],
            detail=lambda r: f"{r.birthplace_accuracy['top-p 0.8']:.2f} vs {r.birthplace_accuracy['T=1.0']:.2f}",
        ),
    ],
    numbers=lambda r: {
        **{f"birthplace {k}": v for k, v in r.birthplace_accuracy.items()},
        **{f"distinct2 {k}": v for k, v in r.distinct_bigrams.items()},
    },
)
def sampling(seed: int = 0, preset: str = "book", device: str = "cpu") -> SamplingResult:
    """Sample from the shared GPT under each decoding (one seeded generator per decoding)."""
    model, _ = toy_gpt(seed, preset, device)
    prompts, cities = birthplace_prompts()
    facts = torch.tensor(prompts)  # every prompt has the same length (names are two words)
    repeats = 5
    acc, distinct, samples = {}, {}, {}
    for name, kwargs in DECODINGS.items():
        g = torch.Generator().manual_seed(seed)
        born = model.generate(facts.repeat(repeats, 1), 1, generator=g, **kwargs)[:, -1]
        acc[name] = (born == torch.tensor(cities).repeat(repeats)).float().mean().item()
        # 20 more words after the fact prompt (in the style of a document, not of an ICL prompt)
        texts = model.generate(facts, 20, generator=g, **kwargs)[:, 1:]
        distinct[name] = distinct_bigrams(texts[:, facts.size(1) - 1 :].tolist())
        samples[name] = [" ".join(tokens(t)) for t in texts[:4]]
    return SamplingResult(acc, distinct, samples)
