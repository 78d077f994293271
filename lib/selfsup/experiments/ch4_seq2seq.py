"""Chapter 4's tiny encoder-decoder: pre-trained on ToyWorld text under one noise, fine-tuned for closed-book QA.

    s = Seq2SeqSettings()                                      the model and the pre-training run
    model, info = pretrain_seq2seq("infilling", docs, tok, s, seed=0)   corrupt and reconstruct windows of text

Closed-book QA on such a model is in `ch4_qa`; the cached models are `ch4.toy_seq2seq`.

The text is cut into windows of consecutive sentences of one document: one sentence by default (short,
cheap examples), two or more for sentence permutation to have sentences to shuffle. T5's sentinels are new
ids after the tokenizer's vocabulary, so one vocabulary serves every noise and every model has the same size. The
start of the decoder is [CLS] and
its end [SEP].
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader

from selfsup.data.collate import Seq2SeqCollator
from selfsup.data.world import CITIES, FEMALE, MALE, SURNAMES
from selfsup.experiments import pick_preset
from selfsup.experiments.cache import cached_model
from selfsup.experiments.zoo import toy_tokenizer, toy_world
from selfsup.masking import salient_infilling, salient_span_corrupt, salient_spans
from selfsup.seq2seq import Seq2Seq, Seq2SeqConfig
from selfsup.train import TrainConfig, train

BART_NOISES = ("masking", "deletion", "infilling", "permutation", "rotation")
# T5's random spans; one span that is a name or a place (REALM's salient spans), in T5's form or BART's
NOISES = (*BART_NOISES, "span", "salient_span", "salient")
N_SENTINELS = 16  # <extra_id_0> ... <extra_id_15>: more than the spans of any window


@dataclass(frozen=True)
class Seq2SeqSettings:
    """The encoder-decoder and its pre-training run; every noise gets exactly these (equal compute)."""

    d_model: int = 64
    n_heads: int = 4
    n_layers: int = 2  # encoder layers, and as many decoder layers
    n_docs: int = 2000
    window: int = 1  # sentences per pre-training example (sentence permutation needs 2 or more)
    max_tokens: int = 16  # word pieces per window (longer windows are cut at a sentence end)
    batch_size: int = 32
    steps: int = 1000
    lr: float = 3e-3
    p: float = 0.3  # masking, deletion, infilling: the share of tokens noised (BART's 30%)
    poisson_lambda: float = 3.0
    noise_density: float = 0.15  # T5 span corruption
    mean_span_length: float = 3.0
    dropout: float = 0.0

    def replace(self, **changes: object) -> Seq2SeqSettings:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)


def sentinel_ids(tok: object) -> list[int]:
    """The ids of T5's sentinels: the N_SENTINELS ids after the tokenizer's vocabulary."""
    return list(range(len(tok), len(tok) + N_SENTINELS))


def seq2seq_config(tok: object, s: Seq2SeqSettings) -> Seq2SeqConfig:
    """The model of these settings over the tokenizer's vocabulary plus the sentinels."""
    return Seq2SeqConfig(
        vocab_size=len(tok) + N_SENTINELS,
        d_model=s.d_model,
        n_heads=s.n_heads,
        n_encoder_layers=s.n_layers,
        n_decoder_layers=s.n_layers,
        max_len=s.max_tokens + 8,
        dropout=s.dropout,
        pad_token_id=tok.pad_token_id,
        decoder_start_token_id=tok.cls_token_id,
        eos_token_id=tok.sep_token_id,
    )


def windows(docs: list[list[str]], tok: object, s: Seq2SeqSettings) -> list[dict]:
    """Pre-training examples: up to `window` consecutive sentences of a document, as sentences of ids."""
    out = []
    for doc in docs:
        ids = [tok(sentence, add_special_tokens=False)["input_ids"] for sentence in doc]
        for start in range(0, len(ids), s.window):
            sentences, n = [], 0
            for sent in ids[start : start + s.window]:
                if n + len(sent) > s.max_tokens:
                    break
                sentences.append(sent)
                n += len(sent)
            if len(sentences) >= min(2, s.window):  # permutation needs two sentences when a window has them
                out.append({"input_ids": [t for sent in sentences for t in sent], "sentences": sentences})
    return out


def salient_ids(tok: object) -> set[int]:
    """The ids of ToyWorld's names and places (each one word piece): the salient spans of "salient" noise."""
    return {tok.convert_tokens_to_ids(w) for w in (*CITIES, *FEMALE, *MALE, *SURNAMES)} - {tok.unk_token_id}


