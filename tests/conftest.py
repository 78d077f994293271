"""Shared test settings, and the one book build that the book and browser tests share."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
JB = Path(sys.executable).with_name("jupyter-book")


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread():
    """Tiny test models run fastest on one thread; on a busy 2-core machine two threads wait on each other
    (an overfitting test went from 3 s to 70 s while another job held the second core)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="session")
def built_book(tmp_path_factory):
    """The book built once per test session, as `make book` builds it (warnings are errors), into a temporary
    folder: (the HTML folder, the build's log). Models come from the usual cache (SELFSUP_CACHE, else
    ~/.cache/selfsup), so a second `make test` does not train them again; pages execute afresh."""
    out = tmp_path_factory.mktemp("book")
    proc = subprocess.run(
        [str(JB), "build", str(ROOT), "--path-output", str(out), "--warningiserror", "--keep-going"],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert proc.returncode == 0, f"book build failed:\n{proc.stdout[-6000:]}\n{proc.stderr[-6000:]}"
    return out / "_build" / "html", proc.stdout


@pytest.fixture(scope="module")
def private_cache(tmp_path_factory):
    """A fresh model cache for one test module, so that its tiny models are trained there and nothing else is
    touched (`pytestmark = pytest.mark.usefixtures("private_cache")`)."""
    mp = pytest.MonkeyPatch()
    mp.setenv("SELFSUP_CACHE", str(tmp_path_factory.mktemp("cache")))
    yield
    mp.undo()
