import math

import pytest
import torch

from selfsup.gpt import GPT, GPTConfig, top_k_filter, top_p_filter
from selfsup.layers import set_attn_impl

V, T = 100, 12


def make_gpt(seed: int = 0, **overrides) -> GPT:
    kw = dict(vocab_size=V, d_model=32, n_heads=4, n_layers=2, max_len=32, dropout=0.0)
    kw.update(overrides)
    torch.manual_seed(seed)
    return GPT(GPTConfig(**kw)).eval()


def randomize(model, seed: int = 1, scale: float = 0.3) -> None:
    """Move every weight away from its init (zero biases, unit norms) so that tests see all of them."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g) * scale)


def ids(b: int = 2, t: int = T, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, V, (b, t), generator=torch.Generator().manual_seed(seed))


def test_shapes_and_cache_shapes():
    model = make_gpt()
    out = model(ids(3, 7), use_cache=True)
    assert out.logits.shape == (3, 7, V)
    assert out.loss is None
    assert len(out.past_key_values) == 2
    k, v = out.past_key_values[0]
    assert k.shape == v.shape == (3, 4, 7, 8)
    assert model(ids(3, 7)).past_key_values is None


def test_d_ff_defaults_to_four_times_d_model_and_head_is_tied():
    model = make_gpt()
    assert model.config.d_ff == 128
    assert model.layers[0].ff.fc1.out_features == 128
    assert model.lm_head.weight is model.tok_emb.weight


def test_residual_projections_get_scaled_init():
    model = make_gpt(n_layers=8, d_model=64)
    expected = 0.02 / math.sqrt(16)
    for block in model.layers:
        assert block.attn.proj.weight.std().item() == pytest.approx(expected, rel=0.1)
        assert block.ff.fc2.weight.std().item() == pytest.approx(expected, rel=0.1)
        assert block.attn.qkv.weight.std().item() == pytest.approx(0.02, rel=0.1)


def test_initial_loss_is_about_ln_vocab():
    model = make_gpt()
    x = ids(4, 16)
    loss = model(x, labels=x).loss
    assert abs(loss.item() - math.log(V)) < 0.3


def test_labels_are_shifted_inside_and_minus_100_ignored():
    model = make_gpt()
    randomize(model)
    x = ids()
    out = model(x, labels=x)
    logits = out.logits
    manual = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, V), x[:, 1:].reshape(-1))
    torch.testing.assert_close(out.loss, manual)
    labels = x.clone()
    labels[:, 5:] = -100
    partial = model(x, labels=labels).loss
    manual = torch.nn.functional.cross_entropy(logits[:, :4].reshape(-1, V), x[:, 1:5].reshape(-1))
    torch.testing.assert_close(partial, manual)


def test_overfits_one_batch():
    model = make_gpt()
    model.train()
    x = ids(4, 16)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(40):
        loss = model(x, labels=x).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.2  # from ln(100) = 4.6


def test_causality_future_tokens_do_not_change_past_logits():
    model = make_gpt()
    randomize(model)
    x = ids()
    y = x.clone()
    y[:, 6:] = (y[:, 6:] + 1) % V
    a, b = model(x).logits, model(y).logits
    torch.testing.assert_close(a[:, :6], b[:, :6])
    assert not torch.allclose(a[:, 6:], b[:, 6:])


def test_attention_mask_hides_masked_tokens():
    model = make_gpt()
    randomize(model)
    x = ids()
    mask = torch.ones_like(x)
    mask[:, 3] = 0
    y = x.clone()
    y[:, 3] = (y[:, 3] + 7) % V
    a, b = model(x, attention_mask=mask).logits, model(y, attention_mask=mask).logits
    keep = [i for i in range(T) if i != 3]
    torch.testing.assert_close(a[:, keep], b[:, keep])
    # without the mask the change reaches every later position
    assert not torch.allclose(model(x).logits[:, 4:], model(y).logits[:, 4:])
    # an all-ones mask is the same as no mask
    torch.testing.assert_close(model(x, attention_mask=torch.ones_like(x)).logits, model(x).logits)


def test_cache_gives_the_same_logits_as_a_full_forward():
    model = make_gpt()
    randomize(model)
    x = ids()
    full = model(x).logits
    out = model(x[:, :5], use_cache=True)
    pieces = [out.logits]
    cache = out.past_key_values
    for chunk in (x[:, 5:8], x[:, 8:9], x[:, 9:]):  # several tokens at once, then one at a time
        out = model(chunk, past_key_values=cache, use_cache=True)
        pieces.append(out.logits)
        cache = out.past_key_values
    torch.testing.assert_close(torch.cat(pieces, dim=1), full, atol=1e-5, rtol=1e-5)
    assert cache[0][0].shape[2] == T


def test_cache_with_attention_mask_matches_full_forward():
    model = make_gpt()
    randomize(model)
    x = ids()
    mask = torch.ones_like(x)
    mask[0, 2] = 0
    full = model(x, attention_mask=mask).logits
    out = model(x[:, :6], attention_mask=mask[:, :6], use_cache=True)
    rest = model(x[:, 6:], attention_mask=mask, past_key_values=out.past_key_values).logits
    torch.testing.assert_close(torch.cat([out.logits, rest], dim=1), full, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("with_mask", [False, True])
def test_sdpa_and_reference_attention_agree(with_mask):
    model = make_gpt()
    randomize(model)
    x = ids()
    mask = None
    if with_mask:
        mask = torch.ones_like(x)
        mask[1, -4:] = 0
    sdpa = model(x, attention_mask=mask).logits
    cached = model(x[:, -1:], past_key_values=model(x[:, :-1], use_cache=True).past_key_values).logits
    set_attn_impl(model, "reference")
    torch.testing.assert_close(model(x, attention_mask=mask).logits, sdpa, atol=1e-5, rtol=1e-5)
    ref_cached = model(x[:, -1:], past_key_values=model(x[:, :-1], use_cache=True).past_key_values).logits
    torch.testing.assert_close(ref_cached, cached, atol=1e-5, rtol=1e-5)


def test_too_long_inputs_raise():
    model = make_gpt(max_len=16)
    with pytest.raises(ValueError, match="max_len"):
        model(ids(1, 17))
    cache = model(ids(1, 10), use_cache=True).past_key_values
    with pytest.raises(ValueError, match="max_len"):
        model(ids(1, 7), past_key_values=cache)
    with pytest.raises(ValueError, match="max_new_tokens"):
        model.generate(ids(1, 10), max_new_tokens=7)
    with pytest.raises(ValueError, match="attention_mask"):
        model(ids(2, 5), attention_mask=torch.ones(2, 4))


@pytest.mark.parametrize(
    "field, value",
    [
        ("vocab_size", 0),
        ("d_model", -8),
        ("n_layers", 0),
        ("n_heads", 5),  # 32 is not divisible by 5
        ("max_len", 0),
        ("dropout", 1.0),
        ("activation", "swish"),
        ("attn_impl", "flash"),
        ("layer_norm_eps", 0.0),
    ],
)
def test_bad_config_raises_naming_the_field(field, value):
    kw = dict(vocab_size=V, d_model=32, n_heads=4)
    kw[field] = value
    with pytest.raises(ValueError, match=field):
        GPTConfig(**kw)


def test_bad_generate_arguments_raise():
    model = make_gpt()
    for kw, field in [
        ({"temperature": -1.0}, "temperature"),
        ({"top_k": 0}, "top_k"),
        ({"top_p": 0.0}, "top_p"),
        ({"top_p": 1.5}, "top_p"),
    ]:
        with pytest.raises(ValueError, match=field):
            model.generate(ids(1, 3), max_new_tokens=2, **kw)


def test_seeded_init_is_deterministic():
    a, b, c = make_gpt(seed=3), make_gpt(seed=3), make_gpt(seed=4)
    x = ids()
    torch.testing.assert_close(a(x).logits, b(x).logits, rtol=0, atol=0)
    assert not torch.allclose(a(x).logits, c(x).logits)


# --- sampling -------------------------------------------------------------------------------------------------


def kept(logits: torch.Tensor) -> list[set[int]]:
    return [set(torch.nonzero(row > float("-inf")).flatten().tolist()) for row in logits]


def test_top_k_filter_keeps_exactly_the_k_largest():
    logits = torch.tensor([[1.0, 5.0, 3.0, -2.0, 4.0], [0.0, -1.0, 2.0, 1.0, -3.0]])
    assert kept(top_k_filter(logits, 1)) == [{1}, {2}]
    assert kept(top_k_filter(logits, 3)) == [{1, 2, 4}, {0, 2, 3}]
    assert kept(top_k_filter(logits, 10)) == [set(range(5))] * 2
    # kept values are untouched
    out = top_k_filter(logits, 2)
    assert out[0, 1] == 5.0 and out[0, 4] == 4.0
    # ties with the k-th largest are kept
    assert kept(top_k_filter(torch.tensor([[2.0, 1.0, 2.0, 0.0]]), 1)) == [{0, 2}]


def test_top_p_filter_keeps_the_smallest_nucleus():
    probs = torch.tensor([[0.05, 0.5, 0.15, 0.3], [0.6, 0.25, 0.1, 0.05]])
    logits = probs.log()
    assert kept(top_p_filter(logits, 0.1)) == [{1}, {0}]
    assert kept(top_p_filter(logits, 0.55)) == [{1, 3}, {0}]
    assert kept(top_p_filter(logits, 0.75)) == [{1, 3}, {0, 1}]
    assert kept(top_p_filter(logits, 0.9)) == [{1, 2, 3}, {0, 1, 2}]
    assert kept(top_p_filter(logits, 0.97)) == [set(range(4))] * 2
    assert kept(top_p_filter(logits, 1.0)) == [set(range(4))] * 2
    torch.testing.assert_close(top_p_filter(logits, 0.55)[0, 1], logits[0, 1])


def test_greedy_generation_takes_the_argmax_each_step():
    model = make_gpt()
    randomize(model)
    prompt = ids(2, 4)
    out = model.generate(prompt, max_new_tokens=6, temperature=0.0)
    assert out.shape == (2, 10)
    assert torch.equal(out[:, :4], prompt)
    for t in range(4, 10):
        assert torch.equal(out[:, t], model(out[:, :t]).logits[:, -1].argmax(-1))


@pytest.mark.parametrize(
    "kw",
    [
        {"temperature": 0.0},
        {"temperature": 1.0},
        {"temperature": 0.8, "top_k": 5},
        {"temperature": 1.2, "top_p": 0.9},
    ],
)
def test_cache_and_no_cache_generate_the_same_tokens(kw):
    model = make_gpt()
    randomize(model)
    prompt = ids(3, 4)
    with_cache = model.generate(prompt, 10, generator=torch.Generator().manual_seed(5), use_cache=True, **kw)
    without = model.generate(prompt, 10, generator=torch.Generator().manual_seed(5), use_cache=False, **kw)
    assert torch.equal(with_cache, without)


def test_sampling_is_seeded_and_top_k_1_is_greedy():
    model = make_gpt()
    randomize(model, scale=0.05)  # keep the distribution broad so different seeds differ
    prompt = ids(2, 3)
    a = model.generate(prompt, 12, generator=torch.Generator().manual_seed(0))
    b = model.generate(prompt, 12, generator=torch.Generator().manual_seed(0))
    c = model.generate(prompt, 12, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    greedy = model.generate(prompt, 12, temperature=0.0)
    assert torch.equal(model.generate(prompt, 12, top_k=1, generator=torch.Generator().manual_seed(1)), greedy)


def test_sampling_follows_the_top_k_filter():
    model = make_gpt()
    randomize(model)
    prompt = ids(64, 3)
    allowed = top_k_filter(model(prompt).logits[:, -1], 3) > float("-inf")  # (B, V)
    out = model.generate(prompt, 1, top_k=3, generator=torch.Generator().manual_seed(0))
    assert allowed.gather(1, out[:, -1:]).all()


def expected_with_eos(free_run: torch.Tensor, prompt_len: int, eos: int) -> torch.Tensor:
    """Apply the eos rule to a run made without it: after a row's first eos, only eos; stop when all rows end."""
    out = free_run.clone()
    ends = []
    for row in out:
        hits = torch.nonzero(row[prompt_len:] == eos).flatten()
        end = prompt_len + hits[0].item() + 1 if len(hits) else len(row)
        row[end:] = eos
        ends.append(end)
    return out[:, : max(ends)]


