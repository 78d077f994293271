"""Self-supervised speech by masked-frame prediction (wav2vec 2.0, HuBERT), on spectrogram frames.

A speech encoder reads a sequence of frames (log mel energies, `selfsup.data.speech`). Pre-training hides
spans of frames behind a learned mask vector and asks the encoder to recover, at each masked position, what
was there, from the frames around it. What "what was there" means is the design choice that distinguishes
the papers:
- "clusters" (HuBERT, Hsu et al. 2021): the id of the frame's k-means cluster, computed once on the raw
  frames (HuBERT's first iteration clusters MFCCs); a classification over k ids.
- "contrastive" (wav2vec 2.0, Baevski et al. 2020): pick the masked frame's own target vector among the
  targets of every other masked frame of the batch (InfoNCE); the targets are a learned linear map of the
  unmasked frames (wav2vec 2.0 quantises them first; here they are left continuous).
- "frames": regress the masked frame itself (mean squared error), the simplest reconstruction.

Shapes: B utterances, T frames, F bins per frame, D = d_model. Random functions take a `torch.Generator`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

TARGETS = ("clusters", "contrastive", "frames")


@dataclass(frozen=True)
class FrameEncoderConfig:
    """A small speech encoder: a per-frame projection, one local convolution, then Transformer layers."""

    n_bins: int = 40
    d_model: int = 64
    n_heads: int = 4
    n_layers: int = 2
    d_ff: int = 256
    max_len: int = 64
    conv_kernel: int = 5  # frames of local context mixed in before attention (wav2vec 2.0's positional conv)

    def __post_init__(self) -> None:
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model={self.d_model} must be divisible by n_heads={self.n_heads}")
        if self.conv_kernel % 2 == 0:
            raise ValueError(f"conv_kernel={self.conv_kernel} must be odd, so the output keeps T frames")


class FrameEncoder(nn.Module):
    """Frames (B, T, F) -> hidden states (B, T, D); a mask (B, T) of True replaces those frames by a learned vector."""

    def __init__(self, config: FrameEncoderConfig) -> None:
        super().__init__()
        self.config = c = config
        self.inp = nn.Linear(c.n_bins, c.d_model)
        self.mask_embedding = nn.Parameter(torch.randn(c.d_model) * 0.02)
        self.conv = nn.Conv1d(c.d_model, c.d_model, c.conv_kernel, padding=c.conv_kernel // 2)
        self.pos = nn.Parameter(torch.randn(c.max_len, c.d_model) * 0.02)
        self.layers = nn.ModuleList(
            nn.TransformerEncoderLayer(c.d_model, c.n_heads, c.d_ff, dropout=0.0, batch_first=True, norm_first=True)
            for _ in range(c.n_layers)
        )
        self.norm = nn.LayerNorm(c.d_model)

    def forward(self, frames: Tensor, mask: Tensor | None = None, output_hidden_states: bool = False) -> object:
        """The last layer's states (B, T, D), or with `output_hidden_states` the list of n_layers + 1 states
        (the input embedding, then each layer's output): SUPERB probes a weighted sum of all of them."""
        if frames.size(1) > self.config.max_len:
            raise ValueError(f"{frames.size(1)} frames is more than max_len={self.config.max_len}")
        h = self.inp(frames)  # (B, T, D)
        if mask is not None:
            h = torch.where(mask[..., None], self.mask_embedding, h)
        h = h + F.gelu(self.conv(h.transpose(1, 2)).transpose(1, 2)) + self.pos[: h.size(1)]
        states = [h]
        for layer in self.layers:
            h = layer(h)
            states.append(h)
        return states if output_hidden_states else self.norm(h)


def span_mask(n: int, length: int, mask_prob: float, span: int, generator: torch.Generator) -> Tensor:
    """(n, length) bool: spans of `span` frames start at about mask_prob * length / span random places, so
    that up to mask_prob of the frames are hidden (spans may overlap), as in wav2vec 2.0."""
    if not 0 < mask_prob < 1 or not 1 <= span <= length:
        raise ValueError(f"need 0 < mask_prob < 1 and 1 <= span <= length, got {mask_prob}, {span}, {length}")
    n_spans = max(1, round(mask_prob * length / span))
    starts = torch.randint(0, length - span + 1, (n, n_spans), generator=generator)
    mask = torch.zeros(n, length, dtype=torch.bool)
    for j in range(span):
        mask.scatter_(1, starts + j, True)
    return mask


def kmeans(x: Tensor, k: int, generator: torch.Generator, iters: int = 20) -> Tensor:
    """Lloyd's k-means on rows of x (N, F), initialised at k random rows; returns the centroids (k, F)."""
    centroids = x[torch.randperm(len(x), generator=generator)[:k]].clone()
    for _ in range(iters):
        assign = torch.cdist(x, centroids).argmin(1)
        sums = torch.zeros_like(centroids).index_add_(0, assign, x)
        counts = torch.bincount(assign, minlength=k)[:, None]
        centroids = torch.where(counts > 0, sums / counts.clamp(min=1), centroids)  # an empty cluster stays
    return centroids


@dataclass(frozen=True)
class PretrainConfig:
    """Masked-frame pre-training: what to predict, how much to mask, how long to train."""

    target: str = "contrastive"
    steps: int = 400
    batch_size: int = 32
    lr: float = 1e-3
    mask_prob: float = 0.4
    span: int = 5
    n_clusters: int = 32  # "clusters"
    temperature: float = 0.1  # "contrastive"
    d_target: int = 32  # "contrastive": width of the target vectors

    def __post_init__(self) -> None:
        if self.target not in TARGETS:
            raise ValueError(f"target={self.target!r}; choose one of {list(TARGETS)}")


def pretrain_masked_frames(
    frames: Tensor, config: FrameEncoderConfig, settings: PretrainConfig, generator: torch.Generator
) -> tuple[FrameEncoder, list[float]]:
    """Pre-train a FrameEncoder on unlabelled utterances (N, T, F), already normalised; returns it and its losses.

    Seed torch for the initialisation; the generator draws batches, masks and k-means' start.
    """
    encoder = FrameEncoder(config)
    d, s = config.d_model, settings
    if s.target == "clusters":
        centroids = kmeans(frames.reshape(-1, frames.size(-1)), s.n_clusters, generator)
        labels = torch.cdist(frames.reshape(-1, frames.size(-1)), centroids).argmin(1).view(frames.shape[:2])
        head, extra = nn.Linear(d, s.n_clusters), []
    elif s.target == "contrastive":
        head, target_map = nn.Linear(d, s.d_target), nn.Linear(frames.size(-1), s.d_target)
        extra = list(target_map.parameters())
    else:
        head, extra = nn.Linear(d, frames.size(-1)), []
    opt = torch.optim.AdamW([*encoder.parameters(), *head.parameters(), *extra], lr=s.lr, weight_decay=0.01)
    losses = []
    for _ in range(s.steps):
        idx = torch.randint(len(frames), (s.batch_size,), generator=generator)
        x = frames[idx]
        mask = span_mask(len(x), x.size(1), s.mask_prob, s.span, generator)
        out = head(encoder(x, mask))[mask]  # (M, *): the masked positions only
        if s.target == "clusters":
            loss = F.cross_entropy(out, labels[idx][mask])
        elif s.target == "contrastive":
            # every other masked frame of the batch is a negative: from this utterance and from the others
            c, q = F.normalize(out, dim=-1), F.normalize(target_map(x[mask]), dim=-1)
            loss = F.cross_entropy(c @ q.T / s.temperature, torch.arange(len(c)))
        else:
            loss = F.mse_loss(out, x[mask])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return encoder.eval(), losses


@torch.no_grad()
def hidden_states(encoder: FrameEncoder, frames: Tensor, batch_size: int = 256) -> list[Tensor]:
    """Every layer's states of a frozen encoder (no mask): a list of n_layers + 1 tensors (N, T, D)."""
    encoder.eval()
    chunks = [encoder(frames[i : i + batch_size], output_hidden_states=True) for i in range(0, len(frames), batch_size)]
    return [torch.cat(layer) for layer in zip(*chunks, strict=True)]
