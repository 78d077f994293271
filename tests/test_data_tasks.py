"""ToyWorld's task suites: disjoint splits, balanced labels, and labels checked independently of the generator."""

import re
from collections import Counter

import pytest
from datasets import ClassLabel, Dataset, DatasetDict

from selfsup.data import ToyWorld, majority_baseline
from selfsup.data.qa_who import who_qa
from selfsup.data.templates import HELD_OUT_ADJECTIVES, NEGATIVE, POSITIVE, SEEN_ADJECTIVES
from selfsup.data.world import CITY_COUNTRY, surface

SIZES = (300, 60, 60)


@pytest.fixture(scope="module")
def tw():
    return ToyWorld(seed=3, n_people=60)


@pytest.fixture(scope="module")
def suites(tw):
    return {name: getattr(tw, name)(*SIZES) for name in ("sentiment", "pos", "nli", "qa", "nsp", "word_sense")}


KEYS = {
    "sentiment": ("text",),
    "pos": ("tokens",),
    "nli": ("premise", "hypothesis"),
    "qa": ("question", "context"),
    "nsp": ("sentence_a", "sentence_b"),
    "word_sense": ("sentence",),
}


@pytest.mark.parametrize("name", list(KEYS))
def test_splits_have_the_asked_sizes_and_share_no_example(suites, name):
    dd = suites[name]
    assert [len(dd[s]) for s in ("train", "validation", "test")] == list(SIZES)
    keys = {s: {tuple(str(r[c]) for c in KEYS[name]) for r in dd[s]} for s in dd}
    assert len(keys["train"]) == SIZES[0]  # no duplicates inside a split either
    assert not keys["train"] & keys["validation"] and not keys["train"] & keys["test"]
    assert not keys["validation"] & keys["test"]


@pytest.mark.parametrize("name", ["sentiment", "pos", "nli", "qa"])
def test_same_seed_same_data_and_another_seed_other_data(tw, suites, name):
    again = getattr(ToyWorld(seed=3, n_people=60), name)(*SIZES)
    assert again["test"].to_dict() == suites[name]["test"].to_dict()
    other = getattr(tw, name)(*SIZES, seed=1)
    assert other["test"].to_dict() != suites[name]["test"].to_dict()


@pytest.mark.parametrize("name,n_classes", [("sentiment", 2), ("nli", 3), ("nsp", 2), ("word_sense", 10)])
def test_labels_are_class_labels_and_balanced(suites, name, n_classes):
    dd = suites[name]
    assert isinstance(dd["train"].features["label"], ClassLabel)
    assert dd["train"].features["label"].num_classes == n_classes
    for split in dd:
        counts = Counter(dd[split]["label"])
        assert set(counts) == set(range(n_classes))
        for c in counts.values():  # within 25 % of an even share
            assert abs(c / len(dd[split]) - 1 / n_classes) <= 0.25 / n_classes
    assert majority_baseline(dd) == pytest.approx(max(Counter(dd["test"]["label"]).values()) / SIZES[2], abs=0.2)


def _polarity(text: str) -> int:
    """An independent reading of a review: the clause after "but" (or the last clause) decides."""
    clause = re.split(r"(?<!anything) (?:but|and) ", text)[-1]
    if re.search(r"would never eat|would not recommend|\bhates?\b", clause):
        return 0
    if re.search(r"would recommend|would eat|\bloves?\b", clause):
        return 1
    adjectives = [w for w in clause.split() if w in POSITIVE or w in NEGATIVE]
    assert len(adjectives) in (1, 2), text
    assert len({w in POSITIVE for w in adjectives}) == 1, text  # "fresh and tasty": one polarity
    positive = adjectives[0] in POSITIVE
    negated = re.search(r"\bnot\b|far from|anything but", clause) is not None
    return int(positive != negated)


def test_sentiment_labels_follow_negation_and_but(suites):
    dd = suites["sentiment"]
    texts = [t for s in dd for t in dd[s]["text"]]
    labels = [y for s in dd for y in dd[s]["label"]]
    assert [_polarity(t) for t in texts] == labels
    assert any(" not " in t for t in texts) and any(" but " in t for t in texts) and any("at all" in t for t in texts)
    assert majority_baseline(dd) <= 0.6


def _adjectives(texts: list[str]) -> set[str]:
    return {w for t in texts for w in t.split() if w in POSITIVE or w in NEGATIVE}


