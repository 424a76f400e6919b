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


# --- side effects scoped, training without a folder, per-model defaults (issue #11 part 5) ---

def test_fit_restores_threads_warning_filters_and_log_levels(npz, tmp_path):
    import logging
    import warnings

    torch.set_num_threads(1)
    filters = list(warnings.filters)
    levels = {n: logging.getLogger(n).level for n in ("lightning", "lightning.pytorch")}
    fs.fit("vae_dense", fs.DataConfig(source=str(npz)),
           fs.TrainConfig(epochs=1, batch_size=16, threads=2, tensorboard=False), {},
           tmp_path / "r")
    assert torch.get_num_threads() == 1
    assert warnings.filters == filters
    assert {n: logging.getLogger(n).level for n in levels} == levels


def test_fit_without_out_writes_nothing_and_returns_a_usable_run(npz, tmp_path, monkeypatch):
    import tempfile

    cwd, tmp = tmp_path / "cwd", tmp_path / "tmp"
    cwd.mkdir()
    tmp.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.setenv("TMPDIR", str(tmp))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    run = fs.fit("vae_dense", fs.DataConfig(source=str(npz)),
                 fs.TrainConfig(epochs=4, batch_size=16, lr=0.05))
    assert list(cwd.iterdir()) == [] and list(tmp.iterdir()) == []
    assert run.path is None and not run.model.training
    t = run.config["training"]
    assert run.config["status"] == "trained" and t["epochs_run"] == 4
    assert 1 <= t["best_epoch"] <= 4 and np.isfinite(t["best_score"])
    assert run.sample(3).shape == (3, 8, 2)
    with pytest.raises(fs.FactorseqError, match="run directory"):
        fs.fit("vae_dense", fs.DataConfig(source=str(npz)), {"devices": 2})


@dataclasses.dataclass
class _WantsConfig(_NanConfig):
    nan_after: int = 10 ** 9


@register("_wants_defaults")
class _WantsDefaults(_NanModel):
    """Test model with its own training defaults."""

    Config = _WantsConfig
    train_defaults = {"epochs": 3, "batch_size": 8, "early_stopping": False, "patience": 1}


def test_train_defaults_fill_only_what_the_user_left(npz, tmp_path):
    from factorseq.train.config import TrainConfig, effective_train_config

    d = {"epochs": 300, "batch_size": 8}
    assert effective_train_config(d, None).epochs == 300
    assert effective_train_config(d, {"epochs": 5}).epochs == 5
    mixed = effective_train_config(d, TrainConfig(batch_size=64))  # the default value, given
    assert (mixed.epochs, mixed.batch_size) == (300, 64)
    run = fs.fit("_wants_defaults", fs.DataConfig(source=str(npz)),
                 fs.TrainConfig(batch_size=16, tensorboard=False), {}, tmp_path / "r")
    tc = run.config["train_config"]
    assert (tc["epochs"], tc["batch_size"], tc["early_stopping"]) == (3, 16, False)
    assert run.config["training"]["epochs_run"] == 3  # patience 1 would have stopped it


def test_train_defaults_under_the_cli_keys(npz, tmp_path):
    import json

    from clihelp import cli

    out = tmp_path / "r"
    assert cli("train", "_wants_defaults", "--data", npz, "--out", out, "--set",
               "train.tensorboard=false", "--set", "train.batch_size=16", "--epochs", 2) == 0
    tc = json.loads((out / "config.json").read_text())["train_config"]
    assert (tc["epochs"], tc["batch_size"], tc["early_stopping"]) == (2, 16, False)


def test_every_registered_model_has_valid_train_defaults():
    from factorseq.registry import registry_items
    from factorseq.train.fit import train_config_for

    for cls in registry_items().values():
        train_config_for(cls, None)  # a TypeError names the model and the bad keys


def test_max_minutes_is_validated_and_stops_training(npz, tmp_path):
    with pytest.raises(fs.FactorseqError, match="max_minutes must be > 0"):
        fs.fit("vae_dense", fs.DataConfig(source=str(npz)), {"max_minutes": 0})
    run = fs.fit("vae_dense", fs.DataConfig(source=str(npz)),
                 {"epochs": 100000, "batch_size": 16, "max_minutes": 0.02, "early_stopping": False,
                  "tensorboard": False}, {}, tmp_path / "r")
    t = run.config["training"]
    assert t["stopped_by_time"] and t["epochs_run"] < 100000 and t["train_seconds"] < 30


# --- the model's own batches: rounds, processes, workers, heap -------------------------------

