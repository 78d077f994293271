"""Synthetic speech for chapter 8 (work in progress: the chapter is not written yet)."""

import torch

from selfsup.data.speech import PHONES, SpeechWorld


def test_utterances_have_the_documented_shapes_and_labels():
    world = SpeechWorld(seed=0, n_speakers=4, n_words=10)
    u = world.utterances(6, n_frames=32, seed=1)
    assert len(u) == 6 and u.frames.shape[:2] == (6, 32) and u.frames.dtype == torch.float32
    assert u.phones.shape == (6, 32) and int(u.phones.min()) >= 0 and int(u.phones.max()) < len(PHONES)
    assert u.speakers.tolist() == [0, 1, 2, 3, 0, 1]  # utterance i is said by speaker i % 4
    assert torch.isfinite(u.frames).all()


def test_the_same_seed_gives_the_same_frames_and_another_does_not():
    world = SpeechWorld(seed=0, n_speakers=4, n_words=10)
    a, b = world.utterances(3, seed=1), world.utterances(3, seed=1)
    c = world.utterances(3, seed=2)
    assert torch.equal(a.frames, b.frames)
    assert not torch.equal(a.frames, c.frames)
