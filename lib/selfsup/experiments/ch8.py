"""Chapter 8, self-supervision beyond text: SimCLR on digits, masked-frame prediction on synthetic speech.

from selfsup.experiments import ch8
r = ch8.simclr_digits(seed=0)      a linear probe on SimCLR features vs the same CNN trained from scratch,
                                   with 1, 5, 10 and 50 labels per class
r = ch8.byol_collapse(seed=0)      BYOL with and without its predictor: do the projections collapse, and what
                                   does a linear probe on each encoder read
r = ch8.mini_superb(seed=0)        a speech encoder pre-trained by masked-frame prediction, probed frozen for
                                   phones (per frame) and speakers (per utterance), vs raw frames and a
                                   random encoder
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from selfsup import contrastive as C
from selfsup import masked_frames as M
from selfsup.data.speech import SpeechWorld
from selfsup.experiments import Check, experiment, pick_preset

# SimCLR on digits ----------------------------------------------------------------------------------------------

LABELS_PER_CLASS = (1, 5, 10, 50)
FEW_MARGIN = 0.05  # the probe must beat scratch by more than this with 1 label per class


@dataclass(frozen=True)
class SimclrSettings:
    """Pre-training and evaluation sizes."""

    steps: int = 500
    batch_size: int = 256
    width: int = 32
    scratch_steps: int = 300
    n_test: int = 500
    labels: tuple[int, ...] = LABELS_PER_CLASS


SIMCLR = {
    "tiny": SimclrSettings(steps=5, batch_size=64, width=8, scratch_steps=5, labels=(1, 50)),
    "book": SimclrSettings(),
    "full": SimclrSettings(steps=3000, batch_size=512, width=64),
}


@dataclass
class SimclrResult:
    """Test accuracy per number of labels per class: probe on SimCLR features, scratch CNN, probe on raw pixels."""

    probe: dict[int, float]
    scratch: dict[int, float]
    pixels: dict[int, float]
    loss: list[float]
    seconds: float

    def gap(self, k: int) -> float:
        """Probe minus scratch at k labels per class."""
        return self.probe[k] - self.scratch[k]


def _simclr_numbers(r: SimclrResult) -> dict[str, float]:
    return {f"{name}_{k}": getattr(r, name)[k] for name in ("probe", "scratch", "pixels") for k in r.probe}


def _digit_split(
    seed: int, n_test: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Generator]:
    """Images, labels, the test indices, the pool of the rest (pre-training and labelled draws), and the
    generator that drew them (it goes on to draw batches and views); torch is seeded for the models' init."""
    images, labels = C.load_digit_images()
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(len(images), generator=g)
    torch.manual_seed(seed)
    return images, labels, perm[:n_test], perm[n_test:], g


def _labelled(labels: torch.Tensor, pool: torch.Tensor, k: int, seed: int) -> torch.Tensor:
    """The k labelled digits per class of (seed, k): the same draw for every method compared."""
    return C.labels_per_class(labels, pool, k, torch.Generator().manual_seed(seed + 100 * k))


@experiment(
    "ch8.simclr_digits",
    title="SimCLR on digits: linear probe vs training from scratch, 1-50 labels per class",
    paper="Chen et al. 2020 (SimCLR): with 1% of ImageNet's labels, fine-tuned SimCLR features reach 48.3% "
    "top-1 vs 25.4% for a supervised ResNet-50; the advantage shrinks as labels grow",
    checks=[
        Check(
            f"with 1 label per class, the probe on SimCLR features beats scratch by more than {FEW_MARGIN}",
            lambda r: r.gap(min(r.probe)) > FEW_MARGIN,
            lambda r: f"{r.probe[min(r.probe)]:.3f} vs {r.scratch[min(r.probe)]:.3f}",
        ),
        Check(
            "the gap shrinks with more labels: smaller at 50 per class than at 1",
            lambda r: r.gap(max(r.probe)) < r.gap(min(r.probe)),
            lambda r: f"gap {r.gap(min(r.probe)):+.3f} at 1, {r.gap(max(r.probe)):+.3f} at {max(r.probe)}",
        ),
    ],
    numbers=_simclr_numbers,
)
def simclr_digits(seed: int = 0, preset: str = "book", device: str = "cpu") -> SimclrResult:
    """Pre-train SimCLR on the unlabelled training digits; probe and scratch on k labelled digits per class."""
    s = pick_preset(SIMCLR, preset)
    t0 = time.perf_counter()
    images, labels, test, pool, g = _digit_split(seed, s.n_test)
    encoder, loss = C.simclr_pretrain(images[pool], g, steps=s.steps, batch_size=s.batch_size, width=s.width)
    feats = C.encode(encoder, images)
    flat = images.flatten(1)
    r = SimclrResult({}, {}, {}, [round(x, 4) for x in loss], 0.0)
    for k in s.labels:
        ids = _labelled(labels, pool, k, seed)
        r.probe[k] = C.linear_probe(feats[ids], labels[ids], feats[test], labels[test], seed=seed)
        r.pixels[k] = C.linear_probe(flat[ids], labels[ids], flat[test], labels[test], seed=seed)
        r.scratch[k] = C.train_from_scratch(
            images[ids], labels[ids], images[test], labels[test], steps=s.scratch_steps, width=s.width, seed=seed
        )
    r.seconds = round(time.perf_counter() - t0, 2)
    return r


