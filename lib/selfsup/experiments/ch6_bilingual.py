"""A bilingual tiny BERT: MLM on ToyWorld English and toy-Chinese documents, with no parallel text.

The two corpora describe the same world (the same people, cities and facts, as two Wikipedias do), but every
document is drawn with a different seed in each language, so no Chinese document translates an English one.
One WordPiece vocabulary covers both languages (2005 pieces: every word of either language is one piece). The
languages share no word at all (`selfsup.data.chinese`): only [CLS], [SEP], [MASK] and [PAD] are common.

Variants, for the ablations (K et al. 2020; Dufter & Schütze 2020):
    second="fake"            "fake English": English with every id shifted past the vocabulary (`shift_ids`)
    shared_specials=False    the second language gets its own [CLS], [SEP] and [MASK]
    language_positions=True  the second language gets its own table of position embeddings
    pretrain=... d_model     a larger model (over-parameterised for the data)

    tok = bilingual_tokenizer()
    model, info = bilingual_bert(seed=0)                  the shared model of chapter 6 (cached)
    ids = encode_as(tok, "alice smith was born in lyon .", "zh", BilingualSettings())   ids of a language
"""

from __future__ import annotations

import dataclasses
import functools
import random
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

from selfsup.bert import BertEmbeddings, BertForPretraining, BertModel
from selfsup.data import shift_ids
from selfsup.data.world import FEMALE, MALE, SURNAMES
from selfsup.experiments.cache import cached_model
from selfsup.experiments.pretraining import PretrainSettings
from selfsup.experiments.zoo import MODEL_CODE, toy_world
from selfsup.tokenizer import CLS_ID, MASK_ID, SEP_ID, train_wordpiece

LANGUAGES = ("en", "zh", "fake")
SPECIALS = (CLS_ID, SEP_ID, MASK_ID)  # shared by default; [PAD] is never seen by the model, [UNK] never occurs
CODE = (*MODEL_CODE, "selfsup.experiments.ch6_bilingual")
SHARED_CLASSES = {
    "names": (*FEMALE, *MALE, *SURNAMES),  # people's names, as Latin-script names stay in Chinese text
    "years": tuple(str(y) for y in range(1900, 2031)),  # 1982 instead of 一九八二年
}


@functools.cache
def _unshare_table(shared: tuple[str, ...]) -> dict[str, str]:
    """Chinese word -> English spelling, for the word classes written the same in both languages."""
    zh = toy_world().dictionary()
    return {zh[w]: w for c in shared for w in SHARED_CLASSES[c]}


def localize(words: str | list[str], language: str, s: BilingualSettings) -> str | list[str]:
    """A text (or a list of words) of `language` with the shared word classes written the English way."""
    if language != "zh" or not s.shared:
        return words
    table = _unshare_table(tuple(sorted(s.shared)))
    out = [table.get(w, w) for w in (words.split() if isinstance(words, str) else words)]
    return " ".join(out) if isinstance(words, str) else out


@dataclass(frozen=True)
class BilingualSettings:
    """What is pre-trained: languages, documents per language, the ablations, and the MLM run itself.

    `docs_per_language` documents of each language in `languages` (a monolingual model has one). The
    run's steps, batch and model come from `pretrain` (its n_docs is ignored).
    """

    languages: tuple[str, ...] = ("en", "zh")
    docs_per_language: int = 6000
    shared: tuple[str, ...] = ()  # word classes toy Chinese writes as English does: "names", "years"
    shared_specials: bool = True
    language_positions: bool = False
    pretrain: PretrainSettings = field(default_factory=PretrainSettings)

    def __post_init__(self) -> None:
        """Reject unknown languages and empty corpora."""
        if not self.languages or any(lang not in LANGUAGES for lang in self.languages):
            raise ValueError(f"languages={self.languages!r}: each must be one of {LANGUAGES}")
        if any(c not in SHARED_CLASSES for c in self.shared):
            raise ValueError(f"shared={self.shared!r}: each must be one of {tuple(SHARED_CLASSES)}")
        if self.docs_per_language < 1:
            raise ValueError(f"docs_per_language={self.docs_per_language!r} must be >= 1")

    def replace(self, **changes: object) -> BilingualSettings:
        """A copy with some fields changed (pre-training fields go to `pretrain`)."""
        own = {k: v for k, v in changes.items() if k in {f.name for f in dataclasses.fields(self)}}
        rest = {k: v for k, v in changes.items() if k not in own}
        if rest:
            own["pretrain"] = own.get("pretrain", self.pretrain).replace(**rest)
        return dataclasses.replace(self, **own)


@functools.cache
def bilingual_tokenizer() -> object:
    """WordPiece over English and toy-Chinese sentences: every word of either language is a single piece."""
    tw = toy_world()
    return train_wordpiece(tw.sentences(20000) + tw.sentences(20000, language="zh"), vocab_size=2100)


def vocab_size(tok: object, s: BilingualSettings) -> int:
    """The model's vocabulary: the tokenizer's, plus a shifted copy for fake English, plus own specials."""
    n = len(tok)
    if "fake" in s.languages:
        n += len(tok)
    if not s.shared_specials:
        n += len(SPECIALS)
    return n


