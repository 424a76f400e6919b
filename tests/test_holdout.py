"""Held-out data is held out (issue #22): privacy scores of a run on one long series must be
able to fail. The run's held-out windows share no time step with its training windows, so
a generator that copies its training windows (exactly, with noise, or learnt by heart) is
flagged. Written against the public API that existed before the time split, so that they
fail on the random split of stride-1 windows and pass on the time blocks."""
from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch

import factorseq as fs
from factorseq.metrics.privacy import privacy_scores, run_split
from factorseq.models.base import ModelConfig, SequenceModel
from factorseq.registry import register

NOISE = 0.01  # RMS noise of the noisy copies, in the table's units (its values span ~[0, 1])
TRAIN = {"epochs": 1, "batch_size": 32, "tensorboard": False, "progress": False}


def smooth_walk(rows: int, seed: int = 0) -> np.ndarray:
    """(rows, 2) a smooth stationary series: white noise through a Gaussian filter of width
    20 steps, min-max scaled to [0, 1] per feature. Consecutive steps differ by ~0.005 RMS,
    so a window and its one-step shift are closer than NOISE; a later stretch of it is a
    fresh draw of the same process."""
    rng = np.random.default_rng(seed)
    k = np.exp(-0.5 * (np.arange(-60, 61) / 20.0) ** 2)
    e = rng.normal(size=(rows + len(k) - 1, 2))
    x = np.stack([np.convolve(e[:, j], k, mode="valid") for j in range(2)], 1)
    return (x - x.min(0)) / (x.max(0) - x.min(0))


@pytest.fixture(scope="module")
def walk_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("walk") / "walk.csv"
    pd.DataFrame(smooth_walk(3000), columns=["a", "b"]).to_csv(path, index=False)
    return path


def split_of(csv, model="_memorise", train=TRAIN, **model_keys):
    run = fs.fit(model, fs.DataConfig(source=str(csv), window=12), dict(train), model_keys)
    return run, run_split(run)


def test_exact_copies_of_training_windows_are_flagged(walk_csv):
    _, (train, held) = split_of(walk_csv)
    # a generator that copies: training windows drawn with replacement (~63 % of them)
    copies = train[np.random.default_rng(0).integers(0, len(train), len(train))]
    out = privacy_scores(train, held, copies, seeds=[0, 1, 2])
    assert out["membership_auc"]["mean"] >= 0.95
    assert out["dcr"]["share_below_holdout_p5"] == pytest.approx(1.0)


def test_noisy_copies_are_flagged(walk_csv):
    _, (train, held) = split_of(walk_csv)
    noisy = train + NOISE * np.random.default_rng(1).normal(size=train.shape)
    out = privacy_scores(train, held, noisy.astype(np.float32), seeds=[0, 1, 2])
    assert out["dcr"]["share_below_holdout_p5"] >= 0.9
    assert out["membership_auc"]["mean"] >= 0.9


def test_fresh_series_is_not_flagged(walk_csv):
    """The other side: windows of a new draw of the same process do not leak."""
    _, (train, held) = split_of(walk_csv)
    series = smooth_walk(3000, seed=5)
    fresh = np.lib.stride_tricks.sliding_window_view(series, 12, axis=0).transpose(0, 2, 1)
    out = privacy_scores(train, held, fresh[::3].astype(np.float32), seeds=[0, 1, 2])
    assert out["dcr"]["share_below_holdout_p5"] < 0.3
    assert out["membership_auc"]["mean"] < 0.7


# ----------------------------------------------- a tiny model that learns its windows by heart
@dataclasses.dataclass
class _MemoConfig(ModelConfig):
    slots: int = 256


@register("_memorise")
class _Memorise(SequenceModel):
    """Test model: ``slots`` windows learnt by gradient descent so that every slot sits on a
    training window and every training window has a slot on it (the two halves of a Chamfer
    distance); sampling returns slots. With as many slots as windows it memorises them."""

    Config = _MemoConfig
    capabilities = frozenset({"generates"})
    monitor_early_stopping = False

    def __init__(self, config):
        super().__init__(config)
        c = config
        self.table = torch.nn.Parameter(0.5 + 0.1 * torch.randn(
            c.slots, c.seq_len, c.n_features, generator=torch.Generator().manual_seed(0)))

    def loss(self, batch):
        x = batch["x"]
        d = torch.cdist(x.flatten(1), self.table.flatten(1)) ** 2  # (B, slots)
        return {"loss": d.min(1).values.mean() + d.min(0).values.mean()}

    def _sample(self, n, y, generator):
        idx = torch.randint(0, self.config.slots, (n,), generator=generator)
        return self.table.detach()[idx]


def test_a_model_that_memorises_is_flagged(tmp_path):
    path = tmp_path / "small.csv"
    pd.DataFrame(smooth_walk(400, seed=2), columns=["a", "b"]).to_csv(path, index=False)
    train_cfg = {**TRAIN, "epochs": 100, "batch_size": 128, "lr": 0.02, "scaler": "none"}
    run, (train, held) = split_of(path, train=train_cfg, slots=400)
    synthetic = run.sample(len(train), seed=0)
    out = privacy_scores(train, held, synthetic, seeds=[0, 1, 2])
    assert out["dcr"]["share_below_holdout_p5"] >= 0.9
    assert out["membership_auc"]["mean"] >= 0.9
