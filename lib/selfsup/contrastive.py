"""Contrastive self-supervision on images (SimCLR): the NT-Xent loss, digit augmentations, a linear probe.

SimCLR (Chen et al. 2020) makes two random views of each image and trains an encoder so that the two views
of one image agree and differ from every other image in the batch. The images here are scikit-learn's
bundled 8x8 handwritten digits (`load_digit_images`), so nothing is downloaded. A representation is judged
by a linear probe: a logistic regression trained on the frozen features.

Shapes: N images (or pairs), H = W = 8 pixels, D feature channels, K classes. Images are float tensors
(N, 8, 8) with values in [0, 1]. Every random function takes a `torch.Generator`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def load_digit_images() -> tuple[Tensor, Tensor]:
    """scikit-learn's 1797 handwritten digits, offline: images (1797, 8, 8) float32 in [0, 1], labels (1797,) long."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = torch.tensor(digits.images, dtype=torch.float32) / 16.0
    return images, torch.tensor(digits.target, dtype=torch.long)


# ---------------------------------------------------------------------------------------------------------
# the loss


def nt_xent_loss(z1: Tensor, z2: Tensor, temperature: float = 0.5) -> Tensor:
    """SimCLR's normalized-temperature cross-entropy of two views: z1, z2 (N, D) -> a 0-d loss.

    The 2N embeddings are L2-normalised; each one is an anchor whose positive is the other view of the same
    image, and whose negatives are the other 2N - 2 embeddings. The loss is the mean over the 2N anchors of
    -log( exp(sim(anchor, positive) / t) / sum over the 2N - 1 others of exp(sim(anchor, other) / t) ),
    with sim the cosine similarity and t the temperature.
    """
    if z1.dim() != 2 or z1.shape != z2.shape:
        raise ValueError(f"z1 and z2 must both be (N, D), got {tuple(z1.shape)} and {tuple(z2.shape)}")
    if not temperature > 0:
        raise ValueError(f"temperature={temperature!r} must be > 0")
    n = z1.size(0)
    z = F.normalize(torch.cat([z1, z2]), dim=1)  # (2N, D)
    sim = z @ z.T / temperature  # (2N, 2N)
    # An embedding is not its own negative: its similarity with itself (1 / t, the largest) is left out.
    sim = sim.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device), float("-inf"))
    positives = torch.cat([torch.arange(n, 2 * n), torch.arange(n)]).to(z.device)  # row i's other view
    return F.cross_entropy(sim, positives)


# ---------------------------------------------------------------------------------------------------------
# augmentations


def _check_images(images: Tensor) -> None:
    if images.dim() != 3 or not images.dtype.is_floating_point:
        raise ValueError(f"images must be a (N, H, W) float tensor, got {tuple(images.shape)} {images.dtype}")


def random_shift(images: Tensor, max_shift: int, generator: torch.Generator) -> Tensor:
    """Shift each image by its own (dy, dx), each uniform in -max_shift..max_shift; pixels shifted in are 0.

    A shift by (dy, dx) moves the pixel at (i, j) to (i + dy, j + dx). Returns a new (N, H, W) tensor.
    """
    _check_images(images)
    if max_shift < 0:
        raise ValueError(f"max_shift={max_shift!r} must be >= 0")
    n, h, w = images.shape
    m = max_shift
    padded = F.pad(images, (m, m, m, m))  # (N, H + 2m, W + 2m)
    d = torch.randint(-m, m + 1, (n, 2), generator=generator, device=generator.device).to(images.device)
    rows = torch.arange(h, device=images.device)[None, :] + m - d[:, :1]  # (N, H): source row of each output row
    cols = torch.arange(w, device=images.device)[None, :] + m - d[:, 1:]  # (N, W)
    return padded[torch.arange(n, device=images.device)[:, None, None], rows[:, :, None], cols[:, None, :]]


def random_rotation(images: Tensor, max_degrees: float, generator: torch.Generator) -> Tensor:
    """Rotate each image about its centre by its own angle, uniform in [-max_degrees, max_degrees] (bilinear)."""
    _check_images(images)
    n = images.size(0)
    u = torch.rand(n, generator=generator, device=generator.device).to(images.device)
    angle = (2 * u - 1) * math.radians(max_degrees)
    cos, sin, zero = angle.cos(), angle.sin(), torch.zeros_like(angle)
    theta = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)  # (N, 2, 3)
    grid = F.affine_grid(theta.to(images.dtype), [n, 1, *images.shape[1:]], align_corners=False)
    return F.grid_sample(images[:, None], grid, align_corners=False, padding_mode="zeros")[:, 0]


def gaussian_noise(images: Tensor, std: float, generator: torch.Generator) -> Tensor:
    """Add independent N(0, std^2) noise to every pixel."""
    _check_images(images)
    if std < 0:
        raise ValueError(f"std={std!r} must be >= 0")
    noise = torch.randn(images.shape, generator=generator, device=generator.device).to(images.device)
    return images + std * noise