# BYOL: agreement without negatives, and the collapse without its predictor -------------------------------------

BYOL_PROBE_LABELS = 5  # labelled digits per class for the probe that compares the two encoders


@dataclass(frozen=True)
class ByolSettings:
    """Pre-training and evaluation sizes (the same for both arms)."""

    steps: int = 300
    batch_size: int = 256
    width: int = 32
    n_test: int = 500


BYOL = {
    "tiny": ByolSettings(steps=4, batch_size=32, width=8),
    "book": ByolSettings(),
    "full": ByolSettings(steps=3000, batch_size=512, width=64),
}
BYOL_ARMS = {"with predictor": True, "without predictor": False}


@dataclass
class ByolResult:
    """Per arm: the spread (`std`) of the normalised projections at every step, the loss, and a linear probe's
    test accuracy on the encoder's features with BYOL_PROBE_LABELS labels per class."""

    std: dict[str, list[float]]
    loss: dict[str, list[float]]
    probe: dict[str, float]
    seconds: float

    def spread(self, arm: str, last: int = 20) -> float:
        """The mean std over the last `last` steps as a share of the first step's: ~1 spread, ~0 collapsed."""
        s = self.std[arm]
        return sum(s[-last:]) / len(s[-last:]) / s[0]


@experiment(
    "ch8.byol_collapse",
    title="BYOL on digits with and without its predictor: collapse of the projections, and a linear probe",
    paper="Grill et al. 2020 (BYOL, Table 5): removing the predictor makes the representation collapse (0.2% "
    "linear top-1 on ImageNet in the ablation setting), with no negatives in the loss to prevent it",
    checks=[
        Check(
            "with the predictor the projections stay spread: their final std is at least 90% of the first step's",
            lambda r: r.spread("with predictor") >= 0.9,
            lambda r: f"{r.spread('with predictor'):.2f} of the start",
        ),
        Check(
            "without the predictor they collapse toward one point: the final std is under half the first step's",
            lambda r: r.spread("without predictor") < 0.5,
            lambda r: f"{r.spread('without predictor'):.2f} of the start",
        ),
        Check(
            f"a linear probe ({BYOL_PROBE_LABELS} labels per class) reads more from the encoder with the predictor",
            lambda r: r.probe["with predictor"] > r.probe["without predictor"],
            lambda r: f"{r.probe['with predictor']:.3f} vs {r.probe['without predictor']:.3f}",
        ),
    ],
    numbers=lambda r: {f"spread {a}": r.spread(a) for a in BYOL_ARMS} | {f"probe {a}": v for a, v in r.probe.items()},
)
def byol_collapse(seed: int = 0, preset: str = "book", device: str = "cpu") -> ByolResult:
    """BYOL twice on the same unlabelled digits, batches and init, once with the predictor and once without."""
    s = pick_preset(BYOL, preset)
    t0 = time.perf_counter()
    images, labels, test, pool, _ = _digit_split(seed, s.n_test)
    ids = _labelled(labels, pool, BYOL_PROBE_LABELS, seed)
    r = ByolResult({}, {}, {}, 0.0)
    for arm, predictor in BYOL_ARMS.items():
        torch.manual_seed(seed)
        g = torch.Generator().manual_seed(seed + 1)  # the same batches and views for both arms
        encoder, history = C.byol_pretrain(
            images[pool], g, predictor=predictor, steps=s.steps, batch_size=s.batch_size, width=s.width
        )
        feats = C.encode(encoder, images)
        r.std[arm] = [round(x, 5) for x in history["std"]]
        r.loss[arm] = [round(x, 4) for x in history["loss"]]
        r.probe[arm] = C.linear_probe(feats[ids], labels[ids], feats[test], labels[test], seed=seed)
    r.seconds = round(time.perf_counter() - t0, 2)
    return r


# Masked-frame prediction on synthetic speech: a two-task mini-SUPERB ----------------------------------------------

FEATURES = ("raw frames", "random encoder", "pre-trained")


@dataclass(frozen=True)
class SuperbSettings:
    """World, data and pre-training sizes."""

    n_speakers: int = 20
    n_pretrain: int = 800
    n_probe_train: int = 800
    n_probe_test: int = 400
    encoder: M.FrameEncoderConfig = M.FrameEncoderConfig()
    pretrain: M.PretrainConfig = M.PretrainConfig(target="contrastive", steps=400)


