"""The `selfsup` command line: pre-train a model, fine-tune a BERT checkpoint, generate text; grade exercises.

    selfsup pretrain --model {bert,gpt,seq2seq} (--text FILE | --toyworld N) --steps S --out DIR
    selfsup finetune --checkpoint DIR --task {sentiment,nli,nsp,FILE.csv} --out DIR2
    selfsup generate --checkpoint DIR --prompt "..." [--max-new-tokens N --temperature T --top-k K --top-p P]
    selfsup grade {release,collect,autograde,feedback,export} ...   (the instructor's steps, selfsup.grading)
    selfsup check NOTEBOOK                                            (a student's run of the visible tests)

A thin layer: the tokenizers, collators, models and the training loop live in their modules. A model folder
holds `tokenizer/`, `model.pt` (a checkpoint `load_model` rebuilds) and `history.json`. Every command runs
under torchrun as well, since the training goes through `selfsup.train.train`.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from selfsup.checkpoint import load_model, save_checkpoint
from selfsup.train import History, TrainConfig, resolve_device, train

MODELS = ("bert", "gpt", "seq2seq")
# Sizes for a laptop CPU: "tiny" trains in seconds, "small" in minutes.
SIZES = {
    "tiny": {"d_model": 64, "n_heads": 4, "n_layers": 2, "d_ff": 256},
    "small": {"d_model": 256, "n_heads": 4, "n_layers": 4, "d_ff": 1024},
}
TOYWORLD_TASKS = {"sentiment": ("text", None), "nli": ("premise", "hypothesis"), "nsp": ("sentence_a", "sentence_b")}


def _is_rank0() -> bool:
    # Under torchrun every rank runs this script; only the first one writes files and prints.
    return int(os.environ.get("RANK", 0)) == 0


def _read_corpus(args: argparse.Namespace) -> list[str]:
    """Non-blank lines of --text FILE, or --toyworld N sentences of ToyWorld."""
    if args.text is not None:
        path = Path(args.text)
        if not path.is_file():
            raise FileNotFoundError(f"no text file at {path}")
        lines, source = path.read_text(encoding="utf-8").splitlines(), str(path)
    else:
        from selfsup.data import ToyWorld

        if args.toyworld < 1:
            raise ValueError(f"--toyworld {args.toyworld} must be a number of sentences >= 1")
        lines, source = ToyWorld(seed=args.seed).sentences(args.toyworld), "ToyWorld"
    lines = [line.strip() for line in lines if line.strip()]
    if not lines:
        raise ValueError(f"the corpus {source} is empty: it has no non-blank line to train on")
    return lines


def _pretraining_setup(args: argparse.Namespace, lines: list[str]) -> tuple[Any, torch.nn.Module, list, Any]:
    """(tokenizer, model, examples, collator) for the chosen model, all from the corpus lines."""
    from selfsup.data.collate import CausalLMCollator, MLMCollator, Seq2SeqCollator
    from selfsup.tokenizer import train_bpe, train_wordpiece

    size, seq = SIZES[args.size], args.seq_len
    if args.model == "gpt":
        from selfsup.gpt import GPT, GPTConfig

        tok = train_bpe(lines, vocab_size=args.vocab_size, max_len=seq)
        # Documents joined by <|endoftext|> and cut into blocks of seq tokens, as GPT-2 was trained.
        stream = [t for line in lines for t in tok(line)["input_ids"] + [tok.eos_token_id]]
        # A block needs two tokens to hold one next-token target.
        examples = [stream[i : i + seq] for i in range(0, len(stream), seq) if len(stream[i : i + seq]) >= 2]
        model = GPT(GPTConfig(vocab_size=len(tok), max_len=seq, **size))
        return tok, model, examples, CausalLMCollator(pad_id=tok.pad_token_id)
    tok = train_wordpiece(lines, vocab_size=args.vocab_size, max_len=seq)
    if args.model == "bert":
        from selfsup.bert import BertConfig, BertForPretraining

        examples = tok(lines, truncation=True, max_length=seq)["input_ids"]
        model = BertForPretraining(BertConfig(vocab_size=len(tok), max_len=seq, pad_token_id=tok.pad_token_id, **size))
        # MLM alone, as RoBERTa: plain text has no documents for NSP.
        return tok, model, examples, MLMCollator(tok)
    from selfsup.seq2seq import Seq2Seq, Seq2SeqConfig

    # BART-style text infilling; [CLS] and [SEP] serve as bos / eos around both sides.
    examples = tok(lines, add_special_tokens=False, truncation=True, max_length=seq - 2)["input_ids"]
    n_layers = size["n_layers"]
    config = Seq2SeqConfig(
        vocab_size=len(tok),
        d_model=size["d_model"],
        n_heads=size["n_heads"],
        d_ff=size["d_ff"],
        n_encoder_layers=n_layers,
        n_decoder_layers=n_layers,
        max_len=seq,
        pad_token_id=tok.pad_token_id,
        decoder_start_token_id=tok.cls_token_id,
        eos_token_id=tok.sep_token_id,
    )
    collator = Seq2SeqCollator(
        tok.pad_token_id,
        "infilling",
        mask_token_id=tok.mask_token_id,
        bos_id=tok.cls_token_id,
        eos_id=tok.sep_token_id,
        max_len=seq,
    )
    return tok, Seq2Seq(config), examples, collator


def _train_config(args: argparse.Namespace) -> TrainConfig:
    return TrainConfig(
        max_steps=args.steps,
        lr=args.lr,
        warmup_steps=min(args.warmup, args.steps),
        grad_accum=args.grad_accum,
        checkpoint_every=args.checkpoint_every,
        seed=args.seed,
        compile=args.compile,
    )


def _save(out: Path, tok: Any, model: torch.nn.Module, history: History, extra: dict[str, Any]) -> None:  # noqa: ANN401
    """Write the model folder: tokenizer/, model.pt, history.json."""
    from selfsup.tokenizer import save_tokenizer

    out.mkdir(parents=True, exist_ok=True)
    save_tokenizer(tok, out / "tokenizer")
    save_checkpoint(out / "model.pt", model, step=len(history.step), extra={"history": history.to_dict(), **extra})
    (out / "history.json").write_text(json.dumps(history.to_dict()))


def cmd_pretrain(args: argparse.Namespace) -> int:
    """Train a tokenizer on the corpus, then the model; save both into --out."""
    lines = _read_corpus(args)
    torch.manual_seed(args.seed)
    tok, model, examples, collator = _pretraining_setup(args, lines)
    loader = DataLoader(examples, batch_size=args.batch_size, shuffle=True, collate_fn=collator)
    out = Path(args.out)
    history = train(
        model,
        loader,
        _train_config(args),
        device=args.device,
        progress=not args.no_progress,
        checkpoint_dir=out / "checkpoints" if (args.checkpoint_every or args.resume) else None,
        resume=args.resume,
    )
    if _is_rank0():
        _save(out, tok, model.cpu(), history, {"command": "pretrain", "model": args.model})
        print(
            f"pre-trained {args.model} for {args.steps} steps: loss {history.loss[0]:.3f} -> {history.loss[-1]:.3f}; "
            f"saved to {out}"
        )
    return 0


def _task_rows(args: argparse.Namespace) -> tuple[list, list, list[str]]:
    """(train rows, validation rows, label names); a row is (text, text_pair or None, label id)."""
    if args.task in TOYWORLD_TASKS:
        from selfsup.data import ToyWorld

        first, second = TOYWORLD_TASKS[args.task]
        n = args.toyworld
        dd = getattr(ToyWorld(seed=args.seed), args.task)(n, max(1, n // 5), max(1, n // 5))
        rows = {
            split: [(r[first], r[second] if second else None, r["label"]) for r in dd[split]]
            for split in ("train", "validation")
        }
        return rows["train"], rows["validation"], list(dd["train"].features["label"].names)
    path = Path(args.task)
    if not path.is_file():
        raise FileNotFoundError(
            f"--task {args.task!r} is neither a built-in task {sorted(TOYWORLD_TASKS)} nor an existing CSV file"
        )
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames or not {"text", "label"} <= set(reader.fieldnames):
            raise ValueError(f"{path} needs a header with columns text and label (found {reader.fieldnames})")
        records = [r for r in reader if (r["text"] or "").strip()]
    if len(records) < 2:
        raise ValueError(f"{path} has {len(records)} labelled rows; fine-tuning needs at least 2")
    raw = [r["label"].strip() for r in records]
    names = sorted(set(raw), key=lambda s: (not s.isdigit(), int(s) if s.isdigit() else 0, s))
    ids = {name: i for i, name in enumerate(names)}
    rows = [(r["text"], r.get("text_pair") or None, ids[lab]) for r, lab in zip(records, raw, strict=True)]
    # Every tenth row is held out for validation (all rows train when there are fewer than ten).
    val = [r for i, r in enumerate(rows) if i % 10 == 9]
    return [r for i, r in enumerate(rows) if i % 10 != 9], val, names


class _ClassificationCollator:
    """Tokenize (text[, text_pair], label) rows into a padded batch for BertForSequenceClassification."""

    def __init__(self, tok: Any, max_len: int) -> None:  # noqa: ANN401
        self.tok, self.max_len = tok, max_len

    def __call__(self, rows: Sequence[tuple]) -> dict[str, torch.Tensor]:
        texts = [r[0] for r in rows]
        pairs = [r[1] or "" for r in rows] if any(r[1] is not None for r in rows) else None
        enc = self.tok(texts, pairs, padding=True, truncation=True, max_length=self.max_len, return_tensors="pt")
        batch = {k: enc[k] for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc}
        batch["labels"] = torch.tensor([r[2] for r in rows], dtype=torch.long)
        return batch


@torch.no_grad()
def accuracy(model: torch.nn.Module, batches: DataLoader) -> float:
    """Share of rows whose argmax logit is the label."""
    device = next(model.parameters()).device
    correct = total = 0
    for batch in batches:
        batch = {k: v.to(device) for k, v in batch.items()}
        labels = batch.pop("labels")
        correct += int((model(**batch).logits.argmax(-1) == labels).sum())
        total += len(labels)
    return correct / max(total, 1)


def cmd_finetune(args: argparse.Namespace) -> int:
    """Fine-tune the BERT body of a checkpoint folder with a fresh classification head; save into --out."""
    from selfsup.heads import BertForSequenceClassification
    from selfsup.tokenizer import load_tokenizer

    source = Path(args.checkpoint)
    body = load_model(source, model_type="bert")
    tok = load_tokenizer(source / "tokenizer")
    train_rows, val_rows, names = _task_rows(args)
    torch.manual_seed(args.seed)
    model = BertForSequenceClassification.from_pretrained_body(body.bert, num_labels=len(names))
    collate = _ClassificationCollator(tok, body.config.max_len)
    loader = DataLoader(train_rows, batch_size=args.batch_size, shuffle=True, collate_fn=collate)
    val = DataLoader(val_rows, batch_size=args.batch_size, collate_fn=collate) if val_rows else None
    history = train(
        model,
        loader,
        _train_config(args),
        eval_batches=val,
        eval_fn=(lambda m: {"accuracy": accuracy(m, val)}) if val else None,
        device=args.device,
        progress=not args.no_progress,
    )
    if _is_rank0():
        out = Path(args.out)
        _save(out, tok, model.cpu(), history, {"command": "finetune", "task": args.task, "labels": names})
        (out / "labels.json").write_text(json.dumps(names))
        score = f"validation accuracy {history.eval[-1]['accuracy']:.3f}" if val else "no validation rows"
        print(f"fine-tuned on {args.task} ({len(names)} labels) for {args.steps} steps: {score}; saved to {out}")
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    """Continue a prompt with a GPT checkpoint, or transform it with a seq2seq one; print the text."""
    from selfsup.tokenizer import load_tokenizer

    source = Path(args.checkpoint)
    model = load_model(source)
    model_type = model.config.model_type
    if model_type not in ("gpt", "seq2seq"):
        raise ValueError(f"generate needs a 'gpt' or 'seq2seq' checkpoint, but {source} holds a {model_type!r} model")
    tok = load_tokenizer(source / "tokenizer")
    device = resolve_device(args.device)
    model.to(device)
    if model_type == "gpt":
        # An empty prompt starts from <|endoftext|>, the token every document follows.
        ids = tok(args.prompt)["input_ids"] or [tok.eos_token_id]
        generator = torch.Generator(device=device).manual_seed(args.seed)
        out = model.generate(
            torch.tensor([ids], device=device),
            args.max_new_tokens,
            temperature=args.temperature,
            top_k=args.top_k,
            top_p=args.top_p,
            generator=generator,
        )
    else:  # greedy, from the prompt wrapped as in pre-training
        ids = [tok.cls_token_id, *tok(args.prompt, add_special_tokens=False)["input_ids"], tok.sep_token_id]
        out = model.generate(torch.tensor([ids], device=device), max_new_tokens=args.max_new_tokens)
    print(tok.decode(out[0].tolist(), skip_special_tokens=True))
    return 0


def cmd_grade(args: argparse.Namespace) -> int:
    """One step of the instructor's grading workflow; the work is done in `selfsup.grading`."""
    from selfsup.grading.course import load_course

    course = load_course(Path(args.root) if args.root else None)
    if args.step == "release":
        from selfsup.grading.release import release

        for path in release(course, args.assignments):
            print(f"released {path.relative_to(course.root)}")
        return 0
    if args.step == "collect":
        from selfsup.grading.collect import collect

        roster = Path(args.roster) if args.roster else None
        report = collect(course, Path(args.submissions), args.assignment, roster)
        for student, files in report.students.items():
            print(f"collected {student}: {', '.join(files)}")
        for line in report.skipped:
            print(f"skipped {line}")
        for line in report.unmatched:
            print(f"not in the roster: {line}")
        print(f"{len(report.students)} submissions of {args.assignment} in {course.collected.relative_to(course.root)}")
        return 0
    if args.step == "autograde":
        from selfsup.grading.autograde import Limits
        from selfsup.grading.batch import autograde
        from selfsup.grading.sandbox import SandboxLimits, SandboxUnavailable

        box = SandboxLimits(memory_mb=args.memory_mb, processes=args.max_processes, output_kb=args.output_kb)
        limits = Limits(
            student_seconds=args.time_limit, cell_seconds=args.cell_timeout, sandbox=None if args.unsandboxed else box
        )
        if args.unsandboxed:
            print(
                "WARNING: --unsandboxed: every student's code runs as you, with your files (the gradebook and the "
                "hidden tests included), your network and no limit but time. Grade only code you trust this way.",
                file=sys.stderr,
            )
        try:
            if args.scheduler is not None or args.workers:
                from selfsup.grading.distributed import autograde_distributed

                done = autograde_distributed(
                    course,
                    args.assignments,
                    args.student,
                    limits,
                    scheduler=args.scheduler,
                    workers=args.workers or args.jobs,
                    on_result=lambda r: print(r.line()),
                )
            else:
                done = autograde(
                    course, args.assignments, args.student, limits, jobs=args.jobs, on_result=lambda r: print(r.line())
                )
        except SandboxUnavailable as e:
            print(f"selfsup grade autograde: error: {e}", file=sys.stderr)
            return 2
        failed = [r for r in done if r.status == "error"]
        print(f"graded {len(done)} submissions; {len(failed)} could not be graded (status error)")
        return 1 if failed else 0
    if args.step == "feedback":
        from selfsup.grading.feedback import feedback

        pages = feedback(course, args.assignments, args.student)
        print(f"wrote {len(pages)} feedback pages in {course.feedback.relative_to(course.root)}")
        return 0
    from selfsup.grading.export import export

    out = Path(args.out) if args.out else course.state / "grades.csv"
    print(f"wrote {len(export(course, out, args.assignments))} rows to {out}")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    """Run a notebook's visible tests in a fresh kernel: 0 all passed, 1 one failed, 2 not checkable."""
    from selfsup.grading.check import NotebookUnreadable, check_notebook

    try:
        report = check_notebook(Path(args.notebook), time_limit=args.time_limit, cell_timeout=args.cell_timeout)
    except NotebookUnreadable as e:
        print(f"selfsup check: error: {e}", file=sys.stderr)
        return 2
    print("\n".join(report.lines()))
    return 0 if report.passed else 1


