"""One training loop for every model: device and precision, schedule, progress bar, checkpoints, resume, DDP.

The checkpoint format and model registry live in `selfsup.checkpoint`.

`train()` relies only on `model(**batch).loss`, so it trains BERT, GPT, seq2seq and any head alike.
Checkpoints hold everything needed to continue a run exactly (weights, model config, optimizer, scheduler,
step, random states) and to rebuild the model from the file alone (`load_model`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from torch.optim.lr_scheduler import LambdaLR
from tqdm.auto import tqdm

from selfsup.checkpoint import (
    get_rng_state,
    latest_checkpoint,
    load_checkpoint,
    save_checkpoint,
    seed_everything,
    set_rng_state,
    step_checkpoints,
)

SCHEDULES = ("cosine", "linear", "constant")

Batch = dict[str, Any]


@dataclass
class TrainConfig:
    """Optimizer, schedule and loop settings; max_steps counts optimizer updates and must be given."""

    max_steps: int
    lr: float = 3e-4
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.999)
    warmup_steps: int = 0
    schedule: str = "cosine"
    min_lr_ratio: float = 0.0
    grad_clip: float | None = 1.0
    grad_accum: int = 1
    eval_every: int | None = None
    log_every: int = 10
    checkpoint_every: int | None = None
    keep_checkpoints: int = 3
    seed: int = 0
    compile: bool = False  # torch.compile the model: 1.2-1.4x faster on a GPU, slower on a CPU (benchmarks/README.md)

    def __post_init__(self) -> None:
        """Reject settings the loop cannot run with, saying what is allowed."""
        for name in ("max_steps", "grad_accum", "log_every", "keep_checkpoints"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}={value!r} must be an integer >= 1")
        for name in ("eval_every", "checkpoint_every"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"{name}={value!r} must be None (off) or an integer >= 1")
        if not isinstance(self.warmup_steps, int) or not 0 <= self.warmup_steps <= self.max_steps:
            raise ValueError(
                f"warmup_steps={self.warmup_steps!r} must be an integer in [0, max_steps={self.max_steps}]"
            )
        if not self.lr > 0:
            raise ValueError(f"lr={self.lr!r} must be > 0")
        if not self.weight_decay >= 0:
            raise ValueError(f"weight_decay={self.weight_decay!r} must be >= 0")
        if len(self.betas) != 2 or not all(0.0 <= b < 1.0 for b in self.betas):
            raise ValueError(f"betas={self.betas!r} must be two numbers in [0, 1)")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule={self.schedule!r} is not allowed; choose one of {list(SCHEDULES)}")
        if not 0.0 <= self.min_lr_ratio <= 1.0:
            raise ValueError(f"min_lr_ratio={self.min_lr_ratio!r} must be in [0, 1]")
        if not isinstance(self.compile, bool):
            raise ValueError(f"compile={self.compile!r} must be True or False")
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise ValueError(f"grad_clip={self.grad_clip!r} must be > 0, or None to turn clipping off")


@dataclass
class History:
    """What a run returns: per-step train loss, learning rate, tokens/s and elapsed seconds, and eval records."""

    step: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    tokens_per_s: list[float] = field(default_factory=list)
    wall_time: list[float] = field(default_factory=list)
    eval: list[dict[str, float]] = field(default_factory=list)  # each {"step": s, "loss": ..., **eval_fn metrics}

    def to_dict(self) -> dict[str, list]:
        """Plain lists and dicts, for a checkpoint or JSON."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, list]) -> History:
        """Inverse of to_dict."""
        return cls(**{f.name: list(d.get(f.name, [])) for f in dataclasses.fields(cls)})

    def to_dataframe(self) -> Any:  # noqa: ANN401 (pandas is an optional dependency)
        """One row per step (pandas); eval metrics as `eval_<name>` columns, empty between evaluations."""
        import pandas as pd

        df = pd.DataFrame(
            {
                "step": self.step,
                "loss": self.loss,
                "lr": self.lr,
                "tokens_per_s": self.tokens_per_s,
                "wall_time": self.wall_time,
            }
        )
        if self.eval:
            ev = pd.DataFrame(self.eval).rename(columns=lambda c: c if c == "step" else f"eval_{c}")
            df = df.merge(ev, on="step", how="outer")
        return df