def test_held_out_sentiment_evaluates_adjectives_no_training_review_uses(tw, suites):
    dd = tw.sentiment(*SIZES, held_out=True)
    train = _adjectives(dd["train"]["text"])
    evaluated = _adjectives(list(dd["validation"]["text"]) + list(dd["test"]["text"]))
    assert train == set(SEEN_ADJECTIVES[1] + SEEN_ADJECTIVES[-1])
    assert evaluated == set(HELD_OUT_ADJECTIVES[1] + HELD_OUT_ADJECTIVES[-1])
    assert not train & evaluated
    assert [_polarity(t) for s in dd for t in dd[s]["text"]] == [y for s in dd for y in dd[s]["label"]]
    assert all(" because " not in t and "would " not in t for s in dd for t in dd[s]["text"])  # adjectives decide
    plain = suites["sentiment"]  # without held_out, test adjectives also occur in training
    assert _adjectives(plain["test"]["text"]) <= _adjectives(plain["train"]["text"])


def test_pos_tags_align_with_tokens_and_some_words_change_tag(suites):
    dd = suites["pos"]
    names = dd["train"].features["tags"].feature.names
    seen: dict[str, set[str]] = {}
    for split in dd:
        for tokens, tags in zip(dd[split]["tokens"], dd[split]["tags"], strict=True):
            assert len(tokens) == len(tags)
            for w, t in zip(tokens, tags, strict=True):
                seen.setdefault(w, set()).add(names[t])
    assert seen["."] == {"PUNCT"} and seen["the"] == {"DET"} and seen["she"] <= {"PRON"}
    assert {"AUX", "VERB"} <= seen["has"]
    assert sum(len(tags) > 1 for tags in seen.values()) >= 2  # e.g. has, cook, visit, that
    assert 0.1 < majority_baseline(dd) < 0.4


def _parse_hypothesis(text: str, tw):
    name = next(n for n in tw.world.by_name if re.search(rf"\b{n}\b", text))
    words = text.split()
    negated = "not" in words
    places = [w for w in words if w in CITY_COUNTRY or w in CITY_COUNTRY.values()]
    if "born" in words or "birthplace" in words or "from" in words:
        rel, value = "born_in", places[0]
    elif "home" in words or "live" in words or "lives" in words or "lived" in words:
        rel, value = "lives_in", places[0]
    elif {"work", "works", "employs", "employed"} & set(words):
        rel = "works_for"
        value = words[words.index("employs") - 1] if "employs" in words else words[-2]
    else:
        rel, value = "likes", words[-2] if words[-2] != "often" else words[-4]
    if rel != "likes" and value in CITY_COUNTRY.values():
        rel = rel.replace("_in", "_country")
    return tw.world.by_name[name], rel, value, negated


def _true_in_world(person, rel, value) -> bool:
    if rel == "born_country":
        return CITY_COUNTRY[person.born_in] == value
    if rel == "lives_country":
        return CITY_COUNTRY[person.lives_in] == value
    if rel == "works_for":
        return surface(person.works_for) == value
    if rel == "likes":
        return value in person.likes
    return getattr(person, rel) == value


def test_nli_labels_agree_with_the_world(tw, suites):
    dd = suites["nli"]
    names = dd["train"].features["label"].names
    kinds = Counter()
    for split in dd:
        for r in dd[split]:
            person, rel, value, negated = _parse_hypothesis(r["hypothesis"], tw)
            assert r["premise"].count(" . ") == 0 and person.name in r["premise"], r  # one fact about that person
            true = _true_in_world(person, rel, value) != negated
            label = names[r["label"]]
            kinds[label, rel] += 1
            if label == "entailment":
                assert true, r
            elif label == "contradiction":
                assert not true, r
            else:  # neutral: the premise does not settle it, so it states no such fact of that person
                base = rel.replace("_country", "_in")
                stated = re.escape(person.name) in r["premise"] and (
                    base != "likes" and _true_in_world(person, base, surface(getattr(person, base)))
                )
                if base == "likes":
                    assert not re.search(rf"{person.name} \w+ {value} \.", r["premise"]), r
                elif stated:
                    keyword = {"born_in": "bor|birthplace|from", "lives_in": "liv|home", "works_for": "work|employ"}[
                        base
                    ]
                    sentences = [s for s in r["premise"].split(" . ") if person.name in s]
                    assert not any(re.search(keyword, s) for s in sentences if " and " not in s), r
    assert kinds["entailment", "born_country"] + kinds["entailment", "lives_country"] > 0  # needs world knowledge


