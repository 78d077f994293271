"""Cross-lingual alignment of token representations: the language vector, retrieval by cosine, and its scores.

Multilingual BERT puts words of the same meaning in different languages close together, but not on top of
each other: each language also sits in its own region. The mean of all language-B states minus the mean of
all language-A states is a "language vector"; adding it to an A state moves it to B's region, after which
the nearest B word is often its translation (Pires et al. 2019; Liu et al. 2020; the lecture's token-level
translation). Alignment is scored against a gold dictionary by accuracy@1 and mean reciprocal rank (MRR).

Pure torch, no model inside. Shapes: N queries, M keys (candidates), C channels. A gold dictionary is given
as `gold`, a (N,) long tensor: gold[i] is the row of `keys` that translates query i.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor


def _check_matrix(name: str, x: Tensor) -> None:
    if not isinstance(x, Tensor) or x.dim() != 2 or not x.dtype.is_floating_point:
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"{name} must be a 2-D float tensor (rows, channels), got {shape}")
    if x.size(0) == 0:
        raise ValueError(f"{name} has no rows")


def _check_pair(queries: Tensor, keys: Tensor) -> None:
    _check_matrix("queries", queries)
    _check_matrix("keys", keys)
    if queries.size(1) != keys.size(1):
        raise ValueError(f"queries have {queries.size(1)} channels but keys have {keys.size(1)}")


def language_vector(states_a: Tensor, states_b: Tensor) -> Tensor:
    """The mean of language B's states minus the mean of language A's: (N_a, C), (N_b, C) -> (C,).

    Adding it to a language-A state moves the state to language B's region (subtracting goes back).
    """
    _check_matrix("states_a", states_a)
    _check_matrix("states_b", states_b)
    if states_a.size(1) != states_b.size(1):
        raise ValueError(f"states_a have {states_a.size(1)} channels but states_b have {states_b.size(1)}")
    return states_b.mean(dim=0) - states_a.mean(dim=0)


def cosine_scores(queries: Tensor, keys: Tensor) -> Tensor:
    """Cosine similarity of every query with every key: (N, C), (M, C) -> (N, M)."""
    _check_pair(queries, keys)
    return F.normalize(queries, dim=-1) @ F.normalize(keys, dim=-1).T


def _shifted(queries: Tensor, shift: Tensor | None) -> Tensor:
    if shift is None:
        return queries
    if shift.shape != (queries.size(1),):
        raise ValueError(f"shift must have shape ({queries.size(1)},), got {tuple(shift.shape)}")
    return queries + shift


def nearest_neighbours(queries: Tensor, keys: Tensor, k: int = 1, shift: Tensor | None = None) -> Tensor:
    """The k most cosine-similar keys of each (shifted) query, best first: (N, k) long indices into keys."""
    if not 1 <= k <= keys.size(0):
        raise ValueError(f"k={k} must be between 1 and the number of keys, {keys.size(0)}")
    return cosine_scores(_shifted(queries, shift), keys).topk(k, dim=1).indices


def gold_ranks(queries: Tensor, keys: Tensor, gold: Tensor, shift: Tensor | None = None) -> Tensor:
    """The 1-based rank of each query's gold key by cosine similarity: (N,) long, 1 = retrieved first.

    A key that ties with the gold key counts as ranked above it (a pessimistic rank), so a constant score
    never looks perfect.
    """
    _check_pair(queries, keys)
    if gold.shape != (queries.size(0),) or gold.dtype.is_floating_point:
        raise ValueError(f"gold must be a ({queries.size(0)},) integer tensor of key indices, got {tuple(gold.shape)}")
    if gold.min() < 0 or gold.max() >= keys.size(0):
        raise ValueError(f"gold indices must lie in [0, {keys.size(0)})")
    scores = cosine_scores(_shifted(queries, shift), keys)  # (N, M)
    gold_score = scores.gather(1, gold[:, None].long())  # (N, 1)
    others = torch.ones_like(scores, dtype=torch.bool).scatter(1, gold[:, None].long(), False)
    return 1 + ((scores >= gold_score) & others).sum(dim=1)


def accuracy_at_1(ranks: Tensor) -> float:
    """The share of queries whose gold key is ranked first."""
    return float((ranks == 1).float().mean())


def mean_reciprocal_rank(ranks: Tensor) -> float:
    """MRR: the mean over queries of 1 / rank (1 when every gold key is first, about 1/M by chance)."""
    if ranks.numel() == 0 or (ranks < 1).any():
        raise ValueError("ranks must be a non-empty tensor of 1-based ranks")
    return float((1.0 / ranks.double()).mean())


def retrieval_scores(queries: Tensor, keys: Tensor, gold: Tensor, shift: Tensor | None = None) -> dict[str, float]:
    """Accuracy@1 and MRR of retrieving each query's gold key by cosine: {"accuracy": ..., "mrr": ...}."""
    ranks = gold_ranks(queries, keys, gold, shift)
    return {"accuracy": accuracy_at_1(ranks), "mrr": mean_reciprocal_rank(ranks)}


def translate(queries: Tensor, keys: Tensor, key_words: Sequence[str], shift: Tensor | None = None) -> list[str]:
    """Token-level translation: the word of the nearest key (by cosine) to each (shifted) query."""
    if len(key_words) != keys.size(0):
        raise ValueError(f"{len(key_words)} key words for {keys.size(0)} keys")
    return [key_words[i] for i in nearest_neighbours(queries, keys, 1, shift)[:, 0].tolist()]
