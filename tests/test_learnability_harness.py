"""The learnability harness (benchmarks/learnability.py and its sweep) and the packing it shares with the book:
packing, the data cache, the pass rule.

The check itself takes minutes (`make learnability`); these tests cover the parts whose mistakes would make
its numbers wrong without making it crash.
"""

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest
import torch

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCH))
import learnability  # noqa: E402
import learnability_sweep  # noqa: E402

from selfsup.bert import BertForPretraining  # noqa: E402
from selfsup.data import ToyWorld  # noqa: E402
from selfsup.experiments.finetuning import FINETUNE_DROPOUT, head_for  # noqa: E402
from selfsup.experiments.pretraining import PretrainSettings, bert_config, pack  # noqa: E402
from selfsup.tokenizer import train_wordpiece  # noqa: E402


@pytest.fixture(scope="module")
def world_and_tok():
    tw = ToyWorld(seed=0, n_people=20)
    return tw, train_wordpiece(tw.sentences(2000), vocab_size=300)


@pytest.mark.parametrize("nsp", [False, True])
def test_pack_makes_bert_pairs_within_the_length(world_and_tok, nsp):
    tw, tok = world_and_tok
    docs = tw.documents(200, seed=1)
    pieces = pack(docs, tok, 40, random.Random(0) if nsp else None)
    n_sentences = sum(len(d) for d in docs)
    assert len(pieces) < n_sentences  # several sentences share a piece
    for p in pieces:
        ids, types = p["input_ids"], p["token_type_ids"]
        assert len(ids) == len(types) <= 40
        assert ids[0] == tok.cls_token_id and ids[-1] == tok.sep_token_id
        first_sep = ids.index(tok.sep_token_id)
        assert set(types[: first_sep + 1]) == {0} and set(types[first_sep + 1 :]) <= {1}
    labels = [p.get("next_sentence_label") for p in pieces]
    if nsp:
        paired = [(p, label) for p, label in zip(pieces, labels, strict=True) if 1 in p["token_type_ids"]]
        assert all(label == -100 for p, label in zip(pieces, labels, strict=True) if 1 not in p["token_type_ids"])
        assert 0.4 < sum(label for _, label in paired) / len(paired) < 0.6
        # the same pieces without NSP: a NotNext pair is exactly as long as the real pair it replaces
        plain = [p for p in pack(docs, tok, 40) if 1 in p["token_type_ids"]]
        assert [len(p["input_ids"]) for p, _ in paired] == [len(p["input_ids"]) for p in plain]
        replaced = [(p, q) for (p, label), q in zip(paired, plain, strict=True) if label == 1]
        assert all(p["input_ids"] != q["input_ids"] for p, q in replaced)
    else:
        assert labels == [None] * len(labels)


def test_pretraining_runs_without_dropout_and_fine_tuning_with_it():
    settings = PretrainSettings(d_model=32, n_layers=1, n_heads=2)
    assert bert_config(300, settings).dropout == 0.0
    assert bert_config(300, settings.replace(dropout=0.2)).dropout == 0.2
    body = BertForPretraining(bert_config(300, settings))
    tuned = head_for("sentiment", body, 300, settings)
    probe = head_for("sentiment", body, 300, settings, frozen=True)
    scratch = head_for("pos", None, 300, settings)
    assert tuned.bert.config.dropout == scratch.bert.config.dropout == FINETUNE_DROPOUT > 0
    assert probe.bert.config.dropout == 0.0
    assert torch.equal(tuned.bert.embeddings.word.weight, body.bert.embeddings.word.weight)


def test_seed_data_from_the_cache_equals_fresh_data(tmp_path):
    args = learnability.parse_args(["--n-docs", "30", "--n-train", "30", "--n-val", "9", "--n-test", "9"])
    tw = ToyWorld(seed=0, n_people=100)
    fresh = learnability.seed_data(tw, 1, args)
    args.cache = tmp_path
    first = learnability.seed_data(tw, 1, args)
    (written,) = tmp_path.glob("seed1_*.json.gz")
    assert learnability._data_version() in written.name  # a change to the generators changes the file name
    again = learnability.seed_data(tw, 1, args)
    assert fresh == first == again
    assert set(fresh["tasks"]) == set(learnability.TASKS) and len(fresh["docs"]) == 30
    assert [len(fresh["tasks"]["nli"][s]) for s in ("train", "validation", "test")] == [30, 9, 9]


def _report(pre: dict, scr: dict, mlm: float = 2.0) -> dict:
    return {
        "seconds": 1.0,
        "pretraining": [{"mlm_loss_last": mlm}],
        "tasks": {t: {"pretrained": [pre[t]], "scratch": [scr[t]]} for t in learnability.TASKS},
    }


def test_sweep_pass_share_counts_3_seed_subsets(tmp_path):
    # "good": pre-training wins by 0.3 on every seed; "lucky": one of four seeds gives no gain on NLI
    for seed in range(4):
        scr = {"sentiment": 0.5 + 0.01 * seed, "nli": 0.6, "qa": 0.2}
        good = {t: v + 0.3 for t, v in scr.items()}
        lucky = {**good, "nli": 0.6 if seed == 3 else 0.9}
        for name, pre in (("good", good), ("lucky", lucky)):
            (tmp_path / f"{name}__seed{seed}.json").write_text(json.dumps(_report(pre, scr)))
    summary = learnability_sweep.summarize(tmp_path)
    assert summary["good"]["all_tasks_pass_share"] == 1.0
    # 4 subsets of 3 seeds; the 3 that contain seed 3 have a spread of 0.3 against a gap of 0.2: they fail
    assert summary["lucky"]["nli"]["pass_share"] == 0.25
    assert summary["lucky"]["all_tasks_pass_share"] == 0.25
    assert learnability.check_passes([0.9, 0.9, 0.9], [0.5, 0.5, 0.5])
    assert not learnability.check_passes([1.0, 0.9, 0.9], [0.5, 0.5, 0.5])  # a perfect score fails


@pytest.mark.slow
def test_learnability_quick_run_writes_a_report(tmp_path):
    out = tmp_path / "report.json"
    cmd = [sys.executable, str(BENCH / "learnability.py"), "--quick", "--n-docs", "300", "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode in (0, 1), proc.stderr[-3000:]  # --quick may fail the check; it must not crash
    report = json.loads(out.read_text())
    assert set(report["tasks"]) == set(learnability.TASKS)
    for row in report["tasks"].values():
        assert 0.0 <= row["pretrained_mean"] <= 1.0 and 0.0 <= row["scratch_mean"] <= 1.0
    assert proc.returncode == (0 if all(row["ok"] for row in report["tasks"].values()) else 1)
    assert report["majority_baseline"]["nli"] == pytest.approx(1 / 3, abs=0.05)
