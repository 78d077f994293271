"""Wrong answers for 05-contextual: each must lose points on its function's tests."""

_POOL = """def pool_word_pieces(hidden, word_ids):
    n_words = max(w for w in word_ids if w is not None) + 1
    rows = []
    for w in range(n_words):
        idx = [i for i, wid in enumerate(word_ids) if wid == w]
        rows.append(ROW)
    return torch.stack(rows)
"""

_WORD = """def word_vectors(sentences, word, layer=-1):
    enc = tokenizer(list(sentences), padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**enc, output_hidden_states=True).hidden_states[LAYER]
    rows = []
    for i, sentence in enumerate(sentences):
        word_ids = enc.word_ids(i)
        n_words = max(w for w in word_ids if w is not None) + 1
        spans = [enc.word_to_chars(i, w) for w in range(n_words)]
        target = next(w for w, s in enumerate(spans) if sentence[s.start : s.end].lower() == word)
        rows.append(ROW)
    return torch.stack(rows)
"""


def _word(layer="layer", row="pool_word_pieces(hidden[i], word_ids)[target]"):
    return _WORD.replace("LAYER", layer).replace("ROW", row)


_CENTROID = """def nearest_centroid(train_x, train_labels, test_x):
    classes = sorted(set(train_labels))
    centroids = torch.stack([CENTROID for c in classes])
    sims = SIMS
    return [classes[i] for i in sims.ARG(dim=1).tolist()]
"""


def _centroid(
    centroid="train_x[[i for i, y in enumerate(train_labels) if y == c]].mean(0)",
    sims="F.normalize(test_x, dim=-1) @ F.normalize(centroids, dim=-1).T",
    arg="argmax",
):
    return _CENTROID.replace("CENTROID", centroid).replace("SIMS", sims).replace("ARG", arg)


MUTANTS = {
    "pool_word_pieces-solution": [
        ("first piece only", _POOL.replace("ROW", "hidden[idx[0]]")),
        ("pieces summed, not averaged", _POOL.replace("ROW", "hidden[idx].sum(dim=0)")),
        ("last piece only", _POOL.replace("ROW", "hidden[idx[-1]]")),
    ],
    "word_vectors-solution": [
        ("the [CLS] vector instead of the word's", _word(row="hidden[i, 0]")),
        ("first piece only", _word(row="hidden[i, enc.word_ids(i).index(target)]")),
        ("hidden state off by one (layer + 1)", _word(layer="layer + 1 if layer >= 0 else layer")),
        ("the mean of the whole sentence", _word(row="hidden[i][enc['attention_mask'][i].bool()].mean(0)")),
    ],
    "cosine_matrix-solution": [
        (
            "dot products, no normalisation",
            """def cosine_matrix(x):
    return x @ x.T
""",
        ),
        (
            "normalised along the wrong axis",
            """def cosine_matrix(x):
    z = F.normalize(x, dim=0)
    return z @ z.T
""",
        ),
    ],
    "nearest_centroid-solution": [
        ("dot product with the centroids (no cosine)", _centroid(sims="test_x @ centroids.T")),
        ("the least similar centroid (argmin)", _centroid(arg="argmin")),
        (
            "first training example of each class instead of the mean",
            _centroid(centroid="train_x[train_labels.index(c)]"),
        ),
    ],
}
