"""Chapter 5's DNA experiments (Kao & Lee 2021): a text-pre-trained BERT fine-tuned on DNA written as words.

Each base A, C, G, T becomes an arbitrary word, so a DNA-like sequence (`selfsup.data.dna`: the class is the
motif planted in it) becomes a "sentence" of four words that means nothing in the language pre-training read.
Fine-tuning starts once from the pre-trained weights and once from a random init of the same architecture.

    dna_toy(seed)      the shared tiny ToyWorld BERT (toy_bert(seed)), two word mappings (the ablation)
    dna_minilm(seed)   the real MiniLM against its random-init twin (same config), one mapping
"""

from __future__ import annotations

import copy
import statistics
import time
from dataclasses import dataclass, field

import torch

from selfsup.data import dna_dataset
from selfsup.experiments import Check, pick_preset
from selfsup.experiments.finetuning import finetune
from selfsup.experiments.zoo import bert_preset, toy_bert, toy_tokenizer

# A base -> word map is arbitrary; the second map is the ablation. Every word is one piece of its tokenizer.
TOY_MAPS = {
    "A=soup C=lyon G=teacher T=cat": {"A": "soup", "C": "lyon", "G": "teacher", "T": "cat"},
    "A=paris C=tea G=owl T=doctor": {"A": "paris", "C": "tea", "G": "owl", "T": "doctor"},
}
MINILM_MAP = {"A": "apple", "C": "car", "G": "green", "T": "table"}
N_CLASSES = 2  # which of two motifs is planted: chance is 0.5


def as_words(sequence: str, mapping: dict[str, str]) -> str:
    """A DNA string written as words: "ACG" -> "soup lyon teacher"."""
    return " ".join(mapping[base] for base in sequence)


@dataclass(frozen=True)
class DnaSettings:
    """The DNA-like task and the fine-tuning run."""

    sizes: tuple[int, int, int] = (500, 200, 400)
    length: int = 48
    motif_len: int = 6
    steps: int = 300
    lr: float = 1e-3
    batch_size: int = 16
    eval_every: int = 30
    bert: str = "book"  # the zoo preset (toy) or unused (MiniLM)


DNA_TOY = {
    "tiny": DnaSettings(sizes=(40, 20, 20), steps=10, eval_every=5, bert="tiny"),
    "book": DnaSettings(),
    "full": DnaSettings(sizes=(2000, 500, 1000), steps=1500, eval_every=100, bert="full", lr=5e-4),
}


@dataclass
class DnaResult:
    """Per word mapping, per init ("pre-trained", "random init"): test accuracy, validation curve, loss history."""

    test: dict[str, dict[str, float]]
    curve: dict[str, dict[str, list[float]]]  # validation accuracy every eval_every steps
    loss: dict[str, dict[str, list[float]]]
    steps: list[int]  # the steps of the curve
    seconds: float
    majority: float = 1.0 / N_CLASSES
    maps: list[str] = field(default_factory=list)

    def speed(self, mapping: str, init: str) -> float:
        """Mean validation accuracy along the run (area under the learning curve): higher = learned sooner."""
        return statistics.mean(self.curve[mapping][init])


def _encode(rows: object, mapping: dict[str, str], tok: object) -> list[dict]:
    out = []
    for r in rows:
        enc = tok(as_words(r["sequence"], mapping))
        out.append({"input_ids": enc["input_ids"], "token_type_ids": enc["token_type_ids"], "labels": r["label"]})
    return out


def _dna_checks(name: str, margin: float) -> list[Check]:
    return [
        Check(
            f"{name}: the pre-trained init ends higher than random init (test accuracy, by more than {margin})",
            lambda r: r.test[r.maps[0]]["pre-trained"] - r.test[r.maps[0]]["random init"] > margin,
            lambda r: f"{r.test[r.maps[0]]['pre-trained']:.3f} vs {r.test[r.maps[0]]['random init']:.3f}",
        ),
        Check(
            f"{name}: the pre-trained init learns sooner (higher mean validation accuracy along the run)",
            lambda r: r.speed(r.maps[0], "pre-trained") > r.speed(r.maps[0], "random init"),
            lambda r: f"{r.speed(r.maps[0], 'pre-trained'):.3f} vs {r.speed(r.maps[0], 'random init'):.3f}",
        ),
    ] + (
        [
            Check(
                "toy BERT, another word mapping (ablation): pre-trained still ends higher than random init",
                lambda r: r.test[r.maps[1]]["pre-trained"] > r.test[r.maps[0]]["random init"],
                lambda r: f"{r.test[r.maps[1]]['pre-trained']:.3f} vs {r.test[r.maps[0]]['random init']:.3f}",
            )
        ]
        if name.startswith("toy")
        else []
    )


TOY_MARGIN = 0.1
MINILM_MARGIN = 0.1


# Not registered as an experiment: its claims do not hold yet (benchmarks/results/exploration/ch5.json). The task's
# difficulty depends on the seed's motif pair: with the same letters in another order (seed 0: AGGCG / ACGGG)
# neither init learns in 300-500 steps; with different letters (seed 2: CCAAG / CTTTC) a random init reaches
# about 0.8 by counting letters, pre-trained about 0.9. Register dna_toy with these checks once a design holds:
DNA_TOY_PAPER = (
    "Kao & Lee 2021: an English-pre-trained BERT fine-tuned on DNA, protein and music sequences mapped to "
    "arbitrary English words beats the same model from random init, and converges faster; the mapping matters little"
)
DNA_TOY_CHECKS = _dna_checks("toy BERT", TOY_MARGIN)


