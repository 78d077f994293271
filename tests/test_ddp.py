"""DDP through torchrun: two CPU ranks (gloo) train like one process on their batches concatenated."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from ddp_worker import DDP_CONFIG, TinyConfig, TinyLM, make_batches

from selfsup.checkpoint import load_checkpoint
from selfsup.train import TrainConfig, train

WORKER = Path(__file__).with_name("ddp_worker.py")


def run_workers(tmp_path, nproc: int, device: str) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR")}
    if device == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = ""  # gloo on CPU even on a GPU machine
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}"]
    cmd += [str(WORKER), str(tmp_path), device]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.mark.slow
def test_two_ranks_match_one_process_on_concatenated_batches(tmp_path):
    run_workers(tmp_path, nproc=2, device="cpu")

    r0 = torch.load(tmp_path / "rank0.pt")
    r1 = torch.load(tmp_path / "rank1.pt")
    for name, p in r0["state"].items():
        assert torch.equal(p, r1["state"][name]), f"ranks disagree on {name}"
    assert r0["loss"] == r1["loss"]  # the logged loss is averaged across ranks

    # Rank r takes global micro-batches r, r + 2, ...: so one process sees pairs (0, 1), (2, 3), ... joined.
    batches = make_batches(12)
    joined = [{k: torch.cat([a[k], b[k]]) for k in a} for a, b in zip(batches[0::2], batches[1::2], strict=True)]
    torch.manual_seed(0)
    single = TinyLM(TinyConfig())
    history = train(single, joined, TrainConfig(**DDP_CONFIG), device="cpu", progress=False)
    for name, p in single.state_dict().items():
        torch.testing.assert_close(
            r0["state"][name], p, rtol=1e-5, atol=1e-6, msg=f"DDP differs from one process on {name}"
        )
    torch.testing.assert_close(torch.tensor(r0["loss"]), torch.tensor(history.loss), rtol=1e-5, atol=1e-6)
    torch.manual_seed(0)
    before = TinyLM(TinyConfig())  # training did move the weights, so the comparison above means something
    for name, p in before.state_dict().items():
        # The head outside the loss gets no gradient (and AdamW leaves it alone); every other weight moved.
        assert torch.equal(p, r0["state"][name]) == name.startswith("aux."), name

    # Only rank 0 wrote the final checkpoint, with both ranks' random states.
    ckpt_files = sorted((tmp_path / "ckpt").iterdir())
    assert [f.name for f in ckpt_files] == ["step_00000003.pt"]
    ckpt = load_checkpoint(ckpt_files[0])
    assert ckpt["step"] == 3 and len(ckpt["extra"]["rng_ranks"]) == 2
    assert ckpt["extra"]["world_size"] == 2


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_ddp_on_one_gpu_with_nccl(tmp_path):
    run_workers(tmp_path, nproc=1, device="cuda")
    r0 = torch.load(tmp_path / "rank0.pt")
    assert all(p.device.type == "cuda" for p in r0["state"].values())
    assert all(torch.isfinite(torch.tensor(r0["loss"])))
    assert (tmp_path / "ckpt" / "step_00000003.pt").exists()
