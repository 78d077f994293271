"""DNA-like sequences over A, C, G, T whose class is the motif planted in them (for "BERT on DNA", Kao & Lee 2021).

Each class has its own motif (drawn from `random.Random(f"motifs-{seed}")`); a sequence is uniform random
background with exactly one motif planted at a random position, redrawn until no other motif occurs in it, so
a direct search for the motifs recovers every label.
"""

from __future__ import annotations

import random

from datasets import DatasetDict, Features, Value

from selfsup.data.splits import build_splits, class_label

ALPHABET = "ACGT"


def dna_motifs(n_classes: int = 4, motif_len: int = 6, seed: int = 0) -> list[str]:
    """`n_classes` distinct motifs of `motif_len` letters, none a substring of another class's motif."""
    if n_classes < 2 or motif_len < 3:
        raise ValueError(f"need n_classes >= 2 and motif_len >= 3, got {n_classes} and {motif_len}")
    if n_classes > 4**motif_len // 4:
        raise ValueError(f"{n_classes} classes is too many for motifs of {motif_len} letters")
    rng = random.Random(f"motifs-{seed}")
    motifs: list[str] = []
    while len(motifs) < n_classes:
        m = "".join(rng.choice(ALPHABET) for _ in range(motif_len))
        if m not in motifs:
            motifs.append(m)
    return motifs


def contains_motif(sequence: str, motifs: list[str]) -> list[int]:
    """The indices of the motifs found in `sequence`."""
    return [i for i, m in enumerate(motifs) if m in sequence]


def dna_dataset(
    n_train: int = 1000,
    n_val: int = 200,
    n_test: int = 200,
    length: int = 64,
    n_classes: int = 4,
    motif_len: int = 6,
    seed: int = 0,
) -> DatasetDict:
    """Sequences (a string of A/C/G/T, `length` letters) with a ClassLabel naming the planted motif.

    Labels cycle through the classes, so they are balanced; majority baseline 1 / n_classes.
    """
    if length < 2 * motif_len:
        raise ValueError(f"length must be at least 2 * motif_len = {2 * motif_len}, got {length}")
    motifs = dna_motifs(n_classes, motif_len, seed)
    rng = random.Random(f"dna-{seed}")

    def make(i: int) -> dict:
        label = i % n_classes
        while True:
            background = [rng.choice(ALPHABET) for _ in range(length)]
            at = rng.randrange(length - motif_len + 1)
            background[at : at + motif_len] = motifs[label]
            seq = "".join(background)
            if contains_motif(seq, motifs) == [label]:
                return {"sequence": seq, "label": label}

    features = Features(
        {"sequence": Value("string"), "label": class_label([f"motif_{i}_{m}" for i, m in enumerate(motifs)])}
    )
    return build_splits(make, lambda ex: ex["sequence"], (n_train, n_val, n_test), features)
