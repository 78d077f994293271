"""Induction heads (Olsson et al. 2022): a 2-layer attention-only transformer against a 1-layer one.

An induction head completes "... A B ... A" with B: at the second A it attends to the token that followed the
first A and copies it. It needs two heads in two layers: a previous-token head (layer 1) writes into each
position which token came before it; the induction head (layer 2) then looks for the position whose previous
token is the current one. A 1-layer model cannot compose the two, so it cannot do it.

The models have no MLP (Olsson et al.'s attention-only transformers; `selfsup.gpt.GPT` always has one). They
are trained on random tokens repeated with a random period (4-32), so that only reading the context helps and
no fixed offset does, and evaluated on held-out sequences of 32 random tokens repeated once: the loss on
the repeated half ("in-context loss") and, for every head, the previous-token score (attention from i to
i - 1) and the induction score (attention from a repeated token to the token after its first occurrence).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from selfsup.experiments import Check, experiment, pick_preset
from selfsup.layers import MultiHeadAttention, check_heads, check_positive, init_weights


@dataclass
class AttnOnlyConfig:
    """An attention-only transformer: embeddings, n_layers of (pre-LN) causal self-attention, no MLP."""

    vocab_size: int
    d_model: int = 64
    n_heads: int = 4
    n_layers: int = 2
    max_len: int = 64
    init_std: float = 0.02

    model_type: ClassVar[str] = "attn-only"

    def __post_init__(self) -> None:
        """Reject sizes the model cannot be built with."""
        check_positive(
            vocab_size=self.vocab_size,
            d_model=self.d_model,
            n_heads=self.n_heads,
            n_layers=self.n_layers,
            max_len=self.max_len,
        )
        check_heads(self.d_model, self.n_heads)


@dataclass
class LMOutput:
    """Loss (None without labels), logits (B, T, V) and, when asked, each layer's attention (B, H, T, T)."""

    loss: Tensor | None
    logits: Tensor
    attentions: list[Tensor] = field(default_factory=list)


def attention_weights(attn: MultiHeadAttention, x: Tensor) -> Tensor:
    """The causal attention probabilities of a self-attention layer on x (B, T, C): (B, H, T, T)."""
    b, t, c = x.shape
    q, k, _ = (attn._heads(z) for z in attn.qkv(x).split(c, dim=-1))
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))  # (B, H, T, T)
    causal = torch.ones(t, t, dtype=torch.bool, device=x.device).tril()
    return scores.masked_fill(~causal, float("-inf")).softmax(dim=-1)


class AttnOnlyTransformer(nn.Module):
    """Token and position embeddings, attention-only residual blocks, a final LayerNorm, an unembedding."""

    def __init__(self, config: AttnOnlyConfig) -> None:
        super().__init__()
        self.config = config
        self.tok_emb = nn.Embedding(config.vocab_size, config.d_model)
        self.pos_emb = nn.Embedding(config.max_len, config.d_model)
        self.lns = nn.ModuleList(nn.LayerNorm(config.d_model) for _ in range(config.n_layers))
        self.attns = nn.ModuleList(
            MultiHeadAttention(config.d_model, config.n_heads, bias=False) for _ in range(config.n_layers)
        )
        self.ln_f = nn.LayerNorm(config.d_model)
        self.unembed = nn.Linear(config.d_model, config.vocab_size, bias=False)
        self.apply(lambda m: init_weights(m, config.init_std))

    def forward(self, input_ids: Tensor, labels: Tensor | None = None, output_attentions: bool = False) -> LMOutput:
        """input_ids (B, T); labels (B, T) shifted inside, as in GPT (-100 ignored)."""
        t = input_ids.size(1)
        x = self.tok_emb(input_ids) + self.pos_emb(torch.arange(t, device=input_ids.device))  # (B, T, C)
        attentions = []
        for ln, attn in zip(self.lns, self.attns, strict=True):
            h = ln(x)
            if output_attentions:
                attentions.append(attention_weights(attn, h))
            y, _ = attn(h, is_causal=True)
            x = x + y
        logits = self.unembed(self.ln_f(x))  # (B, T, V)
        loss = None
        if labels is not None:
            targets = F.pad(labels[:, 1:], (0, 1), value=-100)
            loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=-100)
        return LMOutput(loss, logits, attentions)


