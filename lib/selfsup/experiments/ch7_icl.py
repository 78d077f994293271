"""In-context learning with the chapter's tiny GPT: accuracy against the number of shots, weights untouched.

A prompt is k examples of a hidden rule as "x -> y" lines, then "query ->" (`selfsup.data.icl`); the model's
answer is its most likely next word, scored by exact match. Nothing is trained while it answers: a sha256
of the weights before and after every prompt is the same (in-context learning 本身没有learning). Beside it,
fine-tuning on the same k examples: a copy of the model takes k gradient steps on the k example lines, then
answers the query with no examples in its context.

Families measured:
- "relation": the examples are people and their birthplace, home, employer or job (one relation per prompt,
  never named). Zero-shot, "omar lopez ->" does not say which fact is asked; the examples do. The facts
  themselves were learned in pre-training. "Seen" people had relation prompts in the pre-training mixture;
  "unseen" people (the other half of the world) never did: their facts were only read in sentences.
- "mapping": a random one-to-one map between words, drawn for each prompt, so no rule can be remembered;
  the query is one of the examples (k >= 1), so the answer must be found in the context.
"""

from __future__ import annotations

import copy
import hashlib
import random
from dataclasses import dataclass, field

import torch

from selfsup.experiments import Check, experiment, pick_preset
from selfsup.experiments.ch7_gpt import next_token_logits
from selfsup.experiments.ch7_lm import (
    EOT_ID,
    RELATIONS,
    encode,
    icl_item,
    toy_gpt,
)
from selfsup.gpt import GPT

SHOTS = (0, 1, 2, 4, 8)
# A difference of accuracies that is not noise: about three standard errors of the difference of two shares
# measured on 400 prompts each (the book preset's prompts per point), or of paired ones on 320 prompts.
MARGIN = 0.1


@dataclass(frozen=True)
class ICLSettings:
    """How many prompts are scored, and the fine-tuning baseline's budget."""

    n_prompts: int = 100  # per relation, number of shots and group of people
    n_mapping: int = 200  # per number of shots
    n_finetune: int = 20  # per relation and number of shots, the first prompts of the seen group
    n_lr_search: int = 10  # per relation, validation prompts (4 shots) to pick the fine-tuning learning rate
    lrs: tuple[float, ...] = (1e-3, 3e-3, 1e-2, 3e-2)


PRESETS = {
    "tiny": ICLSettings(n_prompts=4, n_mapping=8, n_finetune=2, n_lr_search=1, lrs=(1e-3, 1e-2)),
    "book": ICLSettings(),
    "full": ICLSettings(n_prompts=500, n_mapping=1000, n_finetune=100, n_lr_search=50),
}


@dataclass
class Item:
    """One scored prompt: its examples, query and answer (as text), and its relation ("" for mapping)."""

    examples: list[tuple[str, str]]
    query: str
    answer: str
    relation: str = ""

    @property
    def text(self) -> str:
        """The prompt as the model reads it."""
        return "".join(f"{x} -> {y}\n" for x, y in self.examples) + f"{self.query} ->"


def make_items(family: str, k: int, n: int, people: str, tag: str) -> list[Item]:
    """n prompts of k examples (for "relation", n per relation), drawn from `tag` (never the mixture's seeds)."""
    out = []
    for relation in RELATIONS if family == "relation" else ("",):
        rng = random.Random(f"ch7-eval-{tag}-{family}-{relation}-{people}-{k}")
        for _ in range(n):
            text, answer = icl_item(family, rng, k, relation or "born_in", people)
            lines = text.split("\n")
            examples = [tuple(line.split(" -> ")) for line in lines[:-1]]
            out.append(Item(examples, lines[-1].removesuffix(" ->"), answer, relation))
    return out


def answer_id(item: Item) -> int:
    """The answer's token id (every answer of these families is one word, hence one token)."""
    (i,) = encode(item.answer)
    return i


def accuracy(model: GPT, items: list[Item]) -> float:
    """Share of prompts whose most likely next token is the answer."""
    pred = next_token_logits(model, [[EOT_ID, *encode(it.text)] for it in items]).argmax(-1)
    return (pred == torch.tensor([answer_id(it) for it in items])).float().mean().item()


