"""Turning SequenceData into tensors and loaders: scale, batch (the split: data/split.py)."""
from __future__ import annotations

import dataclasses

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ..data.container import SequenceData
from ..data.scaler import Scaler, TabularScaler, make_scaler
from ..data.store import is_lazy
from ..errors import FactorseqError
from ..models.base import ATTRIBUTES


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
    """Windows with gaps (``x_mask``: ``--impute mask``, or the padding of entities shorter
    than ``--max-length``) train only models whose loss honours the mask
    (``handles_missing``); the others are refused before any work."""
    if data.x_mask is None or getattr(model_cls, "handles_missing", False):
        return
    from ..registry import registry_items

    able = ", ".join(n for n, c in registry_items().items()
                     if getattr(c, "handles_missing", False)) or "none"
    name = getattr(model_cls, "name", model_cls.__name__)
    if data.lengths is not None:
        short = int((data.lengths < data.seq_len).sum())
        raise FactorseqError(f"model {name} cannot train on entities of different lengths "
                             f"(--max-length {data.seq_len} pads {short:,} shorter entities): "
                             f"its loss cannot leave the padded steps out; use a model that "
                             f"handles masked steps ({able})")
    raise FactorseqError(f"model {name} cannot train on data with gaps (--impute mask keeps "
                         f"{int((~data.x_mask).sum()):,} missing values): its loss cannot leave "
                         f"them out; impute first with --impute linear, ffill or mean, or use "
                         f"a model that handles missing values ({able})")


def collate_batch(batch):
    """The dataset already returns a batched dict; single items are stacked."""
    if isinstance(batch, dict):
        return batch
    return {k: torch.stack([b[k] for b in batch]) for k in batch[0]}


def scaled(data: SequenceData, scaler: Scaler) -> SequenceData:
    """``data`` as the model sees it: windows (and their gaps' mask) transformed, attributes
    encoded (``meta["n_attributes"]``, their width, fills the model config)."""
    test = scaled(data.test, scaler) if data.test is not None else None
    mask = None if data.x_mask is None else scaler.transform_mask(data.x_mask)
    attrs, meta = data.attributes, data.meta
    if attrs is not None:
        attrs = scaler.transform_attributes(attrs)
        meta = {**meta, "n_attributes": attrs.shape[1]}
    return dataclasses.replace(data, x=scaler.transform(data.x), x_mask=mask, test=test,
                               attributes=attrs, meta=meta,
                               feature_names=scaler.get_feature_names_out(data.feature_names))


def fit_scaler(kind: str, data: SequenceData, train: SequenceData) -> Scaler:
    """The ``kind`` scaler fitted on the training windows ``train`` of ``data``; wrapped in a
    :class:`TabularScaler` when the data has categorical columns or attributes."""
    cats, specs = data.meta.get("categories") or {}, data.meta.get("attributes") or []
    if not cats and not specs:
        return make_scaler(kind).fit(train.x, train.x_mask)
    names = list(data.feature_names)
    scaler = TabularScaler(make_scaler(kind), [names.index(c) for c in cats],
                           data.n_features, [s["kind"] for s in specs])
    scaler.fit(train.x, train.x_mask)
    if train.attributes is not None:
        scaler.fit_attributes(train.attributes)
    return scaler


def check_support(model_cls: type, data: SequenceData) -> None:
    """What ``data`` needs of a model: gaps (``handles_missing``), attributes."""
    check_missing_support(model_cls, data)
    check_attribute_support(model_cls, data)


def check_attribute_support(model_cls: type, data: SequenceData) -> None:
    """Data with per-entity attributes trains only models that condition on them."""
    if data.attributes is None or ATTRIBUTES in model_cls.capabilities:
        return
    from ..registry import registry_items

    able = sorted(n for n, c in registry_items().items() if ATTRIBUTES in c.capabilities)
    names = ", ".join(a["name"] for a in data.meta.get("attributes", []))
    raise FactorseqError(f"model {model_cls.name} cannot condition on attributes ({names}); "
                         f"models that can: {', '.join(able) or 'none'}")


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
