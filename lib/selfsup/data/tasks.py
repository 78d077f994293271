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
from selfsup.data.templates import FACT_TEMPLATES, HELD_OUT_ADJECTIVES, SEEN_ADJECTIVES, SENSE_TEMPLATES
from selfsup.data.world import CITIES, CITY_COUNTRY, COMPANIES, COUNTRIES, FUNCTIONAL, Person, World

NLI_LABELS = ["entailment", "neutral", "contradiction"]  # the order of MNLI in `datasets`
NSP_LABELS = ["is_next", "not_next"]  # 0 = B follows A, as BertForPreTraining's next_sentence_label
SENTIMENT_LABELS = ["negative", "positive"]
SENSE_LABELS = list(SENSE_TEMPLATES)


def text_of(sents: list[Sent], language: str) -> str:
    """Sentences written in `language` and joined by spaces."""
    return " ".join(w for s in sents for w, _ in render(s, language))


def _speaker(world: World, task: str, seed: int) -> Speaker:
    return Speaker(world, random.Random(f"{task}-{world.seed}-{seed}"))


def sentiment(
    world: World, sizes: tuple[int, int, int], language: str = "en", seed: int = 0, held_out: bool = False
) -> DatasetDict:
    """Reviews of food, one opinion or two joined by "but" (the second decides); labels alternate, so balanced.

    Adjectives carry the polarity (no "love" / "hate" in reviews). With `held_out` the training
    split uses only SEEN_ADJECTIVES and validation and test only HELD_OUT_ADJECTIVES, so a classifier must
    know the polarity of words no labelled example shows: that knowledge can come only from pre-training
    text, where every adjective appears beside words of known polarity.
    """
    sp = _speaker(world, "sentiment", seed)

    def make(i: int) -> dict:
        polarity = 1 if i % 2 else -1
        if held_out:
            sp.adjectives = SEEN_ADJECTIVES if i < sizes[0] else HELD_OUT_ADJECTIVES
        return {"text": text_of([sp.review(polarity, verbs=0.0)], language), "label": int(polarity > 0)}

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
COUNTRY_RELATION = {city: country for country, city in BASE.items()}  # born_in -> born_country, ...
NLI_RELATIONS = ("born_in", "lives_in", "works_for")
NLI_COUNTRY = 0.1  # the share of entailments and contradictions about a country, given a city
NLI_NEUTRAL_NEGATED = 0.5  # the share of neutral hypotheses that are negated, so that "not" alone decides nothing
NLI_SAME_VALUE = 0.75  # the share of neutral hypotheses about a city that reuse the premise's city


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


def _values(rel: str) -> list[str]:
    """Every value a hypothesis may give the relation."""
    if rel in BASE:
        return list(COUNTRIES)
    return CITIES if rel in ("born_in", "lives_in") else list(COMPANIES)


def _true_value(p: Person, rel: str) -> str:
    return CITY_COUNTRY[getattr(p, BASE[rel])] if rel in BASE else getattr(p, rel)


def nli(world: World, sizes: tuple[int, int, int], language: str = "en", seed: int = 0) -> DatasetDict:
    """A premise stating one fact of a person (born in, lives in, works for) in any of its paraphrases; a hypothesis.

    Hypotheses are in the plainest words and always about the premise's person. What decides the label is
    whether the hypothesis speaks of the relation the premise states, and whether it is negated:
    entailment restates the fact ("lyon is the birthplace of x" -> "x was born in lyon"), contradiction
    denies it ("x was not born in lyon"), neutral speaks of another relation, negated or not, often with the
    same city ("x lives in lyon", "x does not live in lyon"). So neither "not" nor a shared word gives the
    label away: the premise's paraphrase must be recognised as its relation, which the pre-training text
    teaches (documents state each fact in several wordings) and a few hundred labels barely do. A tenth of
    the entailments and contradictions name a country instead of the city ("x was born in france"), which
    needs world knowledge ("lyon is in france"). Labels cycle entailment / neutral / contradiction, so they
    are balanced (majority baseline 1/3), and each is checked against `nli_label`.
    """
    sp = _speaker(world, "nli", seed)
    rng = sp.rng

    def make(i: int) -> dict:
        target = NLI_LABELS[i % 3]
        p = rng.choice(world.people)
        stated = rng.choice(NLI_RELATIONS)
        premise = sp.fact(p, stated)
        negated, template = False, None
        if target == "neutral":
            rel = rng.choice([r for r in NLI_RELATIONS if r != stated])
            same_type = rel != "works_for" and stated != "works_for"
            value = _true_value(p, stated) if same_type and rng.random() < NLI_SAME_VALUE else rng.choice(_values(rel))
            negated = rng.random() < NLI_NEUTRAL_NEGATED
        elif stated in COUNTRY_RELATION and rng.random() < NLI_COUNTRY:
            rel = COUNTRY_RELATION[stated]
            true = _true_value(p, rel)
            value = true if target == "entailment" else rng.choice([v for v in _values(rel) if v != true])
        else:
            rel, value, negated = stated, _true_value(p, stated), target == "contradiction"
        if not negated and rel in FACT_TEMPLATES:
            template = FACT_TEMPLATES[rel][0]
        label = nli_label(premise.facts, (p.name, rel, value, negated))
        if label != target:
            raise RuntimeError(f"NLI example drawn as {target} reads as {label}: {premise.facts} vs {rel} {value}")
        hyp = sp.fact(p, rel, value, negated=negated, template=template)
        return {
            "premise": text_of([premise], language),
            "hypothesis": text_of([hyp], language),
            "label": NLI_LABELS.index(target),
        }

    features = Features({"premise": Value("string"), "hypothesis": Value("string"), "label": class_label(NLI_LABELS)})
    return build_splits(make, lambda ex: (ex["premise"], ex["hypothesis"]), sizes, features)
