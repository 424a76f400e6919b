"""Training-schedule counters kept as buffers, so that every checkpoint holds them.

Step counters, annealing progress and training phases decide what the next batch does
(alternating GAN updates, DANN's reversal weight, TimeGAN's discriminator cadence). In plain
attributes they are lost when ``--resume`` rebuilds the model from a checkpoint; as buffers of a
:class:`ScheduleState` they travel with the weights. Runs saved before a counter existed load
with its initial value (inference never reads them).
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn


class ScheduleState(nn.Module):
    """Named scalar counters: ``ScheduleState(step=0, lambd=0.0)``; ints stay int64."""

    def __init__(self, **initial: int | float) -> None:
        super().__init__()
        for name, value in initial.items():
            dtype = torch.int64 if isinstance(value, int) else torch.float64
            self.register_buffer(name, torch.tensor(value, dtype=dtype))

    def get(self, name: str) -> Any:
        return self._buffers[name].item()

    def set(self, name: str, value: int | float) -> None:
        self._buffers[name].fill_(value)

    def add(self, name: str, value: int | float = 1) -> None:
        self._buffers[name].add_(value)

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any,
                              **kwargs: Any) -> None:
        for name, buf in self._buffers.items():  # absent in older runs: keep the initial value
            state_dict.setdefault(prefix + name, buf.detach().clone())
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
