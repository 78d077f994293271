"""The second language: toy Chinese with the same meanings, a disjoint vocabulary, and its own word order.

Every English lexeme gets one Chinese word: a few are real (苹果 the fruit, 苹果公司 the company, 银行 the bank
for money, 河岸 the river bank, ...), years are written in Chinese numerals (1990 -> 一九九〇), and the rest are
one or two CJK characters drawn once from `random.Random("toy-chinese")`, so the lexicon is the same for
every world. The map from lexemes to Chinese words is a bijection; because English "apple" has two senses,
the bijection between *surface* words leaves out the five ambiguous words (see `sense_dictionary`).
Word order follows each template's chunk order ("alice was born in lyon" -> "alice in lyon born was").

"Fake English" (K et al. 2020) needs no text of its own: tokenize English as usual and shift the ids with
`shift_ids`, so the two "languages" share no token but the special ones.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from functools import cache
from typing import Any

from selfsup.data.grammar import Sent, Word
from selfsup.data.world import ANIMALS, COMPANIES, COUNTRIES, FEMALE, FOODS, JOBS, MALE, SURNAMES

KNOWN = {
    "apple#fruit": "苹果",
    "apple#company": "苹果公司",
    "bank#river": "河岸",
    "bank#money": "银行",
    "bat#animal": "蝙蝠",
    "bat#sports": "球棒",
    "mouse#animal": "老鼠",
    "mouse#computer": "鼠标",
    "spring#season": "春天",
    "spring#water": "泉水",
    ".": "。",
    ",": "，",
    "?": "？",
    "and": "和",
    "but": "但是",
    "not": "不",
    "born": "出生",
    "city": "城市",
    "company": "公司",
    "river": "河",
    "water": "水",
    "cat": "猫",
    "dog": "狗",
    "rice": "米饭",
    "tea": "茶",
    "good": "好",
    "bad": "坏",
    "she": "她",
    "he": "他",
    "they": "他们",
    "paris": "巴黎",
    "tokyo": "东京",
    "france": "法国",
    "japan": "日本",
    "phone": "手机",
    "computer": "电脑",
}
DIGITS = "〇一二三四五六七八九"
# The made-up words are drawn from GB2312's first level: the 3,755 most common characters, which every Chinese
# font has (the book's web font too). Drawn from all of U+4E00-U+9FA5, a third of them were rare characters
# that the web font lacks, and pages showed boxes for them.
COMMON_CHARACTERS = tuple(
    bytes((row, cell)).decode("gb2312")
    for row in range(0xB0, 0xD8)
    for cell in range(0xA1, 0xFF)
    if (row, cell) < (0xD7, 0xFA)
)


@cache
def english_lexemes() -> tuple[str, ...]:
    """Every lexeme ToyWorld's English can write, sorted (so the Chinese lexicon does not depend on set order)."""
    from selfsup.data.templates import ALL_TEMPLATES, INTENSIFIERS, NEGATIVE, POSITIVE

    words = set(KNOWN)
    for t in ALL_TEMPLATES:
        words |= t.lexemes()
    words |= set(FEMALE + MALE + SURNAMES + FOODS + JOBS + ANIMALS + POSITIVE + NEGATIVE + INTENSIFIERS)
    words |= set(COUNTRIES) | {c for cs in COUNTRIES.values() for c in cs} | set(COMPANIES) | set(COMPANIES.values())
    words |= {"a", "an", "the", "this", "that", "these", "those", "her", "his", "far", "from", "anything", "at", "all"}
    words |= {"it", "they"}
    words |= {str(y) for y in range(1900, 2031)}
    return tuple(sorted(words))


@cache
def lexicon() -> dict[str, str]:
    """The bijection English lexeme -> Chinese word (ambiguous words appear once per sense)."""
    rng = random.Random("toy-chinese")
    out = {}
    used = set(KNOWN.values())
    for lex in english_lexemes():
        if lex in KNOWN:
            out[lex] = KNOWN[lex]
        elif lex.isdigit():
            out[lex] = "".join(DIGITS[int(d)] for d in lex) + "年"
        else:
            while True:
                word = "".join(rng.choice(COMMON_CHARACTERS) for _ in range(rng.choice((1, 2, 2))))
                if word not in used:
                    break
            used.add(word)
            out[lex] = word
    return out


LANGUAGES = ("en", "zh")


def ordered(sent: Sent, language: str = "en") -> list[Word]:
    """The sentence's lexemes with their tags, in the word order of `language` ("en" or "zh")."""
    if language == "en":
        return sent.words()
    if language == "zh":
        return [w for i in sent.order for w in sent.chunks[i]]
    raise ValueError(f"language must be one of {LANGUAGES}, got {language!r}")


def spell(lex: str, language: str = "en") -> str:
    """How a lexeme is written in `language`: "apple#company" is "apple" in English and "苹果公司" in Chinese."""
    return lex.split("#", 1)[0] if language == "en" else lexicon()[lex]


def render(sent: Sent, language: str = "en") -> list[Word]:
    """The sentence as written words with their tags, in `language`."""
    if language == "en":
        return [(w.split("#", 1)[0], t) for w, t in sent.words()]
    zh = lexicon()
    return [(zh[w], t) for w, t in ordered(sent, language)]


def dictionary() -> dict[str, str]:
    """The gold dictionary between surface words: English word -> Chinese word, a bijection (no ambiguous words)."""
    return {w: z for w, z in lexicon().items() if "#" not in w}


def sense_dictionary() -> dict[str, str]:
    """The Chinese word of each sense of an ambiguous English word: "apple#fruit" -> "苹果", ..."""
    return {w: z for w, z in lexicon().items() if "#" in w}


def to_english_words(zh_words: Sequence[str]) -> list[str]:
    """Chinese words back to English surface words, word by word (the senses collapse onto one spelling)."""
    back = {z: w.split("#", 1)[0] for w, z in lexicon().items()}
    return [back[z] for z in zh_words]


def shift_ids(ids: Any, offset: int, keep: Sequence[int] = ()) -> Any:
    """Shift token ids by `offset` except those in `keep` (special tokens); lists stay lists, tensors tensors."""
    keep_set = set(keep)
    if isinstance(ids, list | tuple):
        return type(ids)(
            shift_ids(i, offset, keep) if isinstance(i, list | tuple) else (i if i in keep_set else i + offset)
            for i in ids
        )
    import torch  # tensors only; the list path needs nothing

    shifted = ids + offset
    if keep_set:
        shifted = torch.where(torch.isin(ids, torch.tensor(sorted(keep_set), device=ids.device)), ids, shifted)
    return shifted