def dna_toy(seed: int = 0, preset: str = "book", device: str = "cpu") -> DnaResult:
    """Fine-tune toy_bert(seed) on the DNA task once per word mapping, and a random-init twin once.

    A random init has no word meanings: which rows of a random table the four bases pick changes nothing in
    distribution, so one random-init run (on the first mapping) is the baseline for both mappings.
    """
    s = pick_preset(DNA_TOY, preset)
    t0 = time.perf_counter()
    tok = toy_tokenizer()
    body, _ = toy_bert(seed, s.bert, device)
    dd = dna_dataset(*s.sizes, length=s.length, n_classes=N_CLASSES, motif_len=s.motif_len, seed=seed)
    r = DnaResult({}, {}, {}, [], 0.0, maps=list(TOY_MAPS))
    for k, (name, mapping) in enumerate(TOY_MAPS.items()):
        data = {split: _encode(dd[split], mapping, tok) for split in ("train", "validation", "test")}
        r.test[name], r.curve[name], r.loss[name] = {}, {}, {}
        for init, start in (("pre-trained", body), ("random init", None)):
            if init == "random init" and k > 0:
                continue
            ft = finetune(
                "dna",
                start,
                data,
                vocab_size=len(tok),
                settings=bert_preset(s.bert),
                seed=seed,
                lr=s.lr,
                steps=s.steps,
                batch_size=s.batch_size,
                eval_every=s.eval_every,
                device=device,
            )
            r.test[name][init] = ft.test
            r.curve[name][init] = [c["validation"] for c in ft.curve]
            r.loss[name][init] = ft.loss
            r.steps = [c["step"] for c in ft.curve]
    r.seconds = time.perf_counter() - t0
    return r


# The real MiniLM ---------------------------------------------------------------------------------------------------

DNA_MINILM = {
    "tiny": DnaSettings(sizes=(16, 8, 16), length=12, motif_len=4, steps=3, eval_every=3, lr=1e-4, batch_size=4),
    "book": DnaSettings(sizes=(400, 100, 200), length=24, motif_len=5, steps=60, eval_every=20, lr=1e-4),
    "full": DnaSettings(sizes=(2000, 500, 1000), length=64, steps=600, eval_every=100, lr=5e-5),
}


@torch.no_grad()
def _accuracy(model: torch.nn.Module, enc: dict, y: torch.Tensor, batch_size: int = 100) -> float:
    model.eval()
    right = 0
    for i in range(0, len(y), batch_size):
        out = model(**{k: v[i : i + batch_size] for k, v in enc.items()})
        right += (out.logits.argmax(-1) == y[i : i + batch_size]).sum().item()
    model.train()
    return right / len(y)


# Not registered either: 40 steps per init (batch 16, 16 bases) cost 48 s of CPU and both inits stayed at chance
# (seed 0); the book preset's 60 s cannot show the claim on a CPU. A GPU run ("full") is still to be made.
DNA_MINILM_CHECKS = _dna_checks("MiniLM", MINILM_MARGIN)


def dna_minilm(seed: int = 0, preset: str = "book", device: str = "cpu") -> DnaResult:
    """Fine-tune MiniLM (and its random-init twin) with a linear head on [CLS]; AdamW, constant learning rate."""
    from transformers import AutoModel

    from selfsup.pretrained import MiniLMClassifier, load_minilm

    s = pick_preset(DNA_MINILM, preset)
    t0 = time.perf_counter()
    base, tok = load_minilm()
    dd = dna_dataset(*s.sizes, length=s.length, n_classes=N_CLASSES, motif_len=s.motif_len, seed=seed)

    def encode(split: str) -> tuple[dict, torch.Tensor]:
        texts = [as_words(r["sequence"], MINILM_MAP) for r in dd[split]]
        return tok(texts, padding=True, return_tensors="pt"), torch.tensor(dd[split]["label"])

    (x_tr, y_tr), (x_val, y_val), (x_te, y_te) = encode("train"), encode("validation"), encode("test")
    name = " ".join(f"{b}={w}" for b, w in MINILM_MAP.items())
    r = DnaResult({name: {}}, {name: {}}, {name: {}}, [], 0.0, maps=[name])
    with torch.random.fork_rng(devices=[]):
        for init in ("pre-trained", "random init"):
            torch.manual_seed(seed)  # the same head init and dropout draws for both
            body = copy.deepcopy(base) if init == "pre-trained" else AutoModel.from_config(base.config)
            model = MiniLMClassifier(body, tok, list(range(N_CLASSES)), pooling="cls").to(device)
            opt = torch.optim.AdamW(model.parameters(), lr=s.lr)
            g = torch.Generator().manual_seed(seed)  # the same batches for both
            model.train()
            losses, curve, steps = [], [], []
            for step in range(1, s.steps + 1):
                idx = torch.randint(0, len(y_tr), (s.batch_size,), generator=g)
                out = model(**{k: v[idx].to(device) for k, v in x_tr.items()}, labels=y_tr[idx].to(device))
                opt.zero_grad(set_to_none=True)
                out.loss.backward()
                opt.step()
                losses.append(round(out.loss.item(), 4))
                if step % s.eval_every == 0:
                    curve.append(_accuracy(model, x_val, y_val))
                    steps.append(step)
            r.test[name][init] = _accuracy(model.cpu(), x_te, y_te)
            r.curve[name][init], r.loss[name][init], r.steps = curve, losses, steps
    r.seconds = time.perf_counter() - t0
    return r
