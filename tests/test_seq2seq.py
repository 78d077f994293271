import math

import pytest
import torch

from selfsup.layers import set_attn_impl
from selfsup.seq2seq import Seq2Seq, Seq2SeqConfig, shift_right

V, PAD, BOS, EOS = 100, 0, 1, 2


def make_model(seed: int = 0, **overrides) -> Seq2Seq:
    kw = dict(
        vocab_size=V,
        d_model=32,
        n_heads=4,
        n_encoder_layers=2,
        n_decoder_layers=2,
        max_len=32,
        dropout=0.0,
        pad_token_id=PAD,
        decoder_start_token_id=BOS,
        eos_token_id=EOS,
    )
    kw.update(overrides)
    torch.manual_seed(seed)
    return Seq2Seq(Seq2SeqConfig(**kw)).eval()


def randomize(model, seed: int = 1, scale: float = 0.3) -> None:
    """Move every weight away from its init so that tests see all of them."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g) * scale)


def ids(b: int = 2, t: int = 10, seed: int = 0) -> torch.Tensor:
    # ids from 3 up: no pad, start or eos by accident
    return torch.randint(3, V, (b, t), generator=torch.Generator().manual_seed(seed))


def test_shift_right():
    labels = torch.tensor([[5, 6, 7, EOS], [8, EOS, -100, -100]])
    expected = torch.tensor([[BOS, 5, 6, 7], [BOS, 8, EOS, PAD]])
    assert torch.equal(shift_right(labels, BOS, PAD), expected)
    assert torch.equal(labels, torch.tensor([[5, 6, 7, EOS], [8, EOS, -100, -100]]))  # input untouched


def test_shapes_and_tied_embeddings():
    model = make_model()
    out = model(ids(3, 9), labels=ids(3, 6, seed=1))
    assert out.logits.shape == (3, 6, V)
    assert out.encoder_last_hidden_state.shape == (3, 9, 32)
    assert out.loss.ndim == 0
    assert model(ids(3, 9), decoder_input_ids=ids(3, 4)).loss is None
    assert model.lm_head.weight is model.tok_emb.weight
    assert model.config.d_ff == 128


def test_labels_give_the_shifted_decoder_inputs():
    model = make_model()
    randomize(model)
    x, y = ids(), ids(2, 7, seed=1)
    y[1, 5:] = -100
    out = model(x, labels=y)
    explicit = model(x, decoder_input_ids=shift_right(y, BOS, PAD))
    torch.testing.assert_close(out.logits, explicit.logits)
    manual = torch.nn.functional.cross_entropy(out.logits.reshape(-1, V), y.reshape(-1), ignore_index=-100)
    torch.testing.assert_close(out.loss, manual)
    with pytest.raises(ValueError, match="labels or decoder_input_ids"):
        model(x)


def test_initial_loss_is_about_ln_vocab():
    model = make_model()
    loss = model(ids(4, 12), labels=ids(4, 12, seed=1)).loss
    assert abs(loss.item() - math.log(V)) < 0.3


def test_overfits_one_batch():
    model = make_model()
    model.train()
    x = ids(4, 8)
    y = x.flip(1)  # reconstruct the input reversed: needs the encoder, not just the decoder's past
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(50):
        loss = model(x, labels=y).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.2  # from ln(100) = 4.6


@pytest.mark.parametrize("norm_first", [True, False])
def test_encoder_is_invariant_to_padding(norm_first):
    model = make_model(norm_first=norm_first)
    randomize(model)
    x = ids(2, 8)
    padded = torch.cat([x, torch.full((2, 4), PAD)], dim=1)
    mask = torch.cat([torch.ones(2, 8), torch.zeros(2, 4)], dim=1).long()
    torch.testing.assert_close(model.encode(padded, mask)[:, :8], model.encode(x), atol=1e-5, rtol=1e-5)
    # the decoder does not see the padding through cross-attention either
    y = ids(2, 5, seed=1)
    torch.testing.assert_close(model(padded, mask, labels=y).logits, model(x, labels=y).logits, atol=1e-5, rtol=1e-5)
    # ...and without the mask it does
    assert not torch.allclose(model.encode(padded)[:, :8], model.encode(x), atol=1e-3)


def test_encoder_is_bidirectional_and_decoder_is_causal():
    model = make_model()
    randomize(model)
    x, d = ids(), ids(2, 8, seed=1)
    x2 = x.clone()
    x2[:, -1] = (x2[:, -1] + 1) % V
    assert not torch.allclose(model.encode(x)[:, 0], model.encode(x2)[:, 0])  # a later token reaches the first
    d2 = d.clone()
    d2[:, 5:] = (d2[:, 5:] + 1) % V
    a = model(x, decoder_input_ids=d).logits
    b = model(x, decoder_input_ids=d2).logits
    torch.testing.assert_close(a[:, :5], b[:, :5])
    assert not torch.allclose(a[:, 5:], b[:, 5:])


@pytest.mark.parametrize("norm_first", [True, False])
def test_cached_decoding_matches_a_full_forward(norm_first):
    model = make_model(norm_first=norm_first)
    randomize(model)
    x, d = ids(), ids(2, 8, seed=1)
    mask = torch.ones_like(x)
    mask[1, -3:] = 0
    full = model(x, mask, decoder_input_ids=d).logits
    memory = model.encode(x, mask)
    logits, cache = model.decode(d[:, :3], memory, mask, use_cache=True)
    pieces = [logits]
    for t in range(3, 8):
        logits, cache = model.decode(d[:, t : t + 1], memory, mask, past_key_values=cache, use_cache=True)
        pieces.append(logits)
    torch.testing.assert_close(torch.cat(pieces, dim=1), full, atol=1e-5, rtol=1e-5)
    self_kv, cross_kv = cache[0]
    assert self_kv[0].shape[2] == 8  # the self-attention cache grew with every token
    assert cross_kv[0].shape[2] == x.shape[1]  # the cross-attention cache holds the source once


def test_sdpa_and_reference_attention_agree():
    model = make_model()
    randomize(model)
    x, d = ids(), ids(2, 8, seed=1)
    mask = torch.ones_like(x)
    mask[0, -4:] = 0
    dmask = torch.ones_like(d)
    dmask[1, -2:] = 0
    sdpa = model(x, mask, decoder_input_ids=d, decoder_attention_mask=dmask).logits
    set_attn_impl(model, "reference")
    ref = model(x, mask, decoder_input_ids=d, decoder_attention_mask=dmask).logits
    torch.testing.assert_close(ref, sdpa, atol=1e-5, rtol=1e-5)


def test_generate_is_greedy_and_cache_matches_no_cache():
    model = make_model()
    randomize(model)
    x = ids(3, 9)
    mask = torch.ones_like(x)
    mask[2, -4:] = 0
    out = model.generate(x, mask, max_new_tokens=8)
    assert torch.equal(out, model.generate(x, mask, max_new_tokens=8, use_cache=False))
    assert (out[:, 0] == BOS).all()
    for t in range(1, out.shape[1]):
        step = model(x, mask, decoder_input_ids=out[:, :t]).logits[:, -1].argmax(-1)
        done = (out[:, 1:t] == EOS).any(dim=1)  # finished rows are padded, not decoded
        assert torch.equal(out[:, t], torch.where(done, torch.full_like(step, PAD), step))


def test_generation_is_invariant_to_source_padding():
    model = make_model()
    randomize(model)
    x = ids(2, 8)
    padded = torch.cat([x, torch.full((2, 5), PAD)], dim=1)
    mask = (padded != PAD).long()
    assert torch.equal(model.generate(padded, mask, max_new_tokens=6), model.generate(x, max_new_tokens=6))


def test_generation_stops_at_eos_and_pads_finished_rows():
    model = make_model()
    randomize(model)
    x = ids(2, 8)
    model.config.eos_token_id = None
    free = model.generate(x, max_new_tokens=8)  # no eos: a free run to the end
    eos = free[0, 2].item()  # row 0 produces it by its second step
    model.config.eos_token_id = eos
    model.config.pad_token_id = pad = 98 if eos != 98 else 97  # generation reads it; a visible value
    expected, ends = free.clone(), []
    for row in expected:  # after a row's first eos only pad; stop when every row has ended
        end = torch.nonzero(row[1:] == eos).flatten()[0].item() + 2 if (row[1:] == eos).any() else len(row)
        row[end:] = pad
        ends.append(end)
    out = model.generate(x, max_new_tokens=8)
    assert torch.equal(out, expected[:, : max(ends)])
    assert ends[0] <= 3
    single = model.generate(x[:1], max_new_tokens=8)
    assert torch.equal(single, free[:1, : ends[0]])  # stops right after its eos


def test_generate_runs_without_dropout_and_keeps_the_mode():
    model = make_model(dropout=0.5)
    randomize(model)
    model.train()
    x = ids()
    a, b = model.generate(x, max_new_tokens=6), model.generate(x, max_new_tokens=6)
    assert model.training
    assert torch.equal(a, b)


def test_too_long_inputs_raise():
    model = make_model(max_len=16)
    with pytest.raises(ValueError, match="max_len"):
        model(ids(1, 17), labels=ids(1, 4))
    with pytest.raises(ValueError, match="max_len"):
        model(ids(1, 4), labels=ids(1, 17))
    with pytest.raises(ValueError, match="max_new_tokens"):
        model.generate(ids(1, 4), max_new_tokens=17)


@pytest.mark.parametrize(
    "field, value",
    [
        ("vocab_size", 0),
        ("n_heads", 5),
        ("n_encoder_layers", 0),
        ("n_decoder_layers", 0),
        ("max_len", -1),
        ("dropout", -0.1),
        ("pad_token_id", V),
        ("decoder_start_token_id", -1),
        ("eos_token_id", V + 5),
        ("activation", "tanh"),
        ("attn_impl", "flash"),
    ],
)
def test_bad_config_raises_naming_the_field(field, value):
    kw = dict(vocab_size=V, d_model=32, n_heads=4, decoder_start_token_id=BOS)
    kw[field] = value
    with pytest.raises(ValueError, match=field):
        Seq2SeqConfig(**kw)


def test_decoder_start_defaults_to_eos():
    assert Seq2SeqConfig(vocab_size=V, eos_token_id=EOS).decoder_start_token_id == EOS
    with pytest.raises(ValueError, match="decoder_start_token_id"):
        Seq2SeqConfig(vocab_size=V)


def test_seeded_init_is_deterministic():
    x, y = ids(), ids(2, 6, seed=1)
    a, b, c = (make_model(seed=s)(x, labels=y).logits for s in (3, 3, 4))
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not torch.allclose(a, c)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_seq2seq_on_cuda_matches_cpu():
    model = make_model()
    randomize(model)
    x, y = ids(), ids(2, 6, seed=1)
    mask = torch.ones_like(x)
    mask[1, -3:] = 0
    cpu_logits = model(x, mask, labels=y).logits
    gpu = model.to("cuda")
    x, y, mask = x.cuda(), y.cuda(), mask.cuda()
    torch.testing.assert_close(gpu(x, mask, labels=y).logits.cpu(), cpu_logits, atol=1e-4, rtol=1e-4)
    out = gpu.generate(x, mask, max_new_tokens=8)
    assert out.device.type == "cuda"
    assert torch.equal(out, gpu.generate(x, mask, max_new_tokens=8, use_cache=False))
    with torch.autocast("cuda", dtype=torch.bfloat16):
        loss = gpu(x, mask, labels=y).loss
    assert torch.isfinite(loss)
