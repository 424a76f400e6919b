"""A model's own batch sampler, made safe for the trainer: epochs, rounds, several processes.

:class:`BatchPlan` materialises one epoch of the model's sampler at a time (the batches are a
function of the epoch when the sampler has ``set_epoch``), splits it over the data-parallel
processes and remembers at which batch each round opens (``batching.NewRound``). The
:class:`StartRounds` callback starts a round right before its first batch is trained, in the
training process: prefetching workers only ever see index lists.

With several processes every round is padded (its first batches repeated, as torch's
``DistributedSampler`` pads) to a multiple of the process count and dealt out in turn, so all
processes train the same round at the same time: their round state (set in closed form from
the same weights) agrees, and so do their gradients' meaning.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from lightning.pytorch.callbacks import Callback

from ..batching import unwrap
from ..heap import release_free_heap


def _rank_and_world() -> tuple[int, int]:
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def layout(items: list[Any], rank: int, world: int
           ) -> tuple[list[np.ndarray], dict[int, Callable[[], None]]]:
    """This process's batches of one epoch and {batch index: start of the round it opens}.

    ``items``: what the model's sampler yielded (index batches, some of them ``NewRound``).
    Batches before the first ``NewRound`` form a round without a start."""
    rounds: list[tuple[Callable[[], None] | None, list[np.ndarray]]] = []
    for item in items:
        batch, start = unwrap(item)
        if start is not None or not rounds:
            rounds.append((start, []))
        rounds[-1][1].append(batch)
    mine: list[np.ndarray] = []
    starts: dict[int, Callable[[], None]] = {}
    for start, batches in rounds:
        n = math.ceil(len(batches) / world) * world  # pad by repeating the round's first ones
        padded = [batches[i % len(batches)] for i in range(n)]
        if start is not None:
            starts[len(mine)] = start
        mine.extend(padded[rank::world])
    return mine, starts


class BatchPlan:
    """The batch sampler the trainer's loader uses when the model brings its own.

    The epoch is the trainer's (``trainer``, set by :class:`StartRounds`; 0 before). An epoch
    is drawn from the model's sampler once and cached, so ``len`` and iteration agree and a
    stateful sampler advances once per epoch."""

    def __init__(self, sampler: Any) -> None:
        self.sampler = sampler
        self.trainer: Any = None
        self._cache: tuple[int, list[np.ndarray], dict[int, Callable[[], None]]] | None = None

    def _current(self) -> tuple[list[np.ndarray], dict[int, Callable[[], None]]]:
        e = int(self.trainer.current_epoch) if self.trainer is not None else 0
        if self._cache is None or self._cache[0] != e:
            if callable(getattr(self.sampler, "set_epoch", None)):
                self.sampler.set_epoch(e)
            self._cache = (e, *layout(list(self.sampler), *_rank_and_world()))
        return self._cache[1], self._cache[2]

    def __len__(self) -> int:
        return len(self._current()[0])

    def __iter__(self):
        for batch in self._current()[0]:
            yield batch.tolist()

    def opens_round(self, batch_idx: int) -> bool:
        return batch_idx in self._current()[1]

    def before_batch(self, batch_idx: int) -> None:
        """Start the round that batch ``batch_idx`` of the current epoch opens, if any."""
        start = self._current()[1].get(batch_idx)
        if start is not None:
            start()


class StartRounds(Callback):
    """Ties a :class:`BatchPlan` to the trainer: its epoch, and round starts before batches."""

    def __init__(self, plan: BatchPlan) -> None:
        self.plan = plan

    def setup(self, trainer, pl_module, stage: str) -> None:
        self.plan.trainer = trainer

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        self.plan.before_batch(batch_idx)


class TrimHeap(Callback):
    """Opt-in (``train.trim_heap``): hand freed C heap back to the OS (``factorseq.heap``)
    before each validation pass and before each new round of a batch plan, where training
    frees large transient buffers; keeps the resident size flat on big corpora."""

    def __init__(self, plan: BatchPlan | None = None) -> None:
        self.plan = plan

    def on_validation_epoch_start(self, trainer, pl_module) -> None:
        release_free_heap()

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        if self.plan is not None and self.plan.opens_round(batch_idx):
            release_free_heap()
