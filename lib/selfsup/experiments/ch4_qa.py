"""Closed-book question answering with chapter 4's encoder-decoder: "where was x born ?" with no document.

data = {split: qa_examples(dd[split], tok)}               questions, and answers written as sentences
acc, loss = finetune_fact_qa(model, data, tok, s, seed=0)  fine-tune the whole model; exact match of the city
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader

from selfsup.data.collate import pad_sequences
from selfsup.experiments.ch4_seq2seq import cycle
from selfsup.masking import IGNORE_INDEX
from selfsup.seq2seq import Seq2Seq
from selfsup.train import TrainConfig, train


@dataclass(frozen=True)
class QASettings:
    """Fine-tuning for closed-book QA: few, gentle steps. 50 people's questions are quickly learned by heart,
    and a longer or faster fine-tune then answers every new person with a training person's sentence."""

    steps: int = 30
    lr: float = 3e-4
    batch_size: int = 16


def qa_examples(split: object, tok: object) -> list[dict]:
    """Questions as input_ids; the answer written as the sentence that states it ("x was born in lyon .").

    The answer is a whole sentence so that fine-tuning asks for the kind of text that pre-training taught the
    decoder to write; only its city is new to the model, and it can come from nowhere but memory.
    """
    out = []
    for ex in split:
        sentence = f"{ex['person']} was born in {ex['answer']} ."
        out.append(
            {"source": tok(ex["question"])["input_ids"], "target": tok(sentence)["input_ids"], "answer": ex["answer"]}
        )
    return out


def qa_batch(examples: list[dict], pad_id: int) -> dict[str, torch.Tensor]:
    """Pad questions and answers into input_ids, attention_mask and labels (-100 on padding)."""
    input_ids, attention_mask = pad_sequences([e["source"] for e in examples], pad_id)
    labels, label_mask = pad_sequences([e["target"] for e in examples], pad_id)
    return {
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "labels": labels.masked_fill(label_mask == 0, IGNORE_INDEX),
    }


def city_of(text: str) -> str:
    """The place a written answer names: the words after "born in", up to the full stop ("" if none)."""
    head, found, tail = text.partition("born in ")
    return tail.split(".")[0].strip() if found else ""  # decoding writes "lyon." as well as "lyon ."


@torch.no_grad()
def answers(model: Seq2Seq, examples: list[dict], tok: object, max_new_tokens: int = 16) -> list[str]:
    """The model's greedy answer to each question, as text ("x was born in lyon .")."""
    batch = qa_batch(examples, tok.pad_token_id)
    out = model.generate(batch["input_ids"], batch["attention_mask"], max_new_tokens=max_new_tokens)
    return [tok.decode(row, skip_special_tokens=True).strip() for row in out.tolist()]


def exact_match(model: Seq2Seq, examples: list[dict], tok: object) -> float:
    """The share of questions whose answer names exactly the right city."""
    said = answers(model, examples, tok)
    return sum(city_of(a) == e["answer"] for a, e in zip(said, examples, strict=True)) / max(len(examples), 1)


def finetune_fact_qa(
    model: Seq2Seq, data: dict[str, list[dict]], tok: object, s: QASettings, seed: int, device: str = "cpu"
) -> tuple[float, list[float]]:
    """Fine-tune the whole model on the train questions; exact match on test and the loss per step."""
    torch.manual_seed(seed)
    loader = DataLoader(
        data["train"],
        batch_size=s.batch_size,
        shuffle=True,
        generator=torch.Generator().manual_seed(seed),
        collate_fn=lambda b: qa_batch(b, tok.pad_token_id),
    )
    cfg = TrainConfig(max_steps=s.steps, lr=s.lr, warmup_steps=s.steps // 10, seed=seed)
    hist = train(model, cycle(loader, s.steps), cfg, device=device, progress=False)
    model.cpu().eval()
    return exact_match(model, data["test"], tok), [round(x, 4) for x in hist.loss]
