"""Question answering on ToyWorld: extractive QA with answer spans (Case 4), and closed-book birthplace QA.

Extractive QA: the context tells four facts of one person, and the answer is a span of it: `answer_start` is a
character offset into the context, `start_token` / `end_token` (inclusive) index `tokens = context.split()`.
The question asks for one of two facts of the same kind that the context holds side by side (where the person
was born and where they live; a food they like and one they do not), so the answer's type alone leaves two
candidates: the paraphrase that states the fact ("lyon is the birthplace of x", "the home of x is in paris",
"x never eats cake") must be understood.
Fact QA asks where a person was born with no context: the answer must come from pre-training, where every
person's birthplace is stated; the people of the train, validation and test splits are disjoint.
"""

from __future__ import annotations

import random

from datasets import DatasetDict, Features, Value

from selfsup.data.chinese import ordered, spell
from selfsup.data.grammar import Sent, Template
from selfsup.data.language import Speaker, name_words
from selfsup.data.splits import build_splits
from selfsup.data.templates import FACT_TEMPLATES, QUESTION_TEMPLATES
from selfsup.data.world import Person, World

# The columns of an extractive-QA example (`qa` here, `qa_who.who_qa` too).
SPAN_FEATURES = Features(
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
# Each asked relation, and its twin of the same answer type that the context always states too.
QA_TWINS = {"born_in": "lives_in", "lives_in": "born_in", "likes": "dislikes", "dislikes": "likes"}
QA_OTHERS = ("works_for", "job", "born_year", "pet")  # two of these fill the context with other facts
# With held_out=True, validation and test state the asked facts and their twins only in these wordings (indices
# into FACT_TEMPLATES) and training contexts never do: "x is from lyon", "lyon is the birthplace of x", "x has
# lived in paris for many years", "the home of x is in paris", "x loves / enjoys soup", "x hates / never eats cake".
QA_HELD_OUT_WORDING = {"born_in": (2, 3), "lives_in": (1, 3), "likes": (2, 3), "dislikes": (1, 2)}


def _block(
    sp: Speaker, p: Person, rels: list[str], food: str, wordings: dict[str, list[Template]] | None = None
) -> list[Sent]:
    """Sentences stating `rels` of p: the first with the full name, later ones often with "he" / "she".

    `wordings` restricts the templates of some relations (the rest use any of theirs).
    """
    sents = []
    for k, rel in enumerate(rels):
        allowed = (wordings or {}).get(rel)
        template = sp.rng.choice(allowed) if allowed else None
        s = sp.fact(p, rel, value=food if rel == "likes" else None, template=template)
        if k and s.chunks[0] == name_words(p) and sp.rng.random() < 0.6:
            s.chunks[0] = [(p.pronoun, "PRON")]
        sents.append(s)
    return sents


def _question(rel: str, p: Person, language: str) -> str:
    s = QUESTION_TEMPLATES[rel][0].realize(
        {"S": name_words(p), "O": [(p.works_for, "PROPN")], "C": [(p.born_in, "PROPN")]}
    )
    return " ".join(spell(w, language) for w, _ in ordered(s, language))


def qa(
    world: World, sizes: tuple[int, int, int], language: str = "en", seed: int = 0, held_out: bool = False
) -> DatasetDict:
    """Extractive QA over one person's facts; questions cycle born in / lives in / likes / does not like.

    With `held_out`, validation and test word the asked fact and its twin in ways no training context uses
    (QA_HELD_OUT_WORDING), so a reader must know those wordings mean the same relations: knowledge that can
    come only from pre-training text, where every wording states the same people's facts.
    Majority baseline (the most frequent training answer, exact match): see `majority_baseline`.
    """
    sp = Speaker(world, random.Random(f"qa-{world.seed}-{seed}"))
    rng = sp.rng
    people = [p for p in world.people if p.born_in != p.lives_in]  # the two cities of a context differ
    if not people:
        raise ValueError("extractive QA needs a person born in another city than the one they live in")
    asked_cycle = list(QA_TWINS)
    unseen = {r: [FACT_TEMPLATES[r][k] for k in ks] for r, ks in QA_HELD_OUT_WORDING.items()}
    seen = {r: [t for t in FACT_TEMPLATES[r] if t not in unseen[r]] for r in QA_HELD_OUT_WORDING}

    def make(i: int) -> dict:
        asked = asked_cycle[i % len(asked_cycle)]
        p = rng.choice(people)
        others = [r for r in QA_OTHERS if r != "pet" or p.pet]
        rels = [asked, QA_TWINS[asked], *rng.sample(others, 2)]
        rng.shuffle(rels)
        tokens: list[str] = []
        span = (0, 0)
        wordings = (seen if i < sizes[0] else unseen) if held_out else None
        for s in _block(sp, p, rels, rng.choice(p.likes), wordings):
            lexemes = [w for w, _ in ordered(s, language)]
            if any(f[1] == asked for f in s.facts):
                value = [f[2] for f in s.facts if f[1] == asked][0]
                at = len(tokens) + lexemes.index(value)
                span = (at, at)
            tokens.extend(spell(w, language) for w in lexemes)
        context = " ".join(tokens)
        start = len(" ".join(tokens[: span[0]])) + (1 if span[0] else 0)
        answer = " ".join(tokens[span[0] : span[1] + 1])
        return {
            "question": _question(asked, p, language),
            "context": context,
            "answer_text": answer,
            "answer_start": start,
            "tokens": tokens,
            "start_token": span[0],
            "end_token": span[1],
        }

    return build_splits(make, lambda ex: (ex["question"], ex["context"]), sizes, SPAN_FEATURES)


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
