"""Wrong answers for 08-contrastive: each must lose points on its function's tests."""

_NTX = """def nt_xent(z1, z2, temperature=0.5):
    n = z1.size(0)
    z = NORM
    sim = (z @ z.T / TEMP).masked_fill(DIAG, float("-inf"))
    positives = POS
    return F.cross_entropy(sim, positives)
"""


def _ntx(
    norm="F.normalize(torch.cat([z1, z2]), dim=1)",
    temp="temperature",
    diag="torch.eye(2 * n, dtype=torch.bool)",
    pos="torch.cat([torch.arange(n, 2 * n), torch.arange(n)])",
):
    return _NTX.replace("NORM", norm).replace("TEMP", temp).replace("DIAG", diag).replace("POS", pos)


_SHIFT = """def random_shift(images, max_shift, generator):
    n, h, w = images.shape
    m = max_shift
    padded = F.pad(images, (m, m, m, m))
    offsets = OFFSETS
    out = torch.empty_like(images)
    for k, (dy, dx) in enumerate(offsets.tolist()):
        out[k] = padded[k, m - dy : m - dy + h, m - dx : m - dx + w]
    return out
"""

_STEP = """def simclr_step(encoder, head, images, optimizer, generator, temperature=0.5):
    view1 = contrastive.augment_digits(images, generator)
    view2 = VIEW2
    loss = nt_xent(OUT1, OUT2, temperature)
    ZERO
    loss.backward()
    STEP
    return loss.item()
"""


def _step(
    view2="contrastive.augment_digits(images, generator)",
    out1="head(encoder(view1))",
    out2="head(encoder(view2))",
    zero="optimizer.zero_grad()",
    step="optimizer.step()",
):
    return (
        _STEP.replace("VIEW2", view2)
        .replace("OUT1", out1)
        .replace("OUT2", out2)
        .replace("ZERO", zero)
        .replace("STEP", step)
    )


_PROBE = """def linear_probe_accuracy(train_x, train_y, test_x, test_y, steps=300, lr=0.1):
    train_x, test_x = train_x.detach(), test_x.detach()
    STANDARDISE
    probe = nn.Linear(train_x.size(1), int(max(train_y.max(), test_y.max())) + 1)
    opt = torch.optim.Adam(probe.parameters(), lr=lr, weight_decay=1e-3)
    for _ in range(steps):
        loss = F.cross_entropy(probe(train_x), train_y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        return (probe(EVAL_X).argmax(dim=1) == EVAL_Y).float().mean().item()
"""
_STD = """mean, std = train_x.mean(0), train_x.std(0).clamp(min=1e-6)
    train_x, test_x = (train_x - mean) / std, (test_x - mean) / std"""


def _probe(standardise=_STD, eval_x="test_x", eval_y="test_y"):
    return _PROBE.replace("STANDARDISE", standardise).replace("EVAL_X", eval_x).replace("EVAL_Y", eval_y)


MUTANTS = {
    "nt_xent-solution": [
        ("no temperature", _ntx(temp="1.0")),
        ("the anchor itself left in the softmax", _ntx(diag="torch.zeros(2 * n, 2 * n, dtype=torch.bool)")),
        ("embeddings not normalised", _ntx(norm="torch.cat([z1, z2])")),
        (
            "positive is the anchor's own index",
            _ntx(pos="torch.arange(2 * n)", diag="torch.zeros(2 * n, 2 * n, dtype=torch.bool)"),
        ),
        (
            "only the first views as anchors",
            """def nt_xent(z1, z2, temperature=0.5):
    n = z1.size(0)
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    sim = (z @ z.T / temperature).masked_fill(torch.eye(2 * n, dtype=torch.bool), float("-inf"))
    return F.cross_entropy(sim[:n], torch.arange(n, 2 * n))
""",
        ),
    ],
    "random_shift-solution": [
        (
            "torch.roll: pixels wrap around",
            """def random_shift(images, max_shift, generator):
    offsets = torch.randint(-max_shift, max_shift + 1, (len(images), 2), generator=generator)
    return torch.stack([torch.roll(x, (dy, dx), (0, 1)) for x, (dy, dx) in zip(images, offsets.tolist())])
""",
        ),
        (
            "one shift for the whole batch",
            _SHIFT.replace("OFFSETS", "torch.randint(-m, m + 1, (1, 2), generator=generator).expand(n, 2)"),
        ),
        (
            "shifts only in 0..m (never negative)",
            _SHIFT.replace("OFFSETS", "torch.randint(0, m + 1, (n, 2), generator=generator)"),
        ),
        (
            "shifts in -m..m-1 (off by one)",
            _SHIFT.replace("OFFSETS", "torch.randint(-m, m, (n, 2), generator=generator)"),
        ),
    ],
    "simclr_step-solution": [
        ("the same view twice", _step(view2="view1")),
        ("loss on the encoder's output, head skipped", _step(out1="encoder(view1)", out2="encoder(view2)")),
        ("gradients never zeroed", _step(zero="pass")),
        ("no optimizer step", _step(step="pass")),
    ],
    "linear_probe_accuracy-solution": [
        ("training accuracy reported", _probe(eval_x="train_x", eval_y="train_y")),
        ("features not standardised", _probe(standardise="pass")),
        (
            "test set standardised with its own statistics",
            _probe(
                standardise="""train_x = (train_x - train_x.mean(0)) / train_x.std(0).clamp(min=1e-6)
    test_x = (test_x - test_x.mean(0)) / test_x.std(0).clamp(min=1e-6)"""
            ),
        ),
        ("features not detached", _probe().replace("    train_x, test_x = train_x.detach(), test_x.detach()\n", "")),
    ],
}
