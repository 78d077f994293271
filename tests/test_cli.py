"""`selfsup pretrain / finetune / generate`, end to end on a tiny corpus, in-process through main(argv)."""

import json
import math
import random

import pytest
import torch

from selfsup.checkpoint import load_model
from selfsup.cli import main

SUBJECTS = ["the cat", "a dog", "my friend", "the teacher", "our baker", "the old man"]
VERBS = ["likes", "hates", "eats", "sees", "wants"]
OBJECTS = ["fish", "bread", "the park", "red apples", "warm soup", "the river"]
TINY = ["--size", "tiny", "--seq-len", "24", "--vocab-size", "300", "--batch-size", "4", "--no-progress"]


def corpus(n=60, seed=0):
    rng = random.Random(seed)
    return [f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)} ." for _ in range(n)]


@pytest.fixture(scope="module")
def text_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("corpus") / "corpus.txt"
    path.write_text("\n".join(corpus()) + "\n\n")
    return path


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory, text_file):
    """One tiny pre-trained folder per model type, shared by the tests below."""
    root = tmp_path_factory.mktemp("models")
    for model in ("bert", "gpt", "seq2seq"):
        argv = ["pretrain", "--model", model, "--text", str(text_file), "--steps", "3", "--out", str(root / model)]
        assert main(argv + TINY) == 0
    return root


@pytest.mark.slow
@pytest.mark.parametrize("model, cls", [("bert", "BertForPretraining"), ("gpt", "GPT"), ("seq2seq", "Seq2Seq")])
def test_pretrain_writes_a_loadable_folder(pretrained, model, cls):
    folder = pretrained / model
    assert (folder / "tokenizer" / "tokenizer.json").is_file()
    net = load_model(folder)
    assert type(net).__name__ == cls and net.config.model_type == model
    assert net.config.max_len == 24 and net.config.d_model == 64
    history = json.loads((folder / "history.json").read_text())
    assert history["step"] == [1, 2, 3]
    # every loss is a real number; an MLM batch whose masking picked nothing scores exactly 0
    assert all(math.isfinite(x) and x >= 0 for x in history["loss"]) and max(history["loss"]) > 0
    # The weights are the trained ones, not a fresh init with the same seed.
    torch.manual_seed(0)
    fresh = type(net)(net.config)
    assert any(
        not torch.equal(p, q) for p, q in zip(fresh.state_dict().values(), net.state_dict().values(), strict=True)
    )


@pytest.mark.slow
def test_pretrain_lowers_the_loss_and_resumes(tmp_path, text_file):
    out = tmp_path / "gpt"
    base = ["pretrain", "--model", "gpt", "--text", str(text_file), "--out", str(out), "--lr", "3e-3", *TINY]
    assert main([*base, "--steps", "30", "--checkpoint-every", "10"]) == 0
    history = json.loads((out / "history.json").read_text())
    assert history["loss"][-1] < 0.7 * history["loss"][0]
    assert (out / "checkpoints" / "step_00000030.pt").is_file()
    # Asking for more steps with --resume continues from step 30 (the loss history keeps its first 30 steps).
    assert main([*base, "--steps", "32", "--resume"]) == 0
    resumed = json.loads((out / "history.json").read_text())
    assert resumed["step"] == list(range(1, 33)) and resumed["loss"][:30] == history["loss"]


@pytest.mark.slow
def test_finetune_on_a_csv(pretrained, tmp_path, capsys):
    rows = ["text,label"] + [f"{s} loves {o} .,pos" for s in SUBJECTS for o in OBJECTS[:3]]
    rows += [f"{s} hates {o} .,neg" for s in SUBJECTS for o in OBJECTS[3:]]
    csv = tmp_path / "task.csv"
    csv.write_text("\n".join(rows))
    out = tmp_path / "ft"
    argv = ["finetune", "--checkpoint", str(pretrained / "bert"), "--task", str(csv), "--out", str(out)]
    assert main(argv + ["--steps", "3", "--batch-size", "4", "--no-progress"]) == 0
    assert "validation accuracy" in capsys.readouterr().out
    head = load_model(out)
    assert type(head).__name__ == "BertForSequenceClassification" and head.num_labels == 2
    assert json.loads((out / "labels.json").read_text()) == ["neg", "pos"]
    # The body started from the pre-trained weights: the word embeddings moved only a little.
    body = load_model(pretrained / "bert")
    emb_pre, emb_ft = body.bert.embeddings.word.weight, head.bert.embeddings.word.weight
    assert (emb_ft - emb_pre).abs().max() < 0.05 < emb_pre.abs().max()


