"""The training loop: config checks, schedule, optimizer groups, accumulation, clipping, eval, errors."""

import math

import pytest
import torch
from ddp_worker import TinyConfig, TinyLM, make_batches
from torch import nn
from torch.utils.data import DataLoader

from selfsup.checkpoint import latest_checkpoint
from selfsup.train import (
    History,
    TrainConfig,
    evaluate,
    lr_multiplier,
    make_optimizer,
    make_scheduler,
    resolve_device,
    train,
)


def tiny(seed=0, **kw):
    torch.manual_seed(seed)
    return TinyLM(TinyConfig(**kw))


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"max_steps": 0}, "max_steps"),
        ({"max_steps": 10, "lr": 0.0}, "lr"),
        ({"max_steps": 10, "schedule": "step"}, "schedule"),
        ({"max_steps": 10, "warmup_steps": 11}, "warmup_steps"),
        ({"max_steps": 10, "grad_accum": 0}, "grad_accum"),
        ({"max_steps": 10, "grad_clip": 0.0}, "grad_clip"),
        ({"max_steps": 10, "min_lr_ratio": 1.5}, "min_lr_ratio"),
        ({"max_steps": 10, "eval_every": 0}, "eval_every"),
        ({"max_steps": 10, "checkpoint_every": -1}, "checkpoint_every"),
        ({"max_steps": 10, "betas": (0.9, 1.0)}, "betas"),
        ({"max_steps": 10, "weight_decay": -0.1}, "weight_decay"),
        ({"max_steps": 10, "compile": "yes"}, "compile"),
    ],
)
def test_config_rejects_bad_values_naming_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        TrainConfig(**kwargs)


def test_max_steps_is_required():
    with pytest.raises(TypeError):
        TrainConfig()


@pytest.mark.parametrize("schedule", ["cosine", "linear", "constant"])
def test_schedule_warmup_then_decay(schedule):
    cfg = TrainConfig(max_steps=20, warmup_steps=4, schedule=schedule, min_lr_ratio=0.1, lr=1e-3)
    got = [lr_multiplier(s, cfg) for s in range(20)]
    assert got[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    progress = [(s - 4) / 16 for s in range(4, 20)]
    if schedule == "cosine":
        want = [0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * p)) for p in progress]
    elif schedule == "linear":
        want = [0.1 + 0.9 * (1 - p) for p in progress]
    else:
        want = [1.0] * 16
    assert got[4:] == pytest.approx(want)
    # The LambdaLR and the History record the same numbers the loop actually used.
    model = tiny()
    history = train(model, make_batches(3), cfg, device="cpu", progress=False)
    assert history.lr == pytest.approx([1e-3 * m for m in got])
    sched = make_scheduler(make_optimizer(model, cfg), cfg)
    assert sched.get_last_lr()[0] == pytest.approx(1e-3 * got[0])


def test_no_weight_decay_on_biases_and_norms():
    model = tiny()
    opt = make_optimizer(model, TrainConfig(max_steps=1, weight_decay=0.1))
    decayed = {id(p) for g in opt.param_groups if g["weight_decay"] > 0 for p in g["params"]}
    for name, p in model.named_parameters():
        assert (id(p) in decayed) == (p.dim() >= 2), name
    assert id(model.ln.weight) not in decayed and id(model.head.bias) not in decayed
    assert id(model.tok.weight) in decayed
    assert sum(len(g["params"]) for g in opt.param_groups) == len(list(model.parameters()))


def test_training_lowers_the_loss_and_records_history():
    model = tiny()
    batches = make_batches(4)
    before = evaluate(model, batches, device="cpu")
    assert before == pytest.approx(math.log(23), rel=0.15)  # initial loss about ln(vocab)
    cfg = TrainConfig(max_steps=40, lr=3e-2, warmup_steps=2)
    history = train(model, batches, cfg, device="cpu", progress=False)
    assert history.step == list(range(1, 41))
    assert len(history.loss) == len(history.tokens_per_s) == len(history.wall_time) == 40
    assert evaluate(model, batches, device="cpu") < 0.3 * before
    assert all(t > 0 for t in history.tokens_per_s)
    assert all(b > a for a, b in zip(history.wall_time, history.wall_time[1:], strict=False))
    assert model.training  # left in train mode, as it was


