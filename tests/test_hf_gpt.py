import pytest
import torch
import transformers

from selfsup.gpt import GPT, GPTConfig
from selfsup.hf import gpt_config_from_hf, gpt_config_to_hf, gpt_from_hf, gpt_to_hf

V = 100
ATOL = 1e-5


def make_gpt(**overrides) -> GPT:
    kw = dict(vocab_size=V, d_model=32, n_heads=4, n_layers=2, max_len=24, d_ff=48, layer_norm_eps=1e-6)
    kw.update(overrides)
    torch.manual_seed(0)
    model = GPT(GPTConfig(**kw)).eval()
    randomize(model)
    return model


def randomize(model, seed: int = 1, scale: float = 0.3) -> None:
    """Move every weight (biases and norms included) away from its init so that a swapped tensor shows."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g) * scale)


def ids(b: int = 2, t: int = 12, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, V, (b, t), generator=torch.Generator().manual_seed(seed))


def test_config_translation_both_ways():
    cfg = GPTConfig(vocab_size=V, d_model=48, n_heads=6, n_layers=3, d_ff=80, max_len=40, dropout=0.2)
    hf = gpt_config_to_hf(cfg)
    assert (hf.vocab_size, hf.n_embd, hf.n_head, hf.n_layer, hf.n_inner, hf.n_positions) == (V, 48, 6, 3, 80, 40)
    assert hf.activation_function == "gelu_new"
    assert hf.layer_norm_epsilon == cfg.layer_norm_eps
    assert hf.tie_word_embeddings is True
    assert hf.resid_pdrop == hf.embd_pdrop == hf.attn_pdrop == 0.2
    assert gpt_config_from_hf(hf) == cfg
    # n_inner=None means 4 * n_embd in GPT-2
    assert gpt_config_from_hf(transformers.GPT2Config(n_embd=32, n_head=4, n_inner=None)).d_ff == 128
    exact = gpt_config_to_hf(GPTConfig(vocab_size=V, d_model=32, n_heads=4, activation="gelu"))
    assert exact.activation_function == "gelu"
    assert gpt_config_from_hf(exact).activation == "gelu"


def test_gpt_to_hf_gives_the_same_logits_and_loss():
    model = make_gpt()
    hf = gpt_to_hf(model)
    assert not hf.training
    x = ids()
    ours, theirs = model(x, labels=x), hf(x, labels=x)
    assert theirs.logits.shape == ours.logits.shape
    assert (theirs.logits - ours.logits).abs().max().item() <= ATOL
    torch.testing.assert_close(theirs.loss, ours.loss, atol=ATOL, rtol=0)
    assert hf.lm_head.weight.data_ptr() == hf.transformer.wte.weight.data_ptr()


def test_gpt_from_hf_gives_the_same_logits():
    torch.manual_seed(0)
    hf_config = transformers.GPT2Config(
        vocab_size=V, n_embd=32, n_head=4, n_layer=2, n_positions=24, n_inner=None, bos_token_id=None, eos_token_id=None
    )
    hf = transformers.GPT2LMHeadModel(hf_config).eval()
    randomize(hf)
    model = gpt_from_hf(hf)
    assert not model.training
    x = ids()
    assert (model(x).logits - hf(x).logits).abs().max().item() <= ATOL
    assert model.lm_head.weight is model.tok_emb.weight


def test_round_trip_keeps_every_tensor():
    model = make_gpt()
    back = gpt_from_hf(gpt_to_hf(model))
    assert back.config == model.config
    before, after = model.state_dict(), back.state_dict()
    assert before.keys() == after.keys()
    for name in before:
        assert torch.equal(before[name], after[name]), name


def test_converted_model_survives_save_and_load(tmp_path):
    model = make_gpt()
    gpt_to_hf(model).save_pretrained(tmp_path)
    loaded = transformers.GPT2LMHeadModel.from_pretrained(tmp_path).eval()
    x = ids()
    assert (loaded(x).logits - model(x).logits).abs().max().item() <= ATOL
    assert (gpt_from_hf(loaded)(x).logits - model(x).logits).abs().max().item() <= ATOL


def test_transformers_greedy_generate_matches_ours():
    model = make_gpt()
    hf = gpt_to_hf(model)
    prompt = ids(2, 4)
    ours = model.generate(prompt, max_new_tokens=8, temperature=0.0)
    theirs = hf.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=8, do_sample=False)
    assert torch.equal(theirs, ours)


def test_bias_free_gpt_converts_with_zero_biases():
    model = make_gpt(bias=False)
    hf = gpt_to_hf(model)
    assert torch.count_nonzero(hf.transformer.h[0].attn.c_attn.bias) == 0
    x = ids()
    assert (hf(x).logits - model(x).logits).abs().max().item() <= ATOL


@pytest.mark.parametrize(
    "field, value",
    [
        ("activation_function", "silu"),
        ("scale_attn_by_inverse_layer_idx", True),
        ("scale_attn_weights", False),
        ("add_cross_attention", True),
    ],
)
def test_gpt2_options_without_an_equivalent_raise(field, value):
    hf_config = transformers.GPT2Config(n_embd=32, n_head=4, n_layer=1, **{field: value})
    with pytest.raises(ValueError, match=field):
        gpt_config_from_hf(hf_config)


def test_untied_hf_model_raises():
    hf_config = transformers.GPT2Config(vocab_size=V, n_embd=32, n_head=4, n_layer=1, tie_word_embeddings=False)
    with pytest.raises(ValueError, match="tie_word_embeddings"):
        gpt_config_from_hf(hf_config)
