"""Tests for selfsup.data.collate: padding and the MLM, causal-LM and seq2seq collators."""

import random

import pytest
import torch

from selfsup.data.collate import CausalLMCollator, MLMCollator, Seq2SeqCollator, pad_sequences
from selfsup.masking import IGNORE_INDEX
from selfsup.tokenizer import EOT, train_bpe, train_wordpiece

SENTENCES = [
    "the cat sat on the mat.",
    "a dog ate an apple.",
    "alice likes the bank by the river.",
    "bob was born in paris.",
    "the bat flew over the company.",
] * 10


@pytest.fixture(scope="module")
def wp():
    return train_wordpiece(SENTENCES, vocab_size=100)


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


# ------------------------------------------------------------------------------------------------ pad_sequences


def test_pad_sequences_right_pads_lists_and_tensors():
    for seqs in (
        [[5, 6, 7], [8], []],
        [torch.tensor([5, 6, 7]), torch.tensor([8]), torch.tensor([], dtype=torch.long)],
    ):
        ids, mask = pad_sequences(seqs, pad_id=9)
        assert ids.dtype == torch.long and mask.dtype == torch.long
        assert ids.tolist() == [[5, 6, 7], [8, 9, 9], [9, 9, 9]]
        assert mask.tolist() == [[1, 1, 1], [1, 0, 0], [0, 0, 0]]


def test_pad_sequences_max_len_cuts_on_the_right():
    ids, mask = pad_sequences([[1, 2, 3, 4, 5], [6, 7]], pad_id=0, max_len=3)
    assert ids.tolist() == [[1, 2, 3], [6, 7, 0]] and mask.tolist() == [[1, 1, 1], [1, 1, 0]]
    with pytest.raises(ValueError):
        pad_sequences([], pad_id=0)


# ------------------------------------------------------------------------------------------------ MLMCollator


def nsp_examples(wp, n=16):
    return [{**wp(SENTENCES[i], SENTENCES[i + 1 + i % 3]), "next_sentence_label": i % 2} for i in range(n)]


def test_mlm_collator_keys_shapes_and_masking(wp):
    examples = nsp_examples(wp)
    batch = MLMCollator(wp, generator=gen(0), with_nsp=True, mlm_probability=0.3)(examples)
    assert set(batch) == {"input_ids", "attention_mask", "labels", "token_type_ids", "next_sentence_label"}
    b, t = len(examples), max(len(e["input_ids"]) for e in examples)
    for key in ("input_ids", "attention_mask", "labels", "token_type_ids"):
        assert batch[key].shape == (b, t) and batch[key].dtype == torch.long
    assert batch["next_sentence_label"].tolist() == [e["next_sentence_label"] for e in examples]
    clean, mask = pad_sequences([e["input_ids"] for e in examples], wp.pad_token_id)
    types, _ = pad_sequences([e["token_type_ids"] for e in examples], 0)
    assert torch.equal(batch["attention_mask"], mask) and torch.equal(batch["token_type_ids"], types)
    chosen = batch["labels"] != IGNORE_INDEX
    assert chosen.any()
    assert torch.equal(batch["labels"][chosen], clean[chosen])
    specials = torch.isin(clean, torch.tensor(wp.all_special_ids))
    assert not (chosen & specials).any(), "[CLS], [SEP] and [PAD] are never masked"
    assert (batch["input_ids"][chosen] == wp.mask_token_id).any()
    assert torch.equal(batch["input_ids"][~chosen], clean[~chosen])


def test_mlm_collator_nsp_flag_and_determinism(wp):
    examples = nsp_examples(wp, 4)
    without = MLMCollator(wp, generator=gen(1))(examples)
    assert "next_sentence_label" not in without
    again = MLMCollator(wp, generator=gen(1))(examples)
    assert all(torch.equal(without[k], again[k]) for k in without)
    plain = [e["input_ids"] for e in examples]
    batch = MLMCollator(wp, generator=gen(1))(plain)
    assert set(batch) == {"input_ids", "attention_mask", "labels"}
    with pytest.raises(KeyError, match="next_sentence_label"):
        MLMCollator(wp, with_nsp=True)(plain)


