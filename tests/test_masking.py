"""Tests for selfsup.masking: MLM masking statistics, NSP/SOP pairs, T5 span corruption, BART noises."""

import math
from collections import Counter

import pytest
import torch

from selfsup.masking import (
    IGNORE_INDEX,
    document_rotation,
    make_nsp_pairs,
    make_sop_pairs,
    mask_tokens,
    sentence_permutation,
    span_corrupt,
    text_infilling,
    token_deletion,
    token_masking,
)

PAD, UNK, CLS, SEP, MASK = range(5)
SPECIALS = [PAD, UNK, CLS, SEP, MASK]
VOCAB = 100


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def tol(p, n, z=5.0):
    """A z-sigma band for a binomial proportion p estimated from n draws."""
    return z * math.sqrt(p * (1 - p) / n)


def mlm_batch(b=256, t=64, seed=1):
    """Rows `[CLS] w ... [SEP] [PAD]...` with random lengths; content ids are never special."""
    g = gen(seed)
    ids = torch.randint(5, VOCAB, (b, t), generator=g)
    lengths = torch.randint(8, t + 1, (b,), generator=g)
    for i, n in enumerate(lengths.tolist()):
        ids[i, 0], ids[i, n - 1] = CLS, SEP
        ids[i, n:] = PAD
    return ids


def masked(ids, seed=0, **kw):
    kw = {"mask_token_id": MASK, "vocab_size": VOCAB, "special_ids": SPECIALS, **kw}
    return mask_tokens(ids, generator=gen(seed), **kw)


# ------------------------------------------------------------------------------------------------ mask_tokens


def test_mask_tokens_rates_match_15_and_80_10_10():
    ids = mlm_batch()
    out, labels = masked(ids)
    candidates = ~torch.isin(ids, torch.tensor(SPECIALS))
    chosen = labels != IGNORE_INDEX
    n_cand, n_chosen = int(candidates.sum()), int(chosen.sum())
    assert abs(n_chosen / n_cand - 0.15) < tol(0.15, n_cand)

    became_mask = chosen & (out == MASK)
    kept = chosen & (out == ids)
    replaced = chosen & (out != MASK) & (out != ids)
    # A random replacement equals the original with probability 1 / (number of non-special ids).
    p_same = 1 / (VOCAB - len(SPECIALS))
    assert abs(int(became_mask.sum()) / n_chosen - 0.8) < tol(0.8, n_chosen)
    assert abs(int(replaced.sum()) / n_chosen - 0.1 * (1 - p_same)) < tol(0.1, n_chosen)
    assert abs(int(kept.sum()) / n_chosen - (0.1 + 0.1 * p_same)) < tol(0.1, n_chosen)
    # Random replacements are real, non-special tokens.
    assert not torch.isin(out[replaced], torch.tensor(SPECIALS)).any()
    assert int(out.max()) < VOCAB


def test_mask_tokens_never_touches_specials_or_padding_and_labels_are_exact():
    ids = mlm_batch(seed=3)
    before = ids.clone()
    out, labels = masked(ids, mlm_probability=0.5)
    assert torch.equal(ids, before), "the input must not be mutated"
    special = torch.isin(ids, torch.tensor(SPECIALS))
    assert (labels[special] == IGNORE_INDEX).all()
    assert torch.equal(out[special], ids[special])
    chosen = labels != IGNORE_INDEX
    assert torch.equal(labels[chosen], ids[chosen])
    # Outside the chosen positions nothing changes.
    assert torch.equal(out[~chosen], ids[~chosen])
    assert out.dtype == ids.dtype and labels.dtype == ids.dtype and out.shape == ids.shape


def test_mask_tokens_respects_attention_mask_even_without_pad_in_specials():
    ids = torch.randint(5, VOCAB, (64, 16), generator=gen(2))
    attention_mask = torch.ones_like(ids)
    attention_mask[:, 10:] = 0
    out, labels = mask_tokens(
        ids,
        mask_token_id=MASK,
        vocab_size=VOCAB,
        special_ids=[MASK],
        mlm_probability=0.9,
        generator=gen(0),
        attention_mask=attention_mask,
    )
    assert (labels[:, 10:] == IGNORE_INDEX).all() and torch.equal(out[:, 10:], ids[:, 10:])
    assert (labels[:, :10] != IGNORE_INDEX).float().mean() > 0.8


def test_mask_tokens_seeded_determinism():
    ids = mlm_batch(b=8, t=32)
    a, la = masked(ids, seed=7)
    b, lb = masked(ids, seed=7)
    c, lc = masked(ids, seed=8)
    assert torch.equal(a, b) and torch.equal(la, lb)
    assert not torch.equal(la, lc)


def test_mask_tokens_all_mask_ablation():
    ids = mlm_batch(b=32)
    out, labels = masked(ids, mask_ratio=1.0, random_ratio=0.0)
    chosen = labels != IGNORE_INDEX
    assert chosen.any() and (out[chosen] == MASK).all()