def test_nli_label_needs_the_premise_relation_not_a_surface_cue(tw, suites):
    """Neither "not" nor the hypothesis's relation, value or overlap with the premise decides the label alone:
    each such cue occurs with at least two labels, so a model must relate the premise's paraphrase to the
    hypothesis."""
    names = suites["nli"]["train"].features["label"].names
    by_cue = {"negated": Counter(), "plain": Counter(), "shares_value": Counter()}
    by_relation = {}
    for r in suites["nli"]["train"]:
        person, rel, value, negated = _parse_hypothesis(r["hypothesis"], tw)
        label = names[r["label"]]
        by_cue["negated" if negated else "plain"][label] += 1
        if value in r["premise"].split():
            by_cue["shares_value"][label] += 1
        by_relation.setdefault(rel.replace("_country", "_in"), Counter())[label] += 1
    n = len(suites["nli"]["train"])
    assert by_cue["negated"]["contradiction"] > n / 5 and by_cue["negated"]["neutral"] > n / 10
    assert by_cue["plain"]["entailment"] > n / 5 and by_cue["plain"]["neutral"] > n / 10
    assert min(by_cue["shares_value"][label] for label in names) > n / 20
    for rel, counts in by_relation.items():
        assert len(counts) == 3 and min(counts.values()) > n / 30, (rel, counts)


@pytest.mark.parametrize("language", ["en", "zh"])
def test_qa_spans_reproduce_the_answer_and_answer_the_question(tw, suites, language):
    dd = suites["qa"] if language == "en" else tw.qa(*SIZES, language="zh")
    for split in dd:
        for r in dd[split]:
            ctx, ans = r["context"], r["answer_text"]
            assert ctx[r["answer_start"] : r["answer_start"] + len(ans)] == ans
            assert r["tokens"] == ctx.split()
            assert " ".join(r["tokens"][r["start_token"] : r["end_token"] + 1]) == ans
            assert len(" ".join(r["tokens"][: r["start_token"]])) + (r["start_token"] > 0) == r["answer_start"]
    if language == "en":
        people = tw.world.by_name
        asked = Counter()
        for r in dd["test"]:
            q, ctx = r["question"], r["context"].split()
            p = people[next(n for n in people if re.search(rf"\b{n}\b", q))]
            assert all(n == p.name or not re.search(rf"\b{n}\b", r["context"]) for n in people)  # one person
            # the answer and a same-typed distractor, both in the context: the type alone does not decide
            if q.startswith("where was"):
                answer, twin = p.born_in, p.lives_in
            elif q.startswith("where does"):
                answer, twin = p.lives_in, p.born_in
            elif q.startswith("what food") and "not" in q.split():
                answer, twin = p.dislikes[0], next(f for f in p.likes if f in ctx)
            else:
                assert q.startswith("what food"), q
                answer, twin = next(f for f in p.likes if f in ctx), p.dislikes[0]
            assert r["answer_text"] == answer and twin in ctx and twin != answer
            asked[q.split()[:2][1]] += 1
        assert len(asked) == 3 and min(asked.values()) > len(dd["test"]) / 8  # was / does / food
        assert majority_baseline(dd) < 0.2


QA_HELD_OUT_WORDS = {
    "born_in": ("is from", "birthplace"),
    "lives_in": ("for many years", "the home of"),
    "likes": ("love", "enjoy"),
    "dislikes": ("hate", "never eat"),
}


def _asked(question: str) -> str:
    words = question.split()
    if words[:2] == ["where", "was"]:
        return "born_in"
    if words[:2] == ["where", "does"]:
        return "lives_in"
    return "dislikes" if "not" in words else "likes"


def test_held_out_qa_words_the_asked_facts_as_training_never_does(tw):
    dd = tw.qa(*SIZES, held_out=True)
    every = [w for words in QA_HELD_OUT_WORDS.values() for w in words]
    for r in dd["train"]:
        assert not any(w in r["context"] for w in every), r["context"]
    for split in ("validation", "test"):
        for r in dd[split]:
            tokens = r["tokens"]
            ends = [i for i, t in enumerate(tokens) if t == "."]
            start = max([e + 1 for e in ends if e < r["start_token"]], default=0)
            sentence = " ".join(tokens[start : min(e for e in ends if e > r["start_token"])])
            assert any(w in sentence for w in QA_HELD_OUT_WORDS[_asked(r["question"])]), (r["question"], sentence)
    plain = tw.qa(*SIZES)  # without held_out every wording can turn up in training
    assert any(w in r["context"] for r in plain["train"] for w in every)