def test_mlm_collator_replacement_mix_is_passed_to_the_masking(wp):
    examples = [wp(s)["input_ids"] for s in SENTENCES]
    all_mask = MLMCollator(wp, generator=gen(2), mlm_probability=0.5, mask_ratio=1.0, random_ratio=0.0)(examples)
    chosen = all_mask["labels"] != IGNORE_INDEX
    assert chosen.sum() > 50 and (all_mask["input_ids"][chosen] == wp.mask_token_id).all()
    none_masked = MLMCollator(wp, generator=gen(2), mlm_probability=0.5, mask_ratio=0.0, random_ratio=0.0)(examples)
    chosen = none_masked["labels"] != IGNORE_INDEX
    assert torch.equal(none_masked["input_ids"][chosen], none_masked["labels"][chosen])  # all kept as they were


def test_mlm_collator_as_dataloader_collate_fn(wp):
    data = [wp(s) for s in SENTENCES[:8]]
    loader = torch.utils.data.DataLoader(data, batch_size=4, collate_fn=MLMCollator(wp, generator=gen(0)))
    batches = list(loader)
    assert len(batches) == 2 and all(b["input_ids"].shape[0] == 4 for b in batches)


# ------------------------------------------------------------------------------------------------ CausalLMCollator


def test_causal_lm_collator_ignores_padding_but_not_real_eot():
    bpe = train_bpe(SENTENCES, vocab_size=300)
    eot = bpe.convert_tokens_to_ids(EOT)
    examples = [bpe(s + EOT)["input_ids"] for s in SENTENCES[:3]]
    batch = CausalLMCollator(pad_id=bpe.pad_token_id)(examples)
    assert set(batch) == {"input_ids", "attention_mask", "labels"}
    ids, mask, labels = batch["input_ids"], batch["attention_mask"], batch["labels"]
    assert ids.shape == mask.shape == labels.shape == (3, max(map(len, examples)))
    assert labels.dtype == torch.long
    assert torch.equal(labels[mask == 1], ids[mask == 1])
    assert (labels[mask == 0] == IGNORE_INDEX).all()
    # The real end-of-text of each example (same id as the padding) is still a target.
    for i, e in enumerate(examples):
        assert labels[i, len(e) - 1] == eot


# ------------------------------------------------------------------------------------------------ Seq2SeqCollator

BOS, EOS, MASK_ID, PAD_ID = 2, 3, 4, 0
SENTINELS = list(range(900, 950))


def content(seed, n):
    return torch.randint(10, 800, (n,), generator=gen(seed)).tolist()


@pytest.mark.parametrize("noise", ["infilling", "masking", "deletion", "rotation", "permutation"])
def test_seq2seq_collator_bart_noises(noise):
    examples = [content(i, n) for i, n in enumerate([30, 12, 21])]
    for e in examples:
        e[5::6] = [5] * len(e[5::6])  # id 5 ends a sentence
    collate = Seq2SeqCollator(
        PAD_ID, noise, mask_token_id=MASK_ID, sentence_end_ids={5}, bos_id=BOS, eos_id=EOS, generator=gen(0)
    )
    batch = collate(examples)
    assert set(batch) == {"input_ids", "attention_mask", "labels"}
    assert all(v.dtype == torch.long and v.dim() == 2 and v.shape[0] == 3 for v in batch.values())
    assert batch["input_ids"].shape == batch["attention_mask"].shape
    for i, e in enumerate(examples):
        label = [t for t in batch["labels"][i].tolist() if t != IGNORE_INDEX]
        assert label == [BOS, *e, EOS], "labels are the clean sequence"
        src = batch["input_ids"][i][batch["attention_mask"][i] == 1].tolist()
        assert src[0] == BOS and src[-1] == EOS, "bos / eos are never noised"
        body = src[1:-1]
        if noise in ("rotation", "permutation"):
            assert sorted(body) == sorted(e)
        if noise == "masking":
            assert len(body) == len(e)
        if noise == "deletion":
            assert len(body) <= len(e)
        if noise == "infilling":
            assert MASK_ID in body
        if i == 0:  # 30 tokens, 5 sentences and a tail: the chance to come out unchanged is negligible
            assert body != e, "the source is noised"


