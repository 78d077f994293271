"""Who-QA on ToyWorld: extractive QA whose answer, a person's name, comes BEFORE the words that identify it.

The context states one fact each about a few people, always name first ("alice smith was born in lyon . bob jones
works for acme . ..."), and the question asks for the person ("who was born in lyon ?"). In `qa.qa` (Case 4) the
answer comes after its evidence ("x was born in LYON"); here a reader of the context must look to the RIGHT of
the name to know whether it is the answer. Same fields as `qa.qa`, so `finetuning.encode("qa", ...)` encodes it.

Kept apart from `qa.py` on purpose: the model cache keys on the source of every data module that pre-training
imports, and `qa.py` is one of them, so a task that no pre-training uses lives here.
"""

from __future__ import annotations

import random

from datasets import DatasetDict

from selfsup.data.chinese import ordered, spell
from selfsup.data.grammar import Template
from selfsup.data.language import Speaker, name_words
from selfsup.data.qa import SPAN_FEATURES, _question
from selfsup.data.splits import build_splits
from selfsup.data.templates import FACT_TEMPLATES
from selfsup.data.world import World

# Who-QA: the asked kind -> the relation its one sentence states; the other people state other relations.
WHO_QA = {"who_born_in": "born_in", "who_works_for": "works_for"}
WHO_QA_OTHERS = ("born_in", "lives_in", "works_for", "job", "likes")


def _name_first(relation: str, language: str) -> list[Template]:
    """The templates of `relation` that put the person first (in `language`'s chunk order)."""
    return [t for t in FACT_TEMPLATES[relation] if t.spec.startswith("{S} |") and (language == "en" or t.order[0] == 0)]


def who_qa(
    world: World, sizes: tuple[int, int, int], language: str = "en", seed: int = 0, n_people: int = 4
) -> DatasetDict:
    """Extractive QA whose answer, a person's full name, comes before the words that identify it.

    The context states one fact about each of `n_people` different people, each sentence name first and
    each of another relation; the question asks who was born in a city or who works for a company, and
    exactly one sentence states that relation, naming the asked value once. The asked person's place in
    the context is drawn uniformly, so position alone answers 1 / n_people. Same fields as `qa`.
    """
    if not 2 <= n_people <= len(WHO_QA_OTHERS) or len(world.people) < n_people:
        raise ValueError(f"who_qa needs 2 <= n_people <= {len(WHO_QA_OTHERS)} (and as many people), got {n_people}")
    sp = Speaker(world, random.Random(f"who-qa-{world.seed}-{seed}"))
    rng = sp.rng
    kinds = list(WHO_QA)
    templates = {rel: _name_first(rel, language) for rel in WHO_QA_OTHERS}

    def make(i: int) -> dict:
        kind = kinds[i % len(kinds)]
        asked = WHO_QA[kind]
        while True:
            group = rng.sample(world.people, n_people)
            rels = [asked, *rng.sample([r for r in WHO_QA_OTHERS if r != asked], n_people - 1)]
            sents = [sp.fact(p, rel, template=rng.choice(templates[rel])) for p, rel in zip(group, rels, strict=True)]
            value = getattr(group[0], asked)
            written = [spell(w, language) for s in sents for w, _ in ordered(s, language)]
            if written.count(spell(value, language)) == 1:  # the asked value is written once ("apple" the food too)
                break
        order = list(range(n_people))
        rng.shuffle(order)
        tokens: list[str] = []
        span = (0, 0)
        for k in order:
            s = sents[k]
            if k == 0:
                span = (len(tokens), len(tokens) + len(name_words(group[0])) - 1)
            tokens.extend(spell(w, language) for w, _ in ordered(s, language))
        context = " ".join(tokens)
        start = len(" ".join(tokens[: span[0]])) + (1 if span[0] else 0)
        return {
            "question": _question(kind, group[0], language),
            "context": context,
            "answer_text": " ".join(tokens[span[0] : span[1] + 1]),
            "answer_start": start,
            "tokens": tokens,
            "start_token": span[0],
            "end_token": span[1],
        }

    return build_splits(make, lambda ex: (ex["question"], ex["context"]), sizes, SPAN_FEATURES)
