"""`ToyWorld`: one seeded world and everything derived from it (text, documents, tasks, the second language)."""

from __future__ import annotations

import random
from collections.abc import Iterator

from datasets import Dataset, DatasetDict

from selfsup.data import chinese, qa, tasks
from selfsup.data.chinese import LANGUAGES, render
from selfsup.data.grammar import Sent
from selfsup.data.language import Speaker
from selfsup.data.world import CITIES, COMPANIES, World


class ToyWorld:
    """A seeded world with an English-like language over it, a toy Chinese twin, and labelled tasks.

    Every method is deterministic for (the world's seed, the method's `seed` argument); methods with the
    same arguments but a different `language` produce the same meanings in either language.
    """

    def __init__(self, seed: int = 0, n_people: int = 100) -> None:
        """Draw the world: `n_people` people with their facts (seed 0 and 100 people by default)."""
        self.seed = seed
        self.world = World(seed, n_people)

    def __repr__(self) -> str:
        """The seed and the size of the world."""
        return f"ToyWorld(seed={self.seed}, n_people={len(self.world.people)})"

    # Raw text ------------------------------------------------------------------------------------------------

    def _documents(self, n: int, seed: int) -> Iterator[list[Sent]]:
        """Documents as Sents: people in a shuffled cycle (so every birthplace appears once `n` >= the number of
        people times 20/13), with a city (10 %), a food-review (20 %) or a company (5 %) document in between."""
        rng = random.Random(f"documents-{self.seed}-{seed}")
        sp = Speaker(self.world, rng)
        people = list(self.world.people)
        rng.shuffle(people)
        next_person = 0
        for _ in range(n):
            r = rng.random()
            if r < 0.1:
                yield sp.city_document(rng.choice(CITIES))
            elif r < 0.3:
                yield sp.review_document()
            elif r < 0.35:
                yield sp.company_document(rng.choice(list(COMPANIES)))
            else:
                yield sp.person_document(people[next_person % len(people)])
                next_person += 1

    def documents(self, n: int, language: str = "en", seed: int = 0) -> list[list[str]]:
        """`n` documents, each a list of sentences about one person, city or company."""
        _check_language(language)
        return [[" ".join(w for w, _ in render(s, language)) for s in doc] for doc in self._documents(n, seed)]

    def text(self, n_sentences: int, language: str = "en", seed: int = 0) -> Iterator[str]:
        """`n_sentences` sentences, document after document, one string each (for tokenizers and pre-training)."""
        _check_language(language)
        left = n_sentences
        for doc in self._documents(n_sentences, seed):  # every document has at least one sentence
            for s in doc[:left]:
                yield " ".join(w for w, _ in render(s, language))
            left -= len(doc)
            if left <= 0:
                return

    def sentences(self, n: int, language: str = "en", seed: int = 0) -> list[str]:
        """`text(n)` as a list."""
        return list(self.text(n, language, seed))

    # Tasks -----------------------------------------------------------------------------------------------------

    def sentiment(
        self,
        n_train: int = 1000,
        n_val: int = 200,
        n_test: int = 200,
        language: str = "en",
        seed: int = 0,
        held_out: bool = False,
    ) -> DatasetDict:
        """Case 1: text, label (negative / positive); balanced, majority baseline 0.5.

        With `held_out`, validation and test reviews use adjectives that no training review uses.
        """
        return tasks.sentiment(self.world, (n_train, n_val, n_test), _check_language(language), seed, held_out)

    def pos(
        self, n_train: int = 1000, n_val: int = 200, n_test: int = 200, language: str = "en", seed: int = 0
    ) -> DatasetDict:
        """Case 2: tokens, tags (universal POS, a ClassLabel sequence)."""
        return tasks.pos(self.world, (n_train, n_val, n_test), _check_language(language), seed)

    def nli(
        self, n_train: int = 1000, n_val: int = 200, n_test: int = 200, language: str = "en", seed: int = 0
    ) -> DatasetDict:
        """Case 3: premise, hypothesis, label (entailment / neutral / contradiction); balanced, baseline 1/3."""
        return tasks.nli(self.world, (n_train, n_val, n_test), _check_language(language), seed)

    def qa(
        self,
        n_train: int = 1000,
        n_val: int = 200,
        n_test: int = 200,
        language: str = "en",
        seed: int = 0,
        held_out: bool = False,
    ) -> DatasetDict:
        """Case 4: question, context, answer_text, answer_start (char), tokens, start_token, end_token.

        held_out=True: validation and test word the answer's fact in ways training never does.
        """
        return qa.qa(self.world, (n_train, n_val, n_test), _check_language(language), seed, held_out)

    def fact_qa(
        self,
        n_train: int | None = None,
        n_val: int | None = None,
        n_test: int | None = None,
        language: str = "en",
        seed: int = 0,
    ) -> DatasetDict:
        """Closed-book birthplace QA: question, answer, person; by default 60/20/20 % of the people."""
        n = len(self.world.people)
        n_val = n // 5 if n_val is None else n_val
        n_test = n // 5 if n_test is None else n_test
        n_train = n - n_val - n_test if n_train is None else n_train
        return qa.fact_qa(self.world, (n_train, n_val, n_test), _check_language(language), seed)

    def nsp(
        self, n_train: int = 1000, n_val: int = 200, n_test: int = 200, language: str = "en", seed: int = 0
    ) -> DatasetDict:
        """Next-sentence pairs: sentence_a, sentence_b, label (is_next / not_next); balanced."""
        return tasks.nsp(self.world, (n_train, n_val, n_test), _check_language(language), seed)

    def word_sense(
        self, n_train: int = 1000, n_val: int = 200, n_test: int = 200, language: str = "en", seed: int = 0
    ) -> DatasetDict:
        """Ambiguous words in context: sentence, word, word_index, label ("apple:fruit", ...); balanced."""
        return tasks.word_sense(self.world, (n_train, n_val, n_test), _check_language(language), seed)

    # The second language ---------------------------------------------------------------------------------------

    def parallel(self, n: int, seed: int = 0) -> Dataset:
        """`n` parallel sentences (en, zh) from documents: for evaluation, never for training."""
        en, zh = [], []
        for doc in self._documents(n, seed):
            for s in doc:
                if len(en) == n:
                    break
                en.append(" ".join(w for w, _ in render(s, "en")))
                zh.append(" ".join(w for w, _ in render(s, "zh")))
            if len(en) == n:
                break
        return Dataset.from_dict({"en": en, "zh": zh})

    def dictionary(self) -> dict[str, str]:
        """The gold English -> Chinese dictionary over surface words (a bijection; ambiguous words left out)."""
        return chinese.dictionary()

    def sense_dictionary(self) -> dict[str, str]:
        """The Chinese word of each sense of the ambiguous words ("apple#fruit" -> "苹果")."""
        return chinese.sense_dictionary()


def _check_language(language: str) -> str:
    if language not in LANGUAGES:
        raise ValueError(f"language must be one of {LANGUAGES}, got {language!r}")
    return language
