"""Rounds in a model's own batching: the marker a batch sampler yields when a round opens.

A model may batch its training windows itself (``SequenceModel.make_batch_sampler``): an
iterable of batches (lists or 1-D arrays of window indices). When the batches of a round need
model state set first (FHVAE's mu2 table holds the sequences of the current round), the
sampler yields the round's first batch as :class:`NewRound`, carrying the function that sets
that state. The sampler itself never touches the model: the trainer calls ``start()`` right
before it trains that batch (``train.batches``), so batches prefetched by data-loader workers,
or split over several processes, can never run ahead of the model's state.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import numpy as np


@dataclasses.dataclass(frozen=True)
class NewRound:
    """The first batch of a round; ``start()`` prepares the model for the round's batches."""

    batch: Sequence[int] | Any
    start: Callable[[], None]


def unwrap(item: Any) -> tuple[np.ndarray, Callable[[], None] | None]:
    """(window indices as an int64 array, the round's start or None) of a sampler's item."""
    if isinstance(item, NewRound):
        return np.asarray(item.batch, dtype=np.int64), item.start
    return np.asarray(item, dtype=np.int64), None


def in_order(sampler: Iterable[Any]) -> Iterator[list[int]]:
    """A sampler's batches as one process trains them: each round is started right before its
    first batch is handed out (single-process loops and tests)."""
    for item in sampler:
        batch, start = unwrap(item)
        if start is not None:
            start()
        yield batch.tolist()


class LabelledShare:
    """A batch sampler (the SS-VAE's): index batches over a fixed labelled set ``lab`` and
    unlabelled set ``unl``.

    ``rate`` None: shuffled batches of ``lab`` alone. Otherwise one epoch passes once over the
    unlabelled rows and every batch adds ``round(rate * batch_size)`` labelled rows drawn
    without replacement from a reshuffled cycle through ``lab``.
    """

    def __init__(self, lab: np.ndarray, unl: np.ndarray, batch_size: int, rate: float | None,
                 seed: int) -> None:
        self.lab, self.unl, self.bs, self.rate = lab, unl, batch_size, rate
        self.rng = np.random.default_rng(seed)
        self._cycle: list[int] = []

    def _take(self, k: int) -> list[int]:
        out: list[int] = []
        while len(out) < k:
            if not self._cycle:
                self._cycle = self.rng.permutation(self.lab).tolist()
            out.append(self._cycle.pop())
        return out

    def __len__(self) -> int:
        if self.rate is None:
            return -(-len(self.lab) // self.bs)
        n_unl = max(1, self.bs - max(1, round(self.rate * self.bs)))
        return max(1, -(-len(self.unl) // n_unl))

    def __iter__(self):
        if self.rate is None:
            perm = self.rng.permutation(self.lab)
            for i in range(0, len(perm), self.bs):
                yield perm[i: i + self.bs].tolist()
            return
        n_lab = max(1, round(self.rate * self.bs))
        n_unl = max(1, self.bs - n_lab)
        perm = self.rng.permutation(self.unl)
        for i in range(len(self)):
            yield perm[i * n_unl: (i + 1) * n_unl].tolist() + self._take(n_lab)
