"""Chapter 3's experiments at the "tiny" preset, and what they are built from: the causal (left-to-right) option
of the BERT encoder, its next-token batches, snapshots along pre-training, and the checks' logic.

The book's build asserts the book-preset checks; these tests check that the pieces do what the chapter says.
"""

import math

import numpy as np
import pytest
import torch

from selfsup import flops
from selfsup.bert import BertConfig, BertModel
from selfsup.experiments import REGISTRY, ch2, ch3
from selfsup.experiments.ch3_embryology import majority, ridge_probe, snapshots
from selfsup.experiments.pretraining import NextTokenCollator, PretrainSettings
from selfsup.experiments.zoo import bert_preset, toy_bert, toy_tokenizer

pytestmark = pytest.mark.usefixtures("private_cache")  # conftest: a fresh model cache for this module


def test_causal_encoder_does_not_look_ahead_and_the_default_does():
    torch.manual_seed(0)
    ids = torch.randint(5, 50, (2, 10))
    later = ids.clone()
    later[:, 6:] = 3  # change only the tokens from position 6 on
    for causal in (True, False):
        model = BertModel(BertConfig(vocab_size=50, d_model=32, n_heads=4, n_layers=2, d_ff=64, causal=causal)).eval()
        a, b = model(ids).last_hidden_state, model(later).last_hidden_state
        assert torch.allclose(a[:, :6], b[:, :6], atol=1e-5) == causal
    assert BertConfig(vocab_size=50).causal is False  # BERT reads both ways unless asked


def test_next_token_batches_label_each_position_with_the_token_after_it():
    a = {"input_ids": [2, 7, 8, 3], "token_type_ids": [0, 0, 0, 0]}
    b = {"input_ids": [2, 9, 3], "token_type_ids": [0, 1, 1]}
    batch = NextTokenCollator(pad_id=0)([a, b])
    assert batch["labels"].tolist() == [[7, 8, 3, -100], [9, 3, -100, -100]]
    assert batch["token_type_ids"].tolist() == [[0, 0, 0, 0], [0, 1, 1, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 1], [1, 1, 1, 0]]


def test_an_unknown_objective_is_refused():
    with pytest.raises(ValueError, match="objective"):
        PretrainSettings(objective="backwards")


def test_snapshots_follow_the_same_run_as_the_cached_model():
    model, _ = toy_bert(0, "tiny")
    snaps, _ = snapshots(bert_preset("tiny"), 0, (0, 5, 20))
    assert sorted(snaps) == [0, 5, 20]
    final = model.state_dict()
    assert all(torch.equal(snaps[20][k], v) for k, v in final.items())  # the last snapshot is toy_bert's model
    assert not all(torch.equal(snaps[0][k], v) for k, v in final.items())  # and training changed the first


@pytest.fixture(scope="module")
def scratch():
    return ch3.pretrained_vs_scratch(seed=0, preset="tiny")


