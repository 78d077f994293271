"""Checkpoints: round trip, atomic writes, clear errors, the model registry, and exact resume."""

import random
import subprocess
import sys
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pytest
import torch
from ddp_worker import TinyClassifier, TinyConfig, TinyLM, make_batches
from torch.utils.data import DataLoader

from selfsup.checkpoint import latest_checkpoint, load_checkpoint, load_model, register_model, save_checkpoint
from selfsup.train import TrainConfig, make_optimizer, make_scheduler, train

register_model("tiny-test", TinyLM, TinyConfig)
register_model("tiny-test", TinyClassifier, TinyConfig, default=False)


def tiny(seed=0, **kw):
    torch.manual_seed(seed)
    return TinyLM(TinyConfig(**kw))


def trained_state(tmp_path):
    """A model, optimizer and scheduler after two real steps, saved to tmp_path / 'a.pt'."""
    model = tiny()
    cfg = TrainConfig(max_steps=10, warmup_steps=3)
    opt = make_optimizer(model, cfg)
    sched = make_scheduler(opt, cfg)
    for batch in make_batches(2):
        model(**batch).loss.backward()
        opt.step()
        opt.zero_grad()
        sched.step()
    path = save_checkpoint(tmp_path / "a.pt", model, opt, sched, step=2, extra={"note": "hi"})
    return model, opt, sched, path


def test_round_trip_restores_every_state(tmp_path):
    model, opt, sched, path = trained_state(tmp_path)
    model2 = tiny(seed=1)
    cfg = TrainConfig(max_steps=10, warmup_steps=3)
    opt2 = make_optimizer(model2, cfg)
    sched2 = make_scheduler(opt2, cfg)
    ckpt = load_checkpoint(path, model2, opt2, sched2)
    assert ckpt["step"] == 2 and ckpt["extra"] == {"note": "hi"}
    assert ckpt["model_type"] == "tiny-test" and ckpt["config"] == {
        "vocab_size": 23,
        "d_model": 16,
        "max_len": 8,
        "dropout": 0.0,
    }
    for (name, p), q in zip(model.state_dict().items(), model2.state_dict().values(), strict=True):
        assert torch.equal(p, q), name
    assert sched2.state_dict() == sched.state_dict() and sched2.get_last_lr() == sched.get_last_lr()
    for s1, s2 in zip(opt.state.values(), opt2.state.values(), strict=True):
        assert torch.equal(s1["exp_avg"], s2["exp_avg"]) and torch.equal(s1["exp_avg_sq"], s2["exp_avg_sq"])
    # One more identical step from both gives identical weights.
    batch = make_batches(1, seed=5)[0]
    for m, o in ((model, opt), (model2, opt2)):
        m(**batch).loss.backward()
        o.step()
    assert torch.equal(model.head.weight, model2.head.weight)


def test_random_states_are_restored(tmp_path):
    torch.manual_seed(3)
    random.seed(3)
    np.random.seed(3)
    path = save_checkpoint(tmp_path / "r.pt", tiny())
    want = (torch.rand(3), random.random(), np.random.rand())
    torch.manual_seed(99)
    random.seed(99)
    np.random.seed(99)
    load_checkpoint(path, restore_rng=True)
    got = (torch.rand(3), random.random(), np.random.rand())
    assert torch.equal(want[0], got[0]) and want[1:] == got[1:]


def test_load_model_rebuilds_registered_models_and_heads(tmp_path):
    model = tiny(d_model=8)
    path = save_checkpoint(tmp_path / "m.pt", model)
    rebuilt = load_model(path)
    assert type(rebuilt) is TinyLM and rebuilt.config == model.config and not rebuilt.training
    ids = make_batches(1)[0]["input_ids"]
    assert torch.equal(rebuilt(ids).logits, model.eval()(ids).logits)

    torch.manual_seed(0)
    head = TinyClassifier(TinyConfig(), num_labels=3)
    rebuilt = load_model(save_checkpoint(tmp_path / "h.pt", head))
    assert type(rebuilt) is TinyClassifier and rebuilt.num_labels == 3
    assert torch.equal(rebuilt.cls.weight, head.cls.weight)
    # A folder works too: model.pt, else the latest step_<n>.pt.
    save_checkpoint(tmp_path / "dir" / "step_00000002.pt", head)
    save_checkpoint(tmp_path / "dir" / "step_00000010.pt", model)
    assert type(load_model(tmp_path / "dir")) is TinyLM
    assert latest_checkpoint(tmp_path / "dir").name == "step_00000010.pt"


