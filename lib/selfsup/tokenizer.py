"""Train, save and load the two tokenizers of the course with Hugging Face `tokenizers`.

- WordPiece, as in BERT: lower-cased, punctuation split off, sub-words marked with `##`, and
  `[CLS] A [SEP] B [SEP]` templates with segment ids 0/1.
- Byte-level BPE, as in GPT-2: any string (emoji, 苹果, ...) round-trips exactly because the base
  alphabet is the 256 bytes, so there is no unknown token.

Both come back wrapped as `transformers.PreTrainedTokenizerFast`, so `tok(a, b, padding=True,
truncation=True, return_tensors="pt")` and `save_pretrained` work as they do for the real models.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

PAD = "[PAD]"
UNK = "[UNK]"
CLS = "[CLS]"
SEP = "[SEP]"
MASK = "[MASK]"
# The order fixes the ids: PAD=0, UNK=1, CLS=2, SEP=3, MASK=4 (the trainer assigns special tokens first).
SPECIAL_TOKENS = [PAD, UNK, CLS, SEP, MASK]
PAD_ID, UNK_ID, CLS_ID, SEP_ID, MASK_ID = range(5)
EOT = "<|endoftext|>"


def _non_blank(texts: Iterable[str]) -> list[str]:
    """Materialize the corpus (it is iterated by the trainer) and refuse one with no text in it."""
    kept = [t for t in texts if t and not t.isspace()]
    if not kept:
        raise ValueError("cannot train a tokenizer on an empty corpus: every text is empty or blank")
    return kept


def _batches(texts: list[str], size: int = 1000) -> Iterator[list[str]]:
    """Feed the trainer in batches; the Rust side then parallelizes within each batch."""
    for i in range(0, len(texts), size):
        yield texts[i : i + size]


def train_wordpiece(
    texts: Iterable[str],
    vocab_size: int = 2000,
    min_frequency: int = 1,
    lowercase: bool = True,
    max_len: int = 128,
    split_cjk_chars: bool = False,
) -> PreTrainedTokenizerFast:
    """Train a BERT-style WordPiece tokenizer; ids 0..4 are [PAD] [UNK] [CLS] [SEP] [MASK].

    The vocabulary is learned by `learn_wordpiece_vocab`, which breaks every tie by the pieces' spelling, so
    the same corpus gives the same tokenizer, ids included, in every process. (The `tokenizers` trainer
    does not: it breaks frequency ties in hash-map order, and three trainings on one corpus gave three
    vocabularies.)
    """
    texts = _non_blank(texts)
    # BERT splits every CJK character into its own word; the toy Chinese of the course writes
    # whole words separated by spaces (苹果 = apple), so by default they are kept whole.
    normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=split_cjk_chars, strip_accents=None, lowercase=lowercase
    )
    pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(word for word, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(text)))
    vocab = learn_wordpiece_vocab(counts, vocab_size, min_frequency)
    tok = Tokenizer(
        models.WordPiece({piece: i for i, piece in enumerate(vocab)}, unk_token=UNK, continuing_subword_prefix="##")
    )
    tok.normalizer = normalizer
    tok.pre_tokenizer = pre_tokenizer
    tok.post_processor = processors.TemplateProcessing(
        single=f"{CLS}:0 $A:0 {SEP}:0",
        pair=f"{CLS}:0 $A:0 {SEP}:0 $B:1 {SEP}:1",
        special_tokens=[(CLS, CLS_ID), (SEP, SEP_ID)],
    )
    tok.decoder = decoders.WordPiece(prefix="##")
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token=PAD,
        unk_token=UNK,
        cls_token=CLS,
        sep_token=SEP,
        mask_token=MASK,
        model_max_length=max_len,
        model_input_names=["input_ids", "token_type_ids", "attention_mask"],
    )


def learn_wordpiece_vocab(
    word_counts: Mapping[str, int], vocab_size: int, min_frequency: int = 1, prefix: str = "##"
) -> list[str]:
    """A WordPiece vocabulary learned by merging the most frequent pair of adjacent pieces, as BERT's is.

    Words start as characters, every one after the first marked as a continuation (`p ##l ##a ##y`).
    The vocabulary is the special tokens, then every character piece (most frequent first), then one new
    piece per merge (`##a ##y` -> `##ay`), until `vocab_size` pieces or no pair occurs `min_frequency`
    times. Ties go to the pair that sorts first, so the result depends on the counts alone. A corpus with
    more distinct characters than `vocab_size` keeps them all (like the `tokenizers` trainer), so no
    character it contains becomes [UNK].
    """
    if vocab_size < len(SPECIAL_TOKENS) + 1:
        raise ValueError(f"vocab_size={vocab_size} is too small: it must hold the 5 special tokens and a character")
    if not word_counts:
        raise ValueError("cannot learn a vocabulary from no words: the corpus is empty after normalization")
    words = sorted(word_counts)
    freq = [word_counts[w] for w in words]
    pieces = [[w[0], *(prefix + c for c in w[1:])] for w in words]
    alphabet: Counter[str] = Counter()
    for symbols, f in zip(pieces, freq, strict=True):
        for sym in symbols:
            alphabet[sym] += f
    characters = sorted((p for p in alphabet if p not in SPECIAL_TOKENS), key=lambda p: (-alphabet[p], p))
    vocab = [*SPECIAL_TOKENS, *characters]  # every character stays, even past vocab_size: none becomes [UNK]
    known = set(vocab)
    pair_count: Counter[tuple[str, str]] = Counter()
    where: dict[tuple[str, str], set[int]] = {}
    for i, symbols in enumerate(pieces):
        for pair in zip(symbols, symbols[1:], strict=False):
            pair_count[pair] += freq[i]
            where.setdefault(pair, set()).add(i)
    heap = [(-c, pair) for pair, c in pair_count.items()]
    heapq.heapify(heap)
    while heap and len(vocab) < vocab_size:
        neg, pair = heapq.heappop(heap)
        if -neg != pair_count.get(pair, 0):
            continue  # a stale entry: the pair's count changed after it was pushed
        if -neg < min_frequency:
            break
        a, b = pair
        merged = a + b[len(prefix) :]
        if merged not in known:
            known.add(merged)
            vocab.append(merged)
        touched: set[tuple[str, str]] = set()
        for i in sorted(where.pop(pair, ())):
            symbols, f = pieces[i], freq[i]
            for old in zip(symbols, symbols[1:], strict=False):
                pair_count[old] -= f
                touched.add(old)
            out, j = [], 0
            while j < len(symbols):
                if j + 1 < len(symbols) and symbols[j] == a and symbols[j + 1] == b:
                    out.append(merged)
                    j += 2
                else:
                    out.append(symbols[j])
                    j += 1
            pieces[i] = out
            for new in zip(out, out[1:], strict=False):
                pair_count[new] += f
                where.setdefault(new, set()).add(i)
                touched.add(new)
        for t in touched:
            if pair_count[t] > 0:
                heapq.heappush(heap, (-pair_count[t], t))
            else:
                pair_count.pop(t, None)
    return vocab


def train_bpe(
    texts: Iterable[str], vocab_size: int = 2000, min_frequency: int = 1, max_len: int = 256
) -> PreTrainedTokenizerFast:
    """Train a GPT-2-style byte-level BPE tokenizer with `<|endoftext|>` (id 0) as bos, eos and pad.

    GPT-2 has no padding token; reusing `<|endoftext|>` for padding is the usual convention and is
    harmless because padded positions are masked out of attention and of the loss (labels -100).
    Nothing is added around a text on encoding: documents are joined with `<|endoftext|>` by the caller.
    """
    texts = _non_blank(texts)
    tok = Tokenizer(models.BPE())
    # add_prefix_space=False keeps the round trip exact: decode(encode(x)) == x for every string.
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=[EOT],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_batches(texts), trainer=trainer, length=len(texts))
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    tok.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=EOT,
        eos_token=EOT,
        unk_token=EOT,
        pad_token=EOT,
        model_max_length=max_len,
        model_input_names=["input_ids", "attention_mask"],
    )


def save_tokenizer(tok: PreTrainedTokenizerFast, path: str | Path) -> Path:
    """Save with `save_pretrained` (tokenizer.json + config) into the folder `path`; return it."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tok.save_pretrained(str(path))
    return path


def load_tokenizer(path: str | Path) -> PreTrainedTokenizerFast:
    """Load a tokenizer saved by `save_tokenizer` from a local folder (never from the hub)."""
    path = Path(path)
    if not (path / "tokenizer.json").is_file():
        raise FileNotFoundError(f"no saved tokenizer at {path}: expected a folder with tokenizer.json (save_tokenizer)")
    return PreTrainedTokenizerFast.from_pretrained(str(path), local_files_only=True)
