"""What a bilingual BERT knows across languages: word vectors by layer, translation retrieval, zero-shot transfer.

vecs = word_vectors(model, tok, s, "en", sentences)      {layer: {word id: mean state}} over occurrences
mrr_by_layer(model, tok, s, seed)                        word-translation retrieval against the dictionary
transfer(body, tok, s, train=("en",), test="zh", ...)    fine-tune on one language, test on another
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader

from selfsup.bert import BertForPretraining
from selfsup.data.collate import pad_sequences
from selfsup.experiments.ch6_bilingual import (
    BilingualSettings,
    as_language,
    install_language_positions,
    localize,
    text_language,
    transfer_data,
    vocab_size,
)
from selfsup.experiments.finetuning import NUM_LABELS, accuracy, collate, encode, finetune_config
from selfsup.experiments.pretraining import PretrainSettings, bert_config
from selfsup.experiments.zoo import toy_world
from selfsup.heads import BertForSequenceClassification, BertForTokenClassification, freeze
from selfsup.train import TrainConfig, train

# Evaluation text: sentences that no pre-training document was drawn from (seed 7000), not parallel.
EVAL_SEED = 7000


@functools.cache
def gold_pairs(tok: object) -> tuple[tuple[int, int], ...]:
    """(English id, Chinese id) for every dictionary entry whose two words are single pieces of the vocabulary."""
    vocab = tok.get_vocab()
    out = [(vocab[e], vocab[z]) for e, z in toy_world().dictionary().items() if e in vocab and z in vocab]
    return tuple(sorted(out))


def shared_ids(tok: object, s: BilingualSettings) -> set[int]:
    """Ids of the words both languages write the same way under the settings."""
    from selfsup.experiments.ch6_bilingual import SHARED_CLASSES

    vocab = tok.get_vocab()
    return {vocab[w] for c in s.shared for w in SHARED_CLASSES[c] if w in vocab}


def _hidden_layers(model: BertForPretraining, ids: Tensor, mask: Tensor) -> list[Tensor]:
    """Residual-stream states after the embeddings and after each block (pre-LN: before the final norm)."""
    body = model.bert
    x = body.embeddings(ids)
    att = None if bool(mask.all()) else mask.bool()[:, None, None, :]
    states = [x]
    for block in body.layers:
        x, _ = block(x, attn_mask=att)
        states.append(x)
    return states


@torch.no_grad()
def word_vectors(
    model: BertForPretraining,
    tok: object,
    s: BilingualSettings,
    language: str,
    sentences: Sequence[str],
    batch_size: int = 128,
) -> tuple[Tensor, Tensor]:
    """(L + 1, V, C) mean state of each word id at each layer over its occurrences, and (V,) counts.

    Ids are those of `language` (fake English: shifted); [CLS] and [SEP] are left out.
    """
    model.eval()
    n_layers, v, c = model.config.n_layers, model.config.vocab_size, model.config.d_model
    sums = torch.zeros(n_layers + 1, v, c)
    counts = torch.zeros(v)
    rows = [as_language(tok(localize(t, language, s))["input_ids"], language, tok, s) for t in sentences]
    for i in range(0, len(rows), batch_size):
        ids, mask = pad_sequences(rows[i : i + batch_size], 0)
        states = _hidden_layers(model, ids, mask)
        keep = mask.bool().clone()
        keep[:, 0] = False  # [CLS]
        keep[torch.arange(len(ids)), mask.sum(1) - 1] = False  # the final [SEP]
        flat = ids[keep]
        counts.index_add_(0, flat, torch.ones(len(flat)))
        for layer, h in enumerate(states):
            sums[layer].index_add_(0, flat, h[keep])
    return sums / counts.clamp(min=1)[None, :, None], counts


def eval_sentences(language: str, n: int = 3000) -> list[str]:
    """Sentences for measuring representations: drawn with a seed no pre-training corpus uses."""
    return toy_world().sentences(n, language=text_language(language), seed=EVAL_SEED + (language == "zh"))


def retrieval_mrr(src: Tensor, tgt: Tensor, pairs: Sequence[tuple[int, int]]) -> tuple[float, float]:
    """MRR and accuracy@1 of finding each pair's target among all targets, by cosine of mean-centred vectors.

    src, tgt: (V, C) vectors by id; pairs: (source id, target id). The candidates are every pair's target.
    """
    s_ids = torch.tensor([a for a, _ in pairs])
    t_ids = torch.tensor([b for _, b in pairs])
    a = src[s_ids] - src[s_ids].mean(0)
    b = tgt[t_ids] - tgt[t_ids].mean(0)
    sim = nn.functional.normalize(a, dim=-1) @ nn.functional.normalize(b, dim=-1).T  # (P, P)
    gold = sim.diagonal()[:, None]
    rank = 1 + (sim > gold).sum(1)
    return float((1.0 / rank).mean()), float((rank == 1).float().mean())


def chance_mrr(n: int) -> float:
    """The MRR of a random ranking of n candidates: the mean of 1/k over k = 1..n."""
    return sum(1.0 / k for k in range(1, n + 1)) / n


@dataclass
class Alignment:
    """Word-translation retrieval by layer: MRR, accuracy@1, the number of word pairs, and chance."""

    mrr: list[float]
    acc1: list[float]
    n_pairs: int
    chance: float


def alignment(
    model: BertForPretraining, tok: object, s: BilingualSettings, n_sentences: int = 3000, min_count: int = 3
) -> Alignment:
    """Retrieve each English word's translation among the second language's words, layer by layer.

    A word's vector at a layer is its mean state over its occurrences in held-out monolingual sentences.
    Only dictionary words seen at least `min_count` times in both languages' sentences count.
    """
    from selfsup.experiments.ch6_bilingual import fake_offset, second_language

    second = second_language(s)
    en, en_n = word_vectors(model, tok, s, "en", eval_sentences("en", n_sentences))
    zh, zh_n = word_vectors(model, tok, s, second, eval_sentences(second, n_sentences))
    if second == "fake":
        pairs = [(i, i + fake_offset(tok)) for i in range(5, len(tok))]
    else:
        pairs = [(a, b) for a, b in gold_pairs(tok) if a not in shared_ids(tok, s)]  # shared words: trivially found
    pairs = [(a, b) for a, b in pairs if en_n[a] >= min_count and zh_n[b] >= min_count]
    scores = [retrieval_mrr(en[layer], zh[layer], pairs) for layer in range(len(en))]
    return Alignment([m for m, _ in scores], [a for _, a in scores], len(pairs), chance_mrr(len(pairs)))


# Transfer -------------------------------------------------------------------------------------------------


def encode_task(task: str, rows: Sequence[dict], language: str, tok: object, s: BilingualSettings) -> list[dict]:
    """A task's rows as features (`finetuning.encode`) in `language`'s ids."""
    fields = {"sentiment": ("text",), "pos": ("tokens",), "nli": ("premise", "hypothesis")}[task]
    rows = [{**r, **{k: localize(r[k], language, s) for k in fields}} for r in rows]
    return [{**f, "input_ids": as_language(f["input_ids"], language, tok, s)} for f in encode(task, rows, tok)]


def classifier(
    task: str, body: BertForPretraining | None, vocab: int, p: PretrainSettings, frozen: bool = False
) -> nn.Module:
    """A task head on a copy of `body` (with its language positions, if any), or on a random body.

    With `frozen`, the body gets no gradient and no dropout: only the head learns (a probe).
    """
    config = finetune_config(body.config if body is not None else bert_config(vocab, p), frozen)
    if task == "pos":
        model = BertForTokenClassification(config, NUM_LABELS["pos"])
    else:
        model = BertForSequenceClassification(config, NUM_LABELS[task])
    if body is not None:
        emb = body.bert.embeddings
        if hasattr(emb, "second_ids"):
            install_language_positions(model.bert, emb.second_ids)
        model.bert.load_state_dict(body.bert.state_dict())
    if frozen:
        freeze(model.bert)
    return model


@dataclass
class Transfer:
    """Fine-tuned on some languages, tested on one: validation (training languages) and test accuracy."""

    validation: float
    test: float


def transfer(
    task: str,
    body: BertForPretraining | None,
    tok: object,
    s: BilingualSettings,
    seed: int,
    train_on: Sequence[str],
    test_on: str,
    steps: int,
    lr: float,
    n_train: int = 500,
    batch_size: int = 16,
    freeze_embeddings: bool = False,
    frozen: bool = False,
    device: str = "cpu",
) -> Transfer:
    """Fine-tune a sentiment head on `n_train` labelled examples of each language in `train_on`; test on `test_on`.

    Validation is in the training languages (a zero-shot model never sees the test language's labels,
    not even for choosing), test in `test_on`.
    """
    sizes = (n_train, 200, 500)
    train_rows, val_rows = [], []
    for lang in train_on:
        dd = transfer_data(task, lang, seed, sizes)
        train_rows += encode_task(task, dd["train"], lang, tok, s)
        val_rows += encode_task(task, dd["validation"], lang, tok, s)
    test_rows = encode_task(task, transfer_data(task, test_on, seed, sizes)["test"], test_on, tok, s)
    torch.manual_seed(seed)
    model = classifier(task, body, vocab_size(tok, s), s.pretrain, frozen)
    if freeze_embeddings:
        # English fine-tuning would move only English word vectors, away from their Chinese twins
        model.bert.embeddings.word.weight.requires_grad_(False)
    g = torch.Generator().manual_seed(seed)
    loader = DataLoader(train_rows, batch_size=batch_size, shuffle=True, generator=g, collate_fn=collate)
    cfg = TrainConfig(max_steps=steps, lr=lr, warmup_steps=steps // 10, seed=seed)
    train(model, loader, cfg, device=device, progress=False)
    model.cpu()
    return Transfer(accuracy(task, model, val_rows), accuracy(task, model, test_rows))