def weights_sha256(model: torch.nn.Module) -> str:
    """sha256 of every weight's name and bytes, in state_dict order: equal digests, equal weights."""
    h = hashlib.sha256()
    for name, t in model.state_dict().items():
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def finetune_on_examples(model: GPT, examples: list[tuple[str, str]], lr: float, seed: int) -> GPT:
    """A copy of the model after len(examples) AdamW steps on the example lines "x -> y" (loss on y only)."""
    tuned = copy.deepcopy(model).train()
    if not examples:
        return tuned.eval()
    torch.manual_seed(seed)
    rows = [[EOT_ID, *encode(f"{x} ->"), *encode(y)] for x, y in examples]
    t = max(map(len, rows))
    ids = torch.full((len(rows), t), EOT_ID)
    labels = torch.full((len(rows), t), -100)
    for j, r in enumerate(rows):
        ids[j, : len(r)] = torch.tensor(r)
        labels[j, len(r) - 1] = r[-1]  # only the answer is scored, as in supervised fine-tuning
    opt = torch.optim.AdamW(tuned.parameters(), lr=lr, weight_decay=0.0)
    for _ in range(len(examples)):  # k gradient steps on the k examples
        loss = tuned(ids, labels=labels).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    return tuned.eval()


def finetuned_accuracy(model: GPT, items: list[Item], lr: float, seed: int) -> float:
    """Fine-tune a copy on each prompt's examples, then ask its query with nothing in the context."""
    right = 0
    for i, it in enumerate(items):
        tuned = finetune_on_examples(model, it.examples, lr, seed * 100_003 + i)
        zero_shot = Item([], it.query, it.answer, it.relation)
        right += accuracy(tuned, [zero_shot]) == 1.0
    return right / len(items)


@dataclass
class ICLResult:
    """Accuracy per number of shots (SHOTS) for each family and group, and the fine-tuning baseline."""

    shots: list[int]
    seen: list[float]  # relation prompts about people the mixture's relation prompts used
    unseen: list[float]  # about the other half: their facts only in sentences
    seen_by_relation: dict[str, list[float]]
    mapping: list[float]  # a fresh random word map per prompt; shots 1, 2, 4, 8 (k=0 cannot be answered)
    finetune: list[float]  # k AdamW steps on the k examples, then the query alone (seen people)
    in_context_same_prompts: list[float]  # in-context accuracy on the very prompts the fine-tuning had
    finetune_lr: float
    sha_before: str
    sha_after: str
    sha_finetuned: str  # of one fine-tuned copy (8 shots): gradient steps do change the weights
    example_prompt: str = ""
    example_answer: str = ""
    chance_mapping: list[float] = field(default_factory=list)  # 1 / k: picking one of the k example answers

    @property
    def gain_seen(self) -> float:
        """Few-shot (mean of 4 and 8 shots) minus zero-shot, seen people."""
        return (self.seen[-1] + self.seen[-2]) / 2 - self.seen[0]

    @property
    def in_context_minus_finetune(self) -> float:
        """In-context minus fine-tuned accuracy on the same prompts, averaged over 1, 2, 4 and 8 shots."""
        return sum(a - b for a, b in zip(self.in_context_same_prompts[1:], self.finetune[1:], strict=True)) / 4

    @property
    def gain_unseen(self) -> float:
        """Few-shot (mean of 4 and 8 shots) minus zero-shot, unseen people."""
        return (self.unseen[-1] + self.unseen[-2]) / 2 - self.unseen[0]


