"""Chapter 4's experiments at the "tiny" preset (seconds each), and the seq2seq pieces they are built from.

The book's build asserts the book-preset checks; these tests check that each noise does what it says to a
window of sentences, that the QA batches and the exact match are right, that the comparison gives every noise
the same compute, and that the span model is trained once and shared through the cache.
"""

import math

import pytest
import torch

from selfsup.experiments import REGISTRY, ch4
from selfsup.experiments.ch4_qa import city_of, exact_match, qa_batch, qa_examples
from selfsup.experiments.ch4_seq2seq import (
    BART_NOISES,
    N_SENTINELS,
    Seq2SeqSettings,
    new_seq2seq,
    pretrain_seq2seq,
    salient_ids,
    sentinel_ids,
    seq2seq_config,
    windows,
)
from selfsup.experiments.zoo import toy_tokenizer, toy_world
from selfsup.masking import salient_infilling, salient_span_corrupt, salient_spans

DOC = ["liam patel was born in lyon .", "he works for nimbo .", "he likes soup ."]


pytestmark = pytest.mark.usefixtures("private_cache")  # conftest: a fresh model cache for this module


def test_windows_keep_sentences_of_one_document_under_the_token_limit():
    tok = toy_tokenizer()
    s = Seq2SeqSettings(window=2, max_tokens=32)
    docs = toy_world().documents(30, seed=0)
    out = windows(docs, tok, s)
    assert out
    for ex in out:
        assert 2 <= len(ex["sentences"]) <= 2
        assert ex["input_ids"] == [t for sent in ex["sentences"] for t in sent]
        assert len(ex["input_ids"]) <= 32
    # every window is a run of consecutive sentences of some document
    encoded = [[tok(x, add_special_tokens=False)["input_ids"] for x in d] for d in docs]
    runs = [d[i : i + 2] for d in encoded for i in range(len(d) - 1)]
    assert all(ex["sentences"] in runs for ex in out)


def test_each_noise_corrupts_as_it_says():
    rows = ch4.noise_examples(DOC, seed=0)
    assert set(rows) == {*BART_NOISES, "span", "salient"}
    clean = rows["rotation"][1]
    assert clean[0] == "[CLS]" and clean[-1] == "[SEP]"
    for noise in BART_NOISES:  # BART's target is always the clean text
        assert rows[noise][1] == clean, noise
    body = clean[1:-1]
    src = {n: rows[n][0][1:-1] for n in rows}
    # the two that move tokens keep every token; the three that hide tokens lose some
    assert sorted(src["permutation"]) == sorted(body) and sorted(src["rotation"]) == sorted(body)
    assert any(src["rotation"] == body[k:] + body[:k] for k in range(len(body)))
    assert len(src["masking"]) == len(body) and "[MASK]" in src["masking"]
    assert len(src["deletion"]) < len(body) and "[MASK]" not in src["deletion"]
    assert "[MASK]" in src["infilling"] and len(src["infilling"]) < len(body)
    # T5: sentinels in the input, and the target lists each sentinel with the tokens it replaced
    span_src, span_tgt = rows["span"]
    assert "<X0>" in span_src and span_tgt[1] == "<X0>"
    assert (
        len([t for t in span_src if not t.startswith("<X")]) + len([t for t in span_tgt if not t.startswith("<X")])
        == len(clean) + 2
    )  # [CLS] and [SEP] on both sides
    # salient spans: one name or place became one [MASK]; the target is the clean text
    sal_src, sal_tgt = rows["salient"]
    assert sal_tgt == clean and sal_src.count("[MASK]") == 1
    hidden = body[sal_src.index("[MASK]") - 1 : sal_src.index("[MASK]") - 1 + len(body) - len(src["salient"]) + 1]
    assert " ".join(hidden) in ("liam patel", "lyon")


def test_salient_spans_are_whole_names_and_places():
    tok = toy_tokenizer()
    named = salient_ids(tok)
    ids = tok("liam patel was born in lyon and likes soup .", add_special_tokens=False)["input_ids"]
    assert salient_spans(ids, named) == [(0, 2), (5, 6)]
    assert salient_spans(tok("he likes soup .", add_special_tokens=False)["input_ids"], named) == []
    seen_infill, seen_t5 = set(), set()
    for k in range(30):  # each draw hides exactly one of the two spans, and both are drawn
        g = torch.Generator().manual_seed(k)
        out = salient_infilling(ids, named, tok.mask_token_id, g)
        seen_infill.add(len(out))
        assert out.count(tok.mask_token_id) == 1 and out in (
            [tok.mask_token_id, *ids[2:]],
            [*ids[:5], tok.mask_token_id, *ids[6:]],
        )
        src, tgt = salient_span_corrupt(ids, named, sentinel_ids=[900, 901], generator=g)
        assert tgt in ([900, *ids[0:2], 901], [900, ids[5], 901])
        seen_t5.add(len(tgt))
        assert [t for t in src if t != 900] + tgt[1:-1] != ids  # the span left the input
    assert seen_infill == {len(ids) - 1, len(ids)} and seen_t5 == {3, 4}
    # a sentence without a name or place is left whole by infilling
    plain = tok("he likes soup .", add_special_tokens=False)["input_ids"]
    assert salient_infilling(plain, named, tok.mask_token_id, torch.Generator().manual_seed(0)) == plain


