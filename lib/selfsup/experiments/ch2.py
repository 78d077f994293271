"""Chapter 2, the four ways to use BERT: one pre-trained body, four small heads.

    from selfsup.experiments import ch2
    r = ch2.four_cases(seed=0)             sentiment, POS, NLI and span QA fine-tuned from toy_bert(seed)
    r = ch2.four_cases_cached(seed=0)      the same, computed once per build (chapter 1's mini-GLUE table uses it)
    rows = ch2.mini_glue_rows(r)           one row per task: its GLUE counterpart, metric, majority, our score
    r = ch2.frozen_vs_full(seed=0)         the whole model fine-tuned vs a trained head on a frozen body
    r = ch2.minilm_sentiment(seed=0)       the real MiniLM fine-tuned on a tiny English sentiment set
    a = ch2.minilm_attention(a, b)         MiniLM's attention weights on [CLS] a [SEP] b [SEP], and head summaries

Every fine-tune starts from the shared tiny BERT of the seed (`zoo.toy_bert(seed)`, cached), whose pre-training
text leaves out that seed's sentiment test reviews; the seed also draws the labelled data and the head's init.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.utils.data import DataLoader

from selfsup.data import majority_baseline
from selfsup.experiments import Check, experiment, pick_preset
from selfsup.experiments.cache import cached_value
from selfsup.experiments.finetuning import SIZES, FinetuneResult, accuracy, collate, encode, head_for, task_data
from selfsup.experiments.zoo import MODEL_CODE, bert_preset, toy_bert, toy_tokenizer, toy_world
from selfsup.heads import best_span
from selfsup.train import TrainConfig, train

TASKS = ("sentiment", "pos", "nli", "qa")
CASE = {"sentiment": 1, "pos": 2, "nli": 3, "qa": 4}
METRIC = {"sentiment": "accuracy", "pos": "token accuracy", "nli": "accuracy", "qa": "exact span match"}
# How far above its majority baseline each fine-tuned head must land (the page states these numbers).
MARGIN = {"sentiment": 0.25, "pos": 0.5, "nli": 0.4, "qa": 0.3}
MAX_ANSWER_LEN = 10  # word pieces; ToyWorld's answers are a name or a place of one to three pieces


@dataclass(frozen=True)
class FourCasesSettings:
    """Which pre-trained model, how much labelled data, and the fine-tuning steps and learning rate per task."""

    bert: str = "book"  # a zoo preset
    sizes: tuple[int, int, int] = SIZES
    steps: tuple[tuple[str, int], ...] = (("sentiment", 300), ("pos", 150), ("nli", 600), ("qa", 300))
    lr: float = 1e-3
    batch_size: int = 16
    # Sentiment is tested on adjectives only pre-training has seen: a step too large overwrites what the body
    # knows about them (seed 4: test 0.64 at 1e-3, 0.77 at 3e-4), so it tries both and keeps the better on
    # validation, as benchmarks/learnability.py does.
    lrs: tuple[tuple[str, tuple[float, ...]], ...] = (("sentiment", (3e-4, 1e-3)),)

    def steps_for(self, task: str) -> int:
        """The fine-tuning steps of one task."""
        return dict(self.steps)[task]

    def lrs_for(self, task: str) -> tuple[float, ...]:
        """The learning rates tried for one task (the best on validation is kept)."""
        return dict(self.lrs).get(task, (self.lr,))


FOUR_CASES = {
    "tiny": FourCasesSettings(bert="tiny", sizes=(48, 24, 24), steps=tuple((t, 8) for t in TASKS)),
    "book": FourCasesSettings(),
    # Sizes stay SIZES: toy_bert(seed) leaves out exactly the sentiment reviews that task_data(seed) tests on.
    "full": FourCasesSettings(
        bert="full", steps=(("sentiment", 1000), ("pos", 500), ("nli", 2000), ("qa", 2000)), lr=5e-4
    ),
}


def finetune_model(
    task: str,
    body: nn.Module | None,
    data: dict[str, list[dict]],
    *,
    settings: FourCasesSettings,
    seed: int,
    lr: float | None = None,
    frozen: bool = False,
    device: str = "cpu",
) -> tuple[nn.Module, FinetuneResult]:
    """`finetuning.finetune` with the same seeds and steps, that also hands back the fine-tuned model (on the CPU)."""
    torch.manual_seed(seed)
    vocab = len(toy_tokenizer())
    model = head_for(task, body, vocab, bert_preset(settings.bert), frozen)
    g = torch.Generator().manual_seed(seed)
    loader = DataLoader(data["train"], batch_size=settings.batch_size, shuffle=True, generator=g, collate_fn=collate)
    steps = settings.steps_for(task)
    cfg = TrainConfig(max_steps=steps, lr=lr or settings.lr, warmup_steps=steps // 10, seed=seed)
    hist = train(model, loader, cfg, device=device, progress=False)
    model = model.cpu().eval()
    result = FinetuneResult(
        validation=accuracy(task, model, data["validation"]),
        test=accuracy(task, model, data["test"]),
        loss=[round(x, 4) for x in hist.loss],
    )
    return model, result


def encoded_task(task: str, seed: int, sizes: tuple[int, int, int]) -> tuple[dict[str, list[dict]], float]:
    """A task's encoded splits for the seed and its majority baseline on test."""
    dd = task_data(toy_world(), task, seed, sizes)
    tok = toy_tokenizer()
    return {s: encode(task, dd[s], tok) for s in ("train", "validation", "test")}, majority_baseline(dd)


