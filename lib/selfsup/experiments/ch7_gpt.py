"""Chapter 7's tiny GPT: next-token prediction (接龙) on ToyWorld text mixed with in-context-learning prompts.

The model is GPT-2's shape (`selfsup.gpt.GPT`), pre-trained for about a minute on a mixture of
- ToyWorld documents, documents joined by `<|endoftext|>` and cut into blocks of `seq_len` tokens, and
- ICL-format prompts (`selfsup.data.icl`): "x -> y" lines, then "query -> answer". The "relation" prompts ask
  a person's birthplace, home, employer or job (the relation is drawn per prompt and never named: only the
  examples show it); they use only every other person of the world ("even"), so that the other half
  ("odd") can test whether the model answers from what it read in sentences. The "mapping" prompts pair
  words by a random one-to-one map drawn for each prompt.

Tokens are words: ToyWorld is a closed language of 431 words, so a word-level vocabulary (plus "->", the
newline, the numbers 0-199 and `<|endoftext|>`: 634 tokens) makes every word one token, every answer one
token, and the 接龙 game visible word by word. It is built deterministically (sorted), in well under a second.

    tok = gpt_tokenizer()
    model, info = toy_gpt(seed=0)            the chapter's shared GPT (cached; about a minute to train)
    next_token(seed=0), sampling(seed=0)     the experiments of this module (see `ch7`)
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import math
import random
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field

import torch
from tokenizers import Regex, Tokenizer, models, pre_tokenizers
from torch import Tensor
from transformers import PreTrainedTokenizerFast

from selfsup.data import icl_prompts
from selfsup.data.world import World
from selfsup.experiments import Check, experiment, pick_preset
from selfsup.experiments.cache import cached_model
from selfsup.experiments.zoo import toy_world
from selfsup.gpt import GPT, GPTConfig
from selfsup.train import TrainConfig, train

EOT, ARROW, NEWLINE = "<|endoftext|>", "->", "\n"
EOT_ID = 0
RELATIONS = ("born_in", "lives_in", "works_for", "job")
# The code whose change retrains the model: the ToyWorld modules its text and prompts come from (listed one by
# one, so that an edit to an unrelated generator, speech or DNA, keeps the cached model), the model, the loop.
CODE = (
    *(f"selfsup.data.{m}" for m in ("chinese", "grammar", "icl", "language", "templates", "toyworld", "world")),
    "selfsup.experiments.zoo",
    "selfsup.layers",
    "selfsup.gpt",
    "selfsup.train",
    "selfsup.experiments.ch7_gpt",
)
HELD_OUT_DOC_SEED = 1_000  # documents drawn with this seed (+ the model's seed) measure held-out loss


@functools.cache
def gpt_tokenizer() -> PreTrainedTokenizerFast:
    """One token per ToyWorld word, plus "->", the newline and the numbers 0-199; the same in every process."""
    words = {w for s in toy_world().sentences(30000) for w in s.split()}
    words |= {str(i) for i in range(200)} | {ARROW}
    vocab = {EOT: EOT_ID, NEWLINE: 1}
    for w in sorted(words):
        vocab[w] = len(vocab)
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token=EOT))
    # A newline is a token of its own (ICL prompts are lines); any other whitespace only separates words.
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(NEWLINE, behavior="isolated"),
            pre_tokenizers.Split(Regex(r"[^\S\n]+"), behavior="removed"),
        ]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=EOT, eos_token=EOT, unk_token=EOT, pad_token=EOT, model_max_length=512
    )


def encode(text: str) -> list[int]:
    """Token ids of a text, nothing added."""
    return gpt_tokenizer()(text, add_special_tokens=False)["input_ids"]


def tokens(ids: list[int] | Tensor) -> list[str]:
    """The token strings of ids (the newline shown as "\\n")."""
    ids = ids.tolist() if isinstance(ids, Tensor) else ids
    return [t.replace(NEWLINE, "\\n") for t in gpt_tokenizer().convert_ids_to_tokens(ids)]


# ICL prompts ---------------------------------------------------------------------------------------------------


@functools.cache
def people_world(part: str) -> World:
    """The course's world with all its people ("all"), or only every other one ("even" or "odd")."""
    world = toy_world().world
    if part == "all":
        return world
    if part not in ("even", "odd"):
        raise ValueError(f"part must be 'all', 'even' or 'odd', got {part!r}")
    sub = copy.copy(world)
    sub.people = world.people[part == "odd" :: 2]
    sub.by_name = {p.name: p for p in sub.people}
    return sub


def icl_item(
    family: str, rng: random.Random, k: int, relation: str = "born_in", people: str = "all"
) -> tuple[str, str]:
    """(prompt, answer) of one prompt of `family` with k examples, drawn from rng (see selfsup.data.icl)."""
    p = icl_prompts(family, 1, k, seed=rng.randrange(2**31), world=people_world(people), relation=relation)[0]
    return p.text, p.answer


# Pre-training ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GPTSettings:
    """The tiny GPT and its pre-training mixture (defaults: the book's minute on two CPU cores)."""

    d_model: int = 64
    n_layers: int = 2
    n_heads: int = 4
    seq_len: int = 64
    batch_size: int = 32
    steps: int = 2000
    lr: float = 3e-3
    n_docs: int = 6000
    icl_share: float = 0.5  # of the training blocks, blocks of ICL prompts (the rest ToyWorld documents)
    icl_families: tuple[str, ...] = ("mapping", "relation")
    max_shots: int = 8
    relation_people: str = "even"  # whose facts the relation prompts of the mixture use

    def replace(self, **changes: object) -> GPTSettings:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)