@experiment(
    "ch7.icl",
    title="In-context learning: accuracy against the number of shots, with the weights unchanged",
    paper="GPT-3 (Brown et al. 2020): few-shot > one-shot > zero-shot; Garg et al. 2022",
    checks=[
        Check(
            "few-shot beats zero-shot: the examples tell the model which fact is asked",
            holds=lambda r: r.gain_seen > MARGIN,
            detail=lambda r: (
                "accuracy at " + ", ".join(f"{k} shots {a:.2f}" for k, a in zip(r.shots, r.seen, strict=True))
            ),
        ),
        Check(
            "for people whose facts it only read in sentences, the examples help far less (under half the gain)",
            holds=lambda r: r.gain_unseen < r.gain_seen / 2,
            detail=lambda r: (
                f"gain {r.gain_unseen:.2f} vs {r.gain_seen:.2f}; unseen accuracy at "
                + ", ".join(f"{k} shots {a:.2f}" for k, a in zip(r.shots, r.unseen, strict=True))
            ),
        ),
        Check(
            "k gradient steps on the same k examples teach less than reading them in context",
            holds=lambda r: r.in_context_minus_finetune > MARGIN,
            detail=lambda r: (
                f"1-8 shots: in context {sum(r.in_context_same_prompts[1:]) / 4:.2f}, fine-tuned "
                f"{sum(r.finetune[1:]) / 4:.2f} (lr {r.finetune_lr:g})"
            ),
        ),
        Check(
            "it does not solve a fresh random word map: below picking one of the k example answers, at every k",
            holds=lambda r: all(a < c for a, c in zip(r.mapping, r.chance_mapping, strict=True)),
            detail=lambda r: ", ".join(
                f"{k} shots {a:.2f} vs {c:.2f}"
                for k, a, c in zip(r.shots[1:], r.mapping, r.chance_mapping, strict=True)
            ),
        ),
        Check(
            "no weight changed while it learned in context (sha256 of the weights before = after)",
            holds=lambda r: r.sha_before == r.sha_after and r.sha_finetuned != r.sha_before,
            detail=lambda r: f"{r.sha_before[:12]}… = {r.sha_after[:12]}…; fine-tuned copy {r.sha_finetuned[:12]}…",
        ),
    ],
    numbers=lambda r: {
        **{f"seen k={k}": a for k, a in zip(r.shots, r.seen, strict=True)},
        **{f"unseen k={k}": a for k, a in zip(r.shots, r.unseen, strict=True)},
        **{f"mapping k={k}": a for k, a in zip(r.shots[1:], r.mapping, strict=True)},
        **{f"finetune k={k}": a for k, a in zip(r.shots, r.finetune, strict=True)},
        **{f"in-context same k={k}": a for k, a in zip(r.shots, r.in_context_same_prompts, strict=True)},
        "finetune lr": r.finetune_lr,
    },
)
def icl(seed: int = 0, preset: str = "book", device: str = "cpu") -> ICLResult:
    """Score the shared GPT in context at 0-8 shots; check its weights; fine-tune copies on the same examples."""
    s = pick_preset(PRESETS, preset)
    model, _ = toy_gpt(seed, preset, device)
    model.eval()
    before = weights_sha256(model)
    tag = f"test-{seed}"
    seen, unseen, mapping, by_rel = [], [], [], {r: [] for r in RELATIONS}
    for k in SHOTS:
        items = make_items("relation", k, s.n_prompts, "even", tag)
        seen.append(accuracy(model, items))
        for r in RELATIONS:
            by_rel[r].append(accuracy(model, [it for it in items if it.relation == r]))
        unseen.append(accuracy(model, make_items("relation", k, s.n_prompts, "odd", tag)))
        if k:
            mapping.append(accuracy(model, make_items("mapping", k, s.n_mapping, "all", tag)))
    after = weights_sha256(model)

    # The fine-tuning baseline: its learning rate is the best on validation prompts (4 shots), never on test.
    val = make_items("relation", 4, s.n_lr_search, "even", f"validation-{seed}")
    lr = max(s.lrs, key=lambda lr: finetuned_accuracy(model, val, lr, seed))
    finetune, same = [], []
    for k in SHOTS:
        items = make_items("relation", k, s.n_prompts, "even", tag)
        items = [it for r in RELATIONS for it in [x for x in items if x.relation == r][: s.n_finetune]]
        finetune.append(finetuned_accuracy(model, items, lr, seed))
        same.append(accuracy(model, items))
    example = make_items("relation", 8, 1, "even", tag)[0]
    tuned = finetune_on_examples(model, example.examples, lr, seed)
    shown = make_items("relation", 4, 1, "even", tag)[0]
    return ICLResult(
        shots=list(SHOTS),
        seen=seen,
        unseen=unseen,
        seen_by_relation=by_rel,
        mapping=mapping,
        finetune=finetune,
        in_context_same_prompts=same,
        finetune_lr=lr,
        sha_before=before,
        sha_after=after,
        sha_finetuned=weights_sha256(tuned),
        example_prompt=shown.text,
        example_answer=shown.answer,
        chance_mapping=[1 / k for k in SHOTS[1:]],
    )
