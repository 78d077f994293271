"""Chapter 5, why BERT works: contextual word embeddings, a word-sense probe, and BERT on DNA.

    from selfsup.experiments import ch5
    r = ch5.apple(seed=0)          the real MiniLM on 5 + 5 "apple" sentences: cosine matrices, layer by layer
    r = ch5.sense_probe(seed=0)    nearest-centroid word-sense accuracy by layer: MiniLM (apple), toy_bert (ToyWorld)
    rows = ch5.toy_chinese_senses()   ToyWorld sentences on "apple" beside their toy-Chinese wording (苹果 / 苹果公司)
    r = ch5_dna.dna_toy(seed=0)    DNA-like task, letters as ToyWorld words: toy_bert(seed) against random init
    r = ch5_dna.dna_minilm(seed=0) the same with the real MiniLM (not yet validated; not on the page)

The embeddings come from the models as they are (no training), so the seed only decides which sentences are
drawn (apple) or which split the centroids come from (probe); toy_bert(seed) is the shared cached model.
The DNA experiments live in `ch5_dna` (not registered: their claims do not hold yet at the book preset).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from selfsup.data.collate import pad_sequences
from selfsup.experiments import Check, experiment, pick_preset
from selfsup.experiments.zoo import toy_bert, toy_tokenizer, toy_world

N_PER_SENSE = 5  # the lecture's figure: five sentences of each sense
APPLE_GAP = 0.1  # the last layer's within-sense cosine must exceed the across-sense one by this much
INPUT_GAP = 0.05  # ... while the input layer's gap stays below this: one vector for both senses


# The apple figure on the real MiniLM ------------------------------------------------------------------------------


@dataclass
class AppleResult:
    """Per hidden state (0 = the input embedding, 1-6 = MiniLM's layers): the 10 x 10 cosine matrix and its means."""

    sentences: list[str]  # the fruit sentences first, then the company ones
    senses: list[str]
    cosine: list[list[list[float]]]  # (L, N, N)
    within: list[float]  # per layer: mean over pairs of different sentences of the same sense
    across: list[float]  # per layer: mean over pairs of different senses
    static_across: float  # the word-embedding table's vector for "apple": the same in every sentence
    seconds: float

    def gap(self, layer: int) -> float:
        """Within-sense minus across-sense mean cosine at one hidden state."""
        return self.within[layer] - self.across[layer]


def _within_across(sim: Tensor, n_a: int) -> tuple[float, float]:
    """Mean cosine within the two blocks (diagonal left out) and across them, of an (N, N) matrix."""
    n = sim.shape[0]
    same = torch.zeros(n, n, dtype=torch.bool)
    same[:n_a, :n_a] = True
    same[n_a:, n_a:] = True
    off = ~torch.eye(n, dtype=torch.bool)
    return sim[same & off].mean().item(), sim[~same].mean().item()


@experiment(
    "ch5.apple",
    title="Contextual embeddings: 'apple' the fruit vs Apple the company in the real MiniLM, layer by layer",
    paper="The lecture (after Devlin et al. 2019): the vectors of one word in ten sentences, five per sense, "
    "form two blocks of high cosine similarity; a static embedding (word2vec, Mikolov et al. 2013) has one vector",
    checks=[
        Check(
            f"last layer: within-sense cosine exceeds across-sense by more than {APPLE_GAP}",
            lambda r: r.gap(-1) > APPLE_GAP,
            lambda r: f"within {r.within[-1]:.3f}, across {r.across[-1]:.3f}",
        ),
        Check(
            f"input layer (word + position embedding): the two senses are one vector (gap below {INPUT_GAP})",
            lambda r: abs(r.gap(0)) < INPUT_GAP,
            lambda r: f"within {r.within[0]:.3f}, across {r.across[0]:.3f}",
        ),
        Check(
            "every contextual layer separates the senses more than the input layer",
            lambda r: min(r.gap(layer) for layer in range(1, len(r.within))) > r.gap(0),
            lambda r: "gaps " + " ".join(f"{r.gap(layer):.2f}" for layer in range(len(r.within))),
        ),
    ],
    numbers=lambda r: {
        "within, last layer": r.within[-1],
        "across, last layer": r.across[-1],
        "within, input layer": r.within[0],
        "across, input layer": r.across[0],
    },
)
def apple(seed: int = 0, preset: str = "book", device: str = "cpu") -> AppleResult:
    """Five fruit and five company sentences (drawn by the seed from the course's twelve of each), through MiniLM."""
    from selfsup.pretrained import cosine_matrix, load_minilm, word_embeddings
    from selfsup.pretrained_data import APPLE_COMPANY, APPLE_FRUIT

    t0 = time.perf_counter()
    g = torch.Generator().manual_seed(seed)
    fruit = [APPLE_FRUIT[i] for i in sorted(torch.randperm(len(APPLE_FRUIT), generator=g)[:N_PER_SENSE].tolist())]
    company = [APPLE_COMPANY[i] for i in sorted(torch.randperm(len(APPLE_COMPANY), generator=g)[:N_PER_SENSE].tolist())]
    sentences = fruit + company
    emb = word_embeddings(sentences, "apple")  # (N, L, C); uncased, so "Apple" is the same word piece
    sims = cosine_matrix(emb.transpose(0, 1))  # (L, N, N)
    within, across = zip(*(_within_across(s, N_PER_SENSE) for s in sims), strict=True)
    model, tok = load_minilm()
    static = model.embeddings.word_embeddings.weight[tok.convert_tokens_to_ids("apple")]
    # the static vector is one row of a table: every sentence gets the same one, so every cosine is 1
    static_across = F.cosine_similarity(static, static, dim=0).item()
    return AppleResult(
        sentences=sentences,
        senses=["fruit"] * N_PER_SENSE + ["company"] * N_PER_SENSE,
        cosine=sims.tolist(),
        within=list(within),
        across=list(across),
        static_across=static_across,
        seconds=time.perf_counter() - t0,
    )


# The word-sense probe -----------------------------------------------------------------------------------------------

PROBE = {
    "tiny": {"bert": "tiny", "sizes": (40, 0, 40)},
    "book": {"bert": "book", "sizes": (400, 0, 400)},
    "full": {"bert": "full", "sizes": (1000, 0, 1000)},
}
MINILM_CONTEXTUAL = 0.9  # every contextual MiniLM layer tells the apples apart at least this well
MINILM_INPUT_MARGIN = 0.2  # ... and beats the input layer by this much on average
TOY_LAST = 0.85  # toy_bert's last layer, averaged over ToyWorld's five ambiguous words
TOY_INPUT = 0.75  # ... and its input embedding (word + position): the templates make position a sense cue


def nearest_centroid(
    train_x: Tensor, train_y: Sequence[str], test_x: Tensor, test_y: Sequence[str], groups: Sequence[str]
) -> float:
    """Accuracy of nearest-centroid (cosine) classification of test vectors, each among its own group's senses.

    train_x: (N, C); labels are "word:sense" strings; `groups` gives each test row's word, and a test vector
    is compared only with the centroids of that word's senses (a two-way choice per word).
    """
    labels = sorted(set(train_y))
    centroids = torch.stack([train_x[[y == lab for y in train_y]].mean(0) for lab in labels])  # (K, C)
    sims = F.normalize(test_x, dim=-1) @ F.normalize(centroids, dim=-1).T  # (M, K)
    right = 0
    for i, word in enumerate(groups):
        allowed = torch.tensor([lab.split(":")[0] == word for lab in labels])
        guess = labels[int(sims[i].masked_fill(~allowed, -2.0).argmax())]
        right += guess == test_y[i]
    return right / len(test_y)


@torch.no_grad()
def toy_word_vectors(body: torch.nn.Module, rows: Sequence[dict], batch_size: int = 128) -> tuple[Tensor, Tensor]:
    """Each row's ambiguous word through the tiny BERT: (N, L, C) hidden states (its pieces averaged), and the
    (N, C) static vectors (the word-embedding table's row for the word, the same in every sentence)."""
    tok = toy_tokenizer()
    bert = body.bert
    out, static = [], []
    for i in range(0, len(rows), batch_size):
        chunk = rows[i : i + batch_size]
        encs = [tok(r["sentence"].split(), is_split_into_words=True) for r in chunk]
        ids, mask = pad_sequences([e["input_ids"] for e in encs], 0)
        h = torch.stack(bert(ids, mask, torch.zeros_like(ids), output_hidden_states=True).hidden_states, 1)
        for b, (e, r) in enumerate(zip(encs, chunk, strict=True)):
            pos = [t for t, w in enumerate(e.word_ids()) if w == r["word_index"]]
            out.append(h[b, :, pos].mean(1))  # (L, C)
            static.append(bert.embeddings.word.weight[[e["input_ids"][t] for t in pos]].mean(0))
    return torch.stack(out), torch.stack(static)


@dataclass
class SenseProbeResult:
    """Nearest-centroid sense accuracy per hidden state (0 = input embedding), and of the static word vector."""

    minilm: list[float]  # 7 values: input embedding, layers 1-6 ("apple", 12 test sentences)
    minilm_static: float
    toy: list[float]  # 3 values: input embedding, layers 1-2 (five ToyWorld words)
    toy_static: float
    toy_by_word: dict[str, list[float]]
    seconds: float


@experiment(
    "ch5.sense_probe",
    title="Which sense? Nearest-centroid word-sense accuracy by layer, real English (MiniLM) and ToyWorld (toy BERT)",
    paper="Ethayarajh 2019; Wiedemann et al. 2019: BERT's contextual vectors cluster by word sense, and a "
    "nearest-neighbour classifier on them disambiguates senses; a static vector cannot (one vector per word)",
    checks=[
        Check(
            f"MiniLM: every contextual layer tells 'apple' the fruit from Apple the company (>= {MINILM_CONTEXTUAL})",
            lambda r: min(r.minilm[1:]) >= MINILM_CONTEXTUAL,
            lambda r: "accuracy by layer " + " ".join(f"{a:.2f}" for a in r.minilm),
        ),
        Check(
            f"MiniLM: the contextual layers beat the input embedding by more than {MINILM_INPUT_MARGIN} on average",
            lambda r: sum(r.minilm[1:]) / len(r.minilm[1:]) - r.minilm[0] > MINILM_INPUT_MARGIN,
            lambda r: f"{sum(r.minilm[1:]) / len(r.minilm[1:]):.2f} vs input {r.minilm[0]:.2f}",
        ),
        Check(
            f"toy BERT: its last layer tells ToyWorld's senses apart (>= {TOY_LAST}); the static vector is at chance",
            lambda r: r.toy[-1] >= TOY_LAST and abs(r.toy_static - 0.5) < 0.05,
            lambda r: f"last layer {r.toy[-1]:.3f}, static {r.toy_static:.3f}",
        ),
        Check(
            f"toy BERT: its input embedding is already well above chance (> {TOY_INPUT}): in ToyWorld's templates "
            "the position tells the sense",
            lambda r: r.toy[0] > TOY_INPUT,
            lambda r: f"input embedding {r.toy[0]:.3f}",
        ),
    ],
    numbers=lambda r: {
        "MiniLM input layer": r.minilm[0],
        "MiniLM last layer": r.minilm[-1],
        "toy input layer": r.toy[0],
        "toy last layer": r.toy[-1],
        "toy static": r.toy_static,
    },
)
def sense_probe(seed: int = 0, preset: str = "book", device: str = "cpu") -> SenseProbeResult:
    """Centroids from a train half, accuracy on the other half; each word's two senses compete."""
    from selfsup.pretrained import word_embeddings
    from selfsup.pretrained_data import APPLE_COMPANY, APPLE_FRUIT

    p = pick_preset(PROBE, preset)
    t0 = time.perf_counter()
    # MiniLM: the seed halves each sense's twelve sentences into centroid sentences and test sentences
    g = torch.Generator().manual_seed(seed)
    sentences = list(APPLE_FRUIT) + list(APPLE_COMPANY)
    labels = ["apple:fruit"] * len(APPLE_FRUIT) + ["apple:company"] * len(APPLE_COMPANY)
    emb = word_embeddings(sentences, "apple")  # (24, 7, C)
    half = len(APPLE_FRUIT) // 2
    split = [torch.randperm(len(APPLE_FRUIT), generator=g) + k * len(APPLE_FRUIT) for k in (0, 1)]
    tr = [i for s in split for i in s[:half].tolist()]
    te = [i for s in split for i in s[half:].tolist()]
    y_tr, y_te = [labels[i] for i in tr], [labels[i] for i in te]
    minilm = [nearest_centroid(emb[tr, k], y_tr, emb[te, k], y_te, ["apple"] * len(te)) for k in range(emb.shape[1])]
    # a static vector: the same for every occurrence, so every test vector ties and the first sense wins
    minilm_static = nearest_centroid(torch.ones(len(tr), 1), y_tr, torch.ones(len(te), 1), y_te, ["apple"] * len(te))

    # ToyWorld: the shared tiny BERT of this seed on the word-sense task's sentences (five words, two senses each)
    body, _ = toy_bert(seed, p["bert"], device)
    data = toy_world().word_sense(*p["sizes"], seed=100 + seed)
    names = data["train"].features["label"].names
    rows = {s: list(data[s]) for s in ("train", "test")}
    (x_tr, s_tr), (x_te, s_te) = (toy_word_vectors(body, rows[s]) for s in ("train", "test"))
    y_tr = [names[r["label"]] for r in rows["train"]]
    y_te = [names[r["label"]] for r in rows["test"]]
    words = [r["word"] for r in rows["test"]]
    toy = [nearest_centroid(x_tr[:, k], y_tr, x_te[:, k], y_te, words) for k in range(x_tr.shape[1])]
    toy_static = nearest_centroid(s_tr, y_tr, s_te, y_te, words)
    by_word = {}
    for w in sorted(set(words)):
        keep = [i for i, x in enumerate(words) if x == w]
        sub_y = [y_te[i] for i in keep]
        by_word[w] = [
            nearest_centroid(x_tr[:, k], y_tr, x_te[keep, k], sub_y, [w] * len(keep)) for k in range(len(toy))
        ]
    return SenseProbeResult(minilm, minilm_static, toy, toy_static, by_word, time.perf_counter() - t0)


# ToyWorld's toy Chinese: the sense is in the word ----------------------------------------------------------------


def toy_chinese_senses(n: int = 6, seed: int = 0) -> list[dict]:
    """ToyWorld sentences using "apple", with their sense and the same sentence in toy Chinese (苹果 or 苹果公司).

    The two languages render one drawn meaning, so row i of each language is the same sentence.
    """
    tw = toy_world()
    en, zh = (tw.word_sense(4 * n, 0, 0, language=lang, seed=seed)["train"] for lang in ("en", "zh"))
    names = en.features["label"].names
    rows = []
    for a, b in zip(en, zh, strict=True):
        if a["word"] == "apple" and len(rows) < n:
            rows.append(
                {
                    "sense": names[a["label"]].split(":")[1],
                    "english": a["sentence"],
                    "toy chinese": b["sentence"],
                    "word (zh)": b["word"],
                }
            )
    return rows
