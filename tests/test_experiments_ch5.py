"""Chapter 5's experiments at the "tiny" preset, and the pieces they are built from.

The book's build asserts the book-preset checks; these tests check that the probe's classifier, the cosine
summaries and the DNA encodings compute what they claim, and that the checks reject results that break them.
"""

import pytest
import torch

from selfsup.experiments import REGISTRY, Experiment, ch5, ch5_dna

pytestmark = pytest.mark.usefixtures("private_cache")  # conftest: a fresh model cache for this module


def test_nearest_centroid_picks_the_closer_sense_within_the_word():
    x_tr = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9], [1.0, 1.0], [-1.0, 1.0]])
    y_tr = ["apple:fruit", "apple:fruit", "apple:company", "apple:company", "bat:animal", "bat:sports"]
    x_te = torch.tensor([[1.0, 0.2], [0.2, 1.0], [-0.2, 1.0]])
    # the last test vector is closest to apple:company overall, but it is a "bat": only bat's senses compete
    acc = ch5.nearest_centroid(
        x_tr, y_tr, x_te, ["apple:fruit", "apple:company", "bat:sports"], ["apple", "apple", "bat"]
    )
    assert acc == 1.0
    wrong = ch5.nearest_centroid(
        x_tr, y_tr, x_te, ["apple:company", "apple:fruit", "bat:animal"], ["apple"] * 2 + ["bat"]
    )
    assert wrong == 0.0


def test_within_across_leaves_out_the_diagonal():
    sim = torch.tensor([[1.0, 0.8, 0.1], [0.8, 1.0, 0.3], [0.1, 0.3, 1.0]])
    within, across = ch5._within_across(sim, 2)
    assert within == pytest.approx(0.8) and across == pytest.approx(0.2)


@pytest.mark.slow
def test_apple_matrices_are_cosines_and_the_input_layer_is_one_vector():
    r = ch5.apple(seed=3, preset="tiny")
    cos = torch.tensor(r.cosine)
    assert cos.shape == (7, 10, 10)
    torch.testing.assert_close(torch.diagonal(cos, dim1=1, dim2=2), torch.ones(7, 10), atol=1e-4, rtol=0)
    torch.testing.assert_close(cos, cos.transpose(1, 2))
    assert r.senses == ["fruit"] * 5 + ["company"] * 5 and r.static_across == pytest.approx(1.0)
    assert all("apple" in s.lower() for s in r.sentences)
    ch5.apple.verify(r)  # no training involved: the book's claims hold at any preset


def test_apple_checks_reject_a_model_without_context():
    exp = REGISTRY["ch5.apple"]
    flat = ch5.AppleResult([], [], [], within=[0.9] * 7, across=[0.9] * 7, static_across=1.0, seconds=0.0)
    held = [h for _, h, _ in exp.outcomes(flat)]
    assert held == [False, True, False]


def test_sense_probe_tiny_ranges_and_static_vector_at_chance():
    r = ch5.sense_probe(seed=0, preset="tiny")
    assert len(r.minilm) == 7 and len(r.toy) == 3  # input embedding + 6 layers; input + the tiny BERT's 2 layers
    assert all(0.0 <= a <= 1.0 for a in r.minilm + r.toy)
    assert set(r.toy_by_word) == {"apple", "bank", "bat", "mouse", "spring"}
    # one vector per word type cannot tell senses apart: a balanced two-way choice scores one half
    assert r.minilm_static == 0.5 and r.toy_static == pytest.approx(0.5, abs=0.1)
    assert min(r.minilm[1:]) >= 0.9  # MiniLM is pre-trained whatever the preset


def test_toy_chinese_writes_the_sense_into_the_word():
    rows = ch5.toy_chinese_senses(n=4)
    assert len(rows) == 4
    for row in rows:
        assert "apple" in row["english"].split()
        assert row["word (zh)"] == {"fruit": "苹果", "company": "苹果公司"}[row["sense"]]
        assert row["word (zh)"] in row["toy chinese"].split()


def test_dna_as_words_maps_every_base():
    mapping = ch5_dna.MINILM_MAP
    assert ch5_dna.as_words("ACGT", mapping) == "apple car green table"
    for mapping in ch5_dna.TOY_MAPS.values():
        assert sorted(mapping) == list("ACGT") and len(set(mapping.values())) == 4


def test_dna_words_are_single_pieces():
    from selfsup.experiments.zoo import toy_tokenizer

    tok = toy_tokenizer()
    for mapping in ch5_dna.TOY_MAPS.values():
        assert all(len(tok.tokenize(w)) == 1 for w in mapping.values())


def test_dna_toy_tiny_runs_both_inits_and_mappings():
    r = ch5_dna.dna_toy(seed=0, preset="tiny")
    s = ch5_dna.DNA_TOY["tiny"]
    assert r.maps == list(ch5_dna.TOY_MAPS)
    # one random-init run serves both mappings (a random table has no word meanings to swap)
    assert [set(r.test[m]) for m in r.maps] == [{"pre-trained", "random init"}, {"pre-trained"}]
    for m in r.maps:
        assert all(len(r.loss[m][i]) == s.steps for i in r.test[m])
        assert all(len(r.curve[m][i]) == len(r.steps) == s.steps // s.eval_every for i in r.test[m])
    assert r.majority == 0.5


def test_dna_checks_reject_equal_inits():
    exp = Experiment("ch5.dna_toy", "", "", ch5_dna.dna_toy, tuple(ch5_dna.DNA_TOY_CHECKS), lambda r: {})
    maps = list(ch5_dna.TOY_MAPS)
    test = {maps[0]: {"pre-trained": 0.7, "random init": 0.7}, maps[1]: {"pre-trained": 0.7}}
    curve = {maps[0]: {"pre-trained": [0.6, 0.7], "random init": [0.6, 0.7]}, maps[1]: {"pre-trained": [0.6, 0.7]}}
    r = ch5_dna.DnaResult(test, curve, {}, [1, 2], 0.0, maps=maps)
    assert not any(h for _, h, _ in exp.outcomes(r))
    for m in maps:
        r.test[m]["pre-trained"] = 0.95
        r.curve[m]["pre-trained"] = [0.9, 0.95]
    assert all(h for _, h, _ in exp.outcomes(r))


def test_sense_probe_checks_reject_vectors_without_sense():
    exp = REGISTRY["ch5.sense_probe"]
    blind = ch5.SenseProbeResult([0.5] * 7, 0.5, [0.5] * 3, 0.5, {}, 0.0)
    assert [h for _, h, _ in exp.outcomes(blind)] == [False, False, False, False]
    sharp = ch5.SenseProbeResult([0.6] + [1.0] * 6, 0.5, [0.9, 0.95, 1.0], 0.5, {}, 0.0)
    assert all(h for _, h, _ in exp.outcomes(sharp))
