"""The benchmark harness: its FLOP count is the textbook one, and the prepared GPU script runs (tiny, on CPU)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCH))
import common  # noqa: E402


def test_flops_per_token_counts_every_matmul_once():
    size = common.Size("t", vocab_size=500, d_model=64, n_layers=2, n_heads=4, seq_len=32, batch_size=2)
    d, L, V, T = 64, 2, 500, 32
    per_layer = 3 * d * d + d * d + 2 * d * 4 * d  # fused QKV, output projection, MLP
    attention = 12 * L * T * d  # Q Kᵀ and A V, forward and backward
    gpt = common.build_selfsup("gpt", size)
    assert common.train_flops_per_token(gpt, size) == 6 * (L * per_layer + V * d) + attention  # tied head once
    bert = common.build_selfsup("bert", size)
    # BERT adds the pooler and NSP (every token's share), and the MLM transform + decoder at the masked share
    mlm = d * d + V * d
    body = L * per_layer + d * d + 2 * d
    expected = 6 * (body + common.MLM_RATE * mlm) + attention
    assert common.train_flops_per_token(bert, size) == pytest.approx(expected)


@pytest.mark.slow
def test_gpu_script_runs_in_smoke_mode(tmp_path):
    out = tmp_path / "gpu.json"
    cmd = [sys.executable, str(BENCH / "gpu.py"), "--smoke", "--no-compile", "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(out.read_text())
    cases = {(r["kind"], r["impl"]) for r in report["runs"]}
    assert cases == {(m, i) for m in ("bert", "gpt") for i in ("selfsup", "transformers")}
    assert all(r["median_tokens_per_s"] > 0 and r["model_tflops_per_s"] > 0 for r in report["runs"])
