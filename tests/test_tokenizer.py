"""Tests for selfsup.tokenizer: WordPiece and byte-level BPE trained in the test, round trips, pairs, save/load."""

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from selfsup.tokenizer import (
    CLS,
    EOT,
    MASK,
    PAD,
    SEP,
    UNK,
    learn_wordpiece_vocab,
    load_tokenizer,
    save_tokenizer,
    train_bpe,
    train_wordpiece,
)

WORDS = (
    "the a cat dog sat ate apple apples banana company bank river bat flew likes does not alice bob "
    "paris london was born in unbelievably quickly running 苹果 公司 香蕉 喜欢"
).split()


def corpus(n=600, seed=0):
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        words = [rng.choice(WORDS) for _ in range(rng.randint(3, 12))]
        words[0] = words[0].capitalize()
        if rng.random() < 0.3:
            words[rng.randrange(len(words))] += ","
        out.append(" ".join(words) + rng.choice([".", "!", "?"]))
    return out


@pytest.fixture(scope="module")
def wp():
    return train_wordpiece(corpus(), vocab_size=120)


@pytest.fixture(scope="module")
def bpe():
    return train_bpe(corpus(), vocab_size=400)


def test_wordpiece_special_ids_and_vocab(wp):
    assert wp.convert_tokens_to_ids([PAD, UNK, CLS, SEP, MASK]) == [0, 1, 2, 3, 4]
    assert (wp.pad_token_id, wp.unk_token_id, wp.cls_token_id, wp.sep_token_id, wp.mask_token_id) == (0, 1, 2, 3, 4)
    assert len(wp) <= 120
    assert any(t.startswith("##") for t in wp.get_vocab()), "a small vocabulary needs ## continuation pieces"
    # A word the corpus never has is split into a first piece and ## continuations.
    for word in ("applebananas", "catdogs"):
        pieces = wp.tokenize(word)
        assert len(pieces) > 1 and not pieces[0].startswith("##") and all(p.startswith("##") for p in pieces[1:])
        assert "".join(p.removeprefix("##") for p in pieces) == word


def test_wordpiece_round_trip_is_the_normalized_text(wp):
    for x in corpus(50, seed=1) + ["Alice ATE 苹果, then the bank   flew!"]:
        ids = wp(x)["input_ids"]
        assert ids[0] == wp.cls_token_id and ids[-1] == wp.sep_token_id
        assert wp.unk_token_id not in ids
        decoded = wp.decode(ids, skip_special_tokens=True)
        assert decoded == wp.backend_tokenizer.normalizer.normalize_str(" ".join(x.split()))
        assert decoded == " ".join(x.lower().split())


def test_cjk_words_stay_whole_unless_asked():
    def words(tok, text):
        backend = tok.backend_tokenizer
        return [w for w, _ in backend.pre_tokenizer.pre_tokenize_str(backend.normalizer.normalize_str(text))]

    whole = train_wordpiece(corpus(), vocab_size=400)
    assert words(whole, "吃苹果 公司") == ["吃苹果", "公司"]
    assert whole.tokenize("苹果 公司") == ["苹果", "公司"]
    split = train_wordpiece(corpus(), vocab_size=400, split_cjk_chars=True)
    assert words(split, "吃苹果 公司") == ["吃", "苹", "果", "公", "司"]
    assert split.tokenize("苹果 公司") == ["苹", "果", "公", "司"]


def test_lowercase_flag():
    cased = train_wordpiece(corpus(), vocab_size=200, lowercase=False)
    assert cased.tokenize("Alice")[0] != cased.tokenize("alice")[0]


def test_pair_encoding_token_types_and_sep_positions(wp):
    a, b = "the cat sat", "a dog ate the banana"
    n_a, n_b = len(wp.tokenize(a)), len(wp.tokenize(b))
    enc = wp(a, b)
    ids, types = enc["input_ids"], enc["token_type_ids"]
    assert len(ids) == n_a + n_b + 3
    assert ids[0] == wp.cls_token_id
    assert [i for i, t in enumerate(ids) if t == wp.sep_token_id] == [n_a + 1, n_a + n_b + 2]
    assert types == [0] * (n_a + 2) + [1] * (n_b + 1)
    assert wp(a)["token_type_ids"] == [0] * (n_a + 2)


def test_longest_first_truncation_and_padding_to_tensors(wp):
    long_a = " ".join(["cat"] * 20)
    short_b = "a dog ate"
    enc = wp(
        [long_a, "the cat"],
        [short_b, "a dog"],
        truncation="longest_first",
        max_length=12,
        padding=True,
        return_tensors="pt",
    )
    assert set(enc) == {"input_ids", "token_type_ids", "attention_mask"}
    assert enc["input_ids"].shape == (2, 12) and enc["input_ids"].dtype == torch.long
    row = enc["input_ids"][0].tolist()
    # The long A is cut; the short B is untouched.
    assert row[-4:] == wp.convert_tokens_to_ids(wp.tokenize(short_b)) + [wp.sep_token_id]
    assert enc["attention_mask"][0].all()
    n_real = len(wp("the cat", "a dog")["input_ids"])
    assert enc["attention_mask"][1].tolist() == [1] * n_real + [0] * (12 - n_real)
    assert (enc["input_ids"][1, n_real:] == wp.pad_token_id).all()
    # Two long sequences are cut alternately: they end up within one token of each other.
    both = wp(long_a, long_a + " dog dog", truncation="longest_first", max_length=15)
    types = both["token_type_ids"]
    assert len(both["input_ids"]) == 15 and abs((types.count(0) - 2) - (types.count(1) - 1)) <= 1
    assert wp.model_max_length == 128