def repeated_sequences(n: int, half: int, vocab: int, g: torch.Generator) -> Tensor:
    """n sequences of `half` random tokens followed by the same tokens again: (n, 2 * half)."""
    first = torch.randint(0, vocab, (n, half), generator=g)
    return torch.cat([first, first], dim=1)


def periodic_sequences(n: int, t: int, vocab: int, g: torch.Generator, min_period: int = 4) -> Tensor:
    """Random segments (length min_period .. t // 2, one per sequence) repeated to fill t tokens."""
    x = torch.empty(n, t, dtype=torch.long)
    for i in range(n):
        p = int(torch.randint(min_period, t // 2 + 1, (1,), generator=g))
        seg = torch.randint(0, vocab, (p,), generator=g)
        x[i] = seg.repeat(t // p + 1)[:t]
    return x


@torch.no_grad()
def per_token_loss(model: AttnOnlyTransformer, x: Tensor) -> Tensor:
    """Next-token loss at each position (B, T - 1)."""
    logits = model(x).logits[:, :-1]
    return F.cross_entropy(logits.transpose(1, 2), x[:, 1:], reduction="none")


@torch.no_grad()
def head_scores(model: AttnOnlyTransformer, x: Tensor) -> tuple[list[list[float]], list[list[float]]]:
    """(previous-token score, induction score) of every head, on repeated sequences x (B, 2 * half).

    previous-token: mean attention from position i to i - 1; induction: mean attention from a token of the
    second half to the token after its first occurrence (i - half + 1), over the second half.
    """
    half = x.size(1) // 2
    atts = model(x, output_attentions=True).attentions
    prev, ind = [], []
    t = x.size(1)
    i = torch.arange(1, t)
    j = torch.arange(half, t)
    for a in atts:  # (B, H, T, T)
        prev.append(a[:, :, i, i - 1].mean(dim=(0, 2)).tolist())
        ind.append(a[:, :, j, j - half + 1].mean(dim=(0, 2)).tolist())
    return prev, ind


@dataclass(frozen=True)
class InductionSettings:
    """The attention-only models and their training on repeated random tokens."""

    vocab: int = 64
    seq_len: int = 64
    d_model: int = 64
    n_heads: int = 4
    batch_size: int = 32
    steps: int = 1000
    lr: float = 1e-3
    beta2: float = 0.999  # 0.99 gave a softer, two-stage drop in the exploration
    eval_every: int = 20
    n_eval: int = 64
    window: int = 100  # steps: how fast "sudden" is (a tenth of the book's training)
    plateau: int = 200  # the first steps, whose fall per window is the plateau's pace
    show_half: int = 12  # the repeated sequence drawn in the heat maps has 2 * show_half tokens
    snapshots: int = 6  # the induction head's pattern at this many moments of training, for a slider


PRESETS = {
    "tiny": InductionSettings(d_model=32, steps=40, eval_every=10, n_eval=8, window=10, plateau=10, snapshots=3),
    "book": InductionSettings(),
    "full": InductionSettings(
        vocab=512, seq_len=256, d_model=256, n_heads=8, steps=10000, lr=5e-4, window=1000, plateau=2000
    ),
}


def train_attn_only(
    n_layers: int, s: InductionSettings, seed: int, show: Tensor | None = None, snapshot_steps: tuple[int, ...] = ()
) -> tuple[AttnOnlyTransformer, dict[str, list]]:
    """Train one model on periodic random sequences; evaluate on held-out repeated ones every eval_every steps.

    Returns the model and its history: step, loss on the first and on the repeated half, each head's
    previous-token and induction scores, and at each of `snapshot_steps` the attention of every head on the
    sequence `show` (1, T): [layer][head] (T, T) lists.
    """
    torch.manual_seed(seed)
    model = AttnOnlyTransformer(AttnOnlyConfig(s.vocab, s.d_model, s.n_heads, n_layers, max_len=s.seq_len))
    g = torch.Generator().manual_seed(seed)
    half = s.seq_len // 2
    ev = repeated_sequences(s.n_eval, half, s.vocab, torch.Generator().manual_seed(10_000 + seed))
    opt = torch.optim.AdamW(model.parameters(), lr=s.lr, weight_decay=0.01, betas=(0.9, s.beta2))
    keys = ("step", "first_half", "repeated_half", "prev", "induction")
    hist: dict[str, list] = {k: [] for k in (*keys, "snapshots")}
    for step in range(s.steps + 1):
        if step in snapshot_steps:
            with torch.no_grad():
                hist["snapshots"].append([a[0].tolist() for a in model.eval()(show, output_attentions=True).attentions])
            model.train()
        if step % s.eval_every == 0:
            model.eval()
            lt = per_token_loss(model, ev)  # (B, T - 1): position i predicts token i + 1
            prev, ind = head_scores(model, ev)
            hist["step"].append(step)
            hist["first_half"].append(lt[:, : half - 1].mean().item())
            hist["repeated_half"].append(lt[:, half - 1 :].mean().item())
            hist["prev"].append(prev)
            hist["induction"].append(ind)
            model.train()
        if step == s.steps:
            break
        x = periodic_sequences(s.batch_size, s.seq_len, s.vocab, g)
        loss = model(x, labels=x).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval(), hist


def steepest_window(steps: list[int], loss: list[float], window: int) -> tuple[int, float]:
    """(start step, fall) of the `window` steps over which the loss falls most."""
    best = (steps[0], 0.0)
    for i, a in enumerate(steps):
        j = next((j for j in range(i, len(steps)) if steps[j] >= a + window), None)
        if j is not None and loss[i] - loss[j] > best[1]:
            best = (a, loss[i] - loss[j])
    return best


@dataclass
class InductionResult:
    """Two attention-only models (2 layers, 1 layer) trained alike; their curves, head scores and patterns."""

    steps: list[int]
    repeated_loss: dict[str, list[float]]  # "2 layers" / "1 layer": loss on the repeated half over training
    first_half_loss: dict[str, list[float]]  # loss on the first (unpredictable) half: ln(vocab) is chance
    induction_score: dict[str, list[float]]  # the best head's induction score over training
    prev_score: dict[str, list[float]]  # the best head's previous-token score over training
    final_prev: dict[str, list[list[float]]]  # [layer][head] at the end
    final_induction: dict[str, list[list[float]]]
    drop_start: int  # 2 layers: where the steepest `window` steps begin
    drop_fall: float  # how much the repeated-half loss falls in them (nats)
    plateau_fall: float  # how much it falls per `window` steps, on average, over the first `plateau` steps
    plateau: int
    formed_step: int  # 2 layers: first step whose induction score reaches half its final value
    window: int
    uniform_attention: float  # the induction score of heads that attend evenly to every earlier token
    chance_loss: float  # ln(vocab)
    show_tokens: list[int] = field(default_factory=list)  # the sequence of the heat maps
    patterns: dict[str, list[list[float]]] = field(default_factory=dict)  # the heat maps' attention
    snapshot_steps: list[int] = field(default_factory=list)
    snapshots: list[list[list[float]]] = field(default_factory=list)  # the induction head's pattern then


def best_head(scores: list[list[float]], layer: int | None = None) -> tuple[int, int]:
    """(layer, head) with the highest score, optionally within one layer."""
    layers = [layer] if layer is not None else range(len(scores))
    return max(((li, h) for li in layers for h in range(len(scores[li]))), key=lambda lh: scores[lh[0]][lh[1]])


@experiment(
    "ch7.induction_heads",
    title="Induction heads: a sudden drop of the repeated-token loss in a 2-layer attention-only transformer",
    paper="Olsson et al. 2022: induction heads form in a phase change; one-layer models have none",
    checks=[
        Check(
            "2 layers: the repeated-half loss falls suddenly, after a plateau",
            holds=lambda r: r.drop_start >= r.plateau and r.drop_fall > 3 * r.plateau_fall,
            detail=lambda r: (
                f"-{r.drop_fall:.2f} nats in steps {r.drop_start}-{r.drop_start + r.window}, against "
                f"-{r.plateau_fall:.2f} per {r.window} steps over the first {r.plateau}"
            ),
        ),
        Check(
            "the pattern appears with it: a previous-token head in layer 1, an induction head in layer 2",
            holds=lambda r: (
                max(r.final_prev["2 layers"][0]) > 0.3
                and max(r.final_induction["2 layers"][1]) > 0.4
                and abs(r.formed_step - r.drop_start) <= 2 * r.window
            ),
            detail=lambda r: (
                f"previous-token {max(r.final_prev['2 layers'][0]):.2f}, induction "
                f"{max(r.final_induction['2 layers'][1]):.2f} (even attention: {r.uniform_attention:.2f}); "
                f"half-formed at step {r.formed_step}, steepest drop from step {r.drop_start}"
            ),
        ),
        Check(
            "1 layer lacks it: no induction head, and the repeated half stays hard",
            holds=lambda r: (
                max(r.induction_score["1 layer"]) < 0.15
                and r.repeated_loss["1 layer"][-1] > 2 * r.repeated_loss["2 layers"][-1] + 1.0
            ),
            detail=lambda r: (
                f"best induction score {max(r.induction_score['1 layer']):.2f}; repeated-half loss "
                f"{r.repeated_loss['1 layer'][-1]:.2f} vs {r.repeated_loss['2 layers'][-1]:.2f} with 2 layers"
            ),
        ),
    ],
    numbers=lambda r: {
        "repeated loss 2 layers": r.repeated_loss["2 layers"][-1],
        "repeated loss 1 layer": r.repeated_loss["1 layer"][-1],
        "induction 2 layers": max(r.final_induction["2 layers"][1]),
        "previous-token 2 layers": max(r.final_prev["2 layers"][0]),
        "induction 1 layer": max(r.final_induction["1 layer"][0]),
        "drop fall": r.drop_fall,
        "plateau fall": r.plateau_fall,
        "drop start": float(r.drop_start),
        "formed step": float(r.formed_step),
    },
)
def induction_heads(seed: int = 0, preset: str = "book", device: str = "cpu") -> InductionResult:
    """Train a 2-layer and a 1-layer attention-only transformer alike and compare them (CPU; device unused)."""
    s = pick_preset(PRESETS, preset)
    half = s.seq_len // 2
    show = repeated_sequences(1, s.show_half, s.vocab, torch.Generator().manual_seed(20_000 + seed))
    snap_steps = tuple(round(i * s.steps / (s.snapshots - 1)) for i in range(s.snapshots))
    runs = {name: train_attn_only(n, s, seed, show, snap_steps) for name, n in (("2 layers", 2), ("1 layer", 1))}
    model2, h2 = runs["2 layers"]
    rep = h2["repeated_half"]
    start, fall = steepest_window(h2["step"], rep, s.window)  # the drop
    end_plateau = next(i for i, st in enumerate(h2["step"]) if st >= s.plateau)
    ind_curve = [max(max(h) for h in ind) for ind in h2["induction"]]
    formed = next(st for st, v in zip(h2["step"], ind_curve, strict=True) if v >= ind_curve[-1] / 2)
    # Heat maps: layer 1's previous-token head and layer 2's induction head, and the 1-layer model's best head.
    pl, ph = best_head(h2["prev"][-1], layer=0)
    il, ih = best_head(h2["induction"][-1], layer=1)
    _, oh = best_head(runs["1 layer"][1]["induction"][-1])
    with torch.no_grad():
        a2 = model2(show, output_attentions=True).attentions
        a1 = runs["1 layer"][0](show, output_attentions=True).attentions
    positions = torch.arange(half, s.seq_len)
    return InductionResult(
        steps=h2["step"],
        repeated_loss={k: h["repeated_half"] for k, (_, h) in runs.items()},
        first_half_loss={k: h["first_half"] for k, (_, h) in runs.items()},
        induction_score={k: [max(max(x) for x in ind) for ind in h["induction"]] for k, (_, h) in runs.items()},
        prev_score={k: [max(max(x) for x in p) for p in h["prev"]] for k, (_, h) in runs.items()},
        final_prev={k: h["prev"][-1] for k, (_, h) in runs.items()},
        final_induction={k: h["induction"][-1] for k, (_, h) in runs.items()},
        drop_start=start,
        drop_fall=fall,
        plateau_fall=(rep[0] - rep[end_plateau]) * s.window / h2["step"][end_plateau],
        plateau=s.plateau,
        formed_step=formed,
        window=s.window,
        uniform_attention=(1.0 / (positions + 1).float()).mean().item(),
        chance_loss=math.log(s.vocab),
        show_tokens=show[0].tolist(),
        patterns={
            f"layer 1 head {ph + 1} (previous token)": a2[pl][0, ph].tolist(),
            f"layer 2 head {ih + 1} (induction)": a2[il][0, ih].tolist(),
            f"1-layer model, head {oh + 1}": a1[0][0, oh].tolist(),
        },
        snapshot_steps=list(snap_steps),
        snapshots=[snap[il][ih] for snap in h2["snapshots"]],
    )
