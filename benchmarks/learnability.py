"""Does ToyWorld support "pre-training helps"? MLM pre-training vs random init, fine-tuned with few labels.

A tiny BERT (pre-LN, d_model 128, 2 layers) is pre-trained by masked language modelling on ToyWorld documents
cut into 64-token pieces (1200 steps of 32 pieces, 25 % masked: about a minute on 2 CPU cores), then
fine-tuned with 500 labels on sentiment (Case 1), NLI (Case 3) and span QA (Case 4); the same architecture
fine-tuned from random initialisation, with the same steps and seed, is the baseline; each run tries two
learning rates and keeps the one best on the validation split.
Sentiment is validated and tested on adjectives that no labelled review contains (their polarity shows only
in the pre-training text, from which any document holding a validation or test review is dropped); QA is
validated and tested on wordings of the asked facts that no training context uses; an NLI label turns on
whether the premise's paraphrase states the hypothesis's relation (see `selfsup.data.tasks.nli`).
Each seed pre-trains its own model and draws its own labelled sets. The design check: pre-trained beats
scratch on every task by more than the spread over seeds, and neither is perfect; the script exits with 1
when a task fails it.

    .venv/bin/python benchmarks/learnability.py [--seeds 3] [--pretrain-steps N] [--quick]

Writes benchmarks/results/learnability.json and prints a table.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import random
import statistics
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from selfsup.bert import BertConfig, BertForPretraining
from selfsup.data import ToyWorld, majority_baseline
from selfsup.data.collate import MLMCollator, pad_sequences
from selfsup.heads import BertForQuestionAnswering, BertForSequenceClassification, best_span
from selfsup.tokenizer import load_tokenizer, save_tokenizer, train_wordpiece
from selfsup.train import TrainConfig, train

RESULTS = Path(__file__).parent / "results" / "learnability.json"
TASKS = ("sentiment", "nli", "qa")
# Span QA learns its two position heads more slowly than a classifier learns one label (measured: at 300 steps
# pre-trained and scratch were 0.52 and 0.42 on held-out wordings, at 1000 steps 0.54 and 0.38). NLI at 300
# steps left some pre-trained seeds half-way (0.70 on one of six); at 600 all six were 0.90-0.94.
FINETUNE_STEPS = {"sentiment": 300, "nli": 600, "qa": 1000}


def model_config(vocab_size: int, args: argparse.Namespace) -> BertConfig:
    """The tiny BERT used throughout (pre-LN by default: it pre-trains faster in a minute than post-LN)."""
    return BertConfig(
        vocab_size=vocab_size,
        d_model=args.d_model,
        n_heads=4,
        n_layers=args.n_layers,
        d_ff=4 * args.d_model,
        max_len=160,
        norm_first=not args.post_ln,
    )


def pack(docs: list[list[str]], tok: object, seq_len: int, nsp_rng: random.Random | None = None) -> list[dict]:
    """Documents cut at sentence ends into pieces of at most `seq_len` word pieces, as BERT's sentence pairs.

    A piece of two or more sentences becomes `[CLS] A [SEP] B [SEP]` (its first half of sentences, then the
    rest) with token_type_ids 0 then 1, as in BERT's pre-training, so that NLI and QA, which put their second
    text in segment B, fine-tune a model that has seen pairs. Short pieces cost less per step than whole
    padded documents, so a minute of pre-training sees more text. With `nsp_rng`, each piece's B segment is
    replaced, with probability 1/2, by the B segment of another piece (next_sentence_label 1), as in BERT.
    """
    pieces: list[list[list[int]]] = []
    for doc in docs:
        piece: list[list[int]] = []
        for sentence in doc:
            ids = tok(sentence, add_special_tokens=False)["input_ids"][: seq_len - 3]
            if piece and sum(map(len, piece)) + len(ids) > seq_len - 3:
                pieces.append(piece)
                piece = []
            piece.append(ids)
        pieces.append(piece)
    halves = []
    for piece in pieces:
        k = max(1, len(piece) // 2)
        halves.append(([t for sent in piece[:k] for t in sent], [t for sent in piece[k:] for t in sent]))
    out = []
    for i, (a, b) in enumerate(halves):
        example: dict = {}
        if nsp_rng is not None:  # BERT's next-sentence prediction: half the B segments come from another piece
            example["next_sentence_label"] = int(nsp_rng.random() < 0.5)
            if example["next_sentence_label"]:
                j = (i + nsp_rng.randrange(1, len(halves))) % len(halves)
                b = halves[j][1] or halves[j][0]
                b = b[: max(0, seq_len - 3 - len(a))]
        first = [tok.cls_token_id, *a, tok.sep_token_id]
        second = [*b, tok.sep_token_id] if b else []
        example.update(input_ids=first + second, token_type_ids=[0] * len(first) + [1] * len(second))
        out.append(example)
    return out


def _contains_any(text: str, sentences: set[str]) -> bool:
    """Whether a sentence of the set is in the text, whole or as a clause ("... and <sentence>")."""
    return any(" " + s in text for s in sentences)


def pretrain(docs: list[list[str]], tok: object, seed: int, args: argparse.Namespace, held_out: set[str]) -> tuple:
    """MLM on ToyWorld documents (none containing a held-out sentence); returns the model and a summary."""
    torch.manual_seed(seed)
    kept = [d for d in docs if not _contains_any(" " + " ".join(d), held_out)]
    ids = pack(kept, tok, args.seq_len, random.Random(seed) if args.nsp else None)
    g = torch.Generator().manual_seed(seed)
    collator = MLMCollator(tok, mlm_probability=args.mlm_probability, generator=g, with_nsp=args.nsp)
    loader = DataLoader(ids, batch_size=args.pretrain_batch, shuffle=True, generator=g, collate_fn=collator)
    model = BertForPretraining(model_config(len(tok), args))
    t0 = time.perf_counter()
    cfg = TrainConfig(
        max_steps=args.pretrain_steps,
        lr=args.pretrain_lr,
        betas=(0.9, args.pretrain_beta2),
        warmup_steps=args.pretrain_steps // 10,
        seed=seed,
    )
    hist = train(model, loader, cfg, device=args.device, progress=False)
    info = {
        "mlm_loss_last": statistics.mean(hist.loss[-20:]),
        "mlm_loss_curve": [round(statistics.mean(hist.loss[i : i + 20]), 3) for i in range(0, len(hist.loss), 50)],
        "seconds": time.perf_counter() - t0,
        "documents_dropped_for_leakage": len(docs) - len(kept),
        "sequences": len(ids),
    }
    return model, info


def encode(task: str, rows: object, tok: object) -> list[dict]:
    """Tokenize a split into feature dicts (pairs as sentence A / B; QA spans mapped to word pieces)."""
    out = []
    for r in rows:
        if task == "sentiment":
            enc = tok(r["text"], truncation=True, max_length=160)
            out.append({**enc, "labels": r["label"]})
        elif task == "nli":
            enc = tok(r["premise"], r["hypothesis"], truncation=True, max_length=160)
            out.append({**enc, "labels": r["label"]})
        else:
            enc = tok(r["question"], r["context"], truncation=True, max_length=160, return_offsets_mapping=True)
            seq = enc.sequence_ids()
            a, b = r["answer_start"], r["answer_start"] + len(r["answer_text"])
            toks = [i for i, (s, (x, y)) in enumerate(zip(seq, enc["offset_mapping"], strict=True)) if s == 1]
            start = next(i for i in toks if enc["offset_mapping"][i][0] <= a < enc["offset_mapping"][i][1])
            end = next(i for i in toks if enc["offset_mapping"][i][0] < b <= enc["offset_mapping"][i][1])
            out.append(
                {
                    "input_ids": enc["input_ids"],
                    "token_type_ids": enc["token_type_ids"],
                    "start_positions": start,
                    "end_positions": end,
                }
            )
    return out


def collate(examples: list[dict]) -> dict[str, torch.Tensor]:
    """Pad a list of feature dicts into a batch."""
    ids, mask = pad_sequences([e["input_ids"] for e in examples], 0)
    types, _ = pad_sequences([e["token_type_ids"] for e in examples], 0)
    batch = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
    for key in ("labels", "start_positions", "end_positions"):
        if key in examples[0]:
            batch[key] = torch.tensor([e[key] for e in examples])
    return batch


@torch.no_grad()
def accuracy(task: str, model: torch.nn.Module, feats: list[dict]) -> float:
    """Accuracy (classification) or exact span match (QA) on encoded examples."""
    model.eval()
    right = 0
    device = next(model.parameters()).device
    for i in range(0, len(feats), 64):
        batch = {k: v.to(device) for k, v in collate(feats[i : i + 64]).items()}
        if task == "qa":
            out = model(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
            context = (batch["token_type_ids"] == 1) & (batch["attention_mask"] == 1)
            start, end = best_span(out.start_logits, out.end_logits, context)
            right += ((start == batch["start_positions"]) & (end == batch["end_positions"])).sum().item()
        else:
            out = model(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
            right += (out.logits.argmax(-1) == batch["labels"]).sum().item()
    return right / len(feats)


def finetune(
    task: str, body: BertForPretraining | None, tok: object, data: dict, seed: int, lr: float, args: argparse.Namespace
) -> dict[str, float]:
    """Fine-tune a head on body (or on a random body when None); return validation and test accuracy."""
    torch.manual_seed(seed)
    cls = BertForQuestionAnswering if task == "qa" else BertForSequenceClassification
    extra = () if task == "qa" else (3 if task == "nli" else 2,)
    model = cls.from_pretrained_body(body, *extra) if body is not None else cls(model_config(len(tok), args), *extra)
    g = torch.Generator().manual_seed(seed)
    loader = DataLoader(data["train"], batch_size=16, shuffle=True, generator=g, collate_fn=collate)
    steps = args.finetune_steps or FINETUNE_STEPS[task]
    cfg = TrainConfig(max_steps=steps, lr=lr, warmup_steps=steps // 10, seed=seed)
    train(model, loader, cfg, device=args.device, progress=False)
    return {split: accuracy(task, model, data[split]) for split in ("validation", "test")}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line (defaults are the settings of the reported run)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--first-seed", type=int, default=0, help="run seeds first-seed .. first-seed + seeds - 1")
    ap.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS)
    ap.add_argument("--d-model", type=int, default=128)
    ap.add_argument("--n-layers", type=int, default=2)
    ap.add_argument("--post-ln", action="store_true", help="post-LN as in the original BERT (slower to pre-train)")
    ap.add_argument("--n-docs", type=int, default=6000, help="pre-training documents per seed")
    ap.add_argument("--seq-len", type=int, default=64, help="documents are cut into pieces of this many word pieces")
    ap.add_argument("--pretrain-batch", type=int, default=32)
    ap.add_argument("--pretrain-steps", type=int, default=1200)
    ap.add_argument("--pretrain-lr", type=float, default=2e-3)
    ap.add_argument("--pretrain-beta2", type=float, default=0.999, help="AdamW's beta2 for pre-training")
    ap.add_argument("--mlm-probability", type=float, default=0.25)
    ap.add_argument("--nsp", action="store_true", help="pre-train with next-sentence prediction as well as MLM")
    ap.add_argument(
        "--finetune-steps", type=int, default=None, help=f"the same for every task (default per task: {FINETUNE_STEPS})"
    )
    ap.add_argument(
        "--finetune-lrs",
        type=float,
        nargs="+",
        default=[3e-4, 1e-3],
        help="learning rates tried for every (task, init, seed); the best on validation is reported on test",
    )
    ap.add_argument("--n-train", type=int, default=500, help="labelled training examples per task")
    ap.add_argument("--n-val", type=int, default=200)
    ap.add_argument("--n-test", type=int, default=500)
    ap.add_argument("--device", default="cpu", help="cpu (the design target: 2 cores) or cuda")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--cache", type=Path, default=None, help="keep generated data and the tokenizer in this folder")
    ap.add_argument("--quick", action="store_true", help="a smoke run: few steps, one seed (the check may fail)")
    args = ap.parse_args(argv)
    if args.quick:
        args.seeds, args.pretrain_steps, args.finetune_steps = 1, 20, 20
    return args


def load_task(tw: ToyWorld, task: str, seed: int, args: argparse.Namespace) -> object:
    """A task's splits for one seed; sentiment and QA are validated and tested on wordings training lacks."""
    sizes = (args.n_train, args.n_val, args.n_test)
    if task in ("sentiment", "qa"):
        return getattr(tw, task)(*sizes, seed=100 + seed, held_out=True)
    return getattr(tw, task)(*sizes, seed=100 + seed)


