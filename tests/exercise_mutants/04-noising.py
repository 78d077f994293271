"""Wrong answers for 04-noising: each must lose points on its function's tests."""

_INFILL = """def text_infilling(ids, mask_id, generator, p=0.3, poisson_lambda=3.0):
    n_noise = round(p * len(ids))
    lengths, covered = [], 0
    while covered < n_noise:
        x = DRAW
        x = min(x, n_noise - covered)
        lengths.append(x)
        covered += x
    n_keep = len(ids) - n_noise
    points = sorted(torch.randint(n_keep + 1, (len(lengths),), generator=generator).tolist())
    noised, spans, src, kept = [], [], 0, 0
    for point, length in zip(points, lengths):
        noised += ids[src : src + point - kept]
        src += point - kept
        kept = point
        MASKS
        spans.append(list(ids[src : src + length]))
        src += length
    noised += ids[src:]
    return noised, spans
"""
_POISSON = "int(torch.poisson(torch.tensor([float(poisson_lambda)]), generator=generator).item())"
_ONE_MASK = "noised.append(mask_id)"


def _infill(draw=_POISSON, masks=_ONE_MASK):
    return _INFILL.replace("DRAW", draw).replace("MASKS", masks)


_SPAN = """def span_corruption(ids, sentinel_ids, generator, noise_density=0.15, mean_span_length=3.0):
    def split(total, parts):
        cuts = sorted((torch.randperm(total - 1, generator=generator)[: parts - 1] + 1).tolist())
        bounds = [0, *cuts, total]
        return [b - a for a, b in zip(bounds[:-1], bounds[1:])]

    n = len(ids)
    n_noise = max(1, round(n * noise_density))
    n_spans = max(1, round(n_noise / mean_span_length))
    lengths = LENGTHS
    GAPS
    inputs, targets, pos = [], [], 0
    for i in range(n_spans):
        inputs += ids[pos : pos + gaps[i]]
        pos += gaps[i]
        inputs.append(sentinel_ids[SENT])
        targets += [sentinel_ids[SENT], *ids[pos : pos + lengths[i]]]
        pos += lengths[i]
    inputs += ids[pos:]
    FINAL
    return inputs, targets
"""
_GAPS = """gaps = split(n - n_noise + 2, n_spans + 1)
    gaps[0] -= 1
    gaps[-1] -= 1"""


def _span(lengths="split(n_noise, n_spans)", gaps=_GAPS, sent="i", final="targets.append(sentinel_ids[n_spans])"):
    return _SPAN.replace("LENGTHS", lengths).replace("GAPS", gaps).replace("SENT", sent).replace("FINAL", final)


MUTANTS = {
    "token_masking-solution": [
        (
            "special tokens masked too",
            """def token_masking(ids, mask_id, p, generator, special_ids=()):
    u = torch.rand(len(ids), generator=generator).tolist()
    return [mask_id if ui < p else t for t, ui in zip(ids, u)]
""",
        ),
        (
            "masks with probability 1 - p",
            """def token_masking(ids, mask_id, p, generator, special_ids=()):
    u = torch.rand(len(ids), generator=generator).tolist()
    return [mask_id if (ui >= p and t not in special_ids) else t for t, ui in zip(ids, u)]
""",
        ),
        (
            "random tokens instead of [MASK]",
            """def token_masking(ids, mask_id, p, generator, special_ids=()):
    u = torch.rand(len(ids), generator=generator).tolist()
    r = torch.randint(5, 600, (len(ids),), generator=generator).tolist()
    return [ri if (ui < p and t not in special_ids) else t for t, ui, ri in zip(ids, u, r)]
""",
        ),
    ],
    "token_deletion-solution": [
        (
            "keeps with probability p (deletes 1 - p)",
            """def token_deletion(ids, p, generator, special_ids=()):
    u = torch.rand(len(ids), generator=generator).tolist()
    return [t for t, ui in zip(ids, u) if ui < p or t in special_ids]
""",
        ),
        (
            "special tokens deleted too",
            """def token_deletion(ids, p, generator, special_ids=()):
    u = torch.rand(len(ids), generator=generator).tolist()
    return [t for t, ui in zip(ids, u) if ui >= p]
""",
        ),
        (
            "masks instead of deleting",
            """def token_deletion(ids, p, generator, special_ids=()):
    u = torch.rand(len(ids), generator=generator).tolist()
    return [4 if (ui < p and t not in special_ids) else t for t, ui in zip(ids, u)]
""",
        ),
    ],
    "text_infilling-solution": [
        ("one [MASK] per hidden token", _infill(masks="noised += [mask_id] * length")),
        ("spans deleted without a [MASK]", _infill(masks="pass")),
        ("fixed span length instead of Poisson", _infill(draw="int(poisson_lambda)")),
        ("no empty spans (Poisson draw + 1)", _infill(draw=_POISSON + " + 1")),
    ],
    "sentence_permutation-solution": [
        (
            "rotates the sentence order instead of shuffling",
            """def sentence_permutation(sentences, generator):
    k = int(torch.randint(max(len(sentences), 1), (1,), generator=generator))
    order = list(range(k, len(sentences))) + list(range(k))
    return [t for i in order for t in sentences[i]]
""",
        ),
        (
            "shuffles the tokens, not the sentences",
            """def sentence_permutation(sentences, generator):
    flat = [t for s in sentences for t in s]
    return [flat[i] for i in torch.randperm(len(flat), generator=generator).tolist()]
""",
        ),
        (
            "keeps the first sentence first",
            """def sentence_permutation(sentences, generator):
    if not sentences:
        return []
    order = [0] + (torch.randperm(len(sentences) - 1, generator=generator) + 1).tolist()
    return [t for i in order for t in sentences[i]]
""",
        ),
    ],
    "document_rotation-solution": [
        (
            "never rotates by 0 (k from 1)",
            """def document_rotation(ids, generator):
    k = int(torch.randint(1, max(len(ids), 2), (1,), generator=generator))
    return list(ids[k:]) + list(ids[:k])
""",
        ),
        (
            "k from 0 to len(ids) inclusive (off by one)",
            """def document_rotation(ids, generator):
    k = int(torch.randint(len(ids) + 1, (1,), generator=generator))
    return list(ids[k:]) + list(ids[:k])
""",
        ),
        (
            "reverses instead of rotating",
            """def document_rotation(ids, generator):
    k = int(torch.randint(len(ids), (1,), generator=generator))
    return list(reversed(ids)) if k else list(ids)
""",
        ),
    ],
    "span_corruption-solution": [
        ("no final sentinel in the targets", _span(final="pass")),
        ("the same sentinel for every span", _span(sent="0")),
        (
            "spans may touch (no kept token between them)",
            _span(
                gaps="""gaps = split(n - n_noise + n_spans + 1, n_spans + 1)
    gaps = [g - 1 for g in gaps]"""
            ),
        ),
        (
            "all spans the same length",
            _span(lengths="[n_noise // n_spans] * (n_spans - 1) + [n_noise - (n_noise // n_spans) * (n_spans - 1)]"),
        ),
    ],
}
