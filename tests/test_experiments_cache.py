"""The model cache: its key follows the code a model is built from, and a damaged entry is rebuilt."""

import sys

import pytest
import torch

from selfsup.bert import BertConfig, BertModel
from selfsup.experiments import cache
from selfsup.experiments.zoo import MODEL_CODE


def test_the_closure_of_the_shared_models_has_what_builds_them_and_nothing_else():
    closure = set(cache.code_closure(MODEL_CODE))
    assert {"selfsup.data.toyworld", "selfsup.data.world", "selfsup.bert", "selfsup.layers", "selfsup.train"} <= closure
    assert {"selfsup.tokenizer", "selfsup.masking", "selfsup.data.collate"} <= closure
    # re-exported by selfsup.data, but not used by ToyWorld: editing them must not retrain every model
    assert not {"selfsup.data.speech", "selfsup.data.dna", "selfsup.data.icl", "selfsup.data"} & closure


@pytest.fixture
def fake_package(tmp_path, monkeypatch):
    root = tmp_path / "cachepkg"
    root.mkdir()
    (root / "__init__.py").write_text("from cachepkg.deep import Thing\nfrom cachepkg.unrelated import Other\n")
    (root / "deep.py").write_text("class Thing:\n    pass\n")
    (root / "unrelated.py").write_text("class Other:\n    pass\n")
    (root / "top.py").write_text("import os\n\ndef f():\n    from cachepkg import Thing\n    return Thing\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield root
    for name in [m for m in sys.modules if m.startswith("cachepkg")]:
        del sys.modules[name]


def test_a_name_imported_from_a_package_is_followed_to_the_module_that_defines_it(fake_package):
    assert cache.code_closure(["cachepkg.top"], package="cachepkg") == ["cachepkg.deep", "cachepkg.top"]


def test_the_digest_changes_with_the_source_of_a_module_in_the_closure_only(fake_package):
    before = cache.source_digest(["cachepkg.top"], package="cachepkg")
    (fake_package / "unrelated.py").write_text("class Other:\n    x = 1\n")
    assert cache.source_digest(["cachepkg.top"], package="cachepkg") == before
    (fake_package / "deep.py").write_text("class Thing:\n    x = 1\n")
    assert cache.source_digest(["cachepkg.top"], package="cachepkg") != before


def _build():
    calls.append(1)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=20, d_model=8, n_layers=1, n_heads=2, d_ff=16, max_len=16)
    return BertModel(config), {"loss": [1.0, 0.5]}


calls: list[int] = []


def test_an_entry_is_built_once_and_a_damaged_one_is_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("SELFSUP_CACHE", str(tmp_path))
    calls.clear()
    model, extra = cache.cached_model("tiny", {"a": 1}, _build, ("selfsup.bert",))
    again, extra2 = cache.cached_model("tiny", {"a": 1}, _build, ("selfsup.bert",))
    assert len(calls) == 1 and extra == extra2 == {"loss": [1.0, 0.5]}
    assert all(torch.equal(p, q) for p, q in zip(model.state_dict().values(), again.state_dict().values(), strict=True))
    cache.cached_model("tiny", {"a": 2}, _build, ("selfsup.bert",))  # other settings, another entry
    assert len(calls) == 2
    (entry,) = [
        p for p in tmp_path.glob("tiny-*.pt") if cache.entry_key("tiny", {"a": 1}, ("selfsup.bert", __name__)) in p.name
    ]
    entry.write_bytes(entry.read_bytes()[:100])  # a killed writer, a full disk
    cache.cached_model("tiny", {"a": 1}, _build, ("selfsup.bert",))
    assert len(calls) == 3
