"""Chapter 7's tiny GPT and what it is trained on: ToyWorld text mixed with in-context-learning prompts.

The model is GPT-2's shape (`selfsup.gpt.GPT`), pre-trained for about two minutes of CPU time on a mixture of
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
    model, info = toy_gpt(seed=0)            the chapter's shared GPT (cached; about 2 CPU-minutes to train)

Only what makes the model lives here: the cache key covers this module's source, so the experiments that
measure the model (ch7_gpt, ch7_icl) can change without retraining it.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import random
import statistics
import time
from dataclasses import dataclass

import torch
from tokenizers import Regex, Tokenizer, models, pre_tokenizers
from torch import Tensor
from transformers import PreTrainedTokenizerFast

from selfsup.data import icl_prompts
from selfsup.data.world import World
from selfsup.experiments import pick_preset
from selfsup.experiments.cache import cached_model
from selfsup.experiments.world import toy_world
from selfsup.gpt import GPT, GPTConfig
from selfsup.train import TrainConfig, train

EOT, ARROW, NEWLINE = "<|endoftext|>", "->", "\n"
EOT_ID = 0
RELATIONS = ("born_in", "lives_in", "works_for", "job")


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
    return cached_model("toy-gpt", {"seed": seed, "settings": s}, lambda: pretrain_gpt(s, seed, device))
