"""BERT encoder and pre-training model: shapes, losses, masking, attention paths, config checks, determinism."""

import math

import pytest
import torch
import torch.nn.functional as F

from selfsup.bert import BertConfig, BertForPretraining, BertModel
from selfsup.layers import set_attn_impl

V, T = 100, 16


def tiny(**kw) -> BertConfig:
    args = dict(vocab_size=V, d_model=32, n_heads=4, n_layers=2, d_ff=64, max_len=T, dropout=0.0)
    args.update(kw)
    return BertConfig(**args)


def batch(b=3, t=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, V, (b, t), generator=g)
    tt = torch.zeros_like(ids)
    tt[:, t // 2 :] = 1
    return ids, tt


def test_shapes_and_no_loss_without_labels():
    torch.manual_seed(0)
    model = BertForPretraining(tiny())
    ids, tt = batch()
    out = model(ids, token_type_ids=tt)
    assert out.logits.shape == (3, 12, V)
    assert out.nsp_logits.shape == (3, 2)
    assert out.loss is None and out.mlm_loss is None and out.nsp_loss is None and out.hidden_states is None
    body = model.bert(ids, token_type_ids=tt)
    assert body.last_hidden_state.shape == (3, 12, 32)
    assert body.pooler_output.shape == (3, 32)
    # the pooler is tanh of a Linear on position 0
    expected = torch.tanh(model.bert.pooler(body.last_hidden_state[:, 0]))
    torch.testing.assert_close(body.pooler_output, expected)


def test_hidden_states_count_and_ends():
    torch.manual_seed(0)
    model = BertModel(tiny(n_layers=3)).eval()
    ids, tt = batch()
    out = model(ids, token_type_ids=tt, output_hidden_states=True)
    assert len(out.hidden_states) == 4
    torch.testing.assert_close(out.hidden_states[0], model.embeddings(ids, tt))
    torch.testing.assert_close(out.hidden_states[-1], out.last_hidden_state)
    # each layer changes the states
    for a, b in zip(out.hidden_states, out.hidden_states[1:], strict=False):
        assert not torch.allclose(a, b)


def test_initial_mlm_loss_is_about_log_vocab():
    torch.manual_seed(0)
    model = BertForPretraining(tiny())
    ids, _ = batch(b=8)
    out = model(ids, labels=ids)
    assert abs(out.loss.item() - math.log(V)) < 0.3


def test_loss_is_mlm_plus_nsp_and_ignores_minus_100():
    torch.manual_seed(0)
    model = BertForPretraining(tiny())
    ids, tt = batch()
    labels = torch.full_like(ids, -100)
    labels[:, 2] = ids[:, 2]
    labels[0, 5] = 7
    nsp = torch.tensor([0, 1, 1])
    out = model(ids, token_type_ids=tt, labels=labels, next_sentence_label=nsp)
    keep = labels != -100
    full = model(ids, token_type_ids=tt).logits  # (B, T, V) without labels
    assert full.shape == (*ids.shape, V)
    # with labels, the head scores only the labelled positions: (N, V), row-major
    torch.testing.assert_close(out.logits, full[keep])
    mlm = F.cross_entropy(full[keep], labels[keep])
    nsp_loss = F.cross_entropy(out.nsp_logits, nsp)
    torch.testing.assert_close(out.mlm_loss, mlm)
    torch.testing.assert_close(out.nsp_loss, nsp_loss)
    torch.testing.assert_close(out.loss, mlm + nsp_loss)
    # without the NSP label, MLM alone (NSP turned off)
    mlm_only = model(ids, token_type_ids=tt, labels=labels)
    torch.testing.assert_close(mlm_only.loss, mlm)
    assert mlm_only.nsp_loss is None
    nsp_only = model(ids, token_type_ids=tt, next_sentence_label=nsp)
    torch.testing.assert_close(nsp_only.loss, nsp_loss)


def test_nsp_ignores_pairs_labelled_minus_100_and_a_batch_of_only_those_has_zero_loss():
    torch.manual_seed(0)
    model = BertForPretraining(tiny())
    ids, tt = batch()
    out = model(ids, token_type_ids=tt, next_sentence_label=torch.tensor([1, -100, 0]))
    kept = F.cross_entropy(out.nsp_logits[[0, 2]], torch.tensor([1, 0]))
    torch.testing.assert_close(out.nsp_loss, kept)
    none = model(ids, token_type_ids=tt, next_sentence_label=torch.full((3,), -100))
    assert none.loss.item() == 0.0


def test_a_batch_with_no_masked_position_has_zero_mlm_loss_not_nan():
    torch.manual_seed(0)
    model = BertForPretraining(tiny())
    ids, _ = batch()
    out = model(ids, labels=torch.full_like(ids, -100))
    assert out.loss.item() == 0.0
    out.loss.backward()  # and a finite (zero) gradient
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_decoder_is_tied_to_word_embeddings():
    torch.manual_seed(0)
    model = BertForPretraining(tiny())
    assert model.mlm.decoder.weight is model.bert.embeddings.word.weight
    assert torch.all(model.bert.embeddings.word.weight[0] == 0)  # [PAD] row stays zero after init
    n_unique = sum(p.numel() for p in model.parameters())
    n_named = sum(p.numel() for _, p in model.named_parameters(remove_duplicate=False))
    assert n_named - n_unique == V * 32


def test_overfits_one_batch():
    torch.manual_seed(0)
    model = BertForPretraining(tiny())
    ids, tt = batch(b=4, t=10)
    labels = torch.full_like(ids, -100)
    labels[:, 3:6] = ids[:, 3:6]
    inputs = ids.clone()
    inputs[:, 3:6] = 1  # a [MASK]-like id
    nsp = torch.tensor([0, 1, 0, 1])
    opt = torch.optim.AdamW(model.parameters(), lr=5e-3)
    for _ in range(300):  # about 60 steps are enough
        loss = model(inputs, token_type_ids=tt, labels=labels, next_sentence_label=nsp).loss
        if loss.item() < 0.1:
            break
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.1


@pytest.mark.parametrize("impl", ["sdpa", "reference"])
def test_padding_invariance(impl):
    torch.manual_seed(0)
    model = BertForPretraining(tiny(attn_impl=impl)).eval()
    ids, tt = batch(b=2, t=10)
    pad = torch.zeros(2, 4, dtype=torch.long)
    ids_p = torch.cat([ids, pad], dim=1)
    tt_p = torch.cat([tt, pad], dim=1)
    mask_p = torch.cat([torch.ones_like(ids), pad], dim=1)
    with torch.no_grad():
        short = model(ids, token_type_ids=tt)
        long = model(ids_p, attention_mask=mask_p, token_type_ids=tt_p)
        unmasked = model(ids_p, token_type_ids=tt_p)
    assert (short.logits - long.logits[:, :10]).abs().max() <= 1e-5
    assert (short.nsp_logits - long.nsp_logits).abs().max() <= 1e-5
    # and the mask really matters: without it the pads change the real tokens
    assert (short.logits - unmasked.logits[:, :10]).abs().max() > 1e-3


def test_sdpa_equals_reference_path():
    torch.manual_seed(0)
    model = BertForPretraining(tiny()).eval()
    ids, tt = batch()
    mask = torch.ones_like(ids)
    mask[1, 7:] = 0
    mask[2, 4:] = 0
    with torch.no_grad():
        fast = [model(ids, m, tt).logits for m in (None, mask)]
        set_attn_impl(model, "reference")
        slow = [model(ids, m, tt).logits for m in (None, mask)]
    for a, b in zip(fast, slow, strict=True):
        assert (a - b).abs().max() <= 1e-5


def test_all_ones_mask_equals_no_mask():
    torch.manual_seed(0)
    model = BertModel(tiny()).eval()
    ids, tt = batch()
    with torch.no_grad():
        a = model(ids, None, tt).last_hidden_state
        b = model(ids, torch.ones_like(ids), tt).last_hidden_state
    assert (a - b).abs().max() <= 1e-5


def test_positions_and_token_types_are_used():
    torch.manual_seed(0)
    model = BertModel(tiny()).eval()
    ids, tt = batch()
    with torch.no_grad():
        base = model(ids, token_type_ids=tt).last_hidden_state
        other_types = model(ids, token_type_ids=1 - tt).last_hidden_state
        same = torch.full_like(ids, 5)
        flat = model(same).last_hidden_state
    assert not torch.allclose(base, other_types)
    # identical tokens at different positions get different states
    assert (flat[:, 0] - flat[:, 1]).abs().max() > 1e-3


def test_norm_first_variant_runs():
    torch.manual_seed(0)
    model = BertForPretraining(tiny(norm_first=True))
    ids, _ = batch()
    out = model(ids, labels=ids, output_hidden_states=True)
    assert out.logits.shape == (3 * 12, V) and len(out.hidden_states) == 3
    assert abs(out.loss.item() - math.log(V)) < 0.3


def test_too_long_input_raises():
    model = BertModel(tiny())
    with pytest.raises(ValueError, match="max_len"):
        model(torch.ones(1, T + 1, dtype=torch.long))
    model(torch.ones(1, T, dtype=torch.long))  # exactly max_len is fine


@pytest.mark.parametrize(
    "field, value",
    [
        ("vocab_size", 0),
        ("d_model", -32),
        ("n_heads", 0),
        ("n_layers", 0),
        ("d_ff", 0),
        ("max_len", 0),
        ("type_vocab_size", 0),
        ("dropout", 1.0),
        ("dropout", -0.1),
        ("layer_norm_eps", 0.0),
        ("pad_token_id", V),
        ("activation", "swish"),
        ("init_std", 0.0),
        ("attn_impl", "flash"),
    ],
)
def test_bad_config_names_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        tiny(**{field: value})


def test_heads_must_divide_d_model():
    with pytest.raises(ValueError, match="n_heads"):
        tiny(d_model=30, n_heads=4)


def test_config_defaults_and_model_type():
    cfg = BertConfig(vocab_size=10)
    assert (cfg.d_model, cfg.n_heads, cfg.n_layers, cfg.d_ff, cfg.max_len) == (256, 4, 4, 1024, 128)
    assert BertConfig.model_type == "bert" and cfg.activation == "gelu" and cfg.norm_first is False


def test_seeded_determinism():
    def make(seed):
        torch.manual_seed(seed)
        return BertForPretraining(tiny()).state_dict()

    a, b, c = make(1), make(1), make(2)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a)
