"""selfsup.masked_frames: span masks, k-means, the encoder's shapes and masking, pre-training that learns."""

import pytest
import torch

from selfsup import masked_frames as M


def test_span_mask_covers_about_the_asked_share_in_spans():
    g = torch.Generator().manual_seed(0)
    m = M.span_mask(500, 64, 0.4, 5, g)
    assert m.shape == (500, 64) and m.dtype == torch.bool
    share = m.float().mean().item()
    assert 0.25 < share <= 0.4 + 1e-6  # overlapping spans hide a little less than asked, never more
    # every masked run is at least one span long (spans are contiguous)
    for row in m[:20].tolist():
        runs, n = [], 0
        for v in [*row, False]:
            if v:
                n += 1
            elif n:
                runs.append(n)
                n = 0
        assert runs and min(runs) >= 5  # spans start inside the utterance, so no run is cut short
    with pytest.raises(ValueError):
        M.span_mask(2, 4, 0.4, 5, g)


def test_kmeans_finds_separated_clusters():
    g = torch.Generator().manual_seed(0)
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    x = torch.cat([c + 0.1 * torch.randn(50, 2, generator=g) for c in centres])
    found = M.kmeans(x, 3, g)
    dist = torch.cdist(centres, found).min(1).values
    assert (dist < 0.2).all()


def test_encoder_shapes_mask_and_hidden_states():
    cfg = M.FrameEncoderConfig(n_bins=10, d_model=16, n_heads=2, n_layers=2, d_ff=32, max_len=12)
    torch.manual_seed(0)
    enc = M.FrameEncoder(cfg).eval()
    x = torch.randn(3, 12, 10)
    assert enc(x).shape == (3, 12, 16)
    states = enc(x, output_hidden_states=True)
    assert len(states) == 3 and all(s.shape == (3, 12, 16) for s in states)
    # a masked frame's content does not reach the encoder: changing it changes nothing
    mask = torch.zeros(3, 12, dtype=torch.bool)
    mask[:, 4] = True
    y = x.clone()
    y[:, 4] += 5.0
    torch.testing.assert_close(enc(x, mask), enc(y, mask))
    assert not torch.allclose(enc(x), enc(y))
    with pytest.raises(ValueError, match="max_len"):
        enc(torch.randn(1, 13, 10))
    with pytest.raises(ValueError, match="divisible"):
        M.FrameEncoderConfig(d_model=10, n_heads=4)
    with pytest.raises(ValueError, match="target"):
        M.PretrainConfig(target="nope")


@pytest.mark.parametrize("target", M.TARGETS)
def test_pretraining_lowers_its_loss(target):
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    # frames with structure to predict: smooth sequences, each utterance its own slow pattern
    t = torch.arange(16, dtype=torch.float32)
    phase = torch.rand(64, 1, 1, generator=g) * 6
    freq = torch.rand(64, 1, 6, generator=g) + 0.2
    frames = torch.sin(phase + t[None, :, None] * freq * 0.3)
    cfg = M.FrameEncoderConfig(n_bins=6, d_model=16, n_heads=2, n_layers=1, d_ff=32, max_len=16)
    s = M.PretrainConfig(target=target, steps=60, batch_size=16, span=3, n_clusters=4, lr=3e-3)
    enc, losses = M.pretrain_masked_frames(frames, cfg, s, g)
    assert len(losses) == 60 and not enc.training
    assert sum(losses[-10:]) / 10 < 0.8 * sum(losses[:10]) / 10
    assert [h.shape for h in M.hidden_states(enc, frames)] == [(64, 16, 16)] * 2