def fake_offset(tok: object) -> int:
    """How far fake English's ids are shifted: past the whole real vocabulary."""
    return len(tok)


def own_specials(tok: object, s: BilingualSettings) -> dict[int, int]:
    """The second language's [CLS], [SEP], [MASK] ids when it has its own, else the identity."""
    if s.shared_specials:
        return {i: i for i in SPECIALS}
    base = vocab_size(tok, s) - len(SPECIALS)
    return {i: base + k for k, i in enumerate(SPECIALS)}


def second_language(s: BilingualSettings) -> str:
    """The language that is not English ("zh" or "fake"), or the only one."""
    return next((lang for lang in s.languages if lang != "en"), s.languages[0])


def as_language(ids: Sequence[int], language: str, tok: object, s: BilingualSettings) -> list[int]:
    """Ids of a text tokenized as English or Chinese, written in `language`'s ids under the settings.

    Fake English shifts every id but the special tokens; a second language with its own specials
    gets them in place of the shared ones. English ids are returned as they are.
    """
    ids = list(ids)
    if language == "fake":
        ids = shift_ids(ids, fake_offset(tok), keep=range(5))
    if language != "en" and not s.shared_specials:
        table = own_specials(tok, s)
        ids = [table.get(i, i) for i in ids]
    return ids


def text_language(language: str) -> str:
    """The language whose text a language's ids are made from (fake English is English text)."""
    return "en" if language == "fake" else language


def encode_as(tok: object, text: str, language: str, s: BilingualSettings) -> list[int]:
    """`[CLS] text [SEP]` in `language`'s ids (text in English for "en" and "fake", in toy Chinese for "zh")."""
    return as_language(tok(text)["input_ids"], language, tok, s)


def language_of_ids(tok: object, s: BilingualSettings) -> Tensor:
    """A (V,) bool tensor: True for the ids only the second language uses (its words, its own specials)."""
    zh = torch.zeros(vocab_size(tok, s), dtype=torch.bool)
    second = second_language(s)
    if second == "fake":
        zh[fake_offset(tok) + 5 : fake_offset(tok) + len(tok)] = True
    elif second == "zh":
        for piece, i in tok.get_vocab().items():
            zh[i] = any("\u3000" <= ch <= "\u9fff" or "\uff00" <= ch <= "\uffef" for ch in piece)
    if not s.shared_specials:
        zh[list(own_specials(tok, s).values())] = True
    return zh


class LanguagePositionEmbeddings(BertEmbeddings):
    """BERT's embeddings with a second table of positions for the rows written in the second language.

    A row's language is read from its ids (any id of the second language), so the model needs no extra input.
    """

    def __init__(self, config: object, second_ids: Tensor) -> None:
        super().__init__(config)
        self.position_second = torch.nn.Embedding(config.max_len, config.d_model)
        torch.nn.init.normal_(self.position_second.weight, std=config.init_std)
        self.register_buffer("second_ids", second_ids, persistent=False)

    def forward(self, input_ids: Tensor, token_type_ids: Tensor | None = None) -> Tensor:
        """(B, T) ids -> (B, T, C): word + (English or second-language) position + token type."""
        t = input_ids.size(1)
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        pos = torch.arange(t, device=input_ids.device)
        second = self.second_ids[input_ids].any(dim=1)[:, None, None]  # (B, 1, 1)
        positions = torch.where(second, self.position_second(pos), self.position(pos))  # (B, T, C)
        x = self.word(input_ids) + positions + self.token_type(token_type_ids)
        return self.dropout(self.ln(x))


def install_language_positions(body: BertModel, second_ids: Tensor) -> BertModel:
    """Replace a body's embeddings by LanguagePositionEmbeddings, keeping the weights it has."""
    old = body.embeddings
    new = LanguagePositionEmbeddings(body.config, second_ids)
    new.load_state_dict(old.state_dict(), strict=False)
    body.embeddings = new
    return body


def pretraining_docs(s: BilingualSettings, seed: int) -> list[tuple[str, list[str]]]:
    """(language, document) pairs: each language's documents drawn with its own seed (no parallel text).

    Documents containing a test sentence of the chapter's task (in either language) are left out.
    """
    tw = toy_world()
    held_out = eval_texts(seed)
    out = []
    for k, lang in enumerate(s.languages):
        doc_seed = 1000 * (k + 1) + seed  # a different seed per language: comparable, not parallel, text
        for doc in tw.documents(s.docs_per_language, language=text_language(lang), seed=doc_seed):
            text = " " + " ".join(doc)
            if not any(" " + t in text for t in held_out):
                out.append((lang, [localize(sent, lang, s) for sent in doc]))
    return out


@functools.cache
def eval_texts(seed: int) -> frozenset[str]:
    """The validation and test reviews of seed's sentiment task in both languages: kept out of pre-training."""
    out = set()
    for lang in ("en", "zh"):
        dd = transfer_data("sentiment", lang, seed)
        out |= {r["text"] for split in ("validation", "test") for r in dd[split]}
    return frozenset(out)


