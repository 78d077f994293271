"""Chapter 8's experiments at the "tiny" preset: structure, ranges and the checks' logic.

The book's build asserts the book-preset checks; these tests check that the experiments run end to end and
that each check fails on numbers that contradict its claim.
"""

import dataclasses

import pytest
import torch

from selfsup.experiments import REGISTRY, ch8


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    # a shared 2-core machine: one thread avoids the contention of two spinning threads per process
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def simclr():
    return ch8.simclr_digits(seed=0, preset="tiny")


@pytest.fixture(scope="module")
def byol():
    return ch8.byol_collapse(seed=0, preset="tiny")


@pytest.fixture(scope="module")
def superb():
    return ch8.mini_superb(seed=0, preset="tiny")


def test_simclr_tiny_has_every_k_in_range(simclr):
    ks = ch8.SIMCLR["tiny"].labels
    for name in ("probe", "scratch", "pixels"):
        values = getattr(simclr, name)
        assert sorted(values) == sorted(ks) and all(0 <= v <= 1 for v in values.values())
    assert len(simclr.loss) == ch8.SIMCLR["tiny"].steps
    assert set(ch8.simclr_digits.numbers(simclr)) == {f"{n}_{k}" for n in ("probe", "scratch", "pixels") for k in ks}


def test_simclr_checks_fail_when_the_probe_loses(simclr):
    exp = REGISTRY["ch8.simclr_digits"]
    good = dataclasses.replace(simclr, probe={1: 0.7, 50: 0.97}, scratch={1: 0.5, 50: 0.96})
    assert all(held for _, held, _ in exp.outcomes(good))
    loses = dataclasses.replace(simclr, probe={1: 0.52, 50: 0.97}, scratch={1: 0.5, 50: 0.96})
    assert [held for _, held, _ in exp.outcomes(loses)] == [False, True]
    grows = dataclasses.replace(simclr, probe={1: 0.7, 50: 0.97}, scratch={1: 0.6, 50: 0.8})
    assert [held for _, held, _ in exp.outcomes(grows)] == [True, False]


def test_byol_tiny_runs_both_arms_on_the_same_batches(byol):
    steps = ch8.BYOL["tiny"].steps
    assert list(byol.std) == list(byol.loss) == list(byol.probe) == list(ch8.BYOL_ARMS)
    assert all(len(byol.std[a]) == len(byol.loss[a]) == steps for a in ch8.BYOL_ARMS)
    assert all(0 <= v <= 1 for v in byol.probe.values())
    # same init, batches and views: the first step's projections are the same network's, so their spread is too
    assert byol.std["with predictor"][0] == pytest.approx(byol.std["without predictor"][0])


def test_byol_spread_and_checks(byol):
    exp = REGISTRY["ch8.byol_collapse"]
    r = dataclasses.replace(byol, std={"with predictor": [0.1] * 30, "without predictor": [0.1] + [0.02] * 29})
    assert r.spread("with predictor") == pytest.approx(1.0) and r.spread("without predictor") == pytest.approx(0.2)
    good = dataclasses.replace(r, probe={"with predictor": 0.85, "without predictor": 0.8})
    assert [held for _, held, _ in exp.outcomes(good)] == [True, True, True]
    # no collapse without the predictor, and the probe cannot tell the two apart: the claims fail
    flat = dataclasses.replace(
        good, std={a: [0.1] * 30 for a in ch8.BYOL_ARMS}, probe=dict.fromkeys(ch8.BYOL_ARMS, 0.8)
    )
    assert [held for _, held, _ in exp.outcomes(flat)] == [True, False, False]
    # the predictor arm collapsing too fails the first claim
    both = dataclasses.replace(good, std={a: [0.1] + [0.02] * 29 for a in ch8.BYOL_ARMS})
    assert [held for _, held, _ in exp.outcomes(both)] == [False, True, True]


def test_superb_tiny_has_every_feature_kind(superb):
    assert list(superb.phone) == list(superb.speaker) == list(ch8.FEATURES)
    assert all(0 <= v <= 1 for v in [*superb.phone.values(), *superb.speaker.values()])
    assert superb.speaker_chance == pytest.approx(1 / ch8.SUPERB["tiny"].n_speakers)
    assert 0 < superb.phone_majority < 1 and len(superb.loss) == ch8.SUPERB["tiny"].pretrain.steps


def test_superb_checks_need_both_baselines_beaten(superb):
    exp = REGISTRY["ch8.mini_superb"]
    phone = {"raw frames": 0.8, "random encoder": 0.82, "pre-trained": 0.81}
    speaker = {"raw frames": 0.6, "random encoder": 0.7, "pre-trained": 0.65}
    outcomes = exp.outcomes(dataclasses.replace(superb, phone=phone, speaker=speaker))
    assert [held for _, held, _ in outcomes] == [True, False, False]
    speaker = {"raw frames": 0.6, "random encoder": 0.55, "pre-trained": 0.65}
    outcomes = exp.outcomes(dataclasses.replace(superb, phone=phone, speaker=speaker))
    assert [held for _, held, _ in outcomes] == [True, False, True]
