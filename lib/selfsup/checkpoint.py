"""Checkpoints and random states: save a run atomically, resume it exactly, rebuild a model from its file.

A checkpoint holds the weights, the model config (with its `model_type`), the optimizer, the scheduler,
the step and every global random state, so that `train(..., resume=True)` continues a run as if it had
never stopped, and `load_model(path)` rebuilds the right model class from the file alone.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import inspect
import os
import random
import re
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

CHECKPOINT_FORMAT = "selfsup-checkpoint-1"
_CKPT_NAME = re.compile(r"^step_(\d+)\.pt$")


def unwrap(model: nn.Module) -> nn.Module:
    """The bare model inside a DistributedDataParallel or torch.compile wrapper."""
    while True:
        if isinstance(model, DistributedDataParallel):
            model = model.module
        elif hasattr(model, "_orig_mod"):
            model = model._orig_mod
        else:
            return model


# ----------------------------------------------------------------------------------------------------------
# Random states


def seed_everything(seed: int) -> None:
    """Seed torch (CPU and CUDA), Python's random and NumPy's global generator."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def get_rng_state() -> dict[str, Any]:
    """Every global random state a run draws from, in types `torch.load(weights_only=True)` accepts."""
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": {
            "name": name,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(gauss),
        },
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what get_rng_state returned (the CUDA part only when this machine has as many GPUs)."""
    torch.set_rng_state(state["torch"])
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
    n = state["numpy"]
    np.random.set_state(
        (n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"])
    )
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


# ----------------------------------------------------------------------------------------------------------
# Checkpoints


# model_type -> ("module:Model", "module:Config"), imported only when a checkpoint of that type is loaded,
# so that this module does not depend on the models.
_REGISTRY: dict[str, tuple[str | type, str | type]] = {
    "bert": ("selfsup.bert:BertForPretraining", "selfsup.bert:BertConfig"),
    "gpt": ("selfsup.gpt:GPT", "selfsup.gpt:GPTConfig"),
    "seq2seq": ("selfsup.seq2seq:Seq2Seq", "selfsup.seq2seq:Seq2SeqConfig"),
}
_REGISTERED_CLASSES: dict[str, type] = {}


def _qualname(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def register_model(model_type: str, model_cls: type, config_cls: type, default: bool = True) -> None:
    """Let load_model rebuild `model_cls(config_cls(...))` from checkpoints whose config has this model_type.

    With default=False the class (a task head, say) is only allowed, and the type's default class stays.
    """
    if default or model_type not in _REGISTRY:
        _REGISTRY[model_type] = (model_cls, config_cls)
    _REGISTERED_CLASSES[_qualname(model_cls)] = model_cls


def _import(ref: str | type) -> type:
    if isinstance(ref, type):
        return ref
    if ref in _REGISTERED_CLASSES:
        return _REGISTERED_CLASSES[ref]
    module, _, name = ref.partition(":")
    obj: Any = importlib.import_module(module)
    for part in name.split("."):
        obj = getattr(obj, part)
    return obj


def _init_kwargs(model: nn.Module) -> dict[str, Any]:
    """Constructor arguments after the config (e.g. num_labels) that the model keeps as same-named attributes."""
    kwargs = {}
    params = list(inspect.signature(type(model).__init__).parameters.values())[2:]  # skip self, config
    for p in params:
        value = getattr(model, p.name, None)
        if isinstance(value, int | float | str | bool | tuple | list):
            kwargs[p.name] = value
    return kwargs


def save_checkpoint(
    path: str | os.PathLike,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any = None,  # noqa: ANN401 (any torch LR scheduler)
    step: int = 0,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write weights, model config, optimizer, scheduler, step and random states to `path`, atomically."""
    raw = unwrap(model)
    config = getattr(raw, "config", None)
    is_dc = dataclasses.is_dataclass(config) and not isinstance(config, type)
    ckpt = {
        "format": CHECKPOINT_FORMAT,
        "model_type": getattr(config, "model_type", None) if is_dc else None,
        "config": dataclasses.asdict(config) if is_dc else None,
        "model_class": _qualname(type(raw)),
        "model_kwargs": _init_kwargs(raw),
        "model": raw.state_dict(),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "step": int(step),
        "rng": get_rng_state(),
        "extra": extra or {},
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Write to a temporary file next to the target, then rename: a crash leaves the old file or the new
    # one, never half of one (os.replace is atomic within one file system).
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(ckpt, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def step_checkpoints(checkpoint_dir: str | os.PathLike) -> list[Path]:
    """The `step_<n>.pt` files of a run's folder, oldest (lowest n) first; empty when there is no folder."""
    folder = Path(checkpoint_dir)
    if not folder.is_dir():
        return []
    found = sorted((int(m.group(1)), p) for p in folder.iterdir() if (m := _CKPT_NAME.match(p.name)))
    return [p for _, p in found]


def latest_checkpoint(checkpoint_dir: str | os.PathLike) -> Path | None:
    """The `step_<n>.pt` file with the highest n in a folder, or None when there is none."""
    found = step_checkpoints(checkpoint_dir)
    return found[-1] if found else None


def _resolve_path(path: str | os.PathLike) -> Path:
    """A checkpoint file, or a folder holding `model.pt` or `step_<n>.pt` files."""
    path = Path(path)
    if path.is_dir():
        found = path / "model.pt" if (path / "model.pt").is_file() else latest_checkpoint(path)
        if found is None:
            raise FileNotFoundError(f"no checkpoint in folder {path}: expected model.pt or step_<n>.pt files")
        return found
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint file at {path}")
    return path


def _read_checkpoint(path: Path) -> dict[str, Any]:
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # the zip reader, unpickler and tensor loader each raise their own kind
        raise ValueError(
            f"checkpoint {path} is corrupt or truncated ({type(e).__name__}: {e}); use an earlier checkpoint"
        ) from e
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not a selfsup checkpoint (expected format {CHECKPOINT_FORMAT!r})")
    return ckpt


def load_checkpoint(
    path: str | os.PathLike,
    model: nn.Module | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any = None,  # noqa: ANN401 (any torch LR scheduler)
    *,
    model_type: str | None = None,
    restore_rng: bool = False,
) -> dict[str, Any]:
    """Read a checkpoint, load its states into whichever of model / optimizer / scheduler are given; return it.

    model_type (or, by default, the given model's config.model_type) is checked against the checkpoint's.
    """
    path = _resolve_path(path)
    ckpt = _read_checkpoint(path)
    if model_type is None and model is not None:
        model_type = getattr(getattr(unwrap(model), "config", None), "model_type", None)
    saved_type = ckpt["model_type"]
    if model_type is not None and saved_type is not None and model_type != saved_type:
        raise ValueError(f"checkpoint {path} holds a {saved_type!r} model, but a {model_type!r} model was expected")
    if model is not None:
        try:
            unwrap(model).load_state_dict(ckpt["model"])
        except RuntimeError as e:
            raise ValueError(f"checkpoint {path} does not fit this {type(unwrap(model)).__name__}: {e}") from e
    for name, obj in (("optimizer", optimizer), ("scheduler", scheduler)):
        if obj is not None:
            if ckpt[name] is None:
                raise ValueError(f"checkpoint {path} has no {name} state; it was saved without one")
            obj.load_state_dict(ckpt[name])
    if restore_rng:
        set_rng_state(ckpt["rng"])
    ckpt["path"] = path
    return ckpt


def load_model(path: str | os.PathLike, model_type: str | None = None) -> nn.Module:
    """Rebuild the model saved in a checkpoint (class and config from the file), in eval mode, on the CPU."""
    path = _resolve_path(path)
    ckpt = _read_checkpoint(path)
    saved_type = ckpt["model_type"]
    if saved_type is None:
        raise ValueError(
            f"checkpoint {path} has no model config, so the model cannot be rebuilt from it; build the model "
            "yourself and use load_checkpoint(path, model)"
        )
    if model_type is not None and model_type != saved_type:
        raise ValueError(f"checkpoint {path} holds a {saved_type!r} model, but a {model_type!r} model was expected")
    if saved_type not in _REGISTRY:
        raise ValueError(
            f"checkpoint {path} has unknown model_type {saved_type!r}; known types are {sorted(_REGISTRY)} "
            "(add one with register_model)"
        )
    default_ref, config_ref = _REGISTRY[saved_type]
    config_cls = _import(config_ref)
    # A fine-tuned head (e.g. BertForSequenceClassification) shares its config type with the pre-training
    # model, so the class is saved too; only registered or selfsup classes are imported from a file.
    cls_ref = ckpt["model_class"]
    allowed = cls_ref in _REGISTERED_CLASSES or cls_ref.startswith("selfsup.")
    try:
        model_cls = _import(cls_ref if allowed else default_ref)
    except (ImportError, AttributeError) as e:
        raise ValueError(f"checkpoint {path} names model class {cls_ref!r}, which cannot be imported: {e}") from e
    if not (isinstance(model_cls, type) and issubclass(model_cls, nn.Module)):
        raise ValueError(f"checkpoint {path} names {cls_ref!r}, which is not a torch.nn.Module class")
    try:
        config = config_cls(**ckpt["config"])
    except (TypeError, ValueError) as e:
        raise ValueError(
            f"checkpoint {path} holds a {saved_type!r} config that no longer validates as {config_cls.__name__}: {e}"
        ) from e
    try:
        model = model_cls(config, **ckpt["model_kwargs"])
    except TypeError as e:
        raise ValueError(f"cannot rebuild {model_cls.__name__} from checkpoint {path}: {e}") from e
    load_checkpoint(path, model)
    return model.eval()
