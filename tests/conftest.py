"""Shared fixtures: tiny data on disk, a single torch thread (2 shared CPU cores)."""
from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest
import torch

os.environ.setdefault("MPLBACKEND", "Agg")
torch.set_num_threads(1)


@pytest.fixture
def tiny_csv(tmp_path):
    """A user's own long table: 300 daily rows of 3 features with a time column."""
    rng = np.random.default_rng(0)
    t = np.arange(300)
    df = pd.DataFrame({
        "date": pd.date_range("2020-01-01", periods=300, freq="D").astype(str),
        "a": np.sin(t / 7.0) + 0.1 * rng.standard_normal(300),
        "b": np.cos(t / 11.0) + 0.1 * rng.standard_normal(300),
        "c": t / 300.0 + 0.05 * rng.standard_normal(300),
    })
    path = tmp_path / "mine.csv"
    df.to_csv(path, index=False)
    return path


@pytest.fixture
def tiny_npz(tmp_path):
    rng = np.random.default_rng(1)
    t = np.arange(16)
    x = np.stack([np.sin(t[None, :] * rng.uniform(0.1, 0.5, (200, 1)) + rng.uniform(0, 3, (200, 1)))
                  for _ in range(2)], axis=-1)
    path = tmp_path / "win.npz"
    np.savez(path, data=x.astype(np.float32))
    return path
