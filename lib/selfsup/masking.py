"""Corruptions that turn raw text into self-supervised training pairs.

- `mask_tokens`: BERT's masked language modelling (15% of the tokens, 80/10/10).
- `make_nsp_pairs`, `make_sop_pairs`: BERT's next-sentence and ALBERT's sentence-order pairs.
- `span_corrupt`: T5's span corruption with sentinel tokens.
- `salient_span_corrupt`, `salient_infilling`: one span that is a named entity (REALM's salient span
  masking), in T5's form (sentinel and span as the target) or BART's (one [MASK]; the target is the text).
- `token_masking`, `token_deletion`, `text_infilling`, `sentence_permutation`, `document_rotation`:
  the five BART noises.

Every random function takes a `torch.Generator`, so a seed fixes the result. Sequence functions accept a
list of ints or a 1-D tensor and return the same kind (a tensor keeps its dtype and device).

Special tokens (BART noises): by default every id is content. Pass `special_ids` to protect some: masking
and deletion never touch a special token wherever it is; infilling and rotation keep the leading and
trailing runs of special tokens (a [CLS]/bos at the start, a [SEP]/eos at the end) in place and noise
only what lies between. `sentence_permutation` takes content sentences and returns content: the caller
adds bos/eos around the result (as `Seq2SeqCollator` does).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

import torch
from torch import Tensor

IGNORE_INDEX = -100  # labels with this value are skipped by F.cross_entropy (its default ignore_index)

Ids = list[int] | Tensor


# ---------------------------------------------------------------------------------------------------------
# small helpers


def _rand(n: int, generator: torch.Generator) -> list[float]:
    """n uniform draws in [0, 1) from the generator, as Python floats."""
    return torch.rand(n, generator=generator, device=generator.device).tolist()


def _randint(high: int, generator: torch.Generator) -> int:
    """One uniform integer in [0, high)."""
    return int(torch.randint(high, (1,), generator=generator, device=generator.device).item())


def _to_list(ids: Ids) -> list[int]:
    """A list of ints from a list or a 1-D tensor."""
    if isinstance(ids, Tensor):
        if ids.dim() != 1:
            raise ValueError(f"expected a 1-D sequence of ids, got a tensor of shape {tuple(ids.shape)}")
        return ids.tolist()
    return [int(i) for i in ids]


def _like(out: list[int], ref: Ids) -> Ids:
    """Return `out` as the same kind of sequence as `ref` (tensor: same dtype and device)."""
    if isinstance(ref, Tensor):
        return torch.tensor(out, dtype=ref.dtype, device=ref.device)
    return out


def _check_prob(name: str, p: float, *, allow_one: bool = True) -> None:
    """A probability argument must lie in [0, 1] (or [0, 1))."""
    if not (0.0 <= p <= 1.0) or (not allow_one and p == 1.0):
        raise ValueError(f"{name}={p!r} must be in [0, {'1]' if allow_one else '1)'}")


def _split_ends(ids: list[int], special_ids: Collection[int]) -> tuple[list[int], list[int], list[int]]:
    """Split off the leading and trailing runs of special tokens: (head, core, tail)."""
    start, end = 0, len(ids)
    while start < end and ids[start] in special_ids:
        start += 1
    while end > start and ids[end - 1] in special_ids:
        end -= 1
    return ids[:start], ids[start:end], ids[end:]


def _random_composition(total: int, parts: int, generator: torch.Generator) -> list[int]:
    """Split `total` into `parts` positive integers, uniformly over all such splits (stars and bars)."""
    if parts < 1 or total < parts:
        raise ValueError(f"cannot split {total} into {parts} positive parts")
    cuts = sorted((torch.randperm(total - 1, generator=generator, device=generator.device)[: parts - 1] + 1).tolist())
    bounds = [0, *cuts, total]
    return [b - a for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


# ---------------------------------------------------------------------------------------------------------
# BERT: masked language modelling


def mask_tokens(
    input_ids: Tensor,
    *,
    mask_token_id: int,
    vocab_size: int,
    special_ids: Collection[int],
    mlm_probability: float = 0.15,
    mask_ratio: float = 0.8,
    random_ratio: float = 0.1,
    generator: torch.Generator,
    attention_mask: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """BERT masking: pick ~mlm_probability of the real tokens; 80% -> [MASK], 10% -> random, 10% kept.

    Each position that is not special (`special_ids` should include the pad id) and not padding
    (`attention_mask` == 0, when given) is chosen independently with probability `mlm_probability`,
    as in `transformers.DataCollatorForLanguageModeling`. Returns new tensors `(masked_input_ids, labels)`
    with labels = the original id at chosen positions and -100 elsewhere; `input_ids` is not modified.
    """
    _check_prob("mlm_probability", mlm_probability)
    _check_prob("mask_ratio", mask_ratio)
    _check_prob("random_ratio", random_ratio)
    if mask_ratio + random_ratio > 1.0 + 1e-9:
        raise ValueError(f"mask_ratio + random_ratio = {mask_ratio + random_ratio} must be <= 1 (the rest is kept)")
    if input_ids.dtype.is_floating_point or input_ids.dtype == torch.bool:
        raise ValueError(f"input_ids must be an integer tensor, got {input_ids.dtype}")
    special_set = set(special_ids)
    specials = torch.tensor(sorted(special_set), dtype=input_ids.dtype, device=input_ids.device)
    replacements = torch.tensor(
        [i for i in range(vocab_size) if i not in special_set], dtype=input_ids.dtype, device=input_ids.device
    )
    if random_ratio > 0 and len(replacements) == 0:
        raise ValueError(f"vocab_size={vocab_size} leaves no non-special token to draw random replacements from")

    def draw(shape: torch.Size) -> Tensor:
        # Drawn on the generator's device, then moved: a CPU generator can drive CUDA batches.
        return torch.rand(shape, generator=generator, device=generator.device).to(input_ids.device)

    candidates = ~torch.isin(input_ids, specials)
    if attention_mask is not None:
        candidates &= attention_mask.bool()
    chosen = (draw(input_ids.shape) < mlm_probability) & candidates
    # One uniform draw per position splits the chosen ones into [MASK] / random / keep.
    u = draw(input_ids.shape)
    to_mask = chosen & (u < mask_ratio)
    to_random = chosen & (u >= mask_ratio) & (u < mask_ratio + random_ratio)

    labels = torch.where(chosen, input_ids, torch.full_like(input_ids, IGNORE_INDEX))
    masked = input_ids.clone()
    masked[to_mask] = mask_token_id
    n_random = int(to_random.sum())
    if n_random:
        pick = torch.randint(len(replacements), (n_random,), generator=generator, device=generator.device)
        masked[to_random] = replacements[pick.to(input_ids.device)]
    return masked, labels


# ---------------------------------------------------------------------------------------------------------
# BERT / ALBERT: sentence pairs


def make_nsp_pairs(
    documents: list[list[str]], generator: torch.Generator, p_random: float = 0.5
) -> list[tuple[str, str, int]]:
    """Next-sentence pairs (A, B, label): label 0 = B follows A in its document ("IsNext"), 1 = B is random.

    Every sentence that has a successor is an A once; with probability `p_random` its B is a sentence
    drawn uniformly from a different document, as in BERT (and the label convention of transformers).
    """
    _check_prob("p_random", p_random)
    nonempty = [i for i, doc in enumerate(documents) if doc]
    if len(nonempty) < 2:
        raise ValueError(
            f"make_nsp_pairs needs at least 2 non-empty documents (a random B comes from another one), "
            f"got {len(nonempty)}"
        )
    pairs = []
    for d, doc in enumerate(documents):
        for i in range(len(doc) - 1):
            if _rand(1, generator)[0] < p_random:
                others = [j for j in nonempty if j != d]
                other = documents[others[_randint(len(others), generator)]]
                pairs.append((doc[i], other[_randint(len(other), generator)], 1))
            else:
                pairs.append((doc[i], doc[i + 1], 0))
    if not pairs:
        raise ValueError("make_nsp_pairs needs a document with at least 2 sentences")
    return pairs


def make_sop_pairs(
    documents: list[list[str]], generator: torch.Generator, p_swap: float = 0.5
) -> list[tuple[str, str, int]]:
    """Sentence-order pairs (A, B, label) as in ALBERT: label 0 = consecutive in order, 1 = the two swapped.

    Both labels use the same two consecutive sentences, so the task is about order, not topic (unlike NSP).
    """
    _check_prob("p_swap", p_swap)
    pairs = []
    for doc in documents:
        for i in range(len(doc) - 1):
            a, b = doc[i], doc[i + 1]
            pairs.append((b, a, 1) if _rand(1, generator)[0] < p_swap else (a, b, 0))
    if not pairs:
        raise ValueError("make_sop_pairs needs a document with at least 2 sentences")
    return pairs


# ---------------------------------------------------------------------------------------------------------
# T5: span corruption


def span_corrupt(
    ids: Ids,
    *,
    sentinel_ids: Sequence[int],
    noise_density: float = 0.15,
    mean_span_length: float = 3.0,
    generator: torch.Generator,
) -> tuple[Ids, Ids]:
    """T5 span corruption: spans in the input become sentinels; the target lists sentinel + span for each.

    round(len * noise_density) tokens are corrupted, in round(noise / mean_span_length) spans (at least 1)
    with random positive lengths. The target ends with one more sentinel, as in T5:
    `a b c d e f` -> inputs `a <s0> d <s1> f`, targets `<s0> b c <s1> e <s2>`. Sentinel i is
    `sentinel_ids[i]`. A sequence shorter than 2 tokens is left whole (targets: the first sentinel).
    """
    if not 0.0 < noise_density < 1.0:
        raise ValueError(f"noise_density={noise_density!r} must be in (0, 1)")
    if mean_span_length < 1.0:
        raise ValueError(f"mean_span_length={mean_span_length!r} must be >= 1")
    seq = _to_list(ids)
    n = len(seq)
    n_noise = min(max(round(n * noise_density), 1), n - 1)
    if n < 2 or n_noise < 1:
        return _like(list(seq), ids), _like([sentinel_ids[0]], ids)
    n_keep = n - n_noise
    # Spans are separated by at least one kept token, so there are at most n_keep + 1 of them.
    n_spans = min(max(round(n_noise / mean_span_length), 1), n_keep + 1)
    if len(sentinel_ids) < n_spans + 1:
        raise ValueError(f"span_corrupt needs {n_spans + 1} sentinel ids for this sequence, got {len(sentinel_ids)}")
    noise_lens = _random_composition(n_noise, n_spans, generator)
    # n_spans + 1 gaps of kept tokens: inner gaps >= 1, the two ends >= 0 (shift a positive split by 1).
    gaps = _random_composition(n_keep + 2, n_spans + 1, generator)
    gaps[0] -= 1
    gaps[-1] -= 1

    inputs: list[int] = []
    targets: list[int] = []
    pos = 0
    for i in range(n_spans):
        inputs += seq[pos : pos + gaps[i]]
        pos += gaps[i]
        inputs.append(sentinel_ids[i])
        targets += [sentinel_ids[i], *seq[pos : pos + noise_lens[i]]]
        pos += noise_lens[i]
    inputs += seq[pos:]
    targets.append(sentinel_ids[n_spans])
    return _like(inputs, ids), _like(targets, ids)


# ---------------------------------------------------------------------------------------------------------
# BART: five noises


def salient_spans(ids: Ids, salient_ids: Collection[int]) -> list[tuple[int, int]]:
    """The maximal runs of salient ids (names, places) in ids, as (start, end) index pairs (end excluded)."""
    spans: list[tuple[int, int]] = []
    start = None
    for i, t in enumerate([*_to_list(ids), None]):
        if t is not None and t in salient_ids:
            start = i if start is None else start
        elif start is not None:
            spans.append((start, i))
            start = None
    return spans


def salient_span_corrupt(
    ids: Ids, salient_ids: Collection[int], *, sentinel_ids: Sequence[int], generator: torch.Generator
) -> tuple[Ids, Ids]:
    """Span corruption whose one span is a salient span: a run of salient ids (a name, a place), drawn uniformly.

    Guu et al. (2020, REALM) and Roberts et al. (2020) mask named entities and dates instead of random spans,
    so that every corrupted span is a fact to recall. `a b LYON c` -> inputs `a b <s0> c`, targets
    `<s0> LYON <s1>` (T5's format). A sequence with no salient id falls back to `span_corrupt`'s defaults.
    """
    seq = _to_list(ids)
    spans = salient_spans(seq, salient_ids)
    if not spans:
        return span_corrupt(ids, sentinel_ids=sentinel_ids, generator=generator)
    start, end = spans[_randint(len(spans), generator)]
    inputs = [*seq[:start], sentinel_ids[0], *seq[end:]]
    targets = [sentinel_ids[0], *seq[start:end], sentinel_ids[1]]
    return _like(inputs, ids), _like(targets, ids)


def salient_infilling(ids: Ids, salient_ids: Collection[int], mask_token_id: int, generator: torch.Generator) -> Ids:
    """BART's text infilling with one salient span: a run of salient ids, drawn uniformly, becomes one mask.

    `a b LYON c` -> `a b [MASK] c`; the target is the whole text. A sequence with no salient id is returned as is.
    """
    seq = _to_list(ids)
    spans = salient_spans(seq, salient_ids)
    if not spans:
        return _like(list(seq), ids)
    start, end = spans[_randint(len(spans), generator)]
    return _like([*seq[:start], mask_token_id, *seq[end:]], ids)


def token_masking(
    ids: Ids, mask_token_id: int, p: float, generator: torch.Generator, *, special_ids: Collection[int] = ()
) -> Ids:
    """Replace each non-special token by [MASK] with probability p; the length is unchanged."""
    _check_prob("p", p)
    seq = _to_list(ids)
    u = _rand(len(seq), generator)
    out = [mask_token_id if (ui < p and t not in special_ids) else t for t, ui in zip(seq, u, strict=True)]
    return _like(out, ids)


def token_deletion(ids: Ids, p: float, generator: torch.Generator, *, special_ids: Collection[int] = ()) -> Ids:
    """Delete each non-special token with probability p; the model must find where tokens are missing."""
    _check_prob("p", p)
    seq = _to_list(ids)
    u = _rand(len(seq), generator)
    return _like([t for t, ui in zip(seq, u, strict=True) if ui >= p or t in special_ids], ids)


def _poisson_lengths(total: int, lam: float, generator: torch.Generator) -> list[int]:
    """Span lengths ~ Poisson(lam), drawn until they cover `total` tokens; the last one is cut to fit."""
    lengths: list[int] = []
    covered = 0
    while covered < total:
        # Draw a batch at a time; about total / lam spans are needed.
        rates = torch.full((max(4, int(total / lam) + 1),), float(lam), device=generator.device)
        draws = torch.poisson(rates, generator=generator)
        for x in draws.long().tolist():
            if covered >= total:
                break
            x = min(x, total - covered)
            lengths.append(x)
            covered += x
    return lengths


def infilling_spans(length: int, p: float, poisson_lambda: float, generator: torch.Generator) -> list[tuple[int, int]]:
    """The spans (start, length) that `text_infilling` removes from a sequence of `length` tokens."""
    _check_prob("p", p)
    if not poisson_lambda > 0:
        raise ValueError(f"poisson_lambda={poisson_lambda!r} must be > 0")
    n_noise = round(length * p)
    if n_noise == 0:
        return []
    lengths = _poisson_lengths(n_noise, poisson_lambda, generator)
    n_keep = length - n_noise
    # Masks are kept apart by at least one real token, which needs len(lengths) - 1 <= n_keep;
    # when the noise is that dense, neighbouring spans are merged.
    while len(lengths) - 1 > n_keep:
        last = lengths.pop()
        lengths[-1] += last
    # Randomize the order so that 0-length spans (pure insertions) are not all at the end.
    order = torch.randperm(len(lengths), generator=generator, device=generator.device).tolist()
    lengths = [lengths[i] for i in order]
    gaps = _random_composition(n_keep + 2, len(lengths) + 1, generator)
    gaps[0] -= 1
    gaps[-1] -= 1
    spans, pos = [], 0
    for gap, span in zip(gaps[:-1], lengths, strict=True):
        pos += gap
        spans.append((pos, span))
        pos += span
    return spans


def text_infilling(
    ids: Ids,
    mask_token_id: int,
    p: float = 0.3,
    poisson_lambda: float = 3.0,
    generator: torch.Generator | None = None,
    *,
    special_ids: Collection[int] = (),
    return_spans: bool = False,
) -> Ids | tuple[Ids, list[list[int]]]:
    """BART text infilling: spans with Poisson(lambda) lengths, round(p * len) tokens in all, become one [MASK] each.

    A 0-length span inserts a [MASK], so the model also learns how many tokens are missing (possibly none).
    Leading / trailing special tokens stay in place. With `return_spans`, also return the removed spans in
    order: putting span i in place of the i-th [MASK] restores the input.
    """
    if generator is None:
        raise ValueError("text_infilling needs a torch.Generator (generator=...)")
    head, core, tail = _split_ends(_to_list(ids), special_ids)
    out, removed, pos = list(head), [], 0
    for start, span in infilling_spans(len(core), p, poisson_lambda, generator):
        out += core[pos:start]
        out.append(mask_token_id)
        removed.append(core[start : start + span])
        pos = start + span
    out += core[pos:] + tail
    return (_like(out, ids), removed) if return_spans else _like(out, ids)


def sentence_permutation(sentences: list[list[int]], generator: torch.Generator) -> list[int]:
    """Shuffle the order of the sentences (uniformly) and concatenate them."""
    order = torch.randperm(len(sentences), generator=generator, device=generator.device).tolist()
    return [t for i in order for t in _to_list(sentences[i])]


def document_rotation(ids: Ids, generator: torch.Generator, *, special_ids: Collection[int] = ()) -> Ids:
    """Rotate the sequence to start at a uniformly chosen token; leading/trailing specials stay in place."""
    head, core, tail = _split_ends(_to_list(ids), special_ids)
    k = _randint(len(core), generator) if core else 0
    return _like(head + core[k:] + core[:k] + tail, ids)
