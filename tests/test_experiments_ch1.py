"""Chapter 1's experiments at the "tiny" preset (seconds each), and the measurements they are built from.

The book's build asserts the book-preset checks; these tests check structure, ranges and the mechanisms.
"""

import pytest
import torch

from selfsup.data.collate import MLMCollator
from selfsup.experiments import REGISTRY, ch1
from selfsup.experiments.zoo import toy_tokenizer, toy_world

pytestmark = pytest.mark.usefixtures("private_cache")  # conftest: a fresh model cache for this module


def test_both_experiments_are_registered_with_checks():
    for name in ("ch1.mlm_mix", "ch1.nsp"):
        assert name in REGISTRY
        assert len(REGISTRY[name].checks) >= 2


def test_mask_only_mix_never_leaves_a_visible_token_at_a_scored_position():
    tok = toy_tokenizer()
    rows = [{"input_ids": tok(s)["input_ids"]} for s in toy_world().sentences(300, seed=1)]
    g = torch.Generator().manual_seed(0)
    batch = MLMCollator(tok, mlm_probability=0.25, generator=g, **ch1.MIXES["100% [MASK]"])(rows)
    scored = batch["labels"] != -100
    assert scored.sum() > 300
    assert (batch["input_ids"][scored] == tok.mask_token_id).all()
    g = torch.Generator().manual_seed(0)
    batch = MLMCollator(tok, mlm_probability=0.25, generator=g, **ch1.MIXES["80/10/10"])(rows)
    scored = batch["labels"] != -100
    visible = (batch["input_ids"][scored] == batch["labels"][scored]).float().mean().item()
    assert 0.05 < visible < 0.16  # the 10 % kept, plus the rare random draw of the same token


def test_sentence_pairs_swap_the_same_two_texts():
    tok = toy_tokenizer()
    pairs = ch1.sentence_pairs(toy_world().documents(30, seed=5), tok, 64, seed=0)
    labels = [e["next_sentence_label"] for e in pairs["nsp"]]
    assert 0 < sum(labels) < len(labels)
    order = pairs["order"]
    assert [e["next_sentence_label"] for e in order[:2]] == [0, 1]
    first, second = order[0], order[1]
    assert sorted(first["input_ids"]) == sorted(second["input_ids"])  # same tokens, other order
    assert first["input_ids"] != second["input_ids"]
    n_a = first["token_type_ids"].count(0)
    a, b = first["input_ids"][1 : n_a - 1], first["input_ids"][n_a:-1]
    assert second["input_ids"] == [tok.cls_token_id, *b, tok.sep_token_id, *a, tok.sep_token_id]
    assert second["token_type_ids"] == [0] * (len(b) + 2) + [1] * (len(a) + 1)


def test_visible_identity_of_a_copying_model_is_one():
    """A stand-in whose MLM logits peak at the input token scores 1; one that always says "." does not."""
    tok = toy_tokenizer()
    sentences = toy_world().sentences(10, seed=2)

    class Copy(torch.nn.Module):
        def forward(self, input_ids, attention_mask):
            return type("Out", (), {"logits": torch.nn.functional.one_hot(input_ids, len(tok)).float()})

    class Dot(torch.nn.Module):
        def forward(self, input_ids, attention_mask):
            logits = torch.zeros(*input_ids.shape, len(tok))
            logits[..., tok.convert_tokens_to_ids(".")] = 1
            return type("Out", (), {"logits": logits})

    assert ch1.visible_identity(Copy(), tok, sentences) == 1.0
    assert ch1.visible_identity(Dot(), tok, sentences) < 0.3


def test_mlm_mix_tiny_has_the_numbers_the_page_reads():
    r = ch1.mlm_mix(seed=0, preset="tiny")
    assert set(r.identity) == set(r.probe) == set(r.finetuned) == set(ch1.MIXES)
    for values in (r.identity, r.probe, r.finetuned):
        assert all(0.0 <= v <= 1.0 for v in values.values())
    numbers = ch1.mlm_mix.numbers(r)
    assert len(numbers) == 6 and all(isinstance(v, float) for v in numbers.values())
    outcomes = ch1.mlm_mix.outcomes(r)
    assert len(outcomes) == 3 and all(isinstance(held, bool) for _, held, _ in outcomes)
    assert r.mlm_loss["80/10/10"] != r.mlm_loss["100% [MASK]"]  # two different models were trained
    assert len(r.loss_curves["80/10/10"]) == 20


def test_nsp_tiny_has_the_numbers_the_page_reads():
    r = ch1.nsp(seed=0, preset="tiny")
    assert set(r.nli) == {"with NSP", "without NSP"}
    for v in (r.nsp_accuracy, r.order_accuracy, r.swapped_called_next, *r.nli.values()):
        assert 0.0 <= v <= 1.0
    assert len(ch1.nsp.outcomes(r)) == 3
    assert set(ch1.nsp.numbers(r)) >= {"NSP accuracy", "order accuracy", "NLI, with NSP", "NLI, without NSP"}


def test_unknown_preset_is_refused():
    with pytest.raises(ValueError, match="preset"):
        ch1.mlm_mix(seed=0, preset="huge")