@pytest.mark.slow
def test_generate_gpt_is_seeded(pretrained, capsys):
    argv = ["generate", "--checkpoint", str(pretrained / "gpt"), "--prompt", "the cat", "--max-new-tokens", "5"]
    outs = []
    for seed in ("1", "1", "2"):
        assert main([*argv, "--seed", seed, "--top-k", "50", "--top-p", "0.95"]) == 0
        outs.append(capsys.readouterr().out)
    assert outs[0] == outs[1] and outs[0].startswith("the cat")
    assert len(outs[0].strip()) > len("the cat")
    assert main([*argv, "--temperature", "0"]) == 0
    assert capsys.readouterr().out.startswith("the cat")


@pytest.mark.slow
def test_generate_seq2seq(pretrained, capsys):
    argv = ["generate", "--checkpoint", str(pretrained / "seq2seq"), "--prompt", "the cat eats fish ."]
    assert main([*argv, "--max-new-tokens", "6"]) == 0
    out = capsys.readouterr().out
    assert out.endswith("\n") and "[CLS]" not in out and "[SEP]" not in out


def test_missing_file_and_empty_corpus(tmp_path, capsys):
    argv = ["pretrain", "--model", "bert", "--steps", "1", "--out", str(tmp_path / "o"), "--no-progress"]
    assert main([*argv, "--text", str(tmp_path / "missing.txt")]) == 1
    assert "no text file at" in capsys.readouterr().err
    (tmp_path / "empty.txt").write_text("\n   \n\n")
    assert main([*argv, "--text", str(tmp_path / "empty.txt")]) == 1
    assert "is empty" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
    assert main(["generate", "--checkpoint", str(tmp_path / "nothing"), "--prompt", "x"]) == 1
    assert "no checkpoint" in capsys.readouterr().err


@pytest.mark.slow
def test_wrong_model_type_for_a_command(pretrained, tmp_path, capsys):
    argv = ["finetune", "--checkpoint", str(pretrained / "gpt"), "--task", "sentiment", "--out", str(tmp_path)]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "'gpt'" in err and "'bert'" in err
    assert main(["generate", "--checkpoint", str(pretrained / "bert"), "--prompt", "x"]) == 1
    assert "holds a 'bert' model" in capsys.readouterr().err


def test_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as e:
        main(["pretrain", "--model", "bert", "--steps", "1", "--out", "x"])  # neither --text nor --toyworld
    assert e.value.code == 2
    with pytest.raises(SystemExit):
        main(["pretrain", "--model", "t5", "--text", "f", "--steps", "1", "--out", "x"])
    assert "invalid choice" in capsys.readouterr().err


@pytest.mark.slow
def test_toyworld_pretraining_and_task(tmp_path, capsys):
    out = tmp_path / "tw"
    assert main(["pretrain", "--model", "bert", "--toyworld", "40", "--steps", "2", "--out", str(out), *TINY]) == 0
    vocab = json.loads((out / "tokenizer" / "tokenizer.json").read_text())["model"]["vocab"]
    assert "birthplace" in vocab or "born" in vocab  # the tokenizer was trained on ToyWorld text
    argv = ["finetune", "--checkpoint", str(out), "--task", "nli", "--toyworld", "12", "--out", str(tmp_path / "ft")]
    assert main([*argv, "--steps", "2", "--batch-size", "4", "--no-progress"]) == 0
    assert "nli (3 labels)" in capsys.readouterr().out
    assert json.loads((tmp_path / "ft" / "labels.json").read_text()) == ["entailment", "neutral", "contradiction"]
    assert main(["finetune", "--checkpoint", str(out), "--task", "no_such_task", "--out", str(tmp_path / "x")]) == 1
    assert "neither a built-in task" in capsys.readouterr().err


def test_compile_flag_reaches_the_training_config(tmp_path, text_file, monkeypatch):
    import selfsup.cli

    seen = []

    def fake_train(model, batches, config, **kwargs):
        seen.append(config)
        raise KeyboardInterrupt  # stop before any training: only the config is under test

    monkeypatch.setattr(selfsup.cli, "train", fake_train)
    base = ["pretrain", "--model", "gpt", "--text", str(text_file), "--steps", "2", "--out", str(tmp_path / "m")]
    for flag, want in (([], False), (["--compile"], True)):
        with pytest.raises(KeyboardInterrupt):
            main(base + TINY + flag)
        assert seen[-1].compile is want
