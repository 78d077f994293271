"""Chapter 2's experiments at the "tiny" preset (seconds each), and the pieces they are built from.

The book's build asserts the book-preset checks; these tests check structure, ranges, the span decoding, the
sharing of one four_cases run through the cache, and the attention summaries of the real MiniLM.
"""

import math

import pytest
import torch

from selfsup.experiments import REGISTRY, ch2

pytestmark = pytest.mark.usefixtures("private_cache")  # conftest: a fresh model cache for this module


@pytest.fixture(scope="module")
def tiny_result():
    return ch2.four_cases_cached(seed=0, preset="tiny")


def test_four_cases_tiny_has_every_task_in_range(tiny_result):
    r = tiny_result
    assert set(r.finetuned) == set(r.majority) == set(ch2.TASKS)
    for task in ch2.TASKS:
        assert 0.0 <= r.majority[task] <= 1.0 and 0.0 <= r.finetuned[task] <= 1.0
        assert len(r.loss[task]) == ch2.FOUR_CASES["tiny"].steps_for(task)
        assert all(math.isfinite(x) for x in r.loss[task])
    # balanced classes: the majority baselines of sentiment (2 classes) and NLI (3) are near 1/2 and 1/3
    assert r.majority["nli"] < 0.6 and r.majority["qa"] < 0.5


def test_qa_example_span_is_ordered_short_and_inside_the_context(tiny_result):
    ex = tiny_result.qa_example
    n = len(ex["tokens"])
    assert len(ex["start_logits"]) == len(ex["end_logits"]) == len(ex["context"]) == n
    s, e = ex["chosen"]
    assert s <= e < s + ch2.MAX_ANSWER_LEN
    assert ex["context"][s] and ex["context"][e]
    assert ex["tokens"][0] == "[CLS]" and ex["tokens"].count("[SEP]") == 2
    # the chosen span is the best-scoring allowed span (brute force over all pairs)
    st, en = ex["start_logits"], ex["end_logits"]
    allowed = [
        (i, j)
        for i in range(n)
        for j in range(i, min(n, i + ch2.MAX_ANSWER_LEN))
        if ex["context"][i] and ex["context"][j]
    ]
    best = max(allowed, key=lambda ij: st[ij[0]] + en[ij[1]])
    assert math.isclose(st[s] + en[e], st[best[0]] + en[best[1]], abs_tol=1e-3)


def test_four_cases_cached_is_computed_once(tiny_result, monkeypatch):
    def boom(**kwargs):
        raise AssertionError("four_cases ran again instead of coming from the cache")

    monkeypatch.setattr(ch2, "four_cases", boom)
    again = ch2.four_cases_cached(seed=0, preset="tiny")
    assert again.finetuned == tiny_result.finetuned and again.qa_example == tiny_result.qa_example


def test_mini_glue_rows(tiny_result):
    rows = ch2.mini_glue_rows(tiny_result)
    assert [r["task"] for r in rows] == list(ch2.TASKS)
    assert all(set(r) == {"task", "glue_counterpart", "metric", "majority", "book"} for r in rows)
    by_task = {r["task"]: r for r in rows}
    assert by_task["sentiment"]["glue_counterpart"] == "SST-2"
    assert "MNLI" in by_task["nli"]["glue_counterpart"] and "SQuAD" in by_task["qa"]["glue_counterpart"]
    assert by_task["qa"]["book"] == tiny_result.finetuned["qa"]


def test_checks_detect_a_head_at_its_majority(tiny_result):
    exp = REGISTRY["ch2.four_cases"]
    same = dict.fromkeys(ch2.TASKS, 0.4)
    fake = ch2.FourCasesResult(majority=same, finetuned=dict(same), validation={}, loss={}, seconds={})
    assert not any(held for _, held, _ in exp.outcomes(fake))
    fake.finetuned = dict.fromkeys(ch2.TASKS, 0.95)
    fake.majority = dict.fromkeys(ch2.TASKS, 0.3)
    assert all(held for _, held, _ in exp.outcomes(fake))


def test_frozen_probe_leaves_the_body_unchanged_and_reuses_full_scores(tiny_result):
    r = ch2.frozen_vs_full(seed=0, preset="tiny")
    assert set(r.full) == set(r.frozen) == set(ch2.FROZEN_TASKS)
    assert r.full == {t: tiny_result.finetuned[t] for t in ch2.FROZEN_TASKS}
    assert all(0.0 <= v <= 1.0 for v in r.frozen.values())
    # a frozen fine-tune trains the head only: the body's weights equal the pre-trained ones afterwards
    body, _ = ch2.toy_bert(0, "tiny")
    data, _ = ch2.encoded_task("pos", 0, ch2.FOUR_CASES["tiny"].sizes)
    model, _ = ch2.finetune_model("pos", body, data, settings=ch2.FOUR_CASES["tiny"], seed=0, frozen=True)
    for name, p in body.bert.state_dict().items():
        torch.testing.assert_close(model.bert.state_dict()[name], p)
    full, _ = ch2.finetune_model("pos", body, data, settings=ch2.FOUR_CASES["tiny"], seed=0)
    assert not torch.equal(full.bert.embeddings.word.weight, body.bert.embeddings.word.weight)


def test_minilm_attention_summaries():
    a = ch2.minilm_attention("The cat sat on the mat.", "A cat was sitting on a mat.")
    n_layers, n_heads, t, _ = a.weights.shape
    assert (n_layers, n_heads) == (6, 12) and t == len(a.tokens)
    torch.testing.assert_close(a.weights.sum(-1), torch.ones(n_layers, n_heads, t))
    assert a.tokens[0] == "[CLS]" and a.tokens.count("[SEP]") == 2
    assert a.token_type_ids[0] == 0 and a.token_type_ids[-1] == 1
    # the summaries are the shares they claim to be, for one head
    w = a.weights[1, 3]
    torch.testing.assert_close(a.previous[1, 3], torch.stack([w[i, i - 1] for i in range(1, t)]).mean())
    torch.testing.assert_close(a.to_cls[1, 3], w[:, 0].mean())
    cat = [i for i, tok in enumerate(a.tokens) if tok == "cat"]
    assert len(cat) == 2
    assert 0 < a.same_word_across.max() <= 1


@pytest.mark.slow
def test_minilm_sentiment_predicts_every_review_once_from_other_topics():
    r = ch2.minilm_sentiment(seed=1, preset="tiny")
    from selfsup.pretrained_data import SENTIMENT

    assert r.n_test == len(SENTIMENT) == len(r.predictions)
    assert sorted(t for t, _, _ in r.predictions) == sorted(t for t, _ in SENTIMENT)
    assert all(guess in (0, 1) for _, _, guess in r.predictions)
    assert r.accuracy == sum(y == g for _, y, g in r.predictions) / r.n_test


def test_sentiment_tries_two_learning_rates_and_the_others_one():
    s = ch2.FOUR_CASES["book"]
    assert len(s.lrs_for("sentiment")) == 2 and s.lr in s.lrs_for("sentiment")
    assert all(s.lrs_for(t) == (s.lr,) for t in ("pos", "nli", "qa"))
