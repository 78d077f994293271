"""A disk cache for what several experiments or chapters share: pre-trained models and their histories.

An entry is keyed by a digest of its name, its settings and the source of the code that makes it, so that a
change to the generators, the model or the training loop retrains instead of serving a stale model. The cache
lives outside the repository (`$SELFSUP_CACHE`, else `$XDG_CACHE_HOME/selfsup`, else `~/.cache/selfsup`).
Entries are written atomically, and a lock per entry makes a second process wait for the first to finish
training instead of training the same model twice.

    model, extra = cached_model("toy-bert", settings, build, modules=("selfsup.bert", "selfsup.train"))
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch
from filelock import FileLock
from torch import nn

from selfsup.checkpoint import load_checkpoint, load_model, save_checkpoint


def cache_dir() -> Path:
    """The cache's root folder (created on first use)."""
    env = os.environ.get("SELFSUP_CACHE")
    if env:
        root = Path(env)
    else:
        root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "selfsup"
    root.mkdir(parents=True, exist_ok=True)
    return root


def source_digest(modules: Iterable[str]) -> str:
    """A digest of the source files of the named modules (a package counts with every .py file under it)."""
    digest = hashlib.sha256()
    for name in sorted(set(modules)):
        module = importlib.import_module(name)
        path = Path(module.__file__)
        files = sorted(path.parent.rglob("*.py")) if path.name == "__init__.py" else [path]
        for f in files:
            digest.update(str(f.relative_to(path.parent)).encode())
            digest.update(f.read_bytes())
    return digest.hexdigest()


def entry_key(name: str, settings: object, modules: Iterable[str]) -> str:
    """`name-<digest>`: the digest covers the settings (a dataclass or JSON-able dict) and the modules' source."""
    if dataclasses.is_dataclass(settings) and not isinstance(settings, type):
        settings = dataclasses.asdict(settings)
    blob = json.dumps({"settings": settings, "code": source_digest(modules)}, sort_keys=True, default=str)
    return f"{name}-{hashlib.sha256(blob.encode()).hexdigest()[:16]}"


def cached_model(
    name: str,
    settings: object,
    build: Callable[[], tuple[nn.Module, dict[str, Any]]],
    modules: Iterable[str] = (),
) -> tuple[nn.Module, dict[str, Any]]:
    """The model (eval mode, CPU) and extra data of an entry; `build()` makes and stores it on a miss.

    `build` returns (model, extra), extra being plain data (lists, numbers, strings: a loss history, the
    seconds it took). The model must have a dataclass config, as every selfsup model has. A corrupt entry
    (a killed process, a full disk) is rebuilt, not served.
    """
    modules = tuple(modules) + (build.__module__,)
    path = cache_dir() / f"{entry_key(name, settings, modules)}.pt"
    with FileLock(str(path) + ".lock"):
        if path.exists():
            try:
                return load_model(path), load_checkpoint(path)["extra"]
            except ValueError:
                path.unlink()  # a truncated or foreign file: rebuild it below
        model, extra = build()
        save_checkpoint(path, model, extra=extra)
    model.cpu().eval()
    return model, extra


def cached_value(
    name: str, settings: object, build: Callable[[], dict[str, Any]], modules: Iterable[str] = ()
) -> dict[str, Any]:
    """Like `cached_model` for plain data: a dict of numbers, lists, strings and tensors, stored with torch.save."""
    modules = tuple(modules) + (build.__module__,)
    path = cache_dir() / f"{entry_key(name, settings, modules)}.data.pt"
    with FileLock(str(path) + ".lock"):
        if path.exists():
            try:
                return torch.load(path, map_location="cpu", weights_only=True)
            except Exception:  # noqa: BLE001 (any unreadable file is rebuilt)
                path.unlink()
        value = build()
        tmp = path.with_suffix(".tmp")
        torch.save(value, tmp)
        os.replace(tmp, path)
    return value
