"""`make reproduce` (benchmarks/reproduce.py) on a fake registry: the tables, the JSON, the 4-of-5 rule."""

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from selfsup.experiments import Check, Experiment

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import reproduce  # noqa: E402


@dataclass
class Result:
    accuracy: float
    baseline: float
    steps: int  # not a float: not a reported number


def _run(seed, preset, device):
    if seed == 4:
        raise RuntimeError("out of memory")  # a seed that raises holds no check
    return Result(accuracy=0.8 + 0.01 * seed, baseline=0.5, steps=10)


def _fake(held_by):
    """One experiment: a check that holds for seeds 0-3 (4/5 with seed 4 raising) and one that holds only
    for the seeds in held_by."""
    return Experiment(
        name="chX.fake",
        title="A fake reproduction",
        paper="Nobody (2026) claimed 0.8.",
        run=_run,
        checks=(
            Check("beats the baseline", lambda r: r.accuracy > r.baseline, lambda r: f"{r.accuracy:.2f}"),
            Check("is a lucky seed (|x| > 0)", lambda r: round(100 * (r.accuracy - 0.8)) in held_by),
        ),
        numbers=lambda r: {"accuracy": r.accuracy, "baseline": r.baseline},
    )


def test_a_check_held_in_4_of_5_seeds_passes_and_the_files_say_so(tmp_path):
    code = reproduce.main(["--out", str(tmp_path)], registry={"chX.fake": _fake({0, 1, 2, 3})})
    assert code == 0
    report = json.loads((tmp_path / "reproductions.json").read_text())
    assert report["seeds"] == [0, 1, 2, 3, 4] and report["preset"] == "book"
    assert {"platform", "cpu_count", "torch", "device"} <= set(report["machine"])
    exp = report["experiments"]["chX.fake"]
    assert exp["title"] == "A fake reproduction" and exp["paper"].startswith("Nobody")
    assert exp["seeds"]["2"]["numbers"] == pytest.approx({"accuracy": 0.82, "baseline": 0.5})
    assert "out of memory" in exp["seeds"]["4"]["error"] and exp["seeds"]["4"]["numbers"] == {}
    assert [c["held_in"] for c in exp["checks"]] == [[0, 1, 2, 3], [0, 1, 2, 3]]
    assert exp["checks"][0]["details"]["1"] == "0.81"
    md = (tmp_path / "reproductions.md").read_text()
    assert "### A fake reproduction" in md and "Every check passes." in md
    assert "| accuracy | 0.815 ± 0.013 |" in md  # mean and sample std of 0.80..0.83
    assert "| beats the baseline | 4/5 ✓ |" in md
    assert "Seeds that raised: 4." in md


def test_a_check_held_in_3_of_5_seeds_fails_after_writing_everything(tmp_path, capsys):
    code = reproduce.main(["--out", str(tmp_path)], registry={"chX.fake": _fake({0, 1, 2})})
    assert code == 1
    md = (tmp_path / "reproductions.md").read_text()
    assert "| is a lucky seed (\\|x\\| > 0) | 3/5 ✗ |" in md and "| beats the baseline | 4/5 ✓ |" in md
    assert "- chX.fake: is a lucky seed (|x| > 0) (3/5)" in md
    assert "is a lucky seed" in capsys.readouterr().out
    assert json.loads((tmp_path / "reproductions.json").read_text())["experiments"]["chX.fake"]["checks"][1][
        "held_in"
    ] == [0, 1, 2]


def test_only_and_seeds_pick_what_runs(tmp_path):
    registry = {"chX.fake": _fake({0}), "chY.other": _fake({0})}
    assert reproduce.main(["--out", str(tmp_path), "--only", "chY", "--seeds", "1", "--preset", "tiny"], registry) == 0
    report = json.loads((tmp_path / "reproductions.json").read_text())
    assert list(report["experiments"]) == ["chY.other"] and report["seeds"] == [0] and report["preset"] == "tiny"


def test_the_bar_is_4_of_5():
    assert [reproduce.needed(n) for n in (1, 3, 5, 10)] == [1, 3, 4, 8]


def test_a_partial_run_merges_with_the_table_it_finds(tmp_path):
    """`--only chY` adds its rows beside chX's earlier ones (each saying how it ran), and replaces only its own;
    rows of another preset are not mixed into the table."""
    assert reproduce.main(["--out", str(tmp_path), "--only", "chX", "--seeds", "1"], {"chX.fake": _fake({0})}) == 0
    registry = {"chX.fake": _fake({0, 1}), "ch10.other": _fake({0, 1}), "ch9.more": _fake({0, 1})}
    assert reproduce.main(["--out", str(tmp_path), "--only", "ch", "--seeds", "2"], registry) == 0
    report = json.loads((tmp_path / "reproductions.json").read_text())
    assert list(report["experiments"]) == ["ch9.more", "ch10.other", "chX.fake"]  # chapter order
    assert report["experiments"]["chX.fake"]["run"]["seeds"] == [0, 1]  # replaced by the later run
    assert reproduce.main(["--out", str(tmp_path), "--only", "ch9", "--seeds", "1"], registry) == 0
    report = json.loads((tmp_path / "reproductions.json").read_text())
    assert report["experiments"]["ch9.more"]["run"]["seeds"] == [0]
    assert report["experiments"]["ch10.other"]["run"]["seeds"] == [0, 1]  # kept from the run before
    md = (tmp_path / "reproductions.md").read_text()
    assert md.count("Run 20") == 3 and "seeds 0, 1, on" in md
    assert reproduce.main(["--out", str(tmp_path), "--only", "ch9", "--seeds", "1", "--preset", "tiny"], registry) == 0
    assert list(json.loads((tmp_path / "reproductions.json").read_text())["experiments"]) == ["ch9.more"]
