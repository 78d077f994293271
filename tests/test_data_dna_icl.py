"""DNA-like motif sequences and in-context-learning prompts."""

import json
import re
from collections import Counter

import pytest

from selfsup.data import World, dna_dataset, dna_motifs, icl_answer, icl_dataset, icl_prompts


def test_dna_labels_are_recoverable_by_motif_search():
    dd = dna_dataset(200, 40, 40, length=48, n_classes=4, seed=1)
    motifs = dna_motifs(4, 6, seed=1)
    names = dd["train"].features["label"].names
    for split in dd:
        for r in dd[split]:
            seq = r["sequence"]
            assert len(seq) == 48 and set(seq) <= set("ACGT")
            found = [i for i, m in enumerate(motifs) if m in seq]
            assert found == [r["label"]]
            assert names[r["label"]].endswith(motifs[r["label"]])
        counts = Counter(dd[split]["label"])
        assert max(counts.values()) - min(counts.values()) <= 1
    seqs = [set(dd[s]["sequence"]) for s in dd]
    assert not seqs[0] & seqs[1] and not seqs[0] & seqs[2] and not seqs[1] & seqs[2]
    assert dna_dataset(20, 5, 5, seed=1)["test"].to_dict() == dna_dataset(20, 5, 5, seed=1)["test"].to_dict()
    assert dna_dataset(20, 5, 5, seed=1)["test"].to_dict() != dna_dataset(20, 5, 5, seed=2)["test"].to_dict()
    with pytest.raises(ValueError, match="length"):
        dna_dataset(5, 1, 1, length=8)


def test_icl_linear_answers_follow_the_rule():
    for p in icl_prompts("linear", 50, k=4, seed=0):
        xs = [int(x) for x, _ in p.examples] + [int(p.query)]
        ys = [int(y) for _, y in p.examples] + [int(p.answer)]
        a = (ys[1] - ys[0]) // (xs[1] - xs[0])  # recover the rule from two examples
        b = ys[0] - a * xs[0]
        assert all(y == a * x + b for x, y in zip(xs, ys, strict=True))
        assert (a, b) == (p.rule["a"], p.rule["b"]) and 1 <= a <= 5 and 0 <= b <= 9
        assert p.query not in [x for x, _ in p.examples]
        assert p.text.endswith(f"\n{p.query} ->") and p.text.count("\n") == 4


def test_icl_mapping_copies_from_the_context():
    prompts = icl_prompts("mapping", 50, k=5, seed=0)
    rules = set()
    for p in prompts:
        shown = dict(p.examples)
        assert len(shown) == 5 and p.answer == shown[p.query]
        assert icl_answer("mapping", p.rule, p.query) == p.answer
        rules.add(json.dumps(p.rule, sort_keys=True))
    assert len(rules) == 50  # a fresh hidden map for every prompt
    with pytest.raises(ValueError, match="k must be"):
        icl_prompts("mapping", 1, k=0)


def test_icl_relation_answers_are_world_facts():
    world = World(seed=2, n_people=30)
    for p in icl_prompts("relation", 20, k=3, seed=0, world=world):
        for x, y in p.examples + [(p.query, p.answer)]:
            assert world.by_name[x].born_in == y
    ds = icl_dataset("relation", 8, k=0, seed=0, world=world, relation="lives_in")
    assert ds["k"] == [0] * 8 and all(re.fullmatch(r"[a-z]+ [a-z]+ ->", t) for t in ds["text"])
    assert all(world.by_name[q].lives_in == a for q, a in zip(ds["query"], ds["answer"], strict=True))
    assert icl_prompts("linear", 5, 2, seed=3)[0].text == icl_prompts("linear", 5, 2, seed=3)[0].text