# ----------------------------------------------------------------------------------------------------------
# Devices, distributed set-up, optimizer and schedule


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """The device to train on: for "auto" CUDA, else Apple MPS, else CPU; under torchrun, LOCAL_RANK's GPU."""
    if str(device) == "auto":
        if torch.cuda.is_available():
            device = "cuda"
        elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            device = "mps"
        else:
            device = "cpu"
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    return device


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices only: biases and normalization weights (1-D) are not decayed."""
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("the model has no trainable parameters (all have requires_grad=False)")
    # Decaying a LayerNorm gain or a bias pulls it towards 0, which is not the prior we want for them.
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": config.weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    groups = [g for g in groups if g["params"]]
    fused = all(p.is_cuda for p in params)  # one kernel for all parameters, where CUDA offers it
    return torch.optim.AdamW(groups, lr=config.lr, betas=config.betas, fused=fused or None)


def lr_multiplier(step: int, config: TrainConfig) -> float:
    """Factor on the peak lr for the update with 0-based index `step`: linear warmup, then the decay schedule."""
    if step < config.warmup_steps:
        return (step + 1) / config.warmup_steps
    if config.schedule == "constant":
        return 1.0
    progress = min(1.0, (step - config.warmup_steps) / max(1, config.max_steps - config.warmup_steps))
    decay = 0.5 * (1.0 + math.cos(math.pi * progress)) if config.schedule == "cosine" else 1.0 - progress
    return config.min_lr_ratio + (1.0 - config.min_lr_ratio) * decay


def make_scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig) -> LambdaLR:
    """The warmup + decay schedule of `lr_multiplier` as a LambdaLR, stepped once per update."""
    return LambdaLR(optimizer, functools.partial(lr_multiplier, config=config))


# ----------------------------------------------------------------------------------------------------------
# The data stream


class _MicroBatches:
    """Cycle through an iterable of batches forever; this rank gets every world_size-th micro-batch.

    Each pass (epoch) starts under a torch random state seeded by (seed, epoch), so a shuffling DataLoader
    yields the same order on every rank and again after a resume, whatever the training drew meanwhile.
    A DataLoader's own `generator`, if it has one, is reseeded the same way.
    """

    def __init__(self, batches: Iterable[Batch], seed: int, rank: int, world_size: int) -> None:
        self.batches, self.seed, self.rank, self.world_size = batches, seed, rank, world_size
        self.index = 0  # global micro-batches drawn so far, over all ranks
        self.epoch = 0
        self.it = None

    def _next_global(self) -> Batch:
        while True:
            if self.it is None:
                # A sampler draws its permutation at the first next(), so that happens inside the fork too.
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(self.seed * 1_000_003 + self.epoch)
                    generator = getattr(self.batches, "generator", None)
                    if isinstance(generator, torch.Generator):
                        generator.manual_seed(self.seed * 1_000_003 + self.epoch)
                    self.it = iter(self.batches)
                    batch = next(self.it, None)
                self.epoch += 1
                if batch is None:
                    raise ValueError(
                        "train_batches yielded no batch: pass a non-empty collection that can be iterated "
                        "again (a list or a DataLoader), not a used-up generator"
                    )
            else:
                batch = next(self.it, None)
                if batch is None:
                    self.it = None
                    continue
            self.index += 1
            return batch

    def skip(self, n: int) -> None:
        """Draw and drop n global micro-batches (replaying them keeps any stateful collator in step)."""
        for _ in range(n):
            self._next_global()

    def __next__(self) -> Batch:
        while True:
            index = self.index
            batch = self._next_global()
            if index % self.world_size == self.rank:
                return batch


def _to_device(batch: Batch, device: torch.device) -> Batch:
    return {k: v.to(device, non_blocking=True) if isinstance(v, Tensor) else v for k, v in batch.items()}


def _count_tokens(batch: Batch) -> Tensor | int:
    if "attention_mask" in batch and isinstance(batch["attention_mask"], Tensor):
        return batch["attention_mask"].sum()
    ids = batch.get("input_ids")
    return ids.numel() if isinstance(ids, Tensor) else 0


def _autocast(device: torch.device) -> contextlib.AbstractContextManager:
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _loss(model: nn.Module, batch: Batch) -> Tensor:
    loss = model(**batch).loss
    if loss is None:
        raise ValueError(f"the model returned loss=None: the batches must carry labels (got keys {sorted(batch)})")
    return loss


class _LossOnly(nn.Module):
    """A model whose forward returns only its loss.

    DDP counts a parameter as used when it reaches any output; BERT's NSP logits, when pre-training by MLM
    alone, reach an output but not the loss, and DDP would then wait forever for their gradient.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, **batch: Any) -> Tensor:  # noqa: ANN401
        """The wrapped model's loss on the batch."""
        return _loss(self.model, batch)


