"""Chapter 8, self-supervision beyond text: SimCLR on digits, masked-frame prediction on synthetic speech.

from selfsup.experiments import ch8
r = ch8.simclr_digits(seed=0)      a linear probe on SimCLR features vs the same CNN trained from scratch,
                                   with 1, 5, 10 and 50 labels per class
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
    images, labels = C.load_digit_images()
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(len(images), generator=g)
    test, pool = perm[: s.n_test], perm[s.n_test :]
    torch.manual_seed(seed)
    encoder, loss = C.simclr_pretrain(images[pool], g, steps=s.steps, batch_size=s.batch_size, width=s.width)
    feats = C.encode(encoder, images)
    flat = images.flatten(1)
    r = SimclrResult({}, {}, {}, [round(x, 4) for x in loss], 0.0)
    for k in s.labels:
        ids = C.labels_per_class(labels, pool, k, torch.Generator().manual_seed(seed + 100 * k))
        r.probe[k] = C.linear_probe(feats[ids], labels[ids], feats[test], labels[test], seed=seed)
        r.pixels[k] = C.linear_probe(flat[ids], labels[ids], flat[test], labels[test], seed=seed)
        r.scratch[k] = C.train_from_scratch(
            images[ids], labels[ids], images[test], labels[test], steps=s.scratch_steps, width=s.width, seed=seed
        )
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