SUPERB = {
    "tiny": SuperbSettings(
        n_speakers=4,
        n_pretrain=16,
        n_probe_train=16,
        n_probe_test=8,
        encoder=M.FrameEncoderConfig(d_model=16, n_heads=2, n_layers=1, d_ff=32),
        pretrain=M.PretrainConfig(target="contrastive", steps=3, batch_size=4),
    ),
    "book": SuperbSettings(),
    "full": SuperbSettings(
        n_pretrain=4000,
        n_probe_train=2000,
        n_probe_test=1000,
        encoder=M.FrameEncoderConfig(d_model=128, n_layers=4, d_ff=512),
        pretrain=M.PretrainConfig(target="contrastive", steps=3000),
    ),
}


@dataclass
class SuperbResult:
    """Per kind of features: phone accuracy (per frame) and speaker accuracy (per utterance); chance levels."""

    phone: dict[str, float]
    speaker: dict[str, float]
    phone_majority: float
    speaker_chance: float
    loss: list[float]
    seconds: float


def _superb_numbers(r: SuperbResult) -> dict[str, float]:
    out = {f"phone_{k.replace(' ', '_')}": v for k, v in r.phone.items()}
    out.update({f"speaker_{k.replace(' ', '_')}": v for k, v in r.speaker.items()})
    return out


@experiment(
    "ch8.mini_superb",
    title="Masked-frame pre-training on synthetic speech, probed frozen for phones and speakers",
    paper="Yang et al. 2021 (SUPERB): frozen wav2vec 2.0 / HuBERT features with light heads beat filterbank "
    "features on content (phoneme recognition PER 5.4 vs 82.0 for fbank with HuBERT Large) and speaker "
    "tasks (speaker ID 90.3% vs 8.5%)",
    checks=[
        Check(
            "phones: the probe on pre-trained features beats the probe on raw frames",
            lambda r: r.phone["pre-trained"] > r.phone["raw frames"],
            lambda r: f"{r.phone['pre-trained']:.3f} vs {r.phone['raw frames']:.3f}",
        ),
        Check(
            "phones: the probe on pre-trained features beats the same encoder left random",
            lambda r: r.phone["pre-trained"] > r.phone["random encoder"],
            lambda r: f"{r.phone['pre-trained']:.3f} vs {r.phone['random encoder']:.3f}",
        ),
        Check(
            "speakers: the probe on pre-trained features beats both raw frames and the random encoder",
            lambda r: r.speaker["pre-trained"] > max(r.speaker["raw frames"], r.speaker["random encoder"]),
            lambda r: (
                f"{r.speaker['pre-trained']:.3f} vs {r.speaker['raw frames']:.3f} raw, "
                f"{r.speaker['random encoder']:.3f} random"
            ),
        ),
    ],
    numbers=_superb_numbers,
)
def mini_superb(seed: int = 0, preset: str = "book", device: str = "cpu") -> SuperbResult:
    """Pre-train on unlabelled utterances; linear probes on every layer's states, concatenated (SUPERB reads a
    learned weighted sum of the layers), for the phone of each frame and the speaker of each utterance (mean
    over its frames)."""
    s = pick_preset(SUPERB, preset)
    t0 = time.perf_counter()
    world = SpeechWorld(seed=seed, n_speakers=s.n_speakers)
    pre = world.utterances(s.n_pretrain, seed=1000 + seed)
    train = world.utterances(s.n_probe_train, seed=2000 + seed)
    test = world.utterances(s.n_probe_test, seed=3000 + seed)
    mean, std = pre.frames.mean((0, 1)), pre.frames.std((0, 1))
    norm = lambda frames: (frames - mean) / std  # noqa: E731
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    encoder, loss = M.pretrain_masked_frames(norm(pre.frames), s.encoder, s.pretrain, g)
    torch.manual_seed(seed)
    random_encoder = M.FrameEncoder(s.encoder).eval()  # the same initialisation, never trained
    r = SuperbResult({}, {}, 0.0, 1 / s.n_speakers, [round(x, 4) for x in loss], 0.0)
    counts = torch.bincount(train.phones.flatten())
    r.phone_majority = float((test.phones == counts.argmax()).float().mean())
    for name in FEATURES:
        if name == "raw frames":
            ftr, fte = norm(train.frames), norm(test.frames)
        else:
            model = encoder if name == "pre-trained" else random_encoder
            ftr = torch.cat(M.hidden_states(model, norm(train.frames)), -1)
            fte = torch.cat(M.hidden_states(model, norm(test.frames)), -1)
        d = ftr.size(-1)
        r.phone[name] = C.linear_probe(
            ftr.reshape(-1, d), train.phones.flatten(), fte.reshape(-1, d), test.phones.flatten(), seed=seed
        )
        r.speaker[name] = C.linear_probe(ftr.mean(1), train.speakers, fte.mean(1), test.speakers, seed=seed)
    r.seconds = round(time.perf_counter() - t0, 2)
    return r