def test_batch_plan_splits_rounds_evenly_over_processes():
    from factorseq.batching import NewRound
    from factorseq.train.batches import layout

    started = []
    items = [NewRound([0, 1], lambda: started.append("a")), [2, 3], [4],
             NewRound([5, 6], lambda: started.append("b")), [7]]
    one, starts1 = layout(items, 0, 1)
    assert [b.tolist() for b in one] == [[0, 1], [2, 3], [4], [5, 6], [7]]
    assert sorted(starts1) == [0, 3]
    r0, s0 = layout(items, 0, 2)
    r1, s1 = layout(items, 1, 2)
    # round a: 3 batches padded to 4 (its first repeated); round b: 2 batches
    assert [b.tolist() for b in r0] == [[0, 1], [4], [5, 6]]
    assert [b.tolist() for b in r1] == [[2, 3], [0, 1], [7]]
    assert sorted(s0) == sorted(s1) == [0, 2]  # both processes open a round at the same step
    s0[2]()
    assert started == ["b"]


def _seq_npz(tmp_path, n_seq=12, per=8):
    rng = np.random.default_rng(0)
    seq = np.repeat(np.arange(n_seq), per)
    x = rng.normal(size=(len(seq), 6, 3)) + (seq % 3)[:, None, None]
    p = tmp_path / "seq.npz"
    np.savez(p, data=x.astype(np.float32), seq_id=seq)
    return p


FHVAE_TINY = {"hidden": 6, "layers": 1, "z1_dim": 2, "z2_dim": 2, "sequences_per_round": 2}


def test_fhvae_rounds_start_with_their_batches_even_with_prefetching_workers(tmp_path,
                                                                           monkeypatch):
    from factorseq.models.fhvae import FHVAE

    trained, stale = [], []
    loss = FHVAE.loss

    def checked(self, batch, *a, **kw):
        if self.training:  # every training batch belongs to the round in the table
            table = set(self.round_seq[self.round_seq < 2 ** 62].tolist())
            trained.append(len(batch["x"]))
            if not set(batch["seq_id"].tolist()) <= table:
                stale.append(sorted(set(batch["seq_id"].tolist()) - table))
        return loss(self, batch, *a, **kw)

    monkeypatch.setattr(FHVAE, "loss", checked)
    fs.fit("fhvae", fs.DataConfig(source=str(_seq_npz(tmp_path))),
           {"epochs": 2, "batch_size": 4, "num_workers": 2, "val_fraction": 0.0,
            "tensorboard": False}, FHVAE_TINY, tmp_path / "r")
    assert stale == [] and sum(trained) == 2 * 12 * 8  # every window once per epoch


@pytest.mark.parametrize("trim", [False, True])
def test_heap_trimming_is_opt_in(tmp_path, monkeypatch, trim):
    import factorseq.heap as heap

    calls = []
    monkeypatch.setattr(heap, "_malloc_trim", lambda: lambda pad: calls.append(pad))
    fs.fit("fhvae", fs.DataConfig(source=str(_seq_npz(tmp_path))),
           {"epochs": 1, "batch_size": 4, "trim_heap": trim, "tensorboard": False},
           FHVAE_TINY, tmp_path / "r")
    # on: before each of the 6 rounds of 2 sequences and before the validation pass
    assert len(calls) == (7 if trim else 0)


def test_epochs_of_varying_length_all_train_every_window_and_validate(tmp_path):
    """FHVAE's rounds make each epoch a different number of batches: every epoch still sees
    each training window once and ends with a validation pass."""
    import pandas as pd

    rng = np.random.default_rng(0)
    seq = np.repeat(np.arange(16), rng.integers(3, 15, 16))
    p = tmp_path / "var.npz"
    np.savez(p, data=rng.normal(size=(len(seq), 6, 3)).astype(np.float32), seq_id=seq)
    run = fs.fit("fhvae", fs.DataConfig(source=str(p)),
                 {"epochs": 6, "batch_size": 4, "tensorboard": False, "patience": 100},
                 {**FHVAE_TINY, "sequences_per_round": 3}, tmp_path / "r")
    log = pd.read_csv(tmp_path / "r" / "logs" / "metrics.csv")
    assert sorted(log.dropna(subset=["val_loss"])["epoch"]) == list(range(6))
    assert run.config["training"]["epochs_run"] == 6


def test_threads_default_to_the_cores_the_process_may_use(monkeypatch):
    from factorseq.train.config import TrainConfig, usable_cores

    assert TrainConfig().threads is None  # null: one thread per usable core
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(8)))
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert usable_cores() == 8 and usable_cores(processes=2) == 4 and usable_cores(16) == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "3")  # what side-by-side benchmark lanes set
    assert usable_cores() == 3 and usable_cores(processes=2) == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "junk")
    assert usable_cores() == 8
