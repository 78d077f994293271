"""Labelled tasks derived from ToyWorld's meaning: sentiment, POS tags, NLI, next-sentence pairs, word senses.

Each function takes the `World`, split sizes, a language ("en" or "zh": the same examples, in either
language, for the same seed) and a seed, and returns a `DatasetDict` with disjoint train / validation /
test splits (no input text in two splits). Choices come from `random.Random(f"{task}-{world.seed}-{seed}")`.
Extractive and fact QA live in qa.py.
"""

from __future__ import annotations

import random

from datasets import DatasetDict, Features, Value

from selfsup.data.chinese import ordered, render
from selfsup.data.grammar import POS_TAGS, Sent
from selfsup.data.language import Speaker
from selfsup.data.splits import build_splits, class_label, tag_sequence
from selfsup.data.templates import SENSE_TEMPLATES
from selfsup.data.world import CITIES, CITY_COUNTRY, COMPANIES, COUNTRIES, FOODS, FUNCTIONAL, Person, World

NLI_LABELS = ["entailment", "neutral", "contradiction"]  # the order of MNLI in `datasets`
NSP_LABELS = ["is_next", "not_next"]  # 0 = B follows A, as BertForPreTraining's next_sentence_label
SENTIMENT_LABELS = ["negative", "positive"]
SENSE_LABELS = list(SENSE_TEMPLATES)


def text_of(sents: list[Sent], language: str) -> str:
    """Sentences written in `language` and joined by spaces."""
    return " ".join(w for s in sents for w, _ in render(s, language))


def _speaker(world: World, task: str, seed: int) -> Speaker:
    return Speaker(world, random.Random(f"{task}-{world.seed}-{seed}"))


def sentiment(world: World, sizes: tuple[int, int, int], language: str = "en", seed: int = 0) -> DatasetDict:
    """Reviews of food, one opinion or two joined by "but" (the second decides); labels alternate, so balanced."""
    sp = _speaker(world, "sentiment", seed)

    def make(i: int) -> dict:
        polarity = 1 if i % 2 else -1
        return {"text": text_of([sp.review(polarity)], language), "label": int(polarity > 0)}

    features = Features({"text": Value("string"), "label": class_label(SENTIMENT_LABELS)})
    return build_splits(make, lambda ex: ex["text"], sizes, features)


def pos(world: World, sizes: tuple[int, int, int], language: str = "en", seed: int = 0) -> DatasetDict:
    """Sentences from person documents with universal POS tags; cook / visit / fish / that / like / has vary."""
    sp = _speaker(world, "pos", seed)
    tag_id = {t: i for i, t in enumerate(POS_TAGS)}

    def make(i: int) -> dict:
        s = sp.rng.choice(sp.person_document(sp.rng.choice(world.people)))
        words = render(s, language)
        return {"tokens": [w for w, _ in words], "tags": [tag_id[t] for _, t in words]}

    features = Features({"tokens": [Value("string")], "tags": tag_sequence(POS_TAGS)})
    return build_splits(make, lambda ex: " ".join(ex["tokens"]), sizes, features)


def nsp(world: World, sizes: tuple[int, int, int], language: str = "en", seed: int = 0) -> DatasetDict:
    """Sentence pairs from person documents: B follows A (label 0) or B comes from another person's document."""
    sp = _speaker(world, "nsp", seed)

    def make(i: int) -> dict:
        p, q = sp.rng.sample(world.people, 2)
        doc = sp.person_document(p)
        j = sp.rng.randrange(len(doc) - 1)
        b = doc[j + 1] if i % 2 == 0 else sp.rng.choice(sp.person_document(q)[1:])
        return {"sentence_a": text_of([doc[j]], language), "sentence_b": text_of([b], language), "label": i % 2}

    features = Features(
        {"sentence_a": Value("string"), "sentence_b": Value("string"), "label": class_label(NSP_LABELS)}
    )
    return build_splits(make, lambda ex: (ex["sentence_a"], ex["sentence_b"]), sizes, features)