def test_fact_qa_splits_people_and_answers_with_birthplaces(tw):
    dd = tw.fact_qa()
    people = [set(dd[s]["person"]) for s in ("train", "validation", "test")]
    assert sum(map(len, people)) == 60 and not (people[0] & people[2]) and not (people[0] & people[1])
    for split in dd:
        for r in dd[split]:
            assert r["answer"] == tw.world.by_name[r["person"]].born_in
            assert r["question"] == f"where was {r['person']} born ?"
    assert majority_baseline(dd) < 0.3
    with pytest.raises(ValueError, match="one question per person"):
        tw.fact_qa(50, 10, 10)


def test_word_sense_points_at_the_ambiguous_word(tw, suites):
    dd = suites["word_sense"]
    names = dd["train"].features["label"].names
    for r in dd["train"]:
        assert r["sentence"].split()[r["word_index"]] == r["word"] == names[r["label"]].split(":")[0]
    zh = tw.word_sense(*SIZES, language="zh")
    senses = tw.sense_dictionary()
    for r in zh["train"]:
        assert r["sentence"].split()[r["word_index"]] == r["word"] == senses[names[r["label"]].replace(":", "#")]


def test_nsp_pairs_come_from_one_document_or_two(tw, suites):
    dd = suites["nsp"]
    docs = tw.world.by_name
    for r in dd["train"]:
        a_names = {n for n in docs if n in r["sentence_a"]}
        b_names = {n for n in docs if n in r["sentence_b"]}
        if r["label"] == 1 and a_names and b_names:
            assert not a_names & b_names or len(a_names | b_names) > 1


def test_majority_baseline_by_hand():
    dd = DatasetDict(
        {"train": Dataset.from_dict({"label": [1, 1, 0]}), "test": Dataset.from_dict({"label": [0, 1, 1, 1]})}
    )
    assert majority_baseline(dd) == 0.75
    dd = DatasetDict({"train": Dataset.from_dict({"tags": [[2, 2, 1]]}), "test": Dataset.from_dict({"tags": [[1, 2]]})})
    assert majority_baseline(dd) == 0.5
    dd = DatasetDict(
        {
            "train": Dataset.from_dict({"answer": ["a", "b", "b"]}),
            "test": Dataset.from_dict({"answer": ["a", "c", "c", "b"]}),
        }
    )
    assert majority_baseline(dd) == 0.25


@pytest.mark.parametrize("n_people", [3, 4])
def test_who_qa_answers_with_the_name_that_comes_before_its_fact(tw, n_people):
    dd = who_qa(tw.world, SIZES, n_people=n_people)
    keys = {s: {(r["question"], r["context"]) for r in dd[s]} for s in dd}
    assert [len(keys[s]) for s in ("train", "validation", "test")] == list(SIZES)
    assert not keys["train"] & keys["validation"] and not keys["train"] & keys["test"]
    assert not keys["validation"] & keys["test"]
    places, kinds = Counter(), Counter()
    for r in dd["train"]:
        tokens, q = r["tokens"], r["question"].split()
        assert q[0] == "who" and q[-1] == "?"
        value = q[-2]
        assert tokens.count(value) == 1  # the asked city or company is named once
        sentences = " ".join(tokens).split(" . ")
        assert len(sentences) == n_people
        at = tokens.index(value)
        ends = [i for i, t in enumerate(tokens) if t == "."]
        start = max([e + 1 for e in ends if e < at], default=0)
        assert (r["start_token"], r["end_token"]) == (start, start + 1)  # the name opens the value's sentence
        person = tw.world.by_name[r["answer_text"]]
        assert r["answer_text"] == " ".join(tokens[start : start + 2])
        assert r["context"][r["answer_start"] :].startswith(r["answer_text"])
        if q[1:3] == ["was", "born"]:
            assert person.born_in == value
        else:
            assert q[1:3] == ["works", "for"] and surface(person.works_for) == value
        kinds[q[1]] += 1
        places[sum(e < start for e in ends)] += 1
        names = [" ".join(s.split()[:2]) for s in sentences]
        assert len(set(names)) == n_people and all(n in tw.world.by_name for n in names)  # name first, each once
    assert min(places.values()) > SIZES[0] / n_people / 2 and len(places) == n_people  # the place is no clue
    assert kinds["was"] == kinds["works"] == SIZES[0] / 2
    assert majority_baseline(dd) < 0.1
