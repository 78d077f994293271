"""The four BERT heads: shapes, losses, overfitting, loading a pre-trained body, freezing, and best_span."""

import pytest
import torch
import torch.nn.functional as F

from selfsup.bert import BertConfig, BertForPretraining
from selfsup.heads import (
    BertForQuestionAnswering,
    BertForSequenceClassification,
    BertForTokenClassification,
    best_span,
    freeze,
)

V = 100


def tiny(**kw) -> BertConfig:
    args = dict(vocab_size=V, d_model=32, n_heads=4, n_layers=2, d_ff=64, max_len=16, dropout=0.0)
    args.update(kw)
    return BertConfig(**args)


def batch(b=4, t=10, seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, V, (b, t), generator=g)
    tt = torch.zeros_like(ids)
    tt[:, t // 2 :] = 1
    mask = torch.ones_like(ids)
    mask[-1, t - 3 :] = 0
    return ids.masked_fill(mask == 0, 0), tt, mask


def overfit(model, inputs, steps=300, lr=5e-3, target=0.05):
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    for _ in range(steps):
        loss = model(**inputs).loss
        if loss.item() < target:
            break
        opt.zero_grad()
        loss.backward()
        opt.step()
    return loss.item()


def test_sequence_classification_shapes_loss_and_overfit():
    torch.manual_seed(0)
    model = BertForSequenceClassification(tiny(), num_labels=3)
    ids, tt, mask = batch()
    labels = torch.tensor([0, 1, 2, 1])
    out = model(ids, mask, tt, labels=labels)
    assert out.logits.shape == (4, 3)
    torch.testing.assert_close(out.loss, F.cross_entropy(out.logits, labels))
    # the logits come from the pooled [CLS] state
    pooled = model.bert(ids, mask, tt).pooler_output
    torch.testing.assert_close(out.logits, model.classifier(pooled))
    assert model(ids, mask, tt).loss is None
    assert overfit(model, dict(input_ids=ids, attention_mask=mask, token_type_ids=tt, labels=labels)) < 0.05


def test_sentence_pair_uses_token_types():
    torch.manual_seed(0)
    model = BertForSequenceClassification(tiny(), num_labels=2).eval()
    ids, tt, mask = batch()
    with torch.no_grad():
        assert not torch.allclose(model(ids, mask, tt).logits, model(ids, mask).logits)


def test_token_classification_shapes_loss_and_overfit():
    torch.manual_seed(0)
    model = BertForTokenClassification(tiny(), num_labels=5)
    ids, tt, mask = batch()
    g = torch.Generator().manual_seed(1)
    labels = torch.randint(0, 5, ids.shape, generator=g)
    labels[:, 0] = -100
    labels[mask == 0] = -100
    out = model(ids, mask, labels=labels)
    assert out.logits.shape == (4, 10, 5)
    keep = labels != -100
    torch.testing.assert_close(out.loss, F.cross_entropy(out.logits[keep], labels[keep]))
    # -100 is what leaves those positions out: giving them a class changes the loss
    other = labels.clone()
    other[:, 0] = 3
    assert not torch.allclose(model(ids, mask, labels=other).loss, out.loss)
    assert overfit(model, dict(input_ids=ids, attention_mask=mask, labels=labels)) < 0.05


def test_question_answering_shapes_loss_and_overfit():
    torch.manual_seed(0)
    model = BertForQuestionAnswering(tiny())
    ids, tt, mask = batch()
    starts, ends = torch.tensor([5, 6, 7, 5]), torch.tensor([6, 8, 7, 6])
    out = model(ids, mask, tt, start_positions=starts, end_positions=ends)
    assert out.start_logits.shape == out.end_logits.shape == (4, 10)
    assert out.logits.shape == (4, 10, 2)
    expected = (F.cross_entropy(out.start_logits, starts) + F.cross_entropy(out.end_logits, ends)) / 2
    torch.testing.assert_close(out.loss, expected)
    # start / end scores are dot products of each token's state with two learned vectors
    h = model.bert(ids, mask, tt).last_hidden_state
    w, b = model.qa.weight, model.qa.bias
    torch.testing.assert_close(out.start_logits, h @ w[0] + b[0])
    torch.testing.assert_close(out.end_logits, h @ w[1] + b[1])
    assert model(ids, mask, tt).loss is None
    inputs = dict(input_ids=ids, attention_mask=mask, token_type_ids=tt, start_positions=starts, end_positions=ends)
    assert overfit(model, inputs) < 0.05
    with torch.no_grad():
        out = model(ids, mask, tt)
    s, e = best_span(out.start_logits, out.end_logits, context_mask=tt.bool() & mask.bool())
    assert torch.equal(s, starts) and torch.equal(e, ends)


@pytest.mark.parametrize("source", ["pretraining", "body"])
def test_from_pretrained_body_copies_the_body(source):
    torch.manual_seed(0)
    pre = BertForPretraining(tiny())
    with torch.no_grad():  # make the body differ from any fresh init
        for p in pre.parameters():
            p.add_(0.1)
    src = pre if source == "pretraining" else pre.bert
    heads = [
        BertForSequenceClassification.from_pretrained_body(src, num_labels=3),
        BertForTokenClassification.from_pretrained_body(src, 4),
        BertForQuestionAnswering.from_pretrained_body(src),
    ]
    ids, tt, mask = batch()
    ref = pre.bert.eval()(ids, mask, tt).last_hidden_state
    for head in heads:
        head.eval()
        torch.testing.assert_close(head.bert(ids, mask, tt).last_hidden_state, ref)
        # a copy, not a share: training the head leaves the source alone
        assert head.bert.embeddings.word.weight is not pre.bert.embeddings.word.weight
        with torch.no_grad():
            head.bert.embeddings.word.weight.add_(1.0)
        torch.testing.assert_close(pre.bert(ids, mask, tt).last_hidden_state, ref)
    assert heads[0].num_labels == 3 and heads[1].num_labels == 4


def test_load_state_dict_of_body_works_directly():
    torch.manual_seed(0)
    pre = BertForPretraining(tiny())
    head = BertForSequenceClassification(tiny(), num_labels=2)
    head.bert.load_state_dict(pre.bert.state_dict())
    mine, theirs = head.bert.state_dict(), pre.bert.state_dict()
    assert mine.keys() == theirs.keys() and all(torch.equal(mine[k], theirs[k]) for k in mine)


def test_same_seed_gives_same_body_under_any_head():
    torch.manual_seed(3)
    a = BertForPretraining(tiny()).bert.state_dict()
    torch.manual_seed(3)
    b = BertForTokenClassification(tiny(), 2).bert.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_freeze_keeps_body_fixed_while_head_learns():
    torch.manual_seed(0)
    model = BertForSequenceClassification(tiny(), num_labels=2)
    assert freeze(model.bert) is model.bert
    assert not any(p.requires_grad for p in model.bert.parameters())
    assert all(p.requires_grad for p in model.classifier.parameters())
    body0 = {k: v.clone() for k, v in model.bert.state_dict().items()}
    head0 = model.classifier.weight.clone()
    ids, tt, mask = batch()
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    loss = model(ids, mask, labels=torch.tensor([0, 1, 0, 1])).loss
    loss.backward()
    opt.step()
    assert all(torch.equal(body0[k], v) for k, v in model.bert.state_dict().items())
    assert not torch.equal(head0, model.classifier.weight)
    freeze(model.bert, frozen=False)
    assert all(p.requires_grad for p in model.bert.parameters())


def test_bad_num_labels():
    with pytest.raises(ValueError, match="num_labels"):
        BertForSequenceClassification(tiny(), num_labels=0)
    with pytest.raises(ValueError, match="num_labels"):
        BertForTokenClassification(tiny(), num_labels=-1)


def brute_force_span(s, e, mask, max_len):
    best, arg = float("-inf"), (0, 0)
    for i in range(len(s)):
        for j in range(i, min(len(s), i + max_len)):
            if mask[i] and mask[j] and s[i] + e[j] > best:
                best, arg = s[i] + e[j], (i, j)
    return arg


@pytest.mark.parametrize("max_len", [1, 3, 30])
def test_best_span_matches_brute_force(max_len):
    g = torch.Generator().manual_seed(max_len)
    b, t = 40, 12
    s, e = torch.randn(b, t, generator=g), torch.randn(b, t, generator=g)
    mask = torch.rand(b, t, generator=g) < 0.6
    mask[0] = False  # no context at all -> (0, 0)
    mask[1] = True
    start, end = best_span(s, e, mask, max_answer_len=max_len)
    assert start.shape == end.shape == (b,)
    for k in range(b):
        assert (start[k].item(), end[k].item()) == brute_force_span(s[k].tolist(), e[k].tolist(), mask[k], max_len)
    # without a mask, every position counts
    start, end = best_span(s, e, max_answer_len=max_len)
    for k in range(b):
        assert (start[k].item(), end[k].item()) == brute_force_span(s[k].tolist(), e[k].tolist(), [True] * t, max_len)


def test_best_span_respects_order_and_single_example():
    s = torch.tensor([0.0, 0.0, 0.0, 5.0, 0.0])
    e = torch.tensor([0.0, 4.0, 0.0, 0.0, 1.0])
    # the best end (1) lies before the best start (3): the answer must be 3..4
    start, end = best_span(s, e)
    assert start.dim() == 0 and (start.item(), end.item()) == (3, 4)
    with pytest.raises(ValueError, match="max_answer_len"):
        best_span(s, e, max_answer_len=0)