def test_salient_pretraining_keeps_only_windows_with_a_name_or_place():
    tok = toy_tokenizer()
    s = ch4.SETTINGS["tiny"].replace(n_docs=20, steps=2)
    docs = toy_world().documents(20, seed=0)
    all_windows = windows(docs, tok, s)
    _, info = pretrain_seq2seq("salient", docs, tok, s, seed=0)
    assert len(info["loss"]) == 2
    named = salient_ids(tok)
    kept = [w for w in all_windows if salient_spans(w["input_ids"], named)]
    assert 0 < len(kept) < len(all_windows)  # some sentences ("he likes soup .") name nobody


def test_sentinels_are_new_ids_after_the_vocabulary():
    tok = toy_tokenizer()
    cfg = seq2seq_config(tok, Seq2SeqSettings())
    ids = sentinel_ids(tok)
    assert len(ids) == N_SENTINELS and min(ids) == len(tok) and max(ids) == cfg.vocab_size - 1
    assert cfg.decoder_start_token_id == tok.cls_token_id and cfg.eos_token_id == tok.sep_token_id


def test_qa_batch_and_exact_match():
    tok = toy_tokenizer()
    dd = toy_world().fact_qa(4, 1, 3, seed=0)
    ex = qa_examples(dd["train"], tok)
    b = qa_batch(ex, tok.pad_token_id)
    assert b["input_ids"].shape[0] == 4
    lengths = [len(e["target"]) for e in ex]
    for i, n in enumerate(lengths):  # labels: the answer's ids, then -100 over the padding
        assert b["labels"][i, :n].tolist() == ex[i]["target"]
        assert (b["labels"][i, n:] == -100).all()
    written = tok.decode(ex[0]["target"], skip_special_tokens=True)
    assert written.startswith(dd["train"][0]["person"]) and city_of(written) == dd["train"][0]["answer"]
    assert city_of("ana lima was born in new york .") == "new york" and city_of("ana lima was") == ""
    # a model that always writes the first answer is right exactly where that answer is asked
    model = new_seq2seq(tok, Seq2SeqSettings(d_model=32, n_layers=1), 0)
    first = ex[0]["target"]

    def fake_generate(input_ids, attention_mask=None, max_new_tokens=8):
        return torch.tensor([first] * input_ids.size(0))

    model.generate = fake_generate
    expected = sum(e["answer"] == ex[0]["answer"] for e in ex) / len(ex)
    assert exact_match(model, ex, tok) == pytest.approx(expected)


def test_noises_tiny_gives_every_noise_equal_compute():
    r = ch4.noises(seed=0, preset="tiny")
    steps = ch4.SETTINGS["tiny"].steps
    assert set(r.accuracy) == set(BART_NOISES)
    for noise in BART_NOISES:
        assert 0.0 <= r.accuracy[noise] <= 1.0
        assert len(r.pretrain_loss[noise]) == steps
        assert all(math.isfinite(x) for x in r.pretrain_loss[noise])
    assert 0.0 < r.majority < 0.2  # birthplaces spread over about 28 cities
    assert r.gap() == pytest.approx(
        sum(r.accuracy[n] for n in ch4.LOCAL) / 3 - sum(r.accuracy[n] for n in ch4.GLOBAL) / 2
    )
    assert ch4.NOISES_CHECK.holds(r) == (r.gap() > ch4.ORDER_GAP) and "masking" in ch4.NOISES_CHECK.detail(r)
    assert "ch4.noises" not in REGISTRY  # not validated over seeds yet: `make reproduce` must not run it


def test_fact_qa_tiny_reuses_the_cached_model(monkeypatch):
    ch4.toy_seq2seq(ch4.FACT_NOISE, 0, "tiny")  # trained now, or already there
    import selfsup.experiments.ch4_seq2seq as module

    def no_training(*args, **kwargs):
        raise AssertionError("the pre-trained model must come from the cache")

    monkeypatch.setattr(module, "pretrain_seq2seq", no_training)
    r = ch4.fact_qa(seed=0, preset="tiny")
    assert 0.0 <= r.scratch <= 1.0 and 0.0 <= r.pretrained <= 1.0
    assert set(r.loss) == {"random init", ch4.FACT_NOISE}
    assert len(r.examples) == 8 and all(e["answer"] for e in r.examples)


def test_reconstructions_tiny_cover_every_noise():
    cases = ch4.reconstructions(seed=0, preset="tiny", n=2, noises=(*BART_NOISES, "span"))
    assert {c["noise"] for c in cases} == {*BART_NOISES, "span"}
    assert all(c["clean"] and c["corrupted"] and c["output"].startswith("[CLS]") for c in cases)
