"""Turning SequenceData into tensors and loaders: scale, batch (the split: data/split.py)."""
from __future__ import annotations

import dataclasses

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ..data.container import SequenceData
from ..data.scaler import Scaler
from ..data.store import is_lazy
from ..errors import FactorseqError


class WindowDataset(Dataset):
    """Indexable windows; ``__getitems__`` batches in one gather (no per-item collate).
    Windows on disk (``data.store``) are read batch by batch, the rest is held as tensors.

    A batch is a dict of ``x`` (B, T, D) float32 and whatever the data carries: ``y``/``y_mask``,
    ``seq_id``, ``domain``, extras, and ``x_mask`` (B, T, D) float32, 1.0 = observed, 0.0 =
    never observed (``--impute mask``; held as bool, made float per batch so that a loss can
    weight its terms by it directly)."""

    def __init__(self, data: SequenceData) -> None:
        arrays = data.arrays()
        self.lazy = {k: v for k, v in arrays.items() if is_lazy(v)}
        self.tensors = {k: torch.as_tensor(np.ascontiguousarray(v))
                        for k, v in arrays.items()
                        if k not in self.lazy and np.asarray(v).dtype.kind in "biuf"}
        self.n = data.n_windows

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        out = {k: torch.as_tensor(v[i]) for k, v in self.lazy.items()}
        return _float_mask({**out, **{k: v[i] for k, v in self.tensors.items()}})

    def __getitems__(self, idx: list[int]) -> dict[str, torch.Tensor]:
        ix = torch.as_tensor(idx, dtype=torch.long)
        out = {k: torch.as_tensor(v[np.asarray(idx)]) for k, v in self.lazy.items()}
        return _float_mask({**out, **{k: v[ix] for k, v in self.tensors.items()}})


def _float_mask(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    if "x_mask" in batch:
        batch["x_mask"] = batch["x_mask"].to(torch.float32)
    return batch


def check_missing_support(model_cls: type, data: SequenceData) -> None:
    """Windows with gaps (``x_mask``, from ``--impute mask``) train only models whose loss
    honours the mask (``handles_missing``); the others are refused before any work."""
    if data.x_mask is None or getattr(model_cls, "handles_missing", False):
        return
    from ..registry import registry_items

    able = [n for n, c in registry_items().items() if getattr(c, "handles_missing", False)]
    name = getattr(model_cls, "name", model_cls.__name__)
    raise FactorseqError(f"model {name} cannot train on data with gaps (--impute mask keeps "
                         f"{int((~data.x_mask).sum()):,} missing values): its loss cannot leave "
                         f"them out; impute first with --impute linear, ffill or mean, or use "
                         f"a model that handles missing values ({', '.join(able) or 'none'})")


def collate_batch(batch):
    """The dataset already returns a batched dict; single items are stacked."""
    if isinstance(batch, dict):
        return batch
    return {k: torch.stack([b[k] for b in batch]) for k in batch[0]}


def scaled(data: SequenceData, scaler: Scaler) -> SequenceData:
    test = scaled(data.test, scaler) if data.test is not None else None
    return dataclasses.replace(data, x=scaler.transform(data.x), test=test)


def make_loader(data: SequenceData, batch_size: int, *, shuffle: bool, seed: int,
                batch_sampler=None, num_workers: int = 0) -> DataLoader:
    ds = WindowDataset(data)
    if batch_sampler is not None:
        return DataLoader(ds, batch_sampler=batch_sampler, collate_fn=collate_batch,
                          num_workers=num_workers)
    g = torch.Generator().manual_seed(seed)
    return DataLoader(ds, batch_size=batch_size, shuffle=shuffle, generator=g,
                      collate_fn=collate_batch, num_workers=num_workers,
                      drop_last=False)


def check_size(n_train: int, batch_size: int) -> None:
    if n_train < batch_size:
        raise FactorseqError(f"the training split has {n_train} windows, fewer than the batch "
                             f"size {batch_size}; use a smaller --batch-size or more data")