PRESETS = {
    "tiny": GPTSettings(d_model=32, steps=30, n_docs=300, batch_size=16),
    "book": GPTSettings(),
    "full": GPTSettings(d_model=256, n_layers=4, n_heads=8, seq_len=128, steps=20000, n_docs=30000, lr=1e-3),
}


def document_blocks(n_docs: int, seq_len: int, seed: int) -> list[list[int]]:
    """ToyWorld documents, each opened by <|endoftext|>, concatenated and cut into blocks of seq_len tokens."""
    stream: list[int] = []
    for doc in toy_world().documents(n_docs, seed=seed):
        stream += [EOT_ID, *encode(" ".join(doc))]
    return [stream[i : i + seq_len] for i in range(0, len(stream) - seq_len + 1, seq_len)]


def mixture(s: GPTSettings, seed: int) -> list[list[int]]:
    """The training blocks: documents and blocks of ICL prompts (each opened by <|endoftext|>), shuffled."""
    blocks = document_blocks(s.n_docs, s.seq_len, seed)
    n_icl = round(len(blocks) * s.icl_share / (1 - s.icl_share))
    rng = random.Random(f"ch7-mixture-{seed}")
    for _ in range(n_icl):
        ids: list[int] = []
        while len(ids) < s.seq_len:
            family = rng.choice(s.icl_families)
            k = rng.randint(1 if family == "mapping" else 0, s.max_shots)
            text, answer = icl_item(family, rng, k, rng.choice(RELATIONS), s.relation_people)
            ids += [EOT_ID, *encode(f"{text} {answer}\n")]
        blocks.append(ids[: s.seq_len])
    rng.shuffle(blocks)
    return blocks


def gpt_config(s: GPTSettings) -> GPTConfig:
    """The GPT of these settings (no dropout: a minute of training on fresh data does not overfit)."""
    return GPTConfig(
        vocab_size=len(gpt_tokenizer()),
        d_model=s.d_model,
        n_heads=s.n_heads,
        n_layers=s.n_layers,
        max_len=max(s.seq_len, 128),
        dropout=0.0,
    )


def pretrain_gpt(s: GPTSettings, seed: int, device: str = "cpu") -> tuple[GPT, dict]:
    """Next-token prediction on the mixture; returns the model and its loss history, seconds and CPU seconds."""
    torch.manual_seed(seed)
    blocks = torch.tensor(mixture(s, seed))  # (N, seq_len)
    g = torch.Generator().manual_seed(seed)
    batches = [
        {"input_ids": blocks[i], "labels": blocks[i]}
        for i in torch.randperm(len(blocks), generator=g).split(s.batch_size)
        if len(i) == s.batch_size
    ]
    model = GPT(gpt_config(s))
    t0, c0 = time.perf_counter(), time.process_time()
    cfg = TrainConfig(max_steps=s.steps, lr=s.lr, betas=(0.9, 0.99), warmup_steps=s.steps // 10, seed=seed)
    hist = train(model, batches, cfg, device=device, progress=False)
    info = {
        "loss": [round(x, 4) for x in hist.loss],
        "loss_last": statistics.mean(hist.loss[-20:]),
        "seconds": time.perf_counter() - t0,
        "cpu_seconds": time.process_time() - c0,
        "blocks": len(blocks),
    }
    return model.cpu().eval(), info


def toy_gpt(seed: int = 0, preset: str = "book", device: str = "cpu", **changes: object) -> tuple[GPT, dict]:
    """The chapter's tiny GPT for (seed, preset, changes), from the cache or trained now (returned on the CPU)."""
    s = pick_preset(PRESETS, preset).replace(**changes)
    return cached_model("toy-gpt", {"seed": seed, "settings": s}, lambda: pretrain_gpt(s, seed, device), CODE)


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
    trace_tokens: list[str] = field(default_factory=list)  # 接龙: the greedy continuation of <|endoftext|>
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
    trace, top = jielong_trace(model, [EOT_ID])
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
    samples: dict[str, list[str]]  # a few continuations of "<|endoftext|> <name>" per decoding


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
            detail=lambda r: f"{r.birthplace_accuracy['T=0.7']:.2f} vs {r.birthplace_accuracy['T=1.5']:.2f}",
        ),
        Check(
            "a higher temperature gives more varied text (distinct word pairs, T=0.7 vs T=1.5)",
            holds=lambda r: r.distinct_bigrams["T=1.5"] > r.distinct_bigrams["T=0.7"],
            detail=lambda r: f"{r.distinct_bigrams['T=1.5']:.2f} vs {r.distinct_bigrams['T=0.7']:.2f}",
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
    names = facts[:, :3]  # "<|endoftext|> first last"
    repeats = 5
    acc, distinct, samples = {}, {}, {}
    for name, kwargs in DECODINGS.items():
        g = torch.Generator().manual_seed(seed)
        born = model.generate(facts.repeat(repeats, 1), 1, generator=g, **kwargs)[:, -1]
        acc[name] = (born == torch.tensor(cities).repeat(repeats)).float().mean().item()
        texts = model.generate(names, 20, generator=g, **kwargs)[:, 1:]
        distinct[name] = distinct_bigrams(texts[:, 2:].tolist())
        samples[name] = [" ".join(tokens(t)) for t in texts[:4]]
    return SamplingResult(acc, distinct, samples)