@torch.no_grad()
def evaluate(model: nn.Module, batches: Iterable[Batch], device: str | torch.device = "auto") -> float:
    """Mean loss over batches, in eval mode (no dropout); the model's train/eval mode is restored after."""
    device = resolve_device(device)
    was_training = model.training
    model.eval()
    total, n = 0.0, 0
    try:
        for batch in batches:
            with _autocast(device):
                total += _loss(model, _to_device(batch, device)).float().item()
            n += 1
    finally:
        model.train(was_training)
    if n == 0:
        raise ValueError("eval_batches yielded no batch")
    return total / n


# ----------------------------------------------------------------------------------------------------------
# The loop


@contextlib.contextmanager
def _process_group(device: torch.device) -> Iterator[tuple[int, int]]:
    """(rank, world_size); under torchrun, a process group (NCCL on CUDA, else gloo) for the duration."""
    rank, world_size = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    own = world_size > 1 and not dist.is_initialized()
    if own:
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    try:
        yield rank, world_size
    finally:
        if own:
            dist.destroy_process_group()


def train(
    model: nn.Module,
    train_batches: Iterable[Batch],
    config: TrainConfig,
    *,
    eval_batches: Iterable[Batch] | None = None,
    eval_fn: Callable[[nn.Module], dict[str, float]] | None = None,
    device: str | torch.device = "auto",
    checkpoint_dir: str | os.PathLike | None = None,
    resume: bool = False,
    progress: bool = True,
) -> History:
    """Train `model` in place on `model(**batch).loss` for config.max_steps updates and return the History.

    Under torchrun (WORLD_SIZE > 1) the process group is set up here, the model wrapped in DDP, and each rank
    gets every world_size-th micro-batch. With checkpoint_dir and resume=True, the run continues from the
    latest checkpoint there and produces the same losses as a run that was never interrupted.
    """
    device = resolve_device(device)
    with _process_group(device) as (rank, world_size):
        model.to(device)
        optimizer = make_optimizer(model, config)
        scheduler = make_scheduler(optimizer, config)
        history, start_step, rng = History(), 0, None
        ckpt_path = latest_checkpoint(checkpoint_dir) if (resume and checkpoint_dir is not None) else None
        if ckpt_path is not None:
            ckpt = load_checkpoint(ckpt_path, model, optimizer, scheduler)
            start_step = ckpt["step"]
            history = History.from_dict(ckpt["extra"].get("history", {}))
            rng_ranks = ckpt["extra"].get("rng_ranks") or [ckpt["rng"]]
            rng = rng_ranks[rank] if rank < len(rng_ranks) else rng_ranks[0]
        else:
            seed_everything(config.seed + rank)  # ranks draw different dropout masks

        stream = _MicroBatches(train_batches, config.seed, rank, world_size)
        # Replay the micro-batches already used, then restore the random state as it was after them.
        stream.skip(start_step * config.grad_accum * world_size)
        if rng is not None:
            set_rng_state(rng)

        raw, ddp, accum = model, world_size > 1, config.grad_accum
        model = _LossOnly(raw)
        if config.compile:
            # The compiled module shares raw's parameters, so checkpoints and evaluation keep using raw.
            model = torch.compile(model)
        if ddp:
            # find_unused_parameters: BERT's NSP head gets no gradient when pre-training by MLM alone.
            ids = [device.index] if device.type == "cuda" else None
            model = DistributedDataParallel(model, device_ids=ids, find_unused_parameters=True)
        model.train()
        with tqdm(total=config.max_steps, initial=start_step, disable=not progress or rank != 0, desc="train") as bar:
            clock = time.perf_counter() - (history.wall_time[-1] if history.wall_time else 0.0)
            for step in range(start_step + 1, config.max_steps + 1):
                t_step = time.perf_counter()
                lr = scheduler.get_last_lr()[0]
                stats = _forward_backward(model, stream, accum, device, ddp)  # [mean loss, tokens]
                if ddp:
                    dist.all_reduce(stats)  # the logged loss is the mean over ranks, like the gradient
                    stats[0] /= world_size
                step_loss, step_tokens = stats.tolist()
                if not math.isfinite(step_loss):
                    raise FloatingPointError(
                        f"the training loss is {step_loss} at step {step}; lower lr, keep grad_clip on, "
                        "or check the data"
                    )
                if config.grad_clip is not None:
                    nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                scheduler.step()

                now = time.perf_counter()
                history.step.append(step)
                history.loss.append(step_loss)
                history.lr.append(lr)
                history.tokens_per_s.append(step_tokens / max(now - t_step, 1e-9))
                history.wall_time.append(now - clock)
                last = step == config.max_steps
                if (eval_batches is not None or eval_fn is not None) and (last or _every(step, config.eval_every)):
                    history.eval.append(_evaluate_step(raw, step, eval_batches, eval_fn, device))
                if checkpoint_dir is not None and (last or _every(step, config.checkpoint_every)):
                    _save_step(checkpoint_dir, raw, optimizer, scheduler, step, history, config, rank, world_size)
                bar.update(1)
                if step % config.log_every == 0 or last:
                    bar.set_postfix(loss=f"{step_loss:.4f}", lr=f"{lr:.2e}")
    return history


