"""selfsup.contrastive: NT-Xent against a written-out reference, the digit augmentations, the linear probe."""

import math

import pytest
import torch
import torch.nn.functional as F

from selfsup import contrastive


def _nt_xent_loop(z1, z2, t):
    """NT-Xent written out anchor by anchor, as in the SimCLR paper (Algorithm 1)."""
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    n = len(z1)
    total = 0.0
    for i in range(2 * n):
        j = (i + n) % (2 * n)
        sims = [float(z[i] @ z[k]) / t for k in range(2 * n) if k != i]
        total += -(float(z[i] @ z[j]) / t - math.log(sum(math.exp(s) for s in sims)))
    return total / (2 * n)


@pytest.mark.parametrize("t", [0.1, 0.5, 1.0])
def test_nt_xent_matches_the_written_out_loss(t):
    g = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(6, 5, generator=g), torch.randn(6, 5, generator=g)
    assert contrastive.nt_xent_loss(z1, z2, t).item() == pytest.approx(_nt_xent_loop(z1, z2, t), rel=1e-5)


def test_nt_xent_known_cases():
    # identical views of orthogonal embeddings: positive similarity 1, negatives 0 (and the other views' 0)
    z = torch.eye(4)
    t = 0.5
    expected = -math.log(math.exp(1 / t) / (math.exp(1 / t) + 6 * math.exp(0)))
    assert contrastive.nt_xent_loss(z, z, t).item() == pytest.approx(expected, rel=1e-6)
    # one pair: the positive is the only other embedding, so the loss is 0
    assert contrastive.nt_xent_loss(torch.randn(1, 3), torch.randn(1, 3)).item() == pytest.approx(0.0, abs=1e-6)
    # scale of the embeddings does not matter (they are normalised)
    g = torch.Generator().manual_seed(1)
    z1, z2 = torch.randn(5, 4, generator=g), torch.randn(5, 4, generator=g)
    torch.testing.assert_close(contrastive.nt_xent_loss(z1, z2), contrastive.nt_xent_loss(3 * z1, 0.5 * z2))


def test_nt_xent_bad_inputs():
    with pytest.raises(ValueError, match="must both be"):
        contrastive.nt_xent_loss(torch.randn(3, 4), torch.randn(2, 4))
    with pytest.raises(ValueError, match="temperature"):
        contrastive.nt_xent_loss(torch.randn(3, 4), torch.randn(3, 4), 0.0)


def test_load_digit_images():
    images, labels = contrastive.load_digit_images()
    assert images.shape == (1797, 8, 8) and images.dtype == torch.float32
    assert images.min() == 0 and images.max() == 1
    assert labels.shape == (1797,) and set(labels.tolist()) == set(range(10))


def test_random_shift_is_a_zero_filled_shift_with_uniform_offsets():
    x = torch.rand(2000, 8, 8) + 0.1  # no zero pixel, so the filled border shows the shift
    out = contrastive.random_shift(x, 1, torch.Generator().manual_seed(0))
    counts = torch.zeros(3, 3)
    for n in range(len(x)):
        found = [
            (dy, dx)
            for dy in (-1, 0, 1)
            for dx in (-1, 0, 1)
            if torch.equal(out[n], torch.roll(F.pad(x[n], (1, 1, 1, 1)), (dy, dx), (0, 1))[1:-1, 1:-1])
        ]
        assert len(found) == 1
        counts[found[0][0] + 1, found[0][1] + 1] += 1
    assert ((counts / len(x) - 1 / 9).abs() < 6 * math.sqrt(1 / 9 * 8 / 9 / len(x))).all()
    assert torch.equal(contrastive.random_shift(x[:3], 0, torch.Generator()), x[:3])