def transfer_data(task: str, language: str, seed: int, sizes: tuple[int, int, int] = (500, 200, 500)) -> object:
    """A task's splits in a language (the same examples, worded in either language; fake English is English)."""
    tw = toy_world()
    return getattr(tw, task)(*sizes, language=text_language(language), seed=100 + seed)


def pack_bilingual(docs: list[tuple[str, list[str]]], tok: object, s: BilingualSettings, seed: int) -> list[dict]:
    """Pieces of each document as BERT sentence pairs, in their language's ids, shuffled together."""
    from selfsup.experiments.pretraining import pack

    out = []
    for lang in s.languages:
        pieces = pack([d for g, d in docs if g == lang], tok, s.pretrain.seq_len)
        for p in pieces:
            out.append({**p, "input_ids": as_language(p["input_ids"], lang, tok, s)})
    random.Random(f"bilingual-{seed}").shuffle(out)
    return out


class BilingualBert(BertForPretraining):
    """BertForPretraining, optionally with the second language's own position table (`second_ids` non-empty).

    `second_ids` lists the ids only the second language uses; the checkpoint keeps them, so the cache
    rebuilds this class with its extra table.
    """

    def __init__(self, config: object, second_ids: tuple[int, ...] = ()) -> None:
        super().__init__(config)
        self.second_ids = tuple(second_ids)
        if self.second_ids:
            mask = torch.zeros(config.vocab_size, dtype=torch.bool)
            mask[list(self.second_ids)] = True
            install_language_positions(self.bert, mask)


def bilingual_bert(
    seed: int = 0, settings: BilingualSettings | None = None, device: str = "cpu"
) -> tuple[BilingualBert, dict]:
    """The bilingual (or, with one language, monolingual) tiny BERT of these settings, cached."""
    s = settings or BilingualSettings()

    def build() -> tuple[BilingualBert, dict]:
        return pretrain_bilingual(s, seed, device)

    return cached_model("ch6-bert", {"seed": seed, "settings": s}, build, CODE)


def pretrain_bilingual(s: BilingualSettings, seed: int, device: str = "cpu") -> tuple[BertForPretraining, dict]:
    """MLM on the mixed pieces of both languages (the loop of `pretraining.pretrain_bert`)."""
    tok = bilingual_tokenizer()
    docs = pretraining_docs(s, seed)
    pieces = pack_bilingual(docs, tok, s, seed)
    return _pretrain_pieces(pieces, tok, s, seed, device)


def _pretrain_pieces(
    pieces: list[dict], tok: object, s: BilingualSettings, seed: int, device: str
) -> tuple[BertForPretraining, dict]:
    import time

    from torch.utils.data import DataLoader

    from selfsup.experiments.pretraining import bert_config
    from selfsup.train import TrainConfig, train

    p = s.pretrain
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    collator = _LanguageCollator(tok, s, p.mlm_probability, g)
    loader = DataLoader(pieces, batch_size=p.batch_size, shuffle=True, generator=g, collate_fn=collator)
    second = tuple(language_of_ids(tok, s).nonzero().flatten().tolist()) if s.language_positions else ()
    model = BilingualBert(bert_config(vocab_size(tok, s), p), second)
    t0 = time.perf_counter()
    cfg = TrainConfig(max_steps=p.steps, lr=p.lr, betas=(0.9, p.beta2), warmup_steps=p.steps // 10, seed=seed)
    hist = train(model, loader, cfg, device=device, progress=False)
    info = {
        "loss": [round(x, 4) for x in hist.loss],
        "mlm_loss_last": sum(hist.loss[-20:]) / len(hist.loss[-20:]),
        "seconds": time.perf_counter() - t0,
        "sequences": len(pieces),
    }
    return model.cpu().eval(), info


class _LanguageCollator:
    """MLMCollator over both languages: a second language with its own specials masks with its own [MASK]."""

    def __init__(self, tok: object, s: BilingualSettings, mlm_probability: float, g: torch.Generator) -> None:
        from selfsup.data.collate import MLMCollator

        self.inner = MLMCollator(tok, mlm_probability=mlm_probability, generator=g)
        self.inner.vocab_size = vocab_size(tok, s)  # random replacements draw from both languages
        self.table = own_specials(tok, s)
        self.shared = s.shared_specials

    def __call__(self, examples: list[dict]) -> dict[str, Tensor]:
        """Collate and mask; rows of the second language then get its [MASK] id."""
        if self.shared:
            return self.inner(examples)
        own_cls = self.table[CLS_ID]
        second = torch.tensor([e["input_ids"][0] == own_cls for e in examples])
        batch = self.inner(
            [{**e, "input_ids": [i if i not in self.inv else self.inv[i] for i in e["input_ids"]]} for e in examples]
        )
        ids = batch["input_ids"]
        for shared, own in self.table.items():
            ids[second] = torch.where(ids[second] == shared, own, ids[second])
        return batch

    @functools.cached_property
    def inv(self) -> dict[int, int]:
        """Own special id -> shared special id (masking is done on the shared ids, then mapped back)."""
        return {own: shared for shared, own in self.table.items()}
