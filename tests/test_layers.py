"""Attention and blocks: the SDPA path equals the written-out reference, masks behave, caches line up."""

import pytest
import torch

from selfsup.layers import (
    MultiHeadAttention,
    TransformerBlock,
    attention,
    attention_reference,
    causal_mask,
    padding_mask,
    set_attn_impl,
)


def _qkv(b=2, h=4, tq=6, tk=6, d=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(b, h, t, d, generator=g) for t in (tq, tk, tk))


@pytest.mark.parametrize("is_causal", [False, True])
def test_sdpa_matches_reference_with_padding(is_causal):
    q, k, v = _qkv()
    mask = padding_mask(torch.tensor([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]]))
    fast = attention(q, k, v, mask, is_causal)
    ref = attention_reference(q, k, v, mask, is_causal)
    torch.testing.assert_close(fast, ref, atol=1e-5, rtol=1e-5)


def test_reference_is_the_textbook_formula():
    q, k, v = _qkv(b=1, h=1, tq=3, tk=5, d=4)
    w = torch.softmax(q @ k.transpose(-2, -1) / 2.0, dim=-1)  # sqrt(4) = 2
    torch.testing.assert_close(attention_reference(q, k, v), w @ v)


def test_fully_padded_row_is_zero_not_nan():
    q, k, v = _qkv()
    mask = padding_mask(torch.tensor([[1, 1, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0]]))
    for impl in ("sdpa", "reference"):
        out = attention(q, k, v, mask, impl=impl)
        assert not out.isnan().any(), impl
        assert out[1].abs().max() == 0, impl
    assert not attention(q, k, v, mask).isnan().any()


def test_causal_mask_aligns_bottom_right_for_a_cache():
    m = causal_mask(2, 4)
    assert m.tolist() == [[True, True, True, False], [True, True, True, True]]
    # the last 2 queries of a causal pass over 4 positions see exactly what causal_mask(2, 4) allows
    q, k, v = _qkv(tq=4, tk=4)
    full = attention(q, k, v, is_causal=True)
    tail = attention(q[:, :, 2:], k, v, is_causal=True)
    torch.testing.assert_close(tail, full[:, :, 2:], atol=1e-6, rtol=1e-5)
    one = attention(q[:, :, 3:], k, v, is_causal=True)
    torch.testing.assert_close(one, full[:, :, 3:], atol=1e-6, rtol=1e-5)


def test_self_attention_cache_equals_full_pass():
    torch.manual_seed(0)
    attn = MultiHeadAttention(32, 4).eval()
    x = torch.randn(2, 7, 32)
    full, _ = attn(x, is_causal=True)
    first, cache = attn(x[:, :5], is_causal=True, use_cache=True)
    rest, _ = attn(x[:, 5:], is_causal=True, past_kv=cache, use_cache=True)
    torch.testing.assert_close(torch.cat([first, rest], dim=1), full, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("norm_first", [False, True])
def test_block_reference_path_and_cross_attention(norm_first):
    torch.manual_seed(0)
    block = TransformerBlock(32, 4, 64, norm_first=norm_first, cross_attention=True).eval()
    x, mem = torch.randn(2, 5, 32), torch.randn(2, 9, 32)
    mem_mask = padding_mask(torch.tensor([[1] * 9, [1] * 4 + [0] * 5]))
    fast, _ = block(x, is_causal=True, memory=mem, memory_mask=mem_mask)
    ref, _ = set_attn_impl(block, "reference")(x, is_causal=True, memory=mem, memory_mask=mem_mask)
    torch.testing.assert_close(fast, ref, atol=1e-5, rtol=1e-5)
    # padded memory positions must not matter
    mem2 = mem.clone()
    mem2[1, 4:] = 100.0
    ref2, _ = block(x, is_causal=True, memory=mem2, memory_mask=mem_mask)
    torch.testing.assert_close(ref2, ref, atol=1e-5, rtol=1e-5)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="n_heads"):
        MultiHeadAttention(30, 4)
    with pytest.raises(ValueError, match="activation"):
        TransformerBlock(32, 4, 64, activation="swish")
    with pytest.raises(ValueError, match="reference"):
        set_attn_impl(MultiHeadAttention(32, 4), "flash")


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_bf16_sdpa_takes_the_flash_kernel_and_matches_the_reference():
    from torch.nn.attention import SDPBackend, sdpa_kernel

    q, k, v = (t.cuda() for t in _qkv(b=2, h=4, tq=64, tk=64, d=64))
    ref = attention_reference(q, k, v, is_causal=True)  # fp32
    with torch.autocast("cuda", dtype=torch.bfloat16), sdpa_kernel(SDPBackend.FLASH_ATTENTION):
        # no mask and is_causal: the call our models make without padding must be flash-eligible
        fast = attention(q.bfloat16(), k.bfloat16(), v.bfloat16(), is_causal=True)
    assert fast.dtype == torch.bfloat16
    torch.testing.assert_close(fast.float(), ref, atol=3e-2, rtol=3e-2)