def _forward_backward(model: nn.Module, stream: _MicroBatches, accum: int, device: torch.device, ddp: bool) -> Tensor:
    """Accumulate one step's gradient over `accum` micro-batches; returns [mean loss, tokens seen] (2,)."""
    loss_sum = torch.zeros((), device=device)
    tokens = torch.zeros((), device=device)
    for micro in range(accum):
        batch = _to_device(next(stream), device)
        tokens += _count_tokens(batch)
        # DDP averages gradients at every backward; only the last micro-batch of a step needs it.
        sync = contextlib.nullcontext() if (not ddp or micro == accum - 1) else model.no_sync()
        with sync:
            with _autocast(device):
                loss = model(**batch)
            (loss / accum).backward()  # the step's gradient is the mean over its micro-batches
        loss_sum += loss.detach().float()
    return torch.stack([loss_sum / accum, tokens.float()])


def _every(step: int, every: int | None) -> bool:
    return every is not None and step % every == 0


def _evaluate_step(
    model: nn.Module,
    step: int,
    eval_batches: Iterable[Batch] | None,
    eval_fn: Callable[[nn.Module], dict[str, float]] | None,
    device: torch.device,
) -> dict[str, float]:
    """{"step", "loss" (mean over eval_batches), **eval_fn(model)}, computed in eval mode."""
    record: dict[str, float] = {"step": step}
    if eval_batches is not None:
        record["loss"] = evaluate(model, eval_batches, device)
    if eval_fn is not None:
        model.eval()
        try:
            record.update(eval_fn(model))
        finally:
            model.train()
    return record


def _save_step(
    checkpoint_dir: str | os.PathLike,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: LambdaLR,
    step: int,
    history: History,
    config: TrainConfig,
    rank: int,
    world_size: int,
) -> None:
    """Rank 0 writes step_<n>.pt with every rank's random state, then keeps only the newest few files."""
    rng_ranks = [get_rng_state()]
    if world_size > 1:
        rng_ranks = [None] * world_size
        dist.all_gather_object(rng_ranks, get_rng_state())
    if rank != 0:
        return
    folder = Path(checkpoint_dir)
    extra = {
        "history": history.to_dict(),
        "train_config": dataclasses.asdict(config),
        "rng_ranks": rng_ranks,
        "world_size": world_size,
    }
    save_checkpoint(folder / f"step_{step:08d}.pt", model, optimizer, scheduler, step, extra)
    for old in step_checkpoints(folder)[: -config.keep_checkpoints]:
        old.unlink(missing_ok=True)
