"""Building disjoint train / validation / test splits as a `datasets.DatasetDict`, and majority baselines."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Hashable

from datasets import ClassLabel, Dataset, DatasetDict, Features, Sequence

SPLITS = ("train", "validation", "test")


def check_sizes(**sizes: int) -> None:
    """Reject negative split sizes and an empty training split."""
    for name, n in sizes.items():
        if n < 0:
            raise ValueError(f"{name} must be >= 0, got {n}")
    if sizes.get("n_train", 1) < 1:
        raise ValueError("n_train must be at least 1")


def build_splits(
    make: Callable[[int], dict],
    key: Callable[[dict], Hashable],
    sizes: tuple[int, int, int],
    features: Features,
    max_tries: int = 20,
) -> DatasetDict:
    """Call make(i) for the i-th example until its key is new, and fill train, validation, test in turn.

    make(i) may be called again with the same i after a duplicate (so labels chosen from i stay balanced).
    Because a key is kept once, no example (as decided by `key`, usually its input text) is in two splits.
    """
    check_sizes(n_train=sizes[0], n_val=sizes[1], n_test=sizes[2])
    total = sum(sizes)
    seen: set[Hashable] = set()
    rows: list[dict] = []
    tries = 0
    while len(rows) < total:
        if tries > max_tries * total + 100:
            raise ValueError(f"could only make {len(rows)} distinct examples of the {total} asked for; ask for fewer")
        ex = make(len(rows))
        tries += 1
        k = key(ex)
        if k in seen:
            continue
        seen.add(k)
        rows.append(ex)
    out, start = {}, 0
    for name, n in zip(SPLITS, sizes, strict=True):
        part = rows[start : start + n]
        start += n
        out[name] = Dataset.from_dict({c: [r[c] for r in part] for c in features}, features=features)
    return DatasetDict(out)


def majority_baseline(dd: DatasetDict, split: str = "test") -> float:
    """Accuracy on `split` of always predicting the most frequent training answer.

    For a "label" column: the majority class; for "tags": the most frequent tag, per token; for "answer" /
    "answer_text": the most frequent answer string (exact match).
    """
    train, evaluated = dd["train"], dd[split]
    if "label" in train.column_names:
        top = Counter(train["label"]).most_common(1)[0][0]
        return sum(y == top for y in evaluated["label"]) / max(len(evaluated), 1)
    if "tags" in train.column_names:
        top = Counter(t for tags in train["tags"] for t in tags).most_common(1)[0][0]
        flat = [t for tags in evaluated["tags"] for t in tags]
        return sum(t == top for t in flat) / max(len(flat), 1)
    for col in ("answer", "answer_text"):
        if col in train.column_names:
            top = Counter(train[col]).most_common(1)[0][0]
            return sum(a == top for a in evaluated[col]) / max(len(evaluated), 1)
    raise ValueError(f"no label, tags or answer column in {train.column_names}")


def class_label(names: list[str]) -> ClassLabel:
    """A ClassLabel with these names, in this order."""
    return ClassLabel(names=names)


def tag_sequence(names: list[str]) -> Sequence:
    """A sequence of ClassLabels, for token tags."""
    return Sequence(ClassLabel(names=names))