@pytest.mark.parametrize(
    "kw", [{"mlm_probability": 1.5}, {"mask_ratio": 0.9, "random_ratio": 0.2}, {"random_ratio": -0.1}]
)
def test_mask_tokens_validates_ratios(kw):
    with pytest.raises(ValueError):
        masked(mlm_batch(b=2), **kw)


def test_mask_tokens_rejects_float_ids():
    with pytest.raises(ValueError, match="integer"):
        masked(torch.rand(2, 4))


# ------------------------------------------------------------------------------------------------ NSP / SOP


def documents(n_docs=60, n_sent=8):
    return [[f"d{d} s{s}" for s in range(n_sent)] for d in range(n_docs)]


def where(sentence):
    d, s = sentence.split()
    return int(d[1:]), int(s[1:])


def test_nsp_pairs_labels_are_correct_and_balanced():
    docs = documents()
    pairs = make_nsp_pairs(docs, gen(0))
    assert len(pairs) == sum(len(d) - 1 for d in docs)
    for a, b, label in pairs:
        (da, sa), (db, sb) = where(a), where(b)
        if label == 0:
            assert (da, sb) == (db, sa + 1), "IsNext pairs must be consecutive sentences"
        else:
            assert label == 1 and da != db, "random B must come from another document"
    n_random = sum(label for _, _, label in pairs)
    assert abs(n_random / len(pairs) - 0.5) < tol(0.5, len(pairs))
    # Every A with a successor is used once, in order.
    assert [a for a, _, _ in pairs] == [s for d in docs for s in d[:-1]]


def test_nsp_pairs_seeded_and_p_random():
    docs = documents(10, 5)
    assert make_nsp_pairs(docs, gen(3)) == make_nsp_pairs(docs, gen(3))
    assert all(label == 0 for *_, label in make_nsp_pairs(docs, gen(0), p_random=0.0))
    assert all(label == 1 for *_, label in make_nsp_pairs(docs, gen(0), p_random=1.0))


@pytest.mark.parametrize("docs", [[], [["a", "b", "c"]], [["a", "b"], []]])
def test_nsp_pairs_need_two_documents(docs):
    with pytest.raises(ValueError, match="2 non-empty documents"):
        make_nsp_pairs(docs, gen(0))


def test_sop_pairs_order_and_balance():
    docs = documents()
    pairs = make_sop_pairs(docs, gen(0))
    assert len(pairs) == sum(len(d) - 1 for d in docs)
    for a, b, label in pairs:
        (da, sa), (db, sb) = where(a), where(b)
        assert da == db, "both SOP sentences come from one document"
        assert sb == sa + 1 if label == 0 else sa == sb + 1
    n_swapped = sum(label for *_, label in pairs)
    assert abs(n_swapped / len(pairs) - 0.5) < tol(0.5, len(pairs))
    with pytest.raises(ValueError):
        make_sop_pairs([["only one"]], gen(0))


# ------------------------------------------------------------------------------------------------ span corruption

SENTINELS = list(range(1000, 1100))


def merge_spans(inputs, targets, sentinels=SENTINELS):
    """Put each target span back in place of its sentinel in the input."""
    spans, current = {}, None
    for t in targets:
        if t in sentinels:
            current = t
            spans[current] = []
        else:
            spans[current].append(t)
    out = []
    for t in inputs:
        out.extend(spans[t] if t in sentinels else [t])
    return out


def test_span_corrupt_merges_back_exactly_with_the_right_density():
    g = gen(0)
    noise = total = n_spans = 0
    for length in list(range(2, 80)) * 3:
        ids = torch.randint(5, 900, (length,), generator=g).tolist()
        inputs, targets = span_corrupt(ids, sentinel_ids=SENTINELS, generator=g)
        assert merge_spans(inputs, targets) == ids
        used = [t for t in inputs if t in SENTINELS]
        assert used == SENTINELS[: len(used)], "sentinels are used in order"
        assert [t for t in targets if t in SENTINELS] == SENTINELS[: len(used) + 1], "targets end with one more"
        assert targets[-1] == SENTINELS[len(used)]
        noise += len(targets) - len(used) - 1
        total += length
        n_spans += len(used)
        assert 1 <= len(targets) - len(used) - 1 < length, "at least one token corrupted, never all"
    assert abs(noise / total - 0.15) < 0.01
    assert 2.0 < noise / n_spans < 3.5, "mean span length near 3"


def test_span_corrupt_tensor_in_tensor_out_and_seeded():
    ids = torch.arange(10, 50)
    a = span_corrupt(ids, sentinel_ids=SENTINELS, generator=gen(1))
    b = span_corrupt(ids, sentinel_ids=SENTINELS, generator=gen(1))
    assert isinstance(a[0], torch.Tensor) and a[0].dtype == ids.dtype and a[0].dim() == 1
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert merge_spans(a[0].tolist(), a[1].tolist()) == ids.tolist()


