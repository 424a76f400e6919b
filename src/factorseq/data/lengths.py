"""Entities of different lengths as sequences of one length (``DataConfig.max_length``).

An entity of n rows becomes one sequence of L steps: its first min(n, L) rows, then its last
row repeated (edge padding: every column keeps a value the entity had, categories included),
the padded steps masked. The run keeps the empirical distribution of the training entities'
lengths (JSON: ``{"values": [...], "counts": [...]}``, in ``data_schema["lengths"]``);
sampling draws one length per entity from it and holds each generated sequence's last kept
step after it, the layout the loader gives real entities, so window scores compare like
with like; written as a long table, an entity keeps its first ``length`` steps only.
"""
from __future__ import annotations

from typing import Any

import numpy as np


def pad_entity(table: np.ndarray, length: int) -> tuple[np.ndarray, int]:
    """(window (1, length, D): the first ``length`` rows of ``table`` (n, D), padded with
    its last row, the entity's length min(n, length))."""
    part = table[:length]
    pad = ((0, length - len(part)),) + ((0, 0),) * (table.ndim - 1)
    return np.pad(part, pad, mode="edge")[None], len(part)


def within(lengths: np.ndarray, steps: int) -> np.ndarray:
    """(N, steps) bool: True on the steps that hold an entity's data (t < length)."""
    return np.arange(steps)[None, :] < np.asarray(lengths)[:, None]


def hold_after(x: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Windows (N, T, D) with step t >= length_i replaced by step length_i - 1 (the padding
    :func:`pad_entity` gives real entities)."""
    x, lengths = np.asarray(x), np.asarray(lengths)
    if (lengths >= x.shape[1]).all():  # nothing to hold (windows without lengths)
        return x
    idx = np.minimum(np.arange(x.shape[1])[None, :], lengths[:, None] - 1)
    return x[np.arange(len(x))[:, None], idx]


def distribution(lengths: np.ndarray) -> dict[str, list[int]]:
    """The empirical distribution of ``lengths`` as JSON: distinct values and their counts."""
    values, counts = np.unique(np.asarray(lengths, dtype=np.int64), return_counts=True)
    return {"values": values.tolist(), "counts": counts.tolist()}


def draw(dist: dict[str, Any], n: int, seed: int) -> np.ndarray:
    """``n`` lengths (int64) drawn with replacement from a saved :func:`distribution`,
    seeded: the same (n, seed) give the same lengths."""
    values = np.asarray(dist["values"], dtype=np.int64)
    p = np.asarray(dist["counts"], dtype=np.float64)
    return np.random.default_rng(seed).choice(values, size=int(n), p=p / p.sum())
