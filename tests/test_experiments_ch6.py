"""Chapter 6's building blocks (work in progress: the chapter and its experiments are not written yet): the
bilingual tokenizer and the id rewriting of the ablations."""

import pytest

from selfsup.experiments.ch6_bilingual import (
    BilingualSettings,
    as_language,
    bilingual_tokenizer,
    encode_as,
    fake_offset,
    vocab_size,
)
from selfsup.experiments.ch6_probes import gold_pairs


@pytest.fixture(scope="module")
def tok():
    return bilingual_tokenizer()


def test_every_dictionary_word_of_either_language_is_one_piece(tok):
    pairs = gold_pairs(tok)
    assert len(pairs) > 50
    english, chinese = {e for e, _ in pairs}, {z for _, z in pairs}
    assert not english & chinese, "an English and a Chinese word share an id"


def test_fake_english_shifts_every_id_but_the_specials(tok):
    s = BilingualSettings(languages=("en", "fake"))
    en = encode_as(tok, "alice smith was born in lyon .", "en", s)
    fake = encode_as(tok, "alice smith was born in lyon .", "fake", s)
    assert (fake[0], fake[-1]) == (en[0], en[-1])  # [CLS] and [SEP] are shared
    assert [f - e for e, f in zip(en[1:-1], fake[1:-1], strict=True)] == [fake_offset(tok)] * (len(en) - 2)
    assert vocab_size(tok, s) == 2 * len(tok)


def test_a_second_language_with_its_own_specials_gets_new_ids(tok):
    s = BilingualSettings(shared_specials=False)
    ids = encode_as(tok, "alice smith was born in lyon .", "en", s)
    own = as_language(ids, "zh", tok, s)
    assert own[0] != ids[0] and own[-1] != ids[-1] and own[1:-1] == ids[1:-1]
    assert max(own) < vocab_size(tok, s)


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="languages"):
        BilingualSettings(languages=("en", "klingon"))
    with pytest.raises(ValueError, match="docs_per_language"):
        BilingualSettings(docs_per_language=0)
