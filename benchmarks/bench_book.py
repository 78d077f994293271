"""Book build times: a cold build and a rebuild with nothing changed, as `make book` runs them.

The tree is copied to a temporary folder first (without .venv, _build and caches), so the repository's own
_build is left alone and the cold build really starts from nothing (no executed-notebook cache either).

    .venv/bin/python benchmarks/bench_book.py
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT  # noqa: E402

IGNORE = shutil.ignore_patterns(
    ".venv", ".git", "_build", "__pycache__", ".pytest_cache", ".ruff_cache", ".ipynb_checkpoints", "results", "runs"
)
BUILD_ARGS = ["build", "--warningiserror", "--keep-going", "."]  # the Makefile's `book` target


def _build(tree: Path) -> float:
    """Seconds for one `jupyter-book build` in tree; raises with the log's tail if the build fails."""
    t0 = time.perf_counter()
    proc = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "jupyter-book"), *BUILD_ARGS], cwd=tree, capture_output=True, text=True
    )
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"jupyter-book build failed ({proc.returncode}):\n{(proc.stdout + proc.stderr)[-3000:]}")
    return seconds


def book_build(rebuilds: int = 2) -> dict:
    """Cold build then `rebuilds` no-change rebuilds of a fresh copy of the tree; seconds for each."""
    pages = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "book").rglob("*") if p.suffix in {".md", ".ipynb"})
    with tempfile.TemporaryDirectory(prefix="selfsup-book-") as tmp:
        tree = Path(tmp) / "repo"
        shutil.copytree(ROOT, tree, ignore=IGNORE)
        cold = _build(tree)
        warm = [_build(tree) for _ in range(rebuilds)]
    return {
        "command": "jupyter-book " + " ".join(BUILD_ARGS),
        "pages": pages,
        "cold_s": cold,
        "no_change_rebuild_s": warm,
        "median_no_change_rebuild_s": sorted(warm)[len(warm) // 2] if warm else None,
    }


if __name__ == "__main__":
    print(json.dumps(book_build(), indent=1))