def word_sense(world: World, sizes: tuple[int, int, int], language: str = "en", seed: int = 0) -> DatasetDict:
    """Sentences with an ambiguous word; label "word:sense" (10 classes, 2 per word, majority 0.5 per word)."""
    sp = _speaker(world, "sense", seed)

    def make(i: int) -> dict:
        sense = SENSE_LABELS[i % len(SENSE_LABELS)]
        s = sp.sense_sentence(sense)
        lex = sense.replace(":", "#")
        words = render(s, language)
        index = [w for w, _ in ordered(s, language)].index(lex)
        return {
            "sentence": " ".join(w for w, _ in words),
            "word": words[index][0],
            "word_index": index,
            "label": SENSE_LABELS.index(sense),
        }

    features = Features(
        {
            "sentence": Value("string"),
            "word": Value("string"),
            "word_index": Value("int32"),
            "label": class_label(SENSE_LABELS),
        }
    )
    return build_splits(make, lambda ex: ex["sentence"], sizes, features)


# NLI --------------------------------------------------------------------------------------------------------

BASE = {"born_country": "born_in", "lives_country": "lives_in"}
NLI_RELATIONS = ("born_in", "lives_in", "works_for", "likes")
HYPOTHESIS_RELATIONS = NLI_RELATIONS + ("born_country", "lives_country")


def nli_label(premise: list[tuple[str, str, str, bool]], hypothesis: tuple[str, str, str, bool]) -> str:
    """The label the premise's facts give a hypothesis (person, relation, value, negated).

    One-valued relations: the stated value decides (a city also decides its country); "likes" entails only
    the stated food, and says nothing about other foods. A relation the premise does not state is neutral.
    """
    person, rel, value, negated = hypothesis
    base = BASE.get(rel, rel)
    stated = [v for p, r, v, neg in premise if p == person and r == base and not neg]
    if not stated:
        return "neutral"
    if base in FUNCTIONAL:
        truth = (CITY_COUNTRY[stated[0]] if rel in BASE else stated[0]) == value
    elif value in stated:
        truth = True
    else:
        return "neutral"
    return "entailment" if truth != negated else "contradiction"


def _random_value(rng: random.Random, rel: str) -> str:
    base = BASE.get(rel, rel)
    if rel in BASE:
        return rng.choice(list(COUNTRIES))
    return rng.choice({"born_in": CITIES, "lives_in": CITIES, "works_for": list(COMPANIES), "likes": FOODS}[base])


def nli(world: World, sizes: tuple[int, int, int], language: str = "en", seed: int = 0) -> DatasetDict:
    """Premises of two or three facts (one may be about another person); hypotheses drawn until the label fits.

    Labels cycle entailment / neutral / contradiction, so they are balanced (majority baseline 1/3).
    Entailment may need world knowledge learnt in pre-training (lyon is in france).
    """
    sp = _speaker(world, "nli", seed)
    rng = sp.rng

    def premise(p: Person, other: Person) -> list[Sent]:
        rels = rng.sample(NLI_RELATIONS, 2)
        sents = [sp.fact(p, r) for r in rels]
        if rng.random() < 0.5 and sents[1].chunks[0] == [(p.first, "PROPN"), (p.last, "PROPN")]:
            sents[1].chunks[0] = [(p.pronoun, "PRON")]
        if rng.random() < 0.5:
            sents.insert(rng.choice((0, 2)), sp.fact(other, rng.choice(NLI_RELATIONS)))
        return sents

    def make(i: int) -> dict:
        target = NLI_LABELS[i % 3]
        while True:
            p, other = rng.sample(world.people, 2)
            sents = premise(p, other)
            facts = [f for s in sents for f in s.facts]
            for _ in range(60):
                who = p if rng.random() < 0.7 else other if rng.random() < 0.5 else rng.choice(world.people)
                rel = rng.choice(HYPOTHESIS_RELATIONS)
                neg = rel in NLI_RELATIONS and rng.random() < 0.3
                value = _random_value(rng, rel)
                if rng.random() < 0.5:  # the person's true value, so entailments are common enough
                    value = (
                        CITY_COUNTRY[getattr(who, BASE[rel])]
                        if rel in BASE
                        else rng.choice(who.likes)
                        if rel == "likes"
                        else getattr(who, rel)
                    )
                if nli_label(facts, (who.name, rel, value, neg)) == target:
                    hyp = sp.fact(who, rel, value, negated=neg)
                    return {
                        "premise": text_of(sents, language),
                        "hypothesis": text_of([hyp], language),
                        "label": NLI_LABELS.index(target),
                    }

    features = Features({"premise": Value("string"), "hypothesis": Value("string"), "label": class_label(NLI_LABELS)})
    return build_splits(make, lambda ex: (ex["premise"], ex["hypothesis"]), sizes, features)