def _add_training_args(p: argparse.ArgumentParser, steps: int, lr: float) -> None:
    p.add_argument("--steps", type=int, default=steps, help=f"optimizer updates (default {steps})")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=lr, help=f"peak learning rate (default {lr})")
    p.add_argument("--warmup", type=int, default=10, help="warmup steps before the cosine decay (default 10)")
    p.add_argument("--grad-accum", type=int, default=1)
    p.add_argument("--checkpoint-every", type=int, default=None, help="also write resumable checkpoints")
    p.add_argument("--device", default="auto", help="auto (CUDA, else MPS, else CPU), cpu, cuda, cuda:1, mps")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--compile", action="store_true", help="torch.compile the model (pays on a GPU, not on a CPU)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `selfsup` and its sub-commands."""
    parser = argparse.ArgumentParser(prog="selfsup", description="Self-supervised learning, from BERT to GPT.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("pretrain", help="train a tokenizer and a model on raw text")
    p.add_argument("--model", choices=MODELS, required=True)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--text", help="a UTF-8 text file, one sentence or paragraph a line")
    src.add_argument("--toyworld", type=int, metavar="N", help="N sentences of generated ToyWorld text")
    p.add_argument("--out", required=True, help="folder for tokenizer/, model.pt and history.json")
    p.add_argument("--size", choices=tuple(SIZES), default="tiny")
    p.add_argument("--seq-len", type=int, default=64, help="tokens per example, also the model's max_len")
    p.add_argument("--vocab-size", type=int, default=1000)
    p.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in OUT/checkpoints")
    _add_training_args(p, steps=200, lr=5e-4)
    p.set_defaults(func=cmd_pretrain)

    p = sub.add_parser("finetune", help="fine-tune a pre-trained BERT folder for sequence classification")
    p.add_argument("--checkpoint", required=True, help="a folder written by `selfsup pretrain --model bert`")
    p.add_argument(
        "--task", required=True, help=f"a built-in ToyWorld task {sorted(TOYWORLD_TASKS)} or a CSV with text,label"
    )
    p.add_argument("--toyworld", type=int, default=1000, metavar="N", help="training rows of a ToyWorld task")
    p.add_argument("--out", required=True)
    _add_training_args(p, steps=100, lr=1e-4)
    p.set_defaults(func=cmd_finetune, resume=False)

    p = sub.add_parser("generate", help="continue a prompt (gpt) or transform it (seq2seq, greedy)")
    p.add_argument("--checkpoint", required=True, help="a folder written by `selfsup pretrain`")
    p.add_argument("--prompt", required=True)
    p.add_argument("--max-new-tokens", type=int, default=30)
    p.add_argument("--temperature", type=float, default=1.0, help="0 = greedy (gpt only)")
    p.add_argument("--top-k", type=int, default=None)
    p.add_argument("--top-p", type=float, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("grade", help="grade a class: release, collect, autograde, feedback, export")
    steps = p.add_subparsers(dest="step", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--root", help="the course repository (default: the nearest folder with nbgrader_config.py)")
    some = argparse.ArgumentParser(add_help=False, parents=[common])
    some.add_argument("assignments", nargs="*", help="assignment ids, e.g. 01-masking (default: all)")
    steps.add_parser("release", parents=[some], help="regenerate exercises/ from solutions/ with nbgrader")
    s = steps.add_parser("collect", parents=[common], help="copy a folder or a Canvas/Moodle zip of submissions")
    s.add_argument("submissions", help="a folder with one sub-folder per student, or a zip from Canvas or Moodle")
    s.add_argument("--assignment", required=True, help="the assignment the submissions are for")
    s.add_argument("--roster", help="CSV with student_id and lms_id and/or name, to name students by their ids")
    s = steps.add_parser("autograde", parents=[some], help="grade every collected submission")
    s.add_argument("--student", action="append", help="only this student (repeatable)")
    s.add_argument("--time-limit", type=float, default=300.0, help="seconds per student and notebook (default 300)")
    s.add_argument("--cell-timeout", type=int, default=None, help="seconds per cell (default: nbgrader_config.py)")
    s.add_argument("--jobs", type=int, default=1, help="submissions graded at once (default 1)")
    s.add_argument(
        "--unsandboxed",
        action="store_true",
        help="run students' kernels without the bubblewrap sandbox (as you, with your files and network)",
    )
    s.add_argument("--memory-mb", type=int, default=4096, help="memory of a kernel's process, MiB (default 4096)")
    s.add_argument("--max-processes", type=int, default=128, help="processes and threads a kernel may have")
    s.add_argument("--output-kb", type=int, default=1024, help="output kept per notebook, KB (default 1024)")
    s.add_argument(
        "--scheduler",
        help="grade on a Dask cluster: the scheduler's address (tcp://host:8786), or 'local' for a local cluster "
        "of --jobs workers; the gradebook should then be PostgreSQL (SELFSUP_GRADEBOOK_URL)",
    )
    s.add_argument("--workers", type=int, default=0, help="workers of the local Dask cluster (default: --jobs)")
    s = steps.add_parser("feedback", parents=[some], help="HTML feedback per student, hidden tests left out")
    s.add_argument("--student", action="append", help="only this student (repeatable)")
    s = steps.add_parser("export", parents=[some], help="write a CSV of scores per student and assignment")
    s.add_argument("--out", help="the CSV file (default grading/grades.csv)")
    p.set_defaults(func=cmd_grade)

    p = sub.add_parser("check", help="run a notebook's visible tests in a fresh kernel; exit 1 if one fails")
    p.add_argument("notebook", help="an exercise notebook, e.g. exercises/01-masking/01-masking.ipynb")
    p.add_argument("--time-limit", type=float, default=600.0, help="seconds for the whole notebook (default 600)")
    p.add_argument("--cell-timeout", type=int, default=120, help="seconds per cell (default 120)")
    p.set_defaults(func=cmd_check)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run `selfsup ...`; returns the exit status (1 with a one-line message for a user error)."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (FileNotFoundError, ValueError) as e:
        print(f"selfsup {args.command}: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
