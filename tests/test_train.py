"""The trainer's mechanics with the Python API: early stopping, best weights, divergence,
small data, determinism, config plumbing."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

import factorseq as fs
from factorseq.config import parse_sets, require
from factorseq.models.base import ModelConfig, SequenceModel
from factorseq.registry import register


@dataclasses.dataclass
class _NanConfig(ModelConfig):
    nan_after: int = 20

    def __post_init__(self) -> None:
        super().__post_init__()
        require(self.nan_after >= 0, "nan_after must be >= 0")


@register("_nan_after")
class _NanModel(SequenceModel):
    """Test model: a linear autoencoder whose loss turns NaN after ``nan_after`` steps."""

    Config = _NanConfig

    def __init__(self, config):
        super().__init__(config)
        self.lin = torch.nn.Linear(config.n_features, config.n_features)
        self.steps = 0

    def loss(self, batch):
        x = batch["x"]
        self.check_input(x)
        if self.training:
            self.steps += 1
        err = ((self.lin(x) - x) ** 2).mean()
        if self.steps > self.config.nan_after:
            err = err * float("nan")
        return {"loss": err}

    def encode(self, x):
        return self.lin(x)

    def decode(self, z):
        return z

    def sample(self, n, generator=None):
        return torch.rand(n, self.config.seq_len, self.config.n_features, generator=generator)


@pytest.fixture
def npz(tmp_path):
    rng = np.random.default_rng(0)
    p = tmp_path / "d.npz"
    np.savez(p, data=rng.random((64, 8, 2)).astype(np.float32))
    return p


def test_divergence_keeps_the_last_good_checkpoint(npz, tmp_path):
    out = tmp_path / "run"
    with pytest.raises(fs.FactorseqError, match="diverged.*kept the last good checkpoint"):
        fs.fit("_nan_after", fs.DataConfig(source=str(npz)),
               fs.TrainConfig(epochs=50, batch_size=16, tensorboard=False),
               {"nan_after": 10}, out)
    run = fs.load(out)
    assert run.config["status"] == "diverged"
    assert all(torch.isfinite(p).all() for p in run.model.parameters())


def test_dataset_smaller_than_batch_is_a_user_error(npz, tmp_path):
    with pytest.raises(fs.FactorseqError, match="fewer than the batch size"):
        fs.fit("vae_conv", fs.DataConfig(source=str(npz)), fs.TrainConfig(batch_size=512),
               {}, tmp_path / "r")


def test_early_stopping_really_stops(npz, tmp_path):
    run = fs.fit("vae_dense", fs.DataConfig(source=str(npz)),
                 fs.TrainConfig(epochs=500, batch_size=16, patience=2, lr=0.05,
                                tensorboard=False, lr_patience=1), {}, tmp_path / "r")
    t = run.config["training"]
    assert t["stopped_early"] and t["epochs_run"] < 500
    assert t["best_epoch"] <= t["epochs_run"]


def test_seeded_training_is_deterministic(npz, tmp_path):
    runs = [fs.fit("vae_conv", fs.DataConfig(source=str(npz)),
                   fs.TrainConfig(epochs=2, batch_size=16, seed=7, tensorboard=False), {},
                   tmp_path / f"r{i}") for i in range(2)]
    a, b = (r.model.state_dict() for r in runs)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert np.array_equal(runs[0].sample(5, seed=1), runs[1].sample(5, seed=1))


def test_set_values_are_typed():
    assert parse_sets(["a=3", "b=1e-3", "c=[[7,4]]", "d=true", "e=hello"]) == {
        "a": 3, "b": 0.001, "c": [[7, 4]], "d": True, "e": "hello"}
    with pytest.raises(fs.FactorseqError):
        parse_sets(["novalue"])
