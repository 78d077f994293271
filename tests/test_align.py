"""selfsup.align: language vector, cosine retrieval, ranks, accuracy@1 and MRR."""

import pytest
import torch
import torch.nn.functional as F

from selfsup import align


def _synthetic(n=200, d=32, offset=4.0, noise=0.3, seed=0):
    """Aligned embeddings: the same meaning in both languages, each language shifted by its own offset."""
    g = torch.Generator().manual_seed(seed)
    meaning = torch.randn(n, d, generator=g)
    off_a, off_b = (torch.randn(d, generator=g) * offset for _ in range(2))
    a = meaning + off_a + noise * torch.randn(n, d, generator=g)
    b = meaning + off_b + noise * torch.randn(n, d, generator=g)
    return a, b


def test_language_vector_is_the_difference_of_means():
    a = torch.tensor([[0.0, 0.0], [2.0, 2.0]])
    b = torch.tensor([[5.0, 1.0], [7.0, 3.0], [6.0, 2.0]])
    torch.testing.assert_close(align.language_vector(a, b), torch.tensor([5.0, 1.0]))
    a, b = _synthetic()
    torch.testing.assert_close(a.mean(0) + align.language_vector(a, b), b.mean(0))


def test_cosine_scores_and_neighbours_ignore_length():
    keys = torch.tensor([[10.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
    q = torch.tensor([[0.9, 1.0]])
    torch.testing.assert_close(align.cosine_scores(q, keys), F.cosine_similarity(q, keys).unsqueeze(0))
    assert align.nearest_neighbours(q, keys).tolist() == [[1]]  # the dot product would pick key 0
    assert align.nearest_neighbours(q, keys, k=3).tolist() == [[1, 2, 0]]


def test_gold_ranks_match_a_brute_force_count():
    g = torch.Generator().manual_seed(1)
    q, keys = torch.randn(30, 8, generator=g), torch.randn(50, 8, generator=g)
    gold = torch.randint(0, 50, (30,), generator=g)
    ranks = align.gold_ranks(q, keys, gold)
    assert ranks.dtype == torch.long and ranks.shape == (30,)
    scores = F.cosine_similarity(q[:, None], keys[None], dim=-1)
    for i in range(30):
        order = scores[i].argsort(descending=True).tolist()
        assert ranks[i] == order.index(int(gold[i])) + 1


def test_ties_rank_pessimistically():
    keys = torch.tensor([[1.0, 0.0], [2.0, 0.0], [0.0, 1.0]])  # keys 0 and 1 have the same direction
    ranks = align.gold_ranks(torch.tensor([[1.0, 0.0]]), keys, torch.tensor([0]))
    assert ranks.tolist() == [2]


def test_accuracy_and_mrr_known_values():
    ranks = torch.tensor([1, 2, 4, 1])
    assert align.accuracy_at_1(ranks) == 0.5
    assert align.mean_reciprocal_rank(ranks) == pytest.approx((1 + 0.5 + 0.25 + 1) / 4)
    with pytest.raises(ValueError, match="1-based"):
        align.mean_reciprocal_rank(torch.tensor([0, 1]))


def test_the_language_vector_helps_retrieval_and_translation():
    a, b = _synthetic()
    gold = torch.arange(len(a))
    plain = align.retrieval_scores(a, b, gold)
    shift = align.language_vector(a, b)
    shifted = align.retrieval_scores(a, b, gold, shift)
    assert shifted["accuracy"] > 0.9 > plain["accuracy"] + 0.3
    assert shifted["mrr"] > plain["mrr"]
    words = [f"w{i}" for i in range(len(b))]
    assert align.translate(a[:5], b, words, shift) == words[:5]


def test_bad_inputs_say_what_is_wrong():
    a, b = _synthetic(n=5, d=4)
    with pytest.raises(ValueError, match="channels"):
        align.language_vector(a, b[:, :3])
    with pytest.raises(ValueError, match="2-D float"):
        align.cosine_scores(a[0], b)
    with pytest.raises(ValueError, match="shift"):
        align.nearest_neighbours(a, b, shift=torch.zeros(3))
    with pytest.raises(ValueError, match="k="):
        align.nearest_neighbours(a, b, k=6)
    with pytest.raises(ValueError, match="gold"):
        align.gold_ranks(a, b, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="key words"):
        align.translate(a, b, ["x"])
