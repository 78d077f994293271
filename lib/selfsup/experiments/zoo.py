"""The course's shared models: trained once, kept in the cache, used by every chapter and exercise that needs them.

    tok = toy_tokenizer()                      WordPiece over ToyWorld English (1000 pieces; deterministic)
    bert, info = toy_bert(seed=0)              the tiny BERT pre-trained by MLM on ToyWorld (about a minute)
    bert, info = toy_bert(seed=0, preset="exercise")   a smaller, quicker one for the exercises

`info` holds the pre-training loss per step, the final MLM loss and the seconds it took when it was trained.
Variants (a replacement mix, NSP) are other settings and so other cache entries.
"""

from __future__ import annotations

import functools

from selfsup.bert import BertForPretraining
from selfsup.experiments.cache import cached_model
from selfsup.experiments.finetuning import sentiment_eval_texts
from selfsup.experiments.pretraining import PretrainSettings, pretrain_bert
from selfsup.experiments.world import toy_world
from selfsup.tokenizer import train_wordpiece

# The code whose change must retrain a cached model: these modules and every selfsup module they import
# (`cache.code_closure`: ToyWorld's generators, the tokenizer, the model, the training loop, ...).
MODEL_CODE = ("selfsup.experiments.pretraining", "selfsup.experiments.finetuning", "selfsup.experiments.zoo")

BERT_PRESETS = {
    "tiny": PretrainSettings(n_docs=200, steps=20, d_model=32),  # smoke tests
    "exercise": PretrainSettings(n_docs=3000, steps=400, d_model=64),  # the exercises (about 10 s)
    "book": PretrainSettings(),  # the validated setting (benchmarks/learnability.py)
    "full": PretrainSettings(d_model=256, n_layers=4, n_docs=30000, steps=6000, seq_len=128),  # a GPU
}


def bert_preset(preset: str) -> PretrainSettings:
    """The pre-training settings of a preset, with a clear error for an unknown name."""
    if preset not in BERT_PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(BERT_PRESETS)}")
    return BERT_PRESETS[preset]


@functools.cache
def toy_tokenizer() -> object:
    """The WordPiece tokenizer of ToyWorld English (1000 pieces), the same in every process (under a second)."""
    return train_wordpiece(toy_world().sentences(30000), vocab_size=1000)


def toy_bert(
    seed: int = 0, preset: str = "book", device: str = "cpu", **changes: object
) -> tuple[BertForPretraining, dict]:
    """The tiny BERT pre-trained on ToyWorld for (seed, preset, changes), from the cache or trained now.

    `changes` override pre-training settings (e.g. mask_ratio=1.0, random_ratio=0.0 for 100 % [MASK], or
    nsp=True). Documents that contain a validation or test review of seed's sentiment task
    (`finetuning.task_data`) are left out of the pre-training text, so that a sentiment score measures
    generalisation. The device only decides where a missing model is trained; the model returned is on the CPU.
    """
    settings = bert_preset(preset).replace(**changes)

    def build() -> tuple[BertForPretraining, dict]:
        docs = toy_world().documents(settings.n_docs, seed=seed)
        held_out = sentiment_eval_texts(toy_world(), seed)
        return pretrain_bert(docs, toy_tokenizer(), settings, seed, device, held_out)

    return cached_model("toy-bert", {"seed": seed, "settings": settings}, build, MODEL_CODE)