def test_load_model_bert_from_the_registry(tmp_path):
    from selfsup.bert import BertConfig, BertForPretraining

    torch.manual_seed(0)
    bert = BertForPretraining(BertConfig(vocab_size=50, d_model=16, n_heads=2, n_layers=1, d_ff=32, max_len=16))
    rebuilt = load_model(save_checkpoint(tmp_path / "bert.pt", bert), model_type="bert")
    assert type(rebuilt) is BertForPretraining
    ids = torch.randint(0, 50, (2, 7))
    assert torch.equal(rebuilt(ids).logits, bert.eval()(ids).logits)
    assert rebuilt.mlm.decoder.weight is rebuilt.bert.embeddings.word.weight  # tying survives the round trip


def test_write_is_atomic(tmp_path, monkeypatch):
    _, _, _, path = trained_state(tmp_path)
    before = path.read_bytes()

    def broken_save(obj, f, *a, **kw):
        f.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, tiny(seed=7))
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["a.pt"]  # no temporary file left behind


def test_missing_and_corrupt_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        load_model(tmp_path / "nope.pt")
    with pytest.raises(FileNotFoundError, match="no checkpoint in folder"):
        load_checkpoint(tmp_path)
    _, _, _, path = trained_state(tmp_path)
    data = path.read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="corrupt or truncated"):
        load_checkpoint(tmp_path / "cut.pt")
    (tmp_path / "junk.pt").write_bytes(b"\x00garbage" * 100)
    with pytest.raises(ValueError, match="corrupt or truncated"):
        load_model(tmp_path / "junk.pt")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a selfsup checkpoint"):
        load_checkpoint(tmp_path / "other.pt")


def test_wrong_model_type_names_both(tmp_path):
    path = save_checkpoint(tmp_path / "m.pt", tiny())
    with pytest.raises(ValueError, match="'tiny-test'.*'gpt'"):
        load_model(path, model_type="gpt")
    with pytest.raises(ValueError, match="'tiny-test'.*'bert'"):
        load_checkpoint(path, model_type="bert")


@dataclass
class UnknownConfig:
    d_model: int = 4
    model_type: ClassVar[str] = "never-registered"