def test_grad_accum_equals_one_big_batch():
    small = make_batches(8, batch_size=2)
    big = [{k: torch.cat([a[k], b[k]]) for k in a} for a, b in zip(small[0::2], small[1::2], strict=True)]
    cfg = dict(max_steps=4, lr=1e-2, warmup_steps=1)
    m1, m2 = tiny(), tiny()
    h1 = train(m1, small, TrainConfig(grad_accum=2, **cfg), device="cpu", progress=False)
    h2 = train(m2, big, TrainConfig(grad_accum=1, **cfg), device="cpu", progress=False)
    torch.testing.assert_close(torch.tensor(h1.loss), torch.tensor(h2.loss))
    for (name, p), q in zip(m1.named_parameters(), m2.parameters(), strict=True):
        torch.testing.assert_close(p, q, msg=name)
    # ... and differs from using only every other small batch (the accumulation really adds both halves).
    m3 = tiny()
    train(m3, small[0::2], TrainConfig(grad_accum=1, **cfg), device="cpu", progress=False)
    assert not torch.allclose(m3.head.weight, m1.head.weight)


def test_gradients_are_clipped(monkeypatch):
    norms = []
    real = nn.utils.clip_grad_norm_

    def spy(params, max_norm, *a, **kw):
        params = list(params)
        total = real(params, max_norm, *a, **kw)
        after = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in params if p.grad is not None]))
        norms.append((float(total), float(after), max_norm))
        return total

    monkeypatch.setattr(nn.utils, "clip_grad_norm_", spy)
    train(tiny(), make_batches(2), TrainConfig(max_steps=3, grad_clip=0.05), device="cpu", progress=False)
    assert len(norms) == 3
    for total, after, max_norm in norms:
        assert max_norm == 0.05 and total > max_norm and after == pytest.approx(max_norm, rel=1e-4)
    norms.clear()
    train(tiny(), make_batches(2), TrainConfig(max_steps=3, grad_clip=None), device="cpu", progress=False)
    assert norms == []


class CountingBatches:
    """A re-iterable list that counts how many batches the loop draws."""

    def __init__(self, batches):
        self.batches, self.drawn, self.passes = batches, 0, 0

    def __iter__(self):
        self.passes += 1
        for b in self.batches:
            self.drawn += 1
            yield b


def test_batches_are_cycled_for_max_steps_times_grad_accum():
    data = CountingBatches(make_batches(3))
    train(tiny(), data, TrainConfig(max_steps=4, grad_accum=2), device="cpu", progress=False)
    assert data.drawn == 8 and data.passes == 3


def test_empty_or_used_up_batches_are_an_error():
    with pytest.raises(ValueError, match="no batch"):
        train(tiny(), [], TrainConfig(max_steps=1), device="cpu", progress=False)
    gen = iter(make_batches(2))
    with pytest.raises(ValueError, match="used-up generator"):
        train(tiny(), gen, TrainConfig(max_steps=3), device="cpu", progress=False)


def test_missing_labels_is_an_error():
    batches = [{"input_ids": b["input_ids"]} for b in make_batches(2)]
    with pytest.raises(ValueError, match="labels"):
        train(tiny(), batches, TrainConfig(max_steps=1), device="cpu", progress=False)


class NanAfter(nn.Module):
    """Wraps TinyLM; its loss becomes NaN from the n-th forward on."""

    def __init__(self, n):
        super().__init__()
        self.inner, self.n, self.calls = tiny(), n, 0

    def forward(self, **batch):
        self.calls += 1
        out = self.inner(**batch)
        if self.calls >= self.n:
            out.loss = out.loss * float("nan")
        return out


def test_nan_loss_raises_naming_the_step():
    model = NanAfter(5)  # with grad_accum=2, forward 5 is in step 3
    with pytest.raises(FloatingPointError, match="at step 3"):
        train(model, make_batches(4), TrainConfig(max_steps=6, grad_accum=2), device="cpu", progress=False)
    assert all(torch.isfinite(p).all() for p in model.parameters())  # the bad step was not applied