def test_bpe_round_trips_exactly(bpe):
    texts = corpus(30, seed=2) + [
        "苹果 公司 喜欢 香蕉",
        "  leading and trailing  ",
        "tabs\tand\nnewlines\r\n",
        "emoji 🍎🍌 and accents: naïve café",
        "unseen characters: Ωμέγα ∑ 你好",
        "",
    ]
    for x in texts:
        ids = bpe(x)["input_ids"]
        assert bpe.decode(ids) == x
        assert bpe.eos_token_id not in ids, "nothing is added around a text"


def test_bpe_special_tokens(bpe):
    assert bpe.convert_tokens_to_ids(EOT) == 0
    assert bpe.bos_token == bpe.eos_token == bpe.pad_token == EOT
    assert len(bpe) <= 400
    # The special token is one token even inside text, and merges make common words single tokens.
    ids = bpe(f"the cat{EOT}the dog")["input_ids"]
    assert ids.count(bpe.eos_token_id) == 1
    assert len(bpe.tokenize(" company")) == 1
    batch = bpe(["a", "the company"], padding=True, return_tensors="pt")
    assert set(batch) == {"input_ids", "attention_mask"}
    assert batch["attention_mask"][0].sum() < batch["attention_mask"][1].sum()


@pytest.mark.parametrize("which", ["wp", "bpe"])
def test_save_load_gives_identical_encodings(which, wp, bpe, tmp_path):
    tok = wp if which == "wp" else bpe
    save_tokenizer(tok, tmp_path / "tok")
    loaded = load_tokenizer(tmp_path / "tok")
    texts = corpus(20, seed=3) + ["苹果 🍎 unbelievably"]
    pairs = corpus(20, seed=4) + ["a"]
    assert loaded(texts, pairs, padding=True)["input_ids"] == tok(texts, pairs, padding=True)["input_ids"]
    assert loaded(texts) == tok(texts)
    assert loaded.all_special_tokens == tok.all_special_tokens
    assert loaded.model_max_length == tok.model_max_length
    assert loaded.get_vocab() == tok.get_vocab()


def test_load_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="no saved tokenizer"):
        load_tokenizer(tmp_path / "nothing here")


@pytest.mark.parametrize("texts", [[], [""], ["  ", "\n"]])
@pytest.mark.parametrize("train", [train_wordpiece, train_bpe])
def test_empty_corpus_is_an_error(train, texts):
    with pytest.raises(ValueError, match="empty corpus"):
        train(texts)


def test_accepts_a_generator_of_texts():
    tok = train_wordpiece((s for s in corpus(100)), vocab_size=80)
    assert tok.mask_token_id == 4 and len(tok) <= 80


def test_wordpiece_training_is_the_same_in_every_process():
    """The vocabulary, ids included, depends on the corpus alone (the `tokenizers` trainer's does not)."""
    code = (
        "import json, sys; sys.path.insert(0, 'tests'); from test_tokenizer import corpus; "
        "from selfsup.tokenizer import train_wordpiece; "
        "print(json.dumps(sorted(train_wordpiece(corpus(), vocab_size=120).get_vocab().items())))"
    )
    root = Path(__file__).resolve().parents[1]
    runs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root) for _ in range(3)]
    for run in runs:
        assert run.returncode == 0, run.stderr
    vocab = dict(json.loads(runs[0].stdout))
    assert runs[1].stdout == runs[0].stdout == runs[2].stdout
    assert vocab == train_wordpiece(corpus(), vocab_size=120).get_vocab()
    assert len(vocab) == 120


def test_learn_wordpiece_vocab_merges_the_most_frequent_pair_and_breaks_ties_by_spelling():
    vocab = learn_wordpiece_vocab({"hug": 10, "pug": 5, "pun": 12, "bun": 4}, vocab_size=14)
    specials, rest = vocab[:5], vocab[5:]
    assert specials == [PAD, UNK, CLS, SEP, MASK]
    # characters by frequency (ties alphabetical), then merges: p ##u (17 of pug + pun) beats ##u ##n (16);
    # then pu ##n (12) beats ##u ##g (10, only hug's is left)
    assert rest[:6] == ["##u", "p", "##n", "##g", "h", "b"]
    assert rest[6:] == ["pu", "pun", "##ug"]
    assert learn_wordpiece_vocab({"ab": 3, "cd": 3}, vocab_size=10)[-1] == "ab"  # a tie: ("a", "##b") sorts first
    with pytest.raises(ValueError, match="vocab_size"):
        learn_wordpiece_vocab({"ab": 1}, vocab_size=5)
    with pytest.raises(ValueError, match="empty"):
        learn_wordpiece_vocab({}, vocab_size=50)
