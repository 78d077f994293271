"""The second language: a bijective dictionary, disjoint vocabularies, word-by-word translation, shifted ids."""

import re
from collections import Counter

import pytest
import torch

from selfsup.data import ToyWorld, shift_ids
from selfsup.data.chinese import COMMON_CHARACTERS, DIGITS, KNOWN, lexicon, to_english_words

CJK = re.compile(r"[\u4e00-\u9fa5\u3007\u3002\uff0c\uff1f]+")


@pytest.fixture(scope="module")
def tw():
    return ToyWorld(seed=0, n_people=40)


def _back(tw):
    """Chinese -> English by inverting the gold dictionaries (independent of to_english_words)."""
    back = {z: e for e, z in tw.dictionary().items()}
    back.update({z: e.split("#")[0] for e, z in tw.sense_dictionary().items()})
    return back


def test_dictionary_is_a_bijection_between_disjoint_vocabularies(tw):
    d, senses = tw.dictionary(), tw.sense_dictionary()
    assert len(set(d.values())) == len(d) > 300
    assert len(set(senses.values())) == len(senses) == 10
    assert not set(d.values()) & set(senses.values())
    assert not (set(d) | set(senses)) & (set(d.values()) | set(senses.values()))
    for z in list(d.values()) + list(senses.values()):
        assert CJK.fullmatch(z), z
        assert len(z) <= 5  # one or two characters, four-digit years plus 年, 苹果公司
    for e in d:
        assert re.fullmatch(r"[a-z0-9.,?]+", e), e
    assert senses["apple#fruit"] == "苹果" and senses["apple#company"] == "苹果公司"
    assert senses["bank#money"] == "银行" and d["1990"] == "一九九〇年"


def test_made_up_words_use_common_characters_only():
    # GB2312 level 1: every Chinese font has these, so no page or figure shows a box for a toy word
    assert len(COMMON_CHARACTERS) == len(set(COMMON_CHARACTERS)) == 3755
    assert COMMON_CHARACTERS[0] == "啊" and COMMON_CHARACTERS[-1] == "座"
    allowed = set(COMMON_CHARACTERS) | set(DIGITS) | {c for w in KNOWN.values() for c in w} | {"年"}
    assert {c for w in lexicon().values() for c in w if not w.isascii()} <= allowed


def test_parallel_sentences_translate_word_by_word(tw):
    pairs = tw.parallel(400)
    assert len(pairs) == 400
    back = _back(tw)
    reordered = 0
    for en, zh in zip(pairs["en"], pairs["zh"], strict=True):
        words = [back[z] for z in zh.split()]
        assert Counter(words) == Counter(en.split()), (en, zh)
        assert to_english_words(zh.split()) == words
        reordered += words != en.split()
    assert reordered > 100  # Chinese puts place and time before the verb


def test_every_english_word_has_a_chinese_word(tw):
    d = tw.dictionary()
    for s in tw.sentences(2000):
        for w in s.split():
            assert w in d or w in {"apple", "bank", "bat", "mouse", "spring"}, w
    zh_words = {w for s in tw.sentences(2000, language="zh") for w in s.split()}
    assert zh_words <= set(d.values()) | set(tw.sense_dictionary().values())


def test_tasks_in_chinese_are_the_same_examples(tw):
    en, zh = tw.sentiment(50, 10, 10), tw.sentiment(50, 10, 10, language="zh")
    assert en["test"]["label"] == zh["test"]["label"]
    back = _back(tw)
    for a, b in zip(en["train"]["text"], zh["train"]["text"], strict=True):
        assert Counter(back[z] for z in b.split()) == Counter(a.split())
    en, zh = tw.pos(20, 5, 5), tw.pos(20, 5, 5, language="zh")
    for a, b in zip(en["train"], zh["train"], strict=True):
        assert Counter(zip(a["tokens"], a["tags"], strict=True)) == Counter(
            zip((back[z] for z in b["tokens"]), b["tags"], strict=True)
        )


def test_shift_ids_moves_all_but_special_tokens():
    assert shift_ids([0, 5, 7, 2], 100, keep=[0, 2]) == [0, 105, 107, 2]
    assert shift_ids([[1, 3], [4]], 10) == [[11, 13], [14]]
    ids = torch.tensor([[0, 5, 7, 2], [3, 3, 0, 0]])
    out = shift_ids(ids, 100, keep=[0, 2])
    assert torch.equal(out, torch.tensor([[0, 105, 107, 2], [103, 103, 0, 0]]))
    assert torch.equal(ids, torch.tensor([[0, 5, 7, 2], [3, 3, 0, 0]]))  # input untouched