def test_eval_every_records_loss_and_metrics():
    train_b, eval_b = make_batches(4), make_batches(2, seed=1)
    seen_modes = []

    def eval_fn(m):
        seen_modes.append(m.training)
        return {"acc": 0.5}

    model = tiny(dropout=0.2)
    cfg = TrainConfig(max_steps=5, eval_every=2, lr=1e-2)
    history = train(model, train_b, cfg, eval_batches=eval_b, eval_fn=eval_fn, device="cpu", progress=False)
    assert [r["step"] for r in history.eval] == [2, 4, 5]  # every 2 steps, and at the end
    assert seen_modes == [False, False, False] and model.training
    assert history.eval[-1]["loss"] == pytest.approx(evaluate(model, eval_b, device="cpu"))
    assert history.eval[0]["loss"] > history.eval[-1]["loss"]
    assert all(r["acc"] == 0.5 for r in history.eval)
    df = history.to_dataframe()
    assert list(df["step"]) == [1, 2, 3, 4, 5]
    assert df["eval_loss"].notna().tolist() == [False, True, False, True, True]
    assert History.from_dict(history.to_dict()) == history


def test_same_seed_same_run_with_a_shuffling_loader():
    data = [{"input_ids": b["input_ids"][0], "labels": b["labels"][0]} for b in make_batches(12, batch_size=1)]
    runs = []
    for _ in range(2):
        loader = DataLoader(data, batch_size=4, shuffle=True)
        torch.manual_seed(123)  # a different global state each time must not matter
        runs.append(train(tiny(dropout=0.3), loader, TrainConfig(max_steps=5), device="cpu", progress=False).loss)
        torch.manual_seed(999)
    assert runs[0] == runs[1]
    other = train(tiny(dropout=0.3), loader, TrainConfig(max_steps=5, seed=1), device="cpu", progress=False).loss
    assert other != runs[0]


def test_progress_bar_can_be_turned_off(capsys):
    train(tiny(), make_batches(1), TrainConfig(max_steps=2), device="cpu", progress=True)
    assert "train" in capsys.readouterr().err
    train(tiny(), make_batches(1), TrainConfig(max_steps=2), device="cpu", progress=False)
    assert capsys.readouterr().err == ""


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    want = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    assert resolve_device("auto").type == want


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_training_with_bf16_autocast():
    model = tiny()
    seen = []
    real_forward = model.forward

    def forward(**batch):
        out = real_forward(**batch)
        seen.append((batch["input_ids"].device.type, out.logits.dtype))
        return out

    model.forward = forward
    batches = make_batches(4)
    config = TrainConfig(max_steps=30, lr=1e-2)
    history = train(model, batches, config, device="auto", progress=False)
    assert next(model.parameters()).device.type == "cuda"
    assert next(model.parameters()).dtype == torch.float32  # weights stay fp32; only the compute is bf16
    assert seen[0] == ("cuda", torch.bfloat16)
    # The same run in fp32 on the CPU is the reference: bf16 compute follows its loss curve to within a few
    # percent (measured on an H200: 2.0476 against 2.0453 at step 30, from 3.25), and the loss clearly falls.
    reference = train(tiny(), batches, config, device="cpu", progress=False)
    assert history.loss[-1] < 0.75 * history.loss[0]
    assert history.loss == pytest.approx(reference.loss, rel=0.05)


@pytest.mark.slow
def test_compile_option_trains_like_eager_and_checkpoints_the_plain_model(tmp_path):
    config = dict(max_steps=4, lr=1e-2, warmup_steps=1)
    eager = train(tiny(), make_batches(4), TrainConfig(**config), device="cpu", progress=False)
    model = tiny()
    torch._dynamo.reset()
    compiled_config = TrainConfig(**config, compile=True)
    compiled = train(model, make_batches(4), compiled_config, device="cpu", progress=False, checkpoint_dir=tmp_path)
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] > 0  # the run really went through dynamo
    assert compiled.loss == pytest.approx(eager.loss, rel=1e-4)
    assert not any(isinstance(m, torch._dynamo.eval_frame.OptimizedModule) for m in model.modules())
    state = torch.load(latest_checkpoint(tmp_path), weights_only=False)["model"]
    assert set(state) == set(model.state_dict())  # no "_orig_mod." prefixes from the compiled wrapper