def test_pretrained_vs_scratch_compares_like_with_like(scratch):
    r, s = scratch, ch2.FOUR_CASES["tiny"]
    four = ch2.four_cases_cached(seed=0, preset="tiny")
    for task in ch3.TASKS:
        assert len(r.loss_scratch[task]) == len(r.loss_pretrained[task]) == s.steps_for(task)
        assert r.loss_pretrained[task] == four.loss[task] and r.pretrained[task] == four.finetuned[task]
        assert r.lr_scratch[task] in s.lrs_for(task)
        assert 0 <= r.scratch[task] <= 1 and all(math.isfinite(x) for x in r.loss_scratch[task])
    quarter = r.loss_scratch["nli"][: max(1, len(r.loss_scratch["nli"]) // 4)]
    assert r.early_loss("scratch", "nli") == pytest.approx(sum(quarter) / len(quarter))


def test_scratch_checks_fail_when_scratch_wins(scratch):
    exp = REGISTRY["ch3.pretrained_vs_scratch"]
    swapped = ch3.ScratchResult(
        scratch.scratch, scratch.pretrained, scratch.majority, scratch.loss_scratch, scratch.loss_pretrained, {}, 0.0
    )
    swapped.pretrained = {t: 0.5 for t in ch3.TASKS}
    swapped.scratch = {t: 0.9 for t in ch3.TASKS}
    held = {claim: ok for claim, ok, _ in exp.outcomes(swapped)}
    assert not any(ok for claim, ok in held.items() if "seed spread" in claim)


def test_bidirectional_vs_ltr_pretrains_one_encoder_two_ways():
    r = ch3.bidirectional_vs_ltr(seed=0, preset="tiny")
    assert set(r.qa) == set(ch3.QA_TASKS)
    for task in ch3.QA_TASKS:
        assert set(r.qa[task]) == {*ch3.ARMS, "no pre-training"}
        assert all(0 <= v <= 1 for v in r.qa[task].values())
        assert r.gap(task) == r.qa[task]["bidirectional (MLM)"] - r.qa[task]["left-to-right (LM)"]
    assert r.majority[ch3.BEFORE] < 0.2  # no one name answers who-QA
    mlm, _ = toy_bert(0, "tiny", objective="mlm")
    ltr, _ = toy_bert(0, "tiny", objective="causal")
    assert ltr.config.causal and not mlm.config.causal
    assert sum(p.numel() for p in ltr.parameters()) == sum(p.numel() for p in mlm.parameters())
    # the same steps and batches; the left-to-right head scores every token, MLM's only the masked ones
    left, bi = r.pretrain_flops["left-to-right (LM)"], r.pretrain_flops["bidirectional (MLM)"]
    assert left > bi


def test_who_task_marks_the_name_word_pieces_before_the_fact():
    data, majority = ch3.who_task(0, (20, 5, 5))
    tok = toy_tokenizer()
    for e in data["train"]:
        pieces = tok.convert_ids_to_tokens(e["input_ids"])
        question = pieces[1 : pieces.index("[SEP]")]
        answer = tok.convert_tokens_to_string(pieces[e["start_positions"] : e["end_positions"] + 1])
        assert e["token_type_ids"][e["start_positions"]] == 1  # in the context, not the question
        value = tok.convert_tokens_to_string(question[question.index("in" if "born" in question else "for") + 1 : -1])
        after = tok.convert_tokens_to_string(pieces[e["end_positions"] + 1 :])
        assert len(answer.split()) == 2 and value in after.split(".")[0].split()  # its fact follows the name
    assert 0 <= majority < 0.5


def test_direction_checks_follow_the_gaps():
    exp = REGISTRY["ch3.bidirectional_vs_ltr"]
    arms = ("bidirectional (MLM)", "left-to-right (LM)", "no pre-training")

    def result(after: tuple, before: tuple) -> ch3.DirectionResult:
        qa = {ch3.AFTER: dict(zip(arms, after, strict=True)), ch3.BEFORE: dict(zip(arms, before, strict=True))}
        return ch3.DirectionResult(qa, qa, {}, {}, {}, 0.0)

    assert all(ok for _, ok, _ in exp.outcomes(result((0.45, 0.55, 0.3), (0.2, 0.7, 0.2))))
    bert_like = {claim: ok for claim, ok, _ in exp.outcomes(result((0.6, 0.45, 0.3), (0.9, 0.45, 0.2)))}
    assert [ok for ok in bert_like.values()] == [True, False, True, False]  # BERT's direction fails these


def test_embryology_probes_every_snapshot():
    r = ch3.embryology(seed=0, preset="tiny")
    steps = list(ch3.EMBRYOLOGY["tiny"].steps)
    assert r.steps == steps and len(r.mlm_loss) == len(r.pos) == len(r.sentiment) == len(steps)
    assert r.mlm_loss[-1] < r.mlm_loss[0]  # even 20 tiny steps lower the held-out MLM loss
    assert all(0 <= a <= 1 for a in r.pos + r.sentiment)
    assert 0 < r.majority["pos"] < 0.5 and r.majority["sentiment"] <= 0.6


def test_arrival_is_the_first_step_with_most_of_the_change():
    r = ch3.EmbryologyResult([0, 10, 20, 30], [5.0, 3.0, 2.2, 2.0], [0.2, 0.9, 0.95, 1.0], [0.5, 0.5, 0.6, 0.9], {}, 0)
    assert r.arrival("pos") == 20  # 0.2 + 0.9 * 0.8 = 0.92
    assert r.arrival("mlm_loss") == 20  # 5 - 0.9 * 3 = 2.3
    assert r.arrival("sentiment") == 30


def test_embryology_checks_reject_a_model_that_learned_nothing_or_everything():
    exp = REGISTRY["ch3.embryology"]
    steps = list(ch3.EMBRYOLOGY["book"].steps)
    flat = ch3.EmbryologyResult(steps, [6.9, 6.8, 6.6, 6.0, 5.0, 4.5, 4.3], [0.9] * 7, [0.5] * 7, {"sentiment": 0.5}, 0)
    held = [ok for _, ok, _ in exp.outcomes(flat)]
    assert held == [False, False, True]  # late MLM loss and no POS gain fail; flat sentiment holds
    early = ch3.EmbryologyResult(
        steps,
        [6.9, 5, 4.9, 4.6, 4.5, 4.4, 4.3],
        [0.87, 0.9, 0.9, 0.91, 0.91, 0.92, 0.93],
        [0.5, 0.6, 0.7, 0.8, 0.9, 0.9, 0.9],
        {"sentiment": 0.5},
        0,
    )
    assert [ok for _, ok, _ in exp.outcomes(early)] == [True, True, False]  # a sentiment that arrived fails


def test_ridge_probe_separates_what_is_linear_and_not_noise():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 8))
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(int)
    assert ridge_probe(x[:300], y[:300], x[300:], y[300:]) > 0.95
    noise = rng.integers(0, 2, 400)
    assert abs(ridge_probe(x[:300], noise[:300], x[300:], noise[300:]) - 0.5) < 0.15


def test_majority_counts_words_for_tags():
    data = {"train": [{"labels": [-100, 1, 1, 2, -100]}], "test": [{"labels": [-100, 1, 2, 2, 2, -100]}]}
    assert majority(data) == 0.25


def test_cost_counts_with_the_library():
    r = ch3.cost(seed=0, preset="tiny")
    b = ch3.BERT_BASE
    assert r.bert_pretrain == pytest.approx(6 * 110e6 * 256 * 512 * 1e6)
    body, _ = toy_bert(0, "tiny")
    s = bert_preset("tiny")
    tokens = s.steps * s.batch_size * s.seq_len
    per_token = flops.train_flops_per_token(body, s.seq_len, mlm_rate=s.mlm_probability)
    assert r.ours_pretrain == pytest.approx(tokens * per_token)
    assert set(r.ours_finetune) == set(ch3.FINETUNE_TASKS) and r.bert_ratio < 1e-3
    assert r.bert_flops_per_chip_second == pytest.approx(r.bert_pretrain / (b["days"] * 86400 * b["tpu_chips"]))