def test_rotation_and_noise():
    x = torch.zeros(1, 8, 8)
    x[0, 3:5, 3:5] = 1.0  # a centred square keeps its mass under rotation (nearly)
    r = contrastive.random_rotation(x.expand(100, 8, 8), 30, torch.Generator().manual_seed(0))
    assert r.shape == (100, 8, 8)
    assert (r.sum((1, 2)) - 4).abs().max() < 0.5
    torch.testing.assert_close(contrastive.random_rotation(x, 0.0, torch.Generator()), x, atol=1e-6, rtol=0)
    noisy = contrastive.gaussian_noise(torch.zeros(200, 8, 8), 0.3, torch.Generator().manual_seed(0))
    assert abs(noisy.mean()) < 0.01 and abs(noisy.std() - 0.3) < 0.01


def test_augmentations_follow_the_generator():
    x, _ = contrastive.load_digit_images()
    a = contrastive.augment_digits(x[:10], torch.Generator().manual_seed(3))
    b = contrastive.augment_digits(x[:10], torch.Generator().manual_seed(3))
    c = contrastive.augment_digits(x[:10], torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c) and a.shape == (10, 8, 8)
    with pytest.raises(ValueError, match="images"):
        contrastive.random_shift(torch.rand(8, 8), 1, torch.Generator())


def test_linear_probe_on_pixels_and_noise():
    x, y = contrastive.load_digit_images()
    flat = x.flatten(1)
    acc = contrastive.linear_probe(flat[:1000], y[:1000], flat[1000:], y[1000:])
    assert acc > 0.9  # raw pixels are linearly separable enough
    noise = torch.randn(1797, 16, generator=torch.Generator().manual_seed(0))
    assert contrastive.linear_probe(noise[:1000], y[:1000], noise[1000:], y[1000:]) < 0.2
    with pytest.raises(ValueError, match="one label"):
        contrastive.linear_probe(flat[:10], y[:9], flat[:5], y[:5])


def test_digit_encoder_and_encode():
    torch.manual_seed(0)
    enc = contrastive.DigitEncoder(width=4)
    x, _ = contrastive.load_digit_images()
    assert enc(x[:5]).shape == (5, 16) and enc.out_dim == 16
    enc.train()
    f = contrastive.encode(enc, x[:20], batch_size=7)
    assert f.shape == (20, 16) and enc.training  # encode restores the mode it found
    torch.testing.assert_close(f, contrastive.encode(enc, x[:20]))


def test_labels_per_class_draws_k_of_each_from_the_pool():
    labels = torch.arange(100) % 10
    pool = torch.arange(50, 100)
    ids = contrastive.labels_per_class(labels, pool, 3, torch.Generator().manual_seed(0))
    assert len(ids) == 30 and len(set(ids.tolist())) == 30 and (ids >= 50).all()
    assert torch.bincount(labels[ids]).tolist() == [3] * 10
    with pytest.raises(ValueError, match="fewer than"):
        contrastive.labels_per_class(labels, pool, 6, torch.Generator())


def test_byol_loss_is_zero_for_aligned_and_stops_gradient_into_the_target():
    p = torch.randn(4, 3, requires_grad=True)
    z = (2 * p.detach()).requires_grad_(True)
    assert contrastive.byol_loss(p, z).item() == pytest.approx(0.0, abs=1e-6)
    contrastive.byol_loss(p, -z).backward()
    assert z.grad is None and p.grad is not None
    assert contrastive.byol_loss(p.detach(), -z.detach()).item() == pytest.approx(4.0, abs=1e-5)


def test_simclr_and_byol_train_and_scratch_baseline_runs():
    x, y = contrastive.load_digit_images()
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    enc, losses = contrastive.simclr_pretrain(x[:300], g, steps=15, batch_size=32, width=4)
    assert len(losses) == 15 and not enc.training
    assert sum(losses[-5:]) < sum(losses[:5])  # the contrastive loss falls
    enc, hist = contrastive.byol_pretrain(x[:300], g, steps=3, batch_size=16, width=4, predictor=False)
    assert len(hist["loss"]) == len(hist["std"]) == 3 and all(0 <= s <= 1 for s in hist["std"])
    acc = contrastive.train_from_scratch(x[:200], y[:200], x[1000:1300], y[1000:1300], steps=40, width=4)
    assert acc > 0.3  # well above chance (0.1) after 40 steps on 200 labelled digits