def _data_version() -> str:
    """A digest of the generators' source, so that a cache never serves data an older ToyWorld made."""
    import selfsup.data

    digest = hashlib.sha256()
    for f in sorted(Path(selfsup.data.__file__).parent.glob("*.py")):
        digest.update(f.read_bytes())
    return digest.hexdigest()[:10]


def seed_data(tw: ToyWorld, seed: int, args: argparse.Namespace) -> dict:
    """One seed's labelled splits (as lists of rows), majority baselines and pre-training documents.

    With --cache DIR they are read from, or written to, a file there, so that repeated runs (a sweep over
    settings, a machine without `datasets`' pickling) skip generation; the data are the same either way.
    """
    name = f"seed{seed}_n{args.n_train}-{args.n_val}-{args.n_test}_docs{args.n_docs}_{_data_version()}.json.gz"
    path = args.cache / name if args.cache else None
    if path is not None and path.exists():
        with gzip.open(path, "rt", encoding="utf-8") as f:
            return json.load(f)
    suites = {task: load_task(tw, task, seed, args) for task in TASKS}
    data = {
        "tasks": {task: {split: dd[split].to_list() for split in dd} for task, dd in suites.items()},
        "baselines": {task: majority_baseline(dd) for task, dd in suites.items()},
        "docs": tw.documents(args.n_docs, seed=seed),
    }
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with gzip.open(path, "wt", encoding="utf-8") as f:
            json.dump(data, f)
    return data