class UnknownModel(torch.nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        self.w = torch.nn.Linear(config.d_model, 1)


def test_unknown_model_type_lists_known_ones(tmp_path):
    path = save_checkpoint(tmp_path / "u.pt", UnknownModel(UnknownConfig()))
    with pytest.raises(ValueError, match=r"unknown model_type 'never-registered'.*'bert'.*'gpt'.*'seq2seq'"):
        load_model(path)


def test_config_that_no_longer_validates(tmp_path):
    path = save_checkpoint(tmp_path / "m.pt", tiny())
    ckpt = torch.load(path, weights_only=True)
    ckpt["config"]["d_model"] = -4  # as if the rules had changed since it was saved
    torch.save(ckpt, path)
    with pytest.raises(ValueError, match="no longer validates.*d_model"):
        load_model(path)
    ckpt["config"] = {"vocab_size": 23, "width": 16}  # a renamed field
    torch.save(ckpt, path)
    with pytest.raises(ValueError, match="no longer validates.*width"):
        load_model(path)


def test_weights_that_do_not_fit(tmp_path):
    path = save_checkpoint(tmp_path / "m.pt", tiny(d_model=8))
    with pytest.raises(ValueError, match="does not fit this TinyLM"):
        load_checkpoint(path, tiny(d_model=16))


def test_models_are_imported_lazily():
    models = ("selfsup.bert", "selfsup.gpt", "selfsup.seq2seq")
    code = f"import sys, selfsup.train; print([m for m in {models} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]"


class CrashAfter:
    """Batches from a loader, but the process 'dies' (raises) at the n-th micro-batch drawn."""

    def __init__(self, loader, n):
        self.loader, self.n, self.drawn = loader, n, 0

    def __iter__(self):
        for batch in self.loader:
            self.drawn += 1
            if self.drawn == self.n:
                raise KeyboardInterrupt("killed")
            yield batch


def loader():
    rows = [{"input_ids": b["input_ids"][0], "labels": b["labels"][0]} for b in make_batches(10, batch_size=1)]
    return DataLoader(rows, batch_size=4, shuffle=True)  # 3 batches an epoch, reshuffled each epoch


def test_resume_gives_the_same_losses_as_an_uninterrupted_run(tmp_path):
    cfg = TrainConfig(max_steps=7, grad_accum=2, warmup_steps=2, lr=1e-2, checkpoint_every=2, eval_every=3)
    evals = make_batches(2, seed=9)
    full_model = tiny(dropout=0.3)
    full = train(full_model, loader(), cfg, eval_batches=evals, progress=False, device="cpu")

    # The first run dies during step 6 (micro-batch 11); the last checkpoint is from step 4.
    with pytest.raises(KeyboardInterrupt):
        train(
            tiny(dropout=0.3),
            CrashAfter(loader(), 11),
            cfg,
            eval_batches=evals,
            device="cpu",
            checkpoint_dir=tmp_path,
            resume=True,
            progress=False,
        )
    assert latest_checkpoint(tmp_path).name == "step_00000004.pt"

    torch.manual_seed(1234)  # whatever happened in between must not matter
    resumed_model = tiny(seed=42, dropout=0.3)  # the checkpoint overwrites these weights
    resumed = train(
        resumed_model,
        loader(),
        cfg,
        eval_batches=evals,
        device="cpu",
        checkpoint_dir=tmp_path,
        resume=True,
        progress=False,
    )
    assert resumed.step == full.step
    assert resumed.loss == full.loss
    assert resumed.lr == full.lr
    assert resumed.eval == full.eval
    for (name, p), q in zip(full_model.state_dict().items(), resumed_model.state_dict().values(), strict=True):
        assert torch.equal(p, q), name
    # Dropout was really on: a run with another seed gives other losses from step 1.
    other = train(tiny(dropout=0.3), loader(), TrainConfig(**{**cfg.__dict__, "seed": 5}), device="cpu", progress=False)
    assert other.loss[0] != full.loss[0]


def test_resume_without_checkpoint_starts_fresh_and_old_files_are_pruned(tmp_path):
    cfg = TrainConfig(max_steps=5, checkpoint_every=1, keep_checkpoints=2)
    h1 = train(tiny(), make_batches(3), cfg, checkpoint_dir=tmp_path, resume=True, device="cpu", progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step_00000004.pt", "step_00000005.pt"]
    h2 = train(tiny(), make_batches(3), cfg, device="cpu", progress=False)
    assert h1.loss == h2.loss
    # Resuming a finished run does nothing more and returns its history.
    h3 = train(tiny(), make_batches(3), cfg, checkpoint_dir=tmp_path, resume=True, device="cpu", progress=False)
    assert h3.loss == h1.loss


class Unregistered(TinyLM):
    """Same weights as TinyLM, but never registered: load_model must not import a class a file names."""


def test_only_registered_or_selfsup_classes_are_imported(tmp_path):
    torch.manual_seed(0)
    path = save_checkpoint(tmp_path / "m.pt", Unregistered(TinyConfig()))
    assert type(load_model(path)) is TinyLM  # the type's default class, not the one the file names
    ckpt = torch.load(path, weights_only=True)
    ckpt["model_class"] = "selfsup.bert:NoSuchModel"
    torch.save(ckpt, path)
    with pytest.raises(ValueError, match="'selfsup.bert:NoSuchModel', which cannot be imported"):
        load_model(path)
