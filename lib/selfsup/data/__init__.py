"""ToyWorld: the course's offline data, a seeded world with an English-like language and tasks derived from it.

Nothing is downloaded: every corpus and task below is generated, deterministically for a seed, in pure Python
(`random.Random` seeded with strings, so results do not depend on PYTHONHASHSEED). Text is lower-case, words
and punctuation separated by single spaces.

    from selfsup.data import ToyWorld
    w = ToyWorld(seed=0, n_people=100)

Raw text (pre-training, tokenizer training); `language` is "en" or "zh" everywhere below:
    w.sentences(n) -> list[str]              w.text(n) -> Iterator[str] (one sentence a line)
    w.documents(n) -> list[list[str]]         documents of related sentences about one person, city or company

Task suites, each a `datasets.DatasetDict` with disjoint train / validation / test splits:
    w.sentiment(n_train, n_val, n_test)      text, label (ClassLabel negative / positive)          Case 1
                                             held_out=True: evaluated on adjectives training never shows
    w.pos(n_train, n_val, n_test)            tokens, tags (Sequence of ClassLabel, universal POS)  Case 2
    w.nli(n_train, n_val, n_test)            premise, hypothesis, label (entailment/neutral/contradiction)  Case 3
    w.qa(n_train, n_val, n_test)             question, context, answer_text, answer_start (char),
                                             tokens (context.split()), start_token, end_token (inclusive)  Case 4
                                             one person's facts; the answer has a same-typed twin in the
                                             context; held_out=True: evaluated on wordings training lacks
    w.fact_qa(n_train, n_val, n_test)        question, answer, person: birthplaces, people disjoint across splits
    w.nsp(n_train, n_val, n_test)            sentence_a, sentence_b, label (ClassLabel is_next / not_next)
    w.word_sense(n_train, n_val, n_test)     sentence, word, word_index, label (ClassLabel "apple:fruit", ...)
    majority_baseline(dataset_dict, split="test") -> float   accuracy of always answering the train majority

The second language (toy Chinese, same meanings, disjoint vocabulary, its own word order):
    w.parallel(n) -> Dataset (en, zh)         parallel sentences, for evaluation only
    w.dictionary() -> dict[str, str]          gold English -> Chinese bijection (unambiguous words)
    w.sense_dictionary() -> dict[str, str]    "apple#fruit" -> "苹果", "apple#company" -> "苹果公司", ...
    shift_ids(ids, offset, keep=()) -> ids    "fake English": the same text with token ids shifted by offset
                                              (ids in `keep`, the special tokens, stay shared)

Other generators:
    dna_dataset(n_train, n_val, n_test, length=64, n_classes=4, seed=0) -> DatasetDict (sequence, label)
    dna_motifs(n_classes, motif_len, seed) -> list[str]
    icl_prompts(family, n, k, seed=0, world=None, relation="born_in") -> list[ICLPrompt]
                                              families "mapping", "relation", "linear"; ICLPrompt.text, .answer
    icl_dataset(family, n, k, ...) -> Dataset  the same as columns (text, query, answer, examples_x/_y, rule)
    icl_answer(family, rule, query, world=None) -> str   the hidden rule applied, for scoring

Modules: world.py (entities, facts), grammar.py (templates, agreement, tagged sentences), templates.py (the
sentence templates), language.py (sentences and documents), chinese.py (second language, dictionary),
tasks.py and qa.py (task suites), splits.py (splits, baselines), dna.py, icl.py, toyworld.py (the facade).
"""

from selfsup.data.chinese import shift_ids
from selfsup.data.dna import dna_dataset, dna_motifs
from selfsup.data.icl import ICLPrompt, icl_answer, icl_dataset, icl_prompts
from selfsup.data.splits import majority_baseline
from selfsup.data.toyworld import ToyWorld
from selfsup.data.world import World

__all__ = [
    "ICLPrompt",
    "ToyWorld",
    "World",
    "dna_dataset",
    "dna_motifs",
    "icl_answer",
    "icl_dataset",
    "icl_prompts",
    "majority_baseline",
    "shift_ids",
]