def shared_tokenizer(tw: ToyWorld, args: argparse.Namespace) -> object:
    """The WordPiece tokenizer every run shares (deterministic; cached with --cache)."""
    if args.cache and (args.cache / "tokenizer" / "tokenizer.json").exists():
        return load_tokenizer(args.cache / "tokenizer")
    tok = train_wordpiece(tw.sentences(30000), vocab_size=1000)
    if args.cache:
        save_tokenizer(tok, args.cache / "tokenizer")
    return tok


def gap_and_spread(pre: list[float], scr: list[float]) -> tuple[float, float]:
    """Mean pre-trained minus mean scratch score, and the larger of the two ranges over seeds."""
    return statistics.mean(pre) - statistics.mean(scr), max(max(pre) - min(pre), max(scr) - min(scr))


def check_passes(pre: list[float], scr: list[float]) -> bool:
    """The design check on one task: the gap exceeds the spread, and neither model is perfect on any seed."""
    gap, spread = gap_and_spread(pre, scr)
    return gap > spread and max(pre + scr) < 1.0


def main(argv: list[str] | None = None) -> int:
    """Run the comparison, print the table, write the JSON report; 1 when a task fails the check."""
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    tw = ToyWorld(seed=0, n_people=100)
    tok = shared_tokenizer(tw, args)
    rows: dict[str, dict[str, list[float]]] = {t: {"pretrained": [], "scratch": []} for t in args.tasks}
    val: dict[str, dict[str, list[float]]] = {t: {"pretrained": [], "scratch": []} for t in args.tasks}
    chosen_lr: dict[str, dict[str, list[float]]] = {t: {"pretrained": [], "scratch": []} for t in args.tasks}
    baselines: dict[str, float] = {}
    pre_info = []
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        data_for_seed = seed_data(tw, seed, args)
        suites = {task: data_for_seed["tasks"][task] for task in args.tasks}
        # The pre-training text must not contain a sentiment review that validation or test asks about.
        held_out = set()
        if "sentiment" in suites:
            held_out = {r["text"] for split in ("validation", "test") for r in suites["sentiment"][split]}
        body, info = pretrain(data_for_seed["docs"], tok, seed, args, held_out)
        pre_info.append(info)
        print(
            f"seed {seed}: pre-trained {args.pretrain_steps} steps in {info['seconds']:.0f} s, "
            f"MLM loss {info['mlm_loss_last']:.3f} ({info['documents_dropped_for_leakage']} documents dropped)",
            flush=True,
        )
        for task, dd in suites.items():
            baselines.setdefault(task, data_for_seed["baselines"][task])
            data = {s: encode(task, dd[s], tok) for s in ("train", "validation", "test")}
            for init in ("pretrained", "scratch"):
                runs = {
                    lr: finetune(task, body if init == "pretrained" else None, tok, data, seed, lr, args)
                    for lr in args.finetune_lrs
                }
                lr = max(runs, key=lambda r: runs[r]["validation"])  # chosen on validation, never on test
                rows[task][init].append(runs[lr]["test"])
                val[task][init].append(runs[lr]["validation"])
                chosen_lr[task][init].append(lr)
                by_lr = ", ".join(f"{r:g} {a['validation']:.3f}" for r, a in runs.items())
                print(
                    f"  {task:9s} {init:10s} lr {lr:g}: val {runs[lr]['validation']:.3f} test {runs[lr]['test']:.3f}"
                    f"  (validation by lr: {by_lr})",
                    flush=True,
                )

    seconds = time.perf_counter() - start
    report = {
        "settings": vars(args),
        "seconds": seconds,
        "pretraining": pre_info,
        "majority_baseline": baselines,
        "tasks": {},
    }
    print(f"\n{'task':10s} {'pre-trained':>18s} {'scratch':>18s} {'gap':>7s} {'spread':>7s} {'baseline':>8s}  ok")
    failed = []
    for task in args.tasks:
        pre, scr = rows[task]["pretrained"], rows[task]["scratch"]
        gap, spread = gap_and_spread(pre, scr)
        ok = check_passes(pre, scr)
        if not ok:
            failed.append(task)
        report["tasks"][task] = {
            "pretrained": pre,
            "scratch": scr,
            "pretrained_mean": statistics.mean(pre),
            "scratch_mean": statistics.mean(scr),
            "validation": val[task],
            "finetune_lr": chosen_lr[task],
            "gap": gap,
            "spread": spread,
            "ok": ok,
        }
        fmt = lambda xs: f"{statistics.mean(xs):.3f} ({min(xs):.2f}-{max(xs):.2f})"  # noqa: E731
        print(
            f"{task:10s} {fmt(pre):>18s} {fmt(scr):>18s} {gap:7.3f} {spread:7.3f} {baselines[task]:8.3f}  "
            f"{'yes' if ok else 'NO'}"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, default=str))
    print(f"\n{seconds:.0f} s in all; wrote {args.out}")
    if failed:
        print(f"FAILED the check (gap > spread, neither perfect): {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