def augment_digits(
    images: Tensor,
    generator: torch.Generator,
    max_shift: int = 1,
    max_degrees: float = 15.0,
    noise_std: float = 0.1,
) -> Tensor:
    """One random view of each digit: a small rotation, then a shift, then pixel noise. (N, 8, 8) -> (N, 8, 8)."""
    out = random_rotation(images, max_degrees, generator) if max_degrees > 0 else images
    out = random_shift(out, max_shift, generator)
    return gaussian_noise(out, noise_std, generator) if noise_std > 0 else out


# ---------------------------------------------------------------------------------------------------------
# evaluation


def linear_probe(
    train_x: Tensor,
    train_y: Tensor,
    test_x: Tensor,
    test_y: Tensor,
    steps: int = 300,
    lr: float = 0.1,
    weight_decay: float = 1e-3,
    seed: int = 0,
) -> float:
    """Test accuracy of a logistic regression fitted on frozen features (N, D) with labels (N,).

    Features are standardised with the training set's mean and standard deviation; a Linear(D, K) layer is
    trained full-batch with Adam for `steps` steps. Nothing flows back into whatever made the features.
    """
    if train_x.dim() != 2 or test_x.dim() != 2 or train_x.size(1) != test_x.size(1):
        raise ValueError(f"features must be (N, D) with the same D, got {tuple(train_x.shape)}, {tuple(test_x.shape)}")
    if len(train_x) != len(train_y) or len(test_x) != len(test_y):
        raise ValueError("one label per feature row, in both the training and the test set")
    train_x, test_x = train_x.detach().float(), test_x.detach().float()
    mean = train_x.mean(0)
    std = train_x.std(0).clamp(min=1e-6) if len(train_x) > 1 else torch.ones_like(mean)
    train_x, test_x = (train_x - mean) / std, (test_x - mean) / std
    n_classes = int(max(train_y.max(), test_y.max())) + 1
    g = torch.Generator().manual_seed(seed)
    probe = nn.Linear(train_x.size(1), n_classes)
    with torch.no_grad():
        probe.weight.copy_(torch.randn(probe.weight.shape, generator=g) * 0.01)
        probe.bias.zero_()
    opt = torch.optim.Adam(probe.parameters(), lr=lr, weight_decay=weight_decay)
    with torch.enable_grad():
        for _ in range(steps):
            loss = F.cross_entropy(probe(train_x), train_y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    with torch.no_grad():
        return float((probe(test_x).argmax(1) == test_y).float().mean())


# ---------------------------------------------------------------------------------------------------------
# an encoder, SimCLR and BYOL pre-training, and the baselines a probe is compared with


class DigitEncoder(nn.Module):
    """A small CNN for 8x8 digits: three 3x3 convolutions (the last two with stride 2), then average pooling.

    (N, 8, 8) -> (N, 4 * width): the representation a probe reads. Batch normalisation after each convolution,
    as in SimCLR's ResNets; it also keeps the early training of a contrastive loss stable at this size.
    """

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        if width < 1:
            raise ValueError(f"width={width!r} must be >= 1")
        c = width
        self.out_dim = 4 * c
        self.net = nn.Sequential(
            nn.Conv2d(1, c, 3, padding=1),
            nn.BatchNorm2d(c),
            nn.ReLU(),
            nn.Conv2d(c, 2 * c, 3, padding=1, stride=2),  # (N, 2c, 4, 4)
            nn.BatchNorm2d(2 * c),
            nn.ReLU(),
            nn.Conv2d(2 * c, 4 * c, 3, padding=1, stride=2),  # (N, 4c, 2, 2)
            nn.BatchNorm2d(4 * c),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )

    def forward(self, images: Tensor) -> Tensor:
        """(N, 8, 8) -> (N, 4 * width)."""
        return self.net(images[:, None])


def mlp(d_in: int, d_hidden: int, d_out: int) -> nn.Sequential:
    """Linear -> BatchNorm -> ReLU -> Linear: SimCLR's projection head, and BYOL's projector and predictor."""
    return nn.Sequential(nn.Linear(d_in, d_hidden), nn.BatchNorm1d(d_hidden), nn.ReLU(), nn.Linear(d_hidden, d_out))


@torch.no_grad()
def encode(encoder: nn.Module, images: Tensor, batch_size: int = 512) -> Tensor:
    """The frozen encoder's features of images (N, 8, 8) -> (N, D), in eval mode, in batches."""
    was_training = encoder.training
    encoder.eval()
    out = torch.cat([encoder(images[i : i + batch_size]) for i in range(0, len(images), batch_size)])
    encoder.train(was_training)
    return out


def simclr_pretrain(
    images: Tensor,
    generator: torch.Generator,
    *,
    steps: int = 500,
    batch_size: int = 256,
    temperature: float = 0.5,
    lr: float = 1e-3,
    width: int = 32,
) -> tuple[DigitEncoder, list[float]]:
    """SimCLR on unlabelled digits: two augmented views per image, NT-Xent on a projection of their features.

    Returns the encoder (the projection head is thrown away, as in the paper: the probe reads the layer before
    it) and the loss of every step. The generator draws the batches and the views; seed torch for the init.
    """
    encoder = DigitEncoder(width)
    head = mlp(encoder.out_dim, 128, 64)
    opt = torch.optim.Adam([*encoder.parameters(), *head.parameters()], lr=lr)
    losses = []
    for _ in range(steps):
        batch = images[torch.randint(len(images), (batch_size,), generator=generator)]
        z1 = head(encoder(augment_digits(batch, generator)))
        z2 = head(encoder(augment_digits(batch, generator)))
        loss = nt_xent_loss(z1, z2, temperature)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return encoder.eval(), losses


def byol_loss(p: Tensor, z: Tensor) -> Tensor:
    """BYOL's regression loss: 2 - 2 cos(p, z), averaged over the batch. z is the target: no gradient flows into it."""
    return (2 - 2 * F.cosine_similarity(p, z.detach(), dim=1)).mean()


def byol_pretrain(
    images: Tensor,
    generator: torch.Generator,
    *,
    predictor: bool = True,
    steps: int = 300,
    batch_size: int = 256,
    momentum: float = 0.99,
    lr: float = 1e-3,
    width: int = 32,
) -> tuple[DigitEncoder, dict[str, list[float]]]:
    """BYOL (Grill et al. 2020): an online network predicts a slowly moving target network's projection of
    another view. No negatives; what stops every image from mapping to one point is the asymmetry: a predictor
    on the online side only, a stop-gradient on the target, and the target as a moving average of the online
    weights. `predictor=False` removes the predictor (the paper's collapse ablation).

    Returns the online encoder and, per step, the loss and `std`: the standard deviation over the batch of the
    L2-normalised online projections, averaged over dimensions (about 1/sqrt(dim) when spread out, 0 when
    every image gets the same vector: collapse).
    """
    encoder = DigitEncoder(width)
    projector = mlp(encoder.out_dim, 128, 64)
    pred = mlp(64, 128, 64) if predictor else nn.Identity()
    target = nn.Sequential(DigitEncoder(width), mlp(encoder.out_dim, 128, 64))
    online = nn.Sequential(encoder, projector)
    target.load_state_dict(online.state_dict())
    target.requires_grad_(False)
    opt = torch.optim.Adam([*online.parameters(), *pred.parameters()], lr=lr)
    history: dict[str, list[float]] = {"loss": [], "std": []}
    for _ in range(steps):
        batch = images[torch.randint(len(images), (batch_size,), generator=generator)]
        v1, v2 = augment_digits(batch, generator), augment_digits(batch, generator)
        z1, z2 = online(v1), online(v2)
        with torch.no_grad():
            t1, t2 = target(v1), target(v2)
        loss = byol_loss(pred(z1), t2) + byol_loss(pred(z2), t1)  # symmetric: each view predicts the other
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            for pt, po in zip(target.parameters(), online.parameters(), strict=True):
                pt.mul_(momentum).add_(po, alpha=1 - momentum)
            for bt, bo in zip(target.buffers(), online.buffers(), strict=True):
                bt.copy_(bo)
        history["loss"].append(loss.item())
        history["std"].append(float(F.normalize(z1.detach(), dim=1).std(0).mean()))
    return encoder.eval(), history


def labels_per_class(labels: Tensor, pool: Tensor, k: int, generator: torch.Generator) -> Tensor:
    """Indices of k examples of each class, drawn without replacement from the indices `pool` (sorted by class)."""
    chosen = []
    for c in labels[pool].unique().tolist():
        members = pool[labels[pool] == c]
        if len(members) < k:
            raise ValueError(f"class {c} has {len(members)} examples in the pool, fewer than k={k}")
        chosen.append(members[torch.randperm(len(members), generator=generator)[:k]])
    return torch.cat(chosen)


def train_from_scratch(
    train_x: Tensor,
    train_y: Tensor,
    test_x: Tensor,
    test_y: Tensor,
    *,
    steps: int = 300,
    lr: float = 1e-3,
    weight_decay: float = 1e-4,
    width: int = 32,
    seed: int = 0,
) -> float:
    """Test accuracy of a randomly initialised DigitEncoder + Linear trained, full batch, on the labelled images
    alone (no augmentation, no unlabelled data): the baseline that a probe on pre-trained features must beat."""
    torch.manual_seed(seed)
    encoder = DigitEncoder(width)
    model = nn.Sequential(encoder, nn.Linear(encoder.out_dim, int(max(train_y.max(), test_y.max())) + 1))
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    model.train()
    with torch.enable_grad():
        for _ in range(steps):
            loss = F.cross_entropy(model(train_x), train_y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        return float((model(test_x).argmax(1) == test_y).float().mean())
