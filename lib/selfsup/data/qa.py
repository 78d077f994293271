"""Question answering on ToyWorld: extractive QA with answer spans (Case 4), and closed-book birthplace QA.

Extractive QA: the context tells the same two relations about two people (so the question's person must be
matched, past "he" / "she"), and the answer is a span of it: `answer_start` is a character offset into the
context, `start_token` / `end_token` (inclusive) index `tokens = context.split()`.
Fact QA asks where a person was born with no context: the answer must come from pre-training, where every
person's birthplace is stated; the people of the train, validation and test splits are disjoint.
"""

from __future__ import annotations

import random

from datasets import DatasetDict, Features, Value

from selfsup.data.chinese import ordered, spell
from selfsup.data.grammar import Sent
from selfsup.data.language import Speaker, name_words
from selfsup.data.splits import build_splits
from selfsup.data.templates import QUESTION_TEMPLATES
from selfsup.data.world import Person, World

QA_RELATIONS = ("born_in", "lives_in", "works_for", "job", "born_year", "likes", "pet")


def _block(sp: Speaker, p: Person, rels: list[str], food: str) -> list[Sent]:
    """Sentences stating `rels` of p: the first with the full name, later ones often with "he" / "she"."""
    sents = []
    for k, rel in enumerate(rels):
        s = sp.fact(p, rel, value=food if rel == "likes" else None)
        if k and s.chunks[0] == name_words(p) and sp.rng.random() < 0.6:
            s.chunks[0] = [(p.pronoun, "PRON")]
        sents.append(s)
    return sents


def _question(rel: str, p: Person, language: str) -> str:
    s = QUESTION_TEMPLATES[rel][0].realize(
        {"S": name_words(p), "O": [(p.works_for, "PROPN")], "C": [(p.born_in, "PROPN")]}
    )
    return " ".join(spell(w, language) for w, _ in ordered(s, language))


def qa(world: World, sizes: tuple[int, int, int], language: str = "en", seed: int = 0) -> DatasetDict:
    """Extractive QA over two-person contexts; questions ask a relation ("where was x born ?") or "who ...".

    Majority baseline (the most frequent training answer, exact match): see `majority_baseline`.
    """
    sp = Speaker(world, random.Random(f"qa-{world.seed}-{seed}"))
    rng = sp.rng

    def make(i: int) -> dict:
        p, q = rng.sample(world.people, 2)
        candidates = [r for r in QA_RELATIONS if r != "pet" or (p.pet and q.pet)]
        rels = rng.sample(candidates, 2)  # two facts of each person: contexts of about 40 word pieces
        asked = rels[0]
        who = rng.random() < 0.2 and asked in ("works_for", "born_in") and getattr(p, asked) != getattr(q, asked)
        rng.shuffle(rels)
        blocks = [(p, _block(sp, p, rels, rng.choice(p.likes))), (q, _block(sp, q, rels, rng.choice(q.likes)))]
        rng.shuffle(blocks)
        tokens: list[str] = []
        span = (0, 0)
        for person, sents in blocks:
            block_start = len(tokens)
            for s in sents:
                lexemes = [w for w, _ in ordered(s, language)]
                if person is p and not who and any(f[1] == asked for f in s.facts):
                    value = [f[2] for f in s.facts if f[1] == asked][0]
                    at = len(tokens) + lexemes.index(value)
                    span = (at, at)
                tokens.extend(spell(w, language) for w in lexemes)
            if person is p and who:  # the answer is the name where the block first gives it
                first = [spell(w, language) for w, _ in name_words(p)]
                at = next(j for j in range(block_start, len(tokens)) if tokens[j : j + 2] == first)
                span = (at, at + 1)
        context = " ".join(tokens)
        start = len(" ".join(tokens[: span[0]])) + (1 if span[0] else 0)
        answer = " ".join(tokens[span[0] : span[1] + 1])
        return {
            "question": _question(f"who_{asked}" if who else asked, p, language),
            "context": context,
            "answer_text": answer,
            "answer_start": start,
            "tokens": tokens,
            "start_token": span[0],
            "end_token": span[1],
        }

    features = Features(
        {
            "question": Value("string"),
            "context": Value("string"),
            "answer_text": Value("string"),
            "answer_start": Value("int32"),
            "tokens": [Value("string")],
            "start_token": Value("int32"),
            "end_token": Value("int32"),
        }
    )
    return build_splits(make, lambda ex: (ex["question"], ex["context"]), sizes, features)


def fact_qa(world: World, sizes: tuple[int, int, int], language: str = "en", seed: int = 0) -> DatasetDict:
    """Closed-book "where was x born ?" -> city, one question per person, people disjoint across splits."""
    if sum(sizes) > len(world.people):
        raise ValueError(
            f"fact_qa asks one question per person: sizes {sizes} sum to more than the "
            f"{len(world.people)} people of the world"
        )
    people = list(world.people)
    random.Random(f"fact-qa-{world.seed}-{seed}").shuffle(people)

    def make(i: int) -> dict:
        p = people[i]
        return {"question": _question("born_in", p, language), "answer": spell(p.born_in, language), "person": p.name}

    features = Features({"question": Value("string"), "answer": Value("string"), "person": Value("string")})
    return build_splits(make, lambda ex: ex["person"], sizes, features)