def test_generation_stops_at_eos_and_pads_finished_rows_with_it():
    model = make_gpt()
    randomize(model)
    prompt = ids(2, 4)
    free = model.generate(prompt, 10, temperature=0.0)
    eos = free[0, 5].item()  # row 0 produces it at its second new token
    out = model.generate(prompt, 10, temperature=0.0, eos_token_id=eos)
    assert torch.equal(out, expected_with_eos(free, 4, eos))
    assert (out[0, 5:] == eos).all()
    # a single row stops right after its eos
    single = model.generate(prompt[:1], 10, temperature=0.0, eos_token_id=eos)
    assert single.shape == (1, 6)
    assert torch.equal(single, free[:1, :6])


def test_generate_runs_without_dropout_and_keeps_the_mode():
    model = make_gpt(dropout=0.5)
    randomize(model)
    model.train()
    prompt = ids(2, 4)
    a = model.generate(prompt, 8, temperature=0.0)
    b = model.generate(prompt, 8, temperature=0.0)
    assert model.training
    assert torch.equal(a, b)
    model.eval()
    assert torch.equal(model.generate(prompt, 8, temperature=0.0), a)


def test_no_padding_and_no_cache_take_the_maskless_causal_kernel(monkeypatch):
    calls = []
    sdpa = torch.nn.functional.scaled_dot_product_attention

    def spy(*args, **kwargs):
        calls.append((kwargs.get("attn_mask"), kwargs.get("is_causal")))
        return sdpa(*args, **kwargs)

    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", spy)
    model = make_gpt()
    x = ids()
    model(x)
    model(x, attention_mask=torch.ones_like(x))  # all ones: no padding
    assert calls == [(None, True)] * 4  # 2 layers x 2 calls
    calls.clear()
    mask = torch.ones_like(x)
    mask[0, -1] = 0
    model(x, attention_mask=mask)
    assert all(m is not None and not c for m, c in calls)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_gpt_on_cuda_matches_cpu_and_trains_in_bf16():
    model = make_gpt()
    randomize(model)
    x = ids()
    cpu_logits = model(x).logits
    gpu = model.to("cuda")
    torch.testing.assert_close(gpu(x.cuda()).logits.cpu(), cpu_logits, atol=1e-4, rtol=1e-4)
    prompt = ids(2, 4).cuda()
    greedy = gpu.generate(prompt, 8, temperature=0.0)
    assert greedy.device.type == "cuda"
    assert torch.equal(greedy, gpu.generate(prompt, 8, temperature=0.0, use_cache=False))
    sampled = [
        gpu.generate(prompt, 8, top_p=0.9, generator=torch.Generator("cuda").manual_seed(0), use_cache=c)
        for c in (True, False)
    ]
    assert torch.equal(sampled[0], sampled[1])
    gpu.train()
    with torch.autocast("cuda", dtype=torch.bfloat16):
        loss = gpu(x.cuda(), labels=x.cuda()).loss
    loss.backward()
    assert torch.isfinite(loss) and loss.dtype == torch.float32
    assert torch.isfinite(gpu.tok_emb.weight.grad).all()