def test_seq2seq_collator_span_labels_are_sentinel_targets():
    examples = [content(1, 40), content(2, 17)]
    batch = Seq2SeqCollator(PAD_ID, "span", sentinel_ids=SENTINELS, generator=gen(0))(examples)
    for i, e in enumerate(examples):
        src = batch["input_ids"][i][batch["attention_mask"][i] == 1].tolist()
        tgt = [t for t in batch["labels"][i].tolist() if t != IGNORE_INDEX]
        assert tgt[0] == SENTINELS[0] and tgt[-1] in SENTINELS
        spans, current = {}, None
        for t in tgt:
            if t in SENTINELS:
                current = spans.setdefault(t, [])
            else:
                current.append(t)
        assert [x for t in src for x in (spans[t] if t in SENTINELS else [t])] == e


def test_seq2seq_collator_is_seeded():
    examples = [content(i, 25) for i in range(4)]
    a = Seq2SeqCollator(PAD_ID, "infilling", mask_token_id=MASK_ID, generator=gen(3))(examples)
    b = Seq2SeqCollator(PAD_ID, "infilling", mask_token_id=MASK_ID, generator=gen(3))(examples)
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("kw", [{"noise": "shuffle"}, {"noise": "infilling"}, {"noise": "masking"}, {"noise": "span"}])
def test_seq2seq_collator_checks_its_arguments(kw):
    with pytest.raises(ValueError):
        Seq2SeqCollator(PAD_ID, **kw)


def test_seq2seq_permutation_needs_sentences():
    with pytest.raises(ValueError, match="sentences"):
        Seq2SeqCollator(PAD_ID, "permutation", generator=gen(0))([[10, 11, 12]])
    batch = Seq2SeqCollator(PAD_ID, "permutation", generator=gen(0))([{"sentences": [[10, 11], [12], [13, 14]]}])
    assert batch["labels"].tolist() == [[10, 11, 12, 13, 14]]
    assert sorted(batch["input_ids"][0].tolist()) == [10, 11, 12, 13, 14]


# --- length-grouped batches ---------------------------------------------------------------------------------


def test_length_grouped_batches_visit_every_example_once_with_little_padding():
    from selfsup.data.batching import LengthGroupedBatches

    rng = random.Random(0)
    lengths = [rng.randint(5, 64) for _ in range(1000)]
    g = torch.Generator().manual_seed(0)
    sampler = LengthGroupedBatches(lengths, batch_size=32, generator=g)
    epoch = list(sampler)
    assert len(epoch) == len(sampler) == 32  # ceil(1000 / 32)
    assert sorted(i for b in epoch for i in b) == list(range(1000))
    assert all(len(b) == 32 for b in epoch if len(b) != 1000 % 32)

    def real_share(batches):
        padded = sum(len(b) * max(lengths[i] for i in b) for b in batches)
        return sum(lengths[i] for b in batches for i in b) / padded

    shuffled = torch.randperm(1000, generator=torch.Generator().manual_seed(1)).tolist()
    random_batches = [shuffled[k : k + 32] for k in range(0, 1000, 32)]
    assert real_share(random_batches) < 0.65 < 0.9 < real_share(epoch)
    # not sorted overall: long and short batches are interleaved
    maxima = [max(lengths[i] for i in b) for b in epoch]
    assert maxima != sorted(maxima) and maxima != sorted(maxima, reverse=True)
    # a new epoch is a new order; the same seed gives the same epoch
    assert list(sampler) != epoch
    assert list(LengthGroupedBatches(lengths, 32, generator=torch.Generator().manual_seed(0))) == epoch


@pytest.mark.parametrize(("lengths", "batch_size", "group"), [([], 4, 16), ([3, 4], 0, 16), ([3, 4], 2, 0)])
def test_length_grouped_batches_reject_bad_settings(lengths, batch_size, group):
    from selfsup.data.batching import LengthGroupedBatches

    with pytest.raises(ValueError, match="must be at least 1|no examples"):
        LengthGroupedBatches(lengths, batch_size, group=group)
