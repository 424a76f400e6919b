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
