"""A disk cache for what several experiments or chapters share: pre-trained models and their histories.

An entry is keyed by a digest of its name, its settings and the source of the code that makes it, so that a
change to the generators, the model or the training loop retrains instead of serving a stale model. The cache
lives outside the repository (`$SELFSUP_CACHE`, else `$XDG_CACHE_HOME/selfsup`, else `~/.cache/selfsup`).
Entries are written atomically, and a lock per entry makes a second process wait for the first to finish
training instead of training the same model twice.

    model, extra = cached_model("toy-bert", settings, build, modules=("selfsup.bert", "selfsup.train"))
"""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import importlib
import importlib.util
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


def _module_file(name: str) -> Path | None:
    """The source file of a module or package (its __init__.py), or None when `name` is not a module."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    return Path(spec.origin) if spec is not None and spec.origin and spec.origin.endswith(".py") else None


def _imports(path: Path) -> list[tuple[str, str | None]]:
    """(module, name) for every `import module` / `from module import name` in a file, lazy ones included."""
    out: list[tuple[str, str | None]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(a.name, None) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out += [(node.module, a.name) for a in node.names]
    return out


def code_closure(modules: Iterable[str], package: str = "selfsup") -> list[str]:
    """The named modules and every module of `package` they import, transitively, read from their source.

    `from selfsup.data import ToyWorld` follows the module that defines ToyWorld (the package re-exports it),
    not the whole package, so a change to an unrelated module of the package (the speech generator) does not
    touch the digest of a model built from ToyWorld text.
    """
    seen: set[str] = set()
    todo = list(modules)
    while todo:
        name = todo.pop()
        path = _module_file(name)
        if name in seen or path is None:
            continue
        seen.add(name)
        for module, attr in _imports(path):
            if module != package and not module.startswith(package + "."):
                continue
            if attr is None or _module_file(f"{module}.{attr}") is not None:
                todo.append(module if attr is None else f"{module}.{attr}")
            elif path_of := _module_file(module):
                source = [m for m, a in _imports(path_of) if a == attr and m.startswith(package + ".")]
                todo.append(source[0] if path_of.name == "__init__.py" and source else module)
    return sorted(seen)


def source_digest(modules: Iterable[str], package: str = "selfsup") -> str:
    """A digest of the source of the named modules and of every module of `package` they import (`code_closure`)."""
    digest = hashlib.sha256()
    for name in code_closure(modules, package):
        path = _module_file(name)
        digest.update(name.encode())
        digest.update(path.read_bytes())
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
