"""Book build times: a cold build and rebuilds with nothing changed, as `make book` runs them, page by page.

The tree is copied to a temporary folder first (without .venv, _build and caches), so the repository's own
_build is left alone and the cold build really starts from nothing: no executed-notebook cache (jupyter-cache
lives in the copy's _build) and an empty model cache (SELFSUP_CACHE points at a fresh folder, so every model
a page needs is trained during the build). Each page's execution time comes from jupyter-cache's records.

    .venv/bin/python benchmarks/bench_book.py          # or `make bench-book`; writes benchmarks/results/book.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from book_toc import toc_pages  # noqa: E402
from common import RESULTS, ROOT, machine  # noqa: E402

IGNORE = shutil.ignore_patterns(
    ".venv", ".git", "_build", "__pycache__", ".pytest_cache", ".ruff_cache", ".ipynb_checkpoints", "results", "runs"
)
BUILD_ARGS = ["build", "--warningiserror", "--keep-going", "."]  # the Makefile's `book` target


def _build(tree: Path, env: dict[str, str]) -> float:
    """Seconds for one `jupyter-book build` in tree; raises with the log's tail if the build fails."""
    t0 = time.perf_counter()
    proc = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "jupyter-book"), *BUILD_ARGS], cwd=tree, capture_output=True, text=True, env=env
    )
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"jupyter-book build failed ({proc.returncode}):\n{(proc.stdout + proc.stderr)[-3000:]}")
    return seconds


def executions(tree: Path) -> dict[str, tuple[int, float]]:
    """Per executed page (path relative to the tree, no suffix): its jupyter-cache record id and the seconds
    its execution took. A page without code cells is not executed, so it has no record."""
    from jupyter_cache import get_cache

    cache = get_cache(tree / "_build" / ".jupyter_cache")
    return {
        str(Path(r.uri).relative_to(tree).with_suffix("")): (r.pk, float(r.data.get("execution_seconds", "nan")))
        for r in cache.list_cache_records()
    }


def book_build(rebuilds: int = 2, keep: Path | None = None) -> dict:
    """Cold build then `rebuilds` no-change rebuilds of a fresh copy of the tree, with a fresh model cache.

    With `keep`, the copy (its _build/html to look at, and its model cache) is moved there afterwards."""
    pages = toc_pages(ROOT / "_toc.yml")
    with tempfile.TemporaryDirectory(prefix="selfsup-book-") as tmp:
        tree = Path(tmp) / "repo"
        shutil.copytree(ROOT, tree, ignore=IGNORE)
        env = {**os.environ, "SELFSUP_CACHE": str(Path(tmp) / "model-cache")}
        load = os.getloadavg()[0]
        cold = _build(tree, env)
        cold_runs = executions(tree)
        warm, rerun = [], set()
        for _ in range(rebuilds):
            warm.append(_build(tree, env))
            rerun |= {p for p, (pk, _) in executions(tree).items() if cold_runs.get(p, (None,))[0] != pk}
        if keep is not None:
            shutil.rmtree(keep, ignore_errors=True)
            shutil.move(tmp, keep)
            Path(tmp).mkdir()  # for TemporaryDirectory's clean-up
    return {
        "command": "jupyter-book " + " ".join(BUILD_ARGS),
        "machine": {**machine(), "load_avg_1min_before": load},
        "cold_s": cold,
        "no_change_rebuild_s": warm,
        "median_no_change_rebuild_s": sorted(warm)[len(warm) // 2] if warm else None,
        "pages": {
            p: {
                "executed": p in cold_runs,
                "cold_execution_s": cold_runs[p][1] if p in cold_runs else None,
                "executed_again_in_a_rebuild": p in rerun,
            }
            for p in pages
        },
    }


def table(result: dict) -> str:
    """The result as a plain-text table: one row per page, then the totals."""
    rows = [f"{'page':32} {'cold execution':>15} {'re-executed':>12}"]
    for page, r in result["pages"].items():
        seconds = f"{r['cold_execution_s']:.1f} s" if r["executed"] else "no code"
        rows.append(f"{page:32} {seconds:>15} {'yes' if r['executed_again_in_a_rebuild'] else 'no':>12}")
    warm = ", ".join(f"{s:.1f}" for s in result["no_change_rebuild_s"])
    rows.append(f"cold build {result['cold_s']:.1f} s (fresh model cache); rebuilds with nothing changed: {warm} s")
    m = result["machine"]
    rows.append(f"load average before: {m['load_avg_1min_before']:.2f} on {m['cores']} cores")
    return "\n".join(rows)


def main() -> None:  # noqa: D103
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rebuilds", type=int, default=2, help="no-change rebuilds after the cold build")
    parser.add_argument("--out", type=Path, default=RESULTS / "book.json")
    parser.add_argument("--keep", type=Path, help="keep the built copy (repo/_build/html, model-cache) in this folder")
    args = parser.parse_args()
    result = book_build(args.rebuilds, args.keep)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(table(result))
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
