"""Wrong answers for 06-multilingual: each must lose points on its function's tests."""

_NN = """def nearest_neighbours(queries, keys, k=1):
    scores = SCORES
    return scores.topk(k, dim=1LARGEST).indices
"""
_RANKS = """def gold_ranks(queries, keys, gold):
    scores = SCORES
    gold_score = scores[torch.arange(len(gold)), gold][:, None]
    others = torch.ones_like(scores, dtype=torch.bool)
    others[torch.arange(len(gold)), gold] = False
    return BASE + ((scores CMP gold_score) & others).sum(dim=1)
"""
_COS = "F.normalize(queries, dim=-1) @ F.normalize(keys, dim=-1).T"


def _ranks(scores=_COS, base="1", cmp=">="):
    return _RANKS.replace("SCORES", scores).replace("BASE", base).replace("CMP", cmp)


_TRANSLATE = """def translate(words, src_words, src_emb, tgt_words, tgt_emb, shift):
    rows = ROWS
    return [tgt_words[i] for i in nearest_neighbours(rows, KEYS, k=1)[:, 0].tolist()]
"""


def _translate(rows="src_emb[[src_words.index(w) for w in words]] + shift", keys="tgt_emb"):
    return _TRANSLATE.replace("ROWS", rows).replace("KEYS", keys)


MUTANTS = {
    "language_vector-solution": [
        (
            "sign flipped (A minus B)",
            """def language_vector(states_a, states_b):
    return states_a.mean(dim=0) - states_b.mean(dim=0)
""",
        ),
        (
            "mean over the channels (wrong axis)",
            """def language_vector(states_a, states_b):
    return states_b.mean(dim=1) - states_a.mean(dim=1)
""",
        ),
        (
            "difference of the first rows only",
            """def language_vector(states_a, states_b):
    return states_b[0] - states_a[0]
""",
        ),
    ],
    "nearest_neighbours-solution": [
        ("dot product instead of cosine", _NN.replace("SCORES", "queries @ keys.T").replace("LARGEST", "")),
        ("the least similar first", _NN.replace("SCORES", _COS).replace("LARGEST", ", largest=False")),
        (
            "Euclidean distance, nearest first",
            _NN.replace("SCORES", "-torch.cdist(queries, keys)").replace("LARGEST", ""),
        ),
    ],
    "gold_ranks-solution": [
        ("0-based ranks", _ranks(base="0")),
        ("ties counted in the gold key's favour", _ranks(cmp=">")),
        ("dot product instead of cosine", _ranks(scores="queries @ keys.T")),
    ],
    "accuracy_and_mrr-solution": [
        (
            "MRR as 1 / mean rank",
            """def accuracy_and_mrr(ranks):
    return float((ranks == 1).float().mean()), float(1.0 / ranks.double().mean())
""",
        ),
        (
            "tensors instead of floats",
            """def accuracy_and_mrr(ranks):
    return (ranks == 1).float().mean(), (1.0 / ranks.double()).mean()
""",
        ),
        (
            "accuracy as 'in the top 5'",
            """def accuracy_and_mrr(ranks):
    return float((ranks <= 5).float().mean()), float((1.0 / ranks.double()).mean())
""",
        ),
    ],
    "translate-solution": [
        ("shift ignored", _translate(rows="src_emb[[src_words.index(w) for w in words]]")),
        ("shift subtracted", _translate(rows="src_emb[[src_words.index(w) for w in words]] - shift")),
        ("shift added to the target side too", _translate(keys="tgt_emb + shift")),
    ],
}
