"""ToyWorld's world, language and raw text: determinism, facts in the text, grammar."""

import random
import re

import pytest

from selfsup.data import ToyWorld, World
from selfsup.data.language import Speaker
from selfsup.data.templates import INTENSIFIERS, NEGATIVE, POSITIVE
from selfsup.data.world import CITY_COUNTRY, FOODS_PL, FOODS_SG, JOBS, surface


@pytest.fixture(scope="module")
def tw():
    return ToyWorld(seed=0, n_people=40)


def test_same_seed_same_text_and_different_seed_different_text(tw):
    assert tw.sentences(300) == ToyWorld(seed=0, n_people=40).sentences(300)
    assert tw.documents(20, language="zh") == ToyWorld(seed=0, n_people=40).documents(20, language="zh")
    assert tw.sentences(300) != ToyWorld(seed=1, n_people=40).sentences(300)
    assert tw.sentences(300) != tw.sentences(300, seed=1)
    assert [p.born_in for p in World(0).people] != [p.born_in for p in World(1).people]


def test_text_gives_exactly_n_sentences_in_lower_case_with_spaced_punctuation(tw):
    lines = list(tw.text(257))
    assert len(lines) == 257
    for line in lines:
        assert line == line.lower() and line.endswith(" .") and "  " not in line
        assert re.fullmatch(r"[a-z0-9 .,?]+", line), line


def test_every_birthplace_is_stated_in_the_documents(tw):
    text = "\n".join(s for doc in tw.documents(120) for s in doc)
    for p in tw.world.people:
        said = re.findall(
            rf"(?:{p.name} (?:was born in (?:the city of )?|is from )([a-z]+))|(?:([a-z]+) is the birthplace of "
            rf"{p.name})",
            text,
        )
        cities = {a or b for a, b in said}
        assert cities == {p.born_in}, (p.name, cities)


def test_documents_stay_on_one_topic_and_pronouns_match_the_person(tw):
    sp = Speaker(tw.world, random.Random(0))
    for p in tw.world.people:
        doc = sp.person_document(p)
        assert len(doc) >= 3
        assert doc[0].words()[0][1] == "PROPN" or p.name in doc[0].text()  # opens with the name, never a pronoun
        for s in doc:
            words = s.tokens()
            for k, w in enumerate(words):
                if w in ("he", "she") and (k == 0 or words[k - 1] == "and"):
                    assert w == p.pronoun, (p.name, s.text())
                    assert s.about == p.name
            for name, *_ in s.facts:
                assert name == p.name


def test_agreement_of_verbs_and_articles(tw):
    text = " ".join(tw.sentences(3000)) + " " + " ".join(tw.sentiment(400, 0, 0)["train"]["text"])
    for food in FOODS_PL:
        assert not re.search(rf"\b{food} (was|is|tastes)\b", text), food
    for food in FOODS_SG:
        assert not re.search(rf"\b(?:the|this|that) {food} (were|are)\b", text), food
    for job in JOBS:
        wrong = "a" if job[0] in "aeiou" else "an"
        assert f" {wrong} {job} " not in text
    assert re.search(r"\b(were|are) \w+", text) and " an engineer " in text or " an architect " in text
    assert not re.search(r"\b(he|she) (like|live|work|have)\b", text)
    assert not re.search(r"\bthey (likes|lives|works|has)\b", text)


def test_facts_in_the_text_are_the_world_s_facts(tw):
    people = {p.name: p for p in tw.world.people}
    text = " ".join(tw.sentences(3000))
    names = "|".join(people)
    found = re.findall(rf"({names}) works for (\w+)", text)
    assert len(found) > 20
    for name, company in found:
        assert surface(people[name].works_for) == company
    for city, country in re.findall(r"(\w+) is a city in (\w+)", text):
        assert CITY_COUNTRY[city] == country


def test_reasoned_opinions_in_the_text_give_adjectives_the_polarity_of_their_verb(tw):
    """Pre-training text pairs adjectives with verbs of known polarity (what teaches held-out sentiment words)."""
    text = " ".join(tw.sentences(3000))
    intensifier = "|".join(INTENSIFIERS)
    found = re.findall(
        rf"\b(loves?|enjoys?|would eat|hates?|would never eat|would not recommend) the \w+ (?:again )?because "
        rf"(?:it|they) (?:is|are|was|were) (not |far from |anything but )?(?:(?:{intensifier}) )?(\w+)",
        text,
    )
    assert len(found) > 50
    for verb, negation, adjective in found:
        assert adjective in POSITIVE or adjective in NEGATIVE, (verb, negation, adjective)
        liked = verb.startswith(("love", "enjoy")) or verb == "would eat"
        assert ((adjective in POSITIVE) != bool(negation)) == liked, (verb, negation, adjective)
    assert {a for _, _, a in found} == set(POSITIVE + NEGATIVE)


def test_constructor_rejects_bad_sizes():
    with pytest.raises(ValueError, match="n_people"):
        ToyWorld(n_people=1)
    with pytest.raises(ValueError, match="language"):
        ToyWorld(n_people=10).sentences(3, language="fr")