def test_span_corrupt_errors():
    with pytest.raises(ValueError, match="sentinel"):
        span_corrupt(list(range(100)), sentinel_ids=[1000], generator=gen(0))
    with pytest.raises(ValueError, match="noise_density"):
        span_corrupt(list(range(10)), sentinel_ids=SENTINELS, noise_density=1.0, generator=gen(0))


# ------------------------------------------------------------------------------------------------ BART noises


def is_subsequence(small, big):
    it = iter(big)
    return all(any(x == y for y in it) for x in small)


def test_token_masking_keeps_length_and_masks_about_p():
    g = gen(0)
    ids = [CLS, *range(10, 90), SEP]
    n_masked = n = 0
    for _ in range(50):
        out = token_masking(ids, MASK, 0.3, g, special_ids={CLS, SEP})
        assert len(out) == len(ids) and out[0] == CLS and out[-1] == SEP
        assert all(o == t or o == MASK for o, t in zip(out, ids, strict=True))
        n_masked += sum(o == MASK for o in out)
        n += len(ids) - 2
    assert abs(n_masked / n - 0.3) < tol(0.3, n)


def test_token_deletion_gives_a_subsequence_of_about_the_right_length():
    g = gen(0)
    ids = [CLS, *range(10, 90), SEP]
    kept = n = 0
    for _ in range(50):
        out = token_deletion(torch.tensor(ids), 0.3, g, special_ids={CLS, SEP})
        assert isinstance(out, torch.Tensor)
        out = out.tolist()
        assert is_subsequence(out, ids) and out[0] == CLS and out[-1] == SEP
        kept += len(out) - 2
        n += len(ids) - 2
    assert abs(kept / n - 0.7) < tol(0.7, n)


def fill_masks(noised, spans, mask=MASK):
    out, k = [], 0
    for t in noised:
        if t == mask:
            out.extend(spans[k])
            k += 1
        else:
            out.append(t)
    assert k == len(spans), "one [MASK] per removed span"
    return out


def test_text_infilling_spans_masks_and_restoration():
    g = gen(0)
    lengths, removed_total, total = [], 0, 0
    for length in [5, 17, 40, 100] * 40:
        ids = [CLS, *torch.randint(10, 90, (length,), generator=g).tolist(), SEP]
        out, spans = text_infilling(ids, MASK, 0.3, 3.0, g, special_ids={CLS, SEP}, return_spans=True)
        assert out[0] == CLS and out[-1] == SEP
        assert out.count(MASK) == len(spans)
        assert fill_masks(out, spans) == ids
        assert sum(map(len, spans)) == round(0.3 * length), "about p of the tokens are removed"
        assert all(not (a == MASK and b == MASK) for a, b in zip(out, out[1:], strict=False)), "masks never touch"
        removed_total += sum(map(len, spans))
        total += length
        lengths += [len(s) for s in spans[:-1]]
    assert abs(removed_total / total - 0.3) < 0.01
    assert 0 in lengths, "0-length spans (inserted masks) occur"
    # Span lengths ~ Poisson(3): mean near 3 (cut spans pull it down a little).
    assert 2.0 < sum(lengths) / len(lengths) < 3.5


def test_text_infilling_seeded_and_without_spans():
    ids = list(range(10, 60))
    a = text_infilling(ids, MASK, generator=gen(5))
    b, _ = text_infilling(ids, MASK, generator=gen(5), return_spans=True)
    assert a == b and a != ids and MASK in a
    assert text_infilling(ids, MASK, p=0.0, generator=gen(0)) == ids
    with pytest.raises(ValueError):
        text_infilling(ids, MASK, generator=None)


def test_sentence_permutation_keeps_the_sentences_and_is_uniform():
    g = gen(0)
    sentences = [[10, 11, 12], [20], [30, 31]]
    seen = Counter()
    n = 600
    for _ in range(n):
        out = sentence_permutation(sentences, g)
        order = []
        rest = out
        while rest:
            match = [i for i, s in enumerate(sentences) if rest[: len(s)] == s]
            assert len(match) == 1
            order.append(match[0])
            rest = rest[len(sentences[match[0]]) :]
        assert sorted(order) == [0, 1, 2], "same multiset of sentences"
        seen[tuple(order)] += 1
    assert len(seen) == 6
    assert all(abs(c / n - 1 / 6) < tol(1 / 6, n) for c in seen.values())


def test_document_rotation_is_a_rotation_with_uniform_start_and_fixed_specials():
    g = gen(0)
    core = list(range(10, 20))
    ids = [CLS, *core, SEP]
    starts = Counter()
    n = 1000
    for _ in range(n):
        out = document_rotation(ids, g, special_ids={CLS, SEP})
        assert out[0] == CLS and out[-1] == SEP
        k = core.index(out[1])
        assert out[1:-1] == core[k:] + core[:k]
        starts[k] += 1
    assert len(starts) == len(core)
    assert all(abs(c / n - 0.1) < tol(0.1, n) for c in starts.values())
    out = document_rotation(torch.tensor(core), gen(1))
    assert isinstance(out, torch.Tensor) and sorted(out.tolist()) == core