class SalientCollator(Seq2SeqCollator):
    """Corruption of one span that is a name or a place: with a mask_token_id in BART's form (the span becomes
    [MASK], the target is the text: `masking.salient_infilling`), else in T5's (`masking.salient_span_corrupt`)."""

    def __init__(self, pad_id: int, salient: set[int], **kwargs: object) -> None:
        """`salient`: the ids that spans are made of; the other arguments as for Seq2SeqCollator("span")."""
        super().__init__(pad_id, "span", **kwargs)
        self.salient = salient

    def _noise(self, example: dict, g: torch.Generator) -> tuple[list[int], list[int]]:
        """(noised source, target) of one example."""
        ids = example["input_ids"]
        if self.mask_token_id is not None:
            return salient_infilling(ids, self.salient, self.mask_token_id, g), list(ids)
        return salient_span_corrupt(ids, self.salient, sentinel_ids=self.sentinel_ids, generator=g)


def collator(noise: str, tok: object, s: Seq2SeqSettings, generator: torch.Generator) -> Seq2SeqCollator:
    """The noising collator of one noise: BART's five, T5's "span" or "salient"; [CLS] and [SEP] around both."""
    if noise in ("salient", "salient_span"):
        return SalientCollator(
            tok.pad_token_id,
            salient_ids(tok),
            mask_token_id=tok.mask_token_id if noise == "salient" else None,
            sentinel_ids=sentinel_ids(tok),
            bos_id=tok.cls_token_id,
            eos_id=tok.sep_token_id,
            generator=generator,
        )
    return Seq2SeqCollator(
        tok.pad_token_id,
        noise,
        mask_token_id=tok.mask_token_id,
        p=s.p,
        poisson_lambda=s.poisson_lambda,
        sentinel_ids=sentinel_ids(tok),
        noise_density=s.noise_density,
        mean_span_length=s.mean_span_length,
        bos_id=tok.cls_token_id,
        eos_id=tok.sep_token_id,
        generator=generator,
    )


def new_seq2seq(tok: object, s: Seq2SeqSettings, seed: int) -> Seq2Seq:
    """A randomly initialised model of the settings (the init fixed by the seed)."""
    torch.manual_seed(seed)
    return Seq2Seq(seq2seq_config(tok, s))


def pretrain_seq2seq(
    noise: str, docs: list[list[str]], tok: object, s: Seq2SeqSettings, seed: int, device: str = "cpu"
) -> tuple[Seq2Seq, dict]:
    """Corrupt-and-reconstruct pre-training under one noise: same text, steps and batch for every noise.

    Returns the model (CPU, eval mode) and info: the loss per step and the seconds taken. Under "salient"
    noise only the windows that hold a name or a place are kept (REALM keeps the sentences with a salient span).
    """
    t0 = time.perf_counter()
    examples = windows(docs, tok, s)
    if noise in ("salient", "salient_span"):
        keep = salient_ids(tok)
        examples = [e for e in examples if salient_spans(e["input_ids"], keep)]
    model = new_seq2seq(tok, s, seed)
    g = torch.Generator().manual_seed(seed)
    loader = DataLoader(
        examples,
        batch_size=s.batch_size,
        shuffle=True,
        generator=torch.Generator().manual_seed(seed),
        collate_fn=collator(noise, tok, s, g),
        drop_last=True,
    )
    cfg = TrainConfig(max_steps=s.steps, lr=s.lr, warmup_steps=s.steps // 10, seed=seed)
    hist = train(model, cycle(loader, s.steps), cfg, device=device, progress=False)
    model.cpu().eval()
    info = {"loss": [round(x, 4) for x in hist.loss], "seconds": round(time.perf_counter() - t0, 2)}
    return model, info


def cycle(loader: DataLoader, steps: int) -> Iterator[dict]:
    """Batches for `steps` updates, going through the loader again as often as needed (lazily)."""

    def gen() -> Iterator[dict]:
        n = 0
        while True:
            for batch in loader:
                yield batch
                n += 1
                if n >= steps:
                    return

    return gen()


# The book's presets and the cached models -------------------------------------------------------------------

MODEL_CODE = (
    "selfsup.data",
    "selfsup.tokenizer",
    "selfsup.masking",
    "selfsup.layers",
    "selfsup.seq2seq",
    "selfsup.train",
)

SETTINGS = {
    "tiny": Seq2SeqSettings(d_model=32, n_docs=100, steps=10),
    "book": Seq2SeqSettings(),
    "full": Seq2SeqSettings(d_model=256, n_layers=4, n_docs=20000, steps=6000, lr=1e-3),
}


def toy_seq2seq(
    noise: str, seed: int = 0, preset: str = "book", device: str = "cpu", **changes: object
) -> tuple[object, dict]:
    """The tiny encoder-decoder pre-trained under `noise` on ToyWorld documents of the seed, from the cache.

    `changes` override settings of the preset (another cache entry).
    """
    s = pick_preset(SETTINGS, preset).replace(**changes)

    def build() -> tuple[object, dict]:
        return pretrain_seq2seq(noise, toy_world().documents(s.n_docs, seed=seed), toy_tokenizer(), s, seed, device)

    return cached_model("toy-seq2seq", {"noise": noise, "seed": seed, "settings": s}, build, MODEL_CODE)