@torch.no_grad()
def qa_example(model: nn.Module, feature: dict, question: str) -> dict:
    """One QA test example through the fine-tuned head: tokens, start/end logits, the gold and the chosen span."""
    batch = collate([feature])
    out = model(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
    # the document's tokens: segment B without its closing [SEP]
    context = (batch["token_type_ids"][0] == 1) & (batch["input_ids"][0] != toy_tokenizer().sep_token_id)
    start, end = best_span(out.start_logits[0], out.end_logits[0], context, max_answer_len=MAX_ANSWER_LEN)
    return {
        "question": question,
        "tokens": toy_tokenizer().convert_ids_to_tokens(feature["input_ids"]),
        "start_logits": [round(x, 4) for x in out.start_logits[0].tolist()],
        "end_logits": [round(x, 4) for x in out.end_logits[0].tolist()],
        "context": context.tolist(),
        "gold": [feature["start_positions"], feature["end_positions"]],
        "chosen": [int(start), int(end)],
    }


@dataclass
class FourCasesResult:
    """Per task: majority baseline and fine-tuned score on test, validation score, loss history, seconds."""

    majority: dict[str, float]
    finetuned: dict[str, float]
    validation: dict[str, float]
    loss: dict[str, list[float]]
    seconds: dict[str, float]
    qa_example: dict = field(default_factory=dict)


def _four_cases_numbers(r: FourCasesResult) -> dict[str, float]:
    return {f"{t}_{k}": getattr(r, k)[t] for t in TASKS for k in ("majority", "finetuned")}


def _beats_majority(task: str) -> Check:
    return Check(
        f"Case {CASE[task]} ({task}) beats its majority baseline by more than {MARGIN[task]:.2f}",
        lambda r: r.finetuned[task] - r.majority[task] > MARGIN[task],
        lambda r: f"{METRIC[task]} {r.finetuned[task]:.3f} vs majority {r.majority[task]:.3f}",
    )


@experiment(
    "ch2.four_cases",
    title="The four ways to use BERT, each above its majority baseline",
    paper="Devlin et al. 2019: one pre-trained BERT with a small head per task sets the state of the art on "
    "GLUE (sentence and pair classification), CoNLL-2003 tagging and SQuAD span QA",
    checks=[_beats_majority(t) for t in TASKS],
    numbers=_four_cases_numbers,
)
def four_cases(seed: int = 0, preset: str = "book", device: str = "cpu") -> FourCasesResult:
    """Fine-tune toy_bert(seed) once per task (sentiment, POS, NLI, QA) and score it against the majority."""
    s = pick_preset(FOUR_CASES, preset)
    body, _ = toy_bert(seed, s.bert, device)
    r = FourCasesResult({}, {}, {}, {}, {})
    for task in TASKS:
        t0 = time.perf_counter()
        data, r.majority[task] = encoded_task(task, seed, s.sizes)
        runs = [finetune_model(task, body, data, settings=s, seed=seed, lr=lr, device=device) for lr in s.lrs_for(task)]
        model, ft = max(runs, key=lambda run: run[1].validation)  # chosen on validation, never on test
        r.finetuned[task], r.validation[task], r.loss[task] = ft.test, ft.validation, ft.loss
        if task == "qa":
            question = task_data(toy_world(), "qa", seed, s.sizes)["test"][0]["question"]
            r.qa_example = qa_example(model, data["test"][0], question)
        r.seconds[task] = round(time.perf_counter() - t0, 2)
    return r


def four_cases_cached(seed: int = 0, preset: str = "book") -> FourCasesResult:
    """`four_cases(seed, preset)` computed once and kept in the cache, so chapters 1 and 2 share one run."""

    def build() -> dict:
        return dataclasses.asdict(four_cases(seed=seed, preset=preset))

    value = cached_value("ch2-four-cases", {"seed": seed, "preset": preset}, build, (*MODEL_CODE, "selfsup.heads"))
    return FourCasesResult(**value)


GLUE_COUNTERPART = {
    "sentiment": "SST-2",
    "nli": "MNLI / RTE",
    "pos": "(none in GLUE; token-level, like CoNLL tagging)",
    "qa": "(SQuAD, not in GLUE)",
}


def mini_glue_rows(result: FourCasesResult) -> list[dict]:
    """One row per task for a GLUE-like table: task, glue_counterpart, metric, majority, book (our score)."""
    return [
        {
            "task": t,
            "glue_counterpart": GLUE_COUNTERPART[t],
            "metric": METRIC[t],
            "majority": result.majority[t],
            "book": result.finetuned[t],
        }
        for t in TASKS
    ]


# Fine-tuning the whole model vs a head on a frozen body ------------------------------------------------------------

FROZEN_TASKS = ("pos", "nli")
PROBE_LR = 1e-2  # a head alone on fixed features learns best with a larger step than the whole network
PAIR_GAP = 0.2


@dataclass
class FrozenVsFullResult:
    """Per task: test score with the whole model fine-tuned, with only the head trained on the frozen body, majority."""

    full: dict[str, float]
    frozen: dict[str, float]
    majority: dict[str, float]
    seconds: float

    def gap(self, task: str) -> float:
        """Full minus frozen."""
        return self.full[task] - self.frozen[task]


@experiment(
    "ch2.frozen_vs_full",
    title="Fine-tuning the whole BERT vs a linear head on frozen features (POS tagging, NLI)",
    paper="Devlin et al. 2019: frozen BERT features come within 0.3 F1 of fine-tuning on CoNLL NER; Peters et al. "
    "2019: fine-tuning BERT beats frozen features, by most on sentence-pair tasks",
    checks=[
        Check(
            f"NLI (a pair, read at [CLS]): fine-tuning the whole model beats the frozen body by more than {PAIR_GAP}",
            lambda r: r.gap("nli") > PAIR_GAP,
            lambda r: f"accuracy {r.full['nli']:.3f} vs frozen {r.frozen['nli']:.3f}",
        ),
        Check(
            "POS: fine-tuning the whole model beats the frozen body",
            lambda r: r.gap("pos") > 0,
            lambda r: f"token accuracy {r.full['pos']:.3f} vs frozen {r.frozen['pos']:.3f}",
        ),
        Check(
            "the gap is smaller for tagging (POS) than for the sentence pair (NLI)",
            lambda r: r.gap("pos") < r.gap("nli"),
            lambda r: f"POS gap {r.gap('pos'):.3f}, NLI gap {r.gap('nli'):.3f}",
        ),
    ],
    numbers=lambda r: {f"{t}_{k}": getattr(r, k)[t] for t in FROZEN_TASKS for k in ("full", "frozen", "majority")},
)
def frozen_vs_full(seed: int = 0, preset: str = "book", device: str = "cpu") -> FrozenVsFullResult:
    """Train a fresh head on the frozen toy_bert(seed) for POS and NLI; the whole-model scores are `four_cases`'s."""
    s = pick_preset(FOUR_CASES, preset)
    body, _ = toy_bert(seed, s.bert, device)
    t0 = time.perf_counter()
    r = FrozenVsFullResult({}, {}, {}, 0.0)
    full = four_cases_cached(seed, preset)  # the same full fine-tunes as Cases 2 and 3, run once per build
    for task in FROZEN_TASKS:
        data, r.majority[task] = encoded_task(task, seed, s.sizes)
        r.full[task] = full.finetuned[task]
        probe = finetune_model(task, body, data, settings=s, seed=seed, lr=PROBE_LR, frozen=True, device=device)
        r.frozen[task] = probe[1].test
    r.seconds = time.perf_counter() - t0
    return r


# Case 1 on real English: the pre-trained MiniLM fine-tuned on a tiny sentiment set ---------------------------------

MINILM = {
    "tiny": {"folds": 3, "epochs": 1, "lr": 1e-4, "batch_size": 8},
    "book": {"folds": 3, "epochs": 8, "lr": 1e-4, "batch_size": 4},
    "full": {"folds": 6, "epochs": 10, "lr": 1e-4, "batch_size": 4},
}


@dataclass
class MiniLMSentimentResult:
    """Accuracy on reviews of topics that training never saw, pooled over folds; the majority baseline is 0.5."""

    accuracy: float
    majority: float
    n_test: int
    seconds: float
    predictions: list[tuple[str, int, int]]  # (text, label, predicted)


@experiment(
    "ch2.minilm_sentiment",
    title="Case 1 on real English: MiniLM fine-tuned on 16 reviews, tested on unseen topics",
    paper="Devlin et al. 2019: fine-tuning BERT's [CLS] with a linear layer reaches 93-95 % on SST-2",
    checks=[
        Check(
            "MiniLM fine-tuned from [CLS] classifies reviews of unseen topics far above the majority (>= 0.8)",
            lambda r: r.accuracy >= 0.8,
            lambda r: f"accuracy {r.accuracy:.3f} on {r.n_test} reviews vs majority {r.majority:.2f}",
        )
    ],
)
def minilm_sentiment(seed: int = 0, preset: str = "book", device: str = "cpu") -> MiniLMSentimentResult:
    """Leave-topics-out: the seed shuffles the 12 topics into folds; each fold trains on the others' reviews."""
    from selfsup.pretrained import finetune_classifier, predict
    from selfsup.pretrained_data import SENTIMENT

    p = pick_preset(MINILM, preset)
    half = len(SENTIMENT) // 2  # review i and review i + half are the positive and negative one of a topic
    order = torch.randperm(half, generator=torch.Generator().manual_seed(seed)).tolist()
    folds = [order[k :: p["folds"]] for k in range(p["folds"])]
    t0 = time.perf_counter()
    predictions = []
    for k, topics in enumerate(folds):
        test = [i for t in topics for i in (t, t + half)]
        train_rows = [SENTIMENT[i] for i in range(len(SENTIMENT)) if i not in test]
        model, _ = finetune_classifier(
            [t for t, _ in train_rows],
            [y for _, y in train_rows],
            epochs=p["epochs"],
            lr=p["lr"],
            seed=seed * 100 + k,
            batch_size=p["batch_size"],
            pooling="cls",
        )
        texts = [SENTIMENT[i][0] for i in test]
        predictions += [(x, SENTIMENT[i][1], y) for x, i, y in zip(texts, test, predict(model, texts), strict=True)]
    right = sum(label == guess for _, label, guess in predictions)
    return MiniLMSentimentResult(right / len(predictions), 0.5, len(predictions), time.perf_counter() - t0, predictions)


# The attention viewer: the real MiniLM on a sentence pair ---------------------------------------------------------

# Sentence pairs written for the course: the second restates or contradicts the first with some of its words.
ATTENTION_PAIRS = (
    ("The cat sat on the mat.", "A cat was sitting on a mat."),
    ("My sister bought a red bicycle last week.", "Her bicycle is blue."),
    ("The museum opens at nine in the morning.", "You can visit the museum before lunch."),
)


@dataclass
class AttentionPatterns:
    """MiniLM's attention on [CLS] a [SEP] b [SEP]: weights (L, H, T, T) and per-head shares (L, H) of where it goes.

    to_cls / to_sep: mean weight a query puts on [CLS] / on the [SEP]s; previous: on the token just before it;
    same_word_across: from a word to the same word in the other sentence (averaged over such pairs; NaN if none).
    """

    tokens: list[str]
    token_type_ids: list[int]
    weights: torch.Tensor
    to_cls: torch.Tensor
    to_sep: torch.Tensor
    previous: torch.Tensor
    same_word_across: torch.Tensor


def _eager_minilm() -> nn.Module:
    """A second copy of MiniLM with the explicit attention path, which can return its weights (SDPA cannot)."""
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    from selfsup.pretrained import model_dir

    bar_was_on = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # a loading bar for a local file is noise in the book
    try:
        return AutoModel.from_pretrained(model_dir(), local_files_only=True, attn_implementation="eager").eval()
    finally:
        if bar_was_on:
            hf_logging.enable_progress_bar()


_EAGER: list[nn.Module] = []


@torch.no_grad()
def minilm_attention(a: str, b: str) -> AttentionPatterns:
    """The real MiniLM's attention weights on the pair (a, b), with the per-head summaries the chapter discusses."""
    from selfsup.pretrained import load_minilm

    if not _EAGER:
        _EAGER.append(_eager_minilm())
    _, tok = load_minilm()
    enc = tok(a, b, return_tensors="pt")
    out = _EAGER[0](**enc, output_attentions=True)
    w = torch.stack(out.attentions)[:, 0]  # (L, H, T, T)
    ids, types = enc["input_ids"][0], enc["token_type_ids"][0]
    tokens = tok.convert_ids_to_tokens(ids)
    sep = [i for i, t in enumerate(tokens) if t == tok.sep_token]
    words = [i for i, t in enumerate(tokens) if t.isalpha()]
    across = [(i, j) for i in words for j in words if types[i] != types[j] and ids[i] == ids[j]]
    same = w[..., [i for i, _ in across], [j for _, j in across]].mean(-1) if across else w[..., 0, 0] * float("nan")
    return AttentionPatterns(
        tokens=tokens,
        token_type_ids=types.tolist(),
        weights=w,
        to_cls=w[..., 0].mean(-1),
        to_sep=w[..., sep].sum(-1).mean(-1),
        previous=torch.diagonal(w, offset=-1, dim1=-2, dim2=-1).mean(-1),
        same_word_across=same,
    )
