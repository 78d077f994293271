"""Batches of examples of similar length, so that little of each padded batch is padding.

Pieces of text vary in length (ToyWorld's pre-training pieces: 17 to 64 tokens, 41 on average), and a batch is
padded to its longest member. Drawn at random, a batch of 32 is about a third padding, and a transformer spends
as much on a padded position as on a real one. `LengthGroupedBatches` shuffles, cuts the order into groups of
`group` batches, sorts each group by length and deals it out as batches, then shuffles the batches: every epoch
still visits every example once in a random order of batches, but each batch holds neighbours in length
(`transformers` calls this `group_by_length`).

    batches = LengthGroupedBatches([len(e["input_ids"]) for e in examples], batch_size=32, generator=g)
    loader = DataLoader(examples, batch_sampler=batches, collate_fn=collator, generator=g)
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch


class LengthGroupedBatches:
    """A batch sampler: lists of indices, each batch of similar lengths, in a random order every epoch."""

    def __init__(
        self, lengths: Sequence[int], batch_size: int, generator: torch.Generator | None = None, group: int = 16
    ) -> None:
        """lengths: one per example; group: how many batches share one sort (more: less padding, less mixing)."""
        if batch_size < 1 or group < 1:
            raise ValueError(f"batch_size and group must be at least 1, got {batch_size} and {group}")
        if len(lengths) == 0:
            raise ValueError("no examples to batch: lengths is empty")
        self.lengths, self.batch_size, self.generator, self.group = list(lengths), batch_size, generator, group

    def __len__(self) -> int:
        """Batches per epoch (the last one may be short)."""
        return -(-len(self.lengths) // self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        """One epoch; the random draws happen at the first next(), as a DataLoader's shuffling sampler's do."""
        order = torch.randperm(len(self.lengths), generator=self.generator).tolist()
        span = self.batch_size * self.group
        batches = []
        for start in range(0, len(order), span):
            chunk = sorted(order[start : start + span], key=lambda i: -self.lengths[i])
            batches += [chunk[k : k + self.batch_size] for k in range(0, len(chunk), self.batch_size)]
        for b in torch.randperm(len(batches), generator=self.generator).tolist():
            yield batches[b]


__all__ = ["LengthGroupedBatches"]
