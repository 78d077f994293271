"""BERT <-> transformers.BertForPreTraining: config translation, equal outputs both ways, save and reload."""

import pytest
import torch
import transformers

from selfsup.bert import BertConfig, BertForPretraining
from selfsup.hf import bert_config_from_hf, bert_config_to_hf, bert_from_hf, bert_to_hf

V = 100
TOL = 1e-5


def tiny(**kw) -> BertConfig:
    args = dict(vocab_size=V, d_model=32, n_heads=4, n_layers=2, d_ff=64, max_len=16)
    args.update(kw)
    return BertConfig(**args)


def padded_batch():
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(1, V, (3, 12), generator=g)
    mask = torch.ones_like(ids)
    mask[1, 8:] = 0
    mask[2, 5:] = 0
    ids = ids.masked_fill(mask == 0, 0)
    tt = torch.zeros_like(ids)
    tt[:, 3:] = 1
    tt = tt * mask
    return ids, mask, tt


def trained_like(model):
    """Perturb every weight so that zero biases and unit LayerNorms cannot hide a mis-mapped tensor."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))
    return model


def max_diff(a, b):
    return (a - b).abs().max().item()


def compare(ours, hf, ids, mask, tt):
    with torch.no_grad():
        a = ours(ids, mask, tt, output_hidden_states=True)
        b = hf(input_ids=ids, attention_mask=mask, token_type_ids=tt, output_hidden_states=True)
    assert max_diff(a.logits, b.prediction_logits) <= TOL
    assert max_diff(a.nsp_logits, b.seq_relationship_logits) <= TOL
    return a, b


@pytest.mark.parametrize("activation", ["gelu", "gelu_tanh"])
def test_to_hf_gives_equal_logits(activation):
    torch.manual_seed(0)
    ours = trained_like(BertForPretraining(tiny(activation=activation))).eval()
    hf = bert_to_hf(ours).eval()
    assert isinstance(hf, transformers.BertForPreTraining)
    ids, mask, tt = padded_batch()
    a, b = compare(ours, hf, ids, mask, tt)
    # every layer's states agree, embeddings first
    assert len(a.hidden_states) == 3
    for x, y in zip(a.hidden_states, b.hidden_states, strict=False):
        assert max_diff(x, y) <= TOL
    # without a mask too (our fast path)
    compare(ours, hf, ids, None, tt)
    # and the summed MLM + NSP loss
    labels = torch.where(mask.bool(), ids, -100)
    nsp = torch.tensor([0, 1, 0])
    with torch.no_grad():
        la = ours(ids, mask, tt, labels=labels, next_sentence_label=nsp).loss
        lb = hf(input_ids=ids, attention_mask=mask, token_type_ids=tt, labels=labels, next_sentence_label=nsp).loss
    assert abs(la.item() - lb.item()) <= TOL


def test_hf_model_is_tied_like_ours():
    torch.manual_seed(0)
    hf = bert_to_hf(BertForPretraining(tiny()))
    assert hf.cls.predictions.decoder.weight is hf.bert.embeddings.word_embeddings.weight
    assert hf.config.tie_word_embeddings


def test_from_hf_gives_equal_logits_and_round_trips():
    torch.manual_seed(0)
    hf_cfg = transformers.BertConfig(
        vocab_size=V,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=16,
        hidden_act="gelu",
        layer_norm_eps=1e-7,
    )
    hf = trained_like(transformers.BertForPreTraining(hf_cfg)).eval()
    ours = bert_from_hf(hf).eval()
    assert isinstance(ours, BertForPretraining)
    assert ours.config.layer_norm_eps == 1e-7 and ours.config.max_len == 16 and ours.config.d_ff == 64
    assert ours.mlm.decoder.weight is ours.bert.embeddings.word.weight
    ids, mask, tt = padded_batch()
    compare(ours, hf, ids, mask, tt)
    # selfsup -> HF -> selfsup gives back the very same tensors
    back = bert_from_hf(bert_to_hf(ours)).state_dict()
    mine = ours.state_dict()
    assert back.keys() == mine.keys()
    assert all(torch.equal(back[k], mine[k]) for k in mine)


@pytest.mark.parametrize("attn_implementation", ["sdpa", "eager"])
def test_save_pretrained_and_reload(tmp_path, attn_implementation):
    torch.manual_seed(0)
    ours = trained_like(BertForPretraining(tiny())).eval()
    bert_to_hf(ours).save_pretrained(tmp_path)
    loaded = transformers.BertForPreTraining.from_pretrained(tmp_path, attn_implementation=attn_implementation)
    loaded.eval()
    ids, mask, tt = padded_batch()
    compare(ours, loaded, ids, mask, tt)
    again = bert_from_hf(loaded).eval()
    compare(again, loaded, ids, mask, tt)


def test_config_translation_both_ways():
    cfg = tiny(activation="gelu_tanh", dropout=0.2, layer_norm_eps=1e-6, pad_token_id=3, type_vocab_size=3)
    hf = bert_config_to_hf(cfg)
    assert (hf.hidden_size, hf.num_attention_heads, hf.num_hidden_layers, hf.intermediate_size) == (32, 4, 2, 64)
    assert hf.max_position_embeddings == 16 and hf.type_vocab_size == 3 and hf.pad_token_id == 3
    assert hf.hidden_act == "gelu_pytorch_tanh" and hf.layer_norm_eps == 1e-6
    assert hf.hidden_dropout_prob == hf.attention_probs_dropout_prob == 0.2
    assert bert_config_from_hf(hf) == cfg
    assert bert_config_to_hf(tiny()).hidden_act == "gelu"


def test_unconvertible_configs_raise():
    with pytest.raises(ValueError, match="norm_first"):
        bert_config_to_hf(tiny(norm_first=True))
    with pytest.raises(ValueError, match="hidden_act"):
        bert_config_from_hf(transformers.BertConfig(vocab_size=V, hidden_act="silu"))
