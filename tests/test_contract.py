"""The model contract, parametrised over every registered model: shapes, loss, save/load
round trip, seeded sampling, shape errors, one optimisation step."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from factorseq import registry
from factorseq.checkpoint import load, save_run
from factorseq.config import build
from factorseq.data.config import DataConfig
from factorseq.data.scaler import MinMaxScaler
from factorseq.errors import FactorseqError, ShapeError
from factorseq.nn.adversarial import optimizer_step
from factorseq.train.config import TrainConfig

NAMES = [n for n in registry.available() if not n.startswith("_")]
T, D, B = 24, 3, 8


def make(name: str):
    cls = registry.get_model_class(name)
    torch.manual_seed(0)
    return cls(build(cls.Config, {"seq_len": T, "n_features": D}))


def batch(model) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    n_classes = getattr(model.config, "n_classes", 2)
    n_seq = getattr(model.config, "n_sequences", None) or 4
    return {
        "x": torch.rand(B, T, D, generator=g),
        "y": torch.randint(0, n_classes, (B,), generator=g),
        "y_mask": torch.arange(B) % 2 == 0,
        "seq_id": torch.arange(B) % min(n_seq, 4),
        "domain": torch.arange(B) % 2,
    }


def test_registry_has_the_foundation_models():
    assert {"vae_dense", "vae_conv", "timevae"} <= set(NAMES)


def test_unknown_model_is_a_user_error():
    with pytest.raises(FactorseqError, match="unknown model"):
        registry.get_model_class("nope")


@pytest.mark.parametrize("name", NAMES)
def test_config_is_a_validated_dataclass(name):
    cls = registry.get_model_class(name)
    assert dataclasses.is_dataclass(cls.Config)
    with pytest.raises(FactorseqError):
        build(cls.Config, {"seq_len": 0, "n_features": D})
    with pytest.raises(FactorseqError, match="unknown"):
        build(cls.Config, {"no_such_key": 1})


@pytest.mark.parametrize("name", NAMES)
def test_loss_is_a_finite_scalar_dict(name):
    model = make(name)
    out = model.loss(batch(model))
    assert "loss" in out and out["loss"].ndim == 0 and torch.isfinite(out["loss"])


@pytest.mark.parametrize("name", NAMES)
def test_bad_shape_names_the_tensor(name):
    model = make(name)
    b = batch(model)
    b["x"] = torch.rand(B, T, D + 1)
    with pytest.raises(ShapeError, match=r"x.*\(8, 24, 4\)|\(8, 24, 4\).*x"):
        model.loss(b)
    with pytest.raises(ShapeError):
        model.encode(torch.rand(T, D))


@pytest.mark.parametrize("name", NAMES)
def test_sampling_shape_and_seeded_determinism(name):
    model = make(name).eval()
    if not model.generative:
        with pytest.raises(FactorseqError):
            model.sample(2)
        return
    with torch.no_grad():
        a = model.sample(5, generator=torch.Generator().manual_seed(3))
        b = model.sample(5, generator=torch.Generator().manual_seed(3))
        c = model.sample(5, generator=torch.Generator().manual_seed(4))
    assert a.shape == (5, T, D)
    assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.parametrize("name", NAMES)
def test_save_load_round_trip(name, tmp_path):
    model = make(name).eval()
    scaler = MinMaxScaler().fit(np.random.default_rng(0).random((10, T, D)))
    schema = {"name": "t", "seq_len": T, "n_features": D, "feature_names": ["a", "b", "c"],
              "meta": {}}
    save_run(tmp_path / "run", model, scaler, schema, DataConfig(source="x"), TrainConfig())
    run = load(tmp_path / "run")
    assert type(run.model) is type(model)
    sd0, sd1 = model.state_dict(), run.model.state_dict()
    assert sd0.keys() == sd1.keys()
    assert all(torch.equal(sd0[k], sd1[k]) for k in sd0)
    x = batch(model)["x"]
    with torch.no_grad():
        torch.manual_seed(0)
        e0 = model.encode(x)
        torch.manual_seed(0)
        e1 = run.model.encode(x)
    flat = lambda e: e if torch.is_tensor(e) else torch.cat(  # noqa: E731
        [t.flatten() for t in (e.values() if isinstance(e, dict) else e) if torch.is_tensor(t)])
    assert torch.allclose(flat(e0), flat(e1))


@pytest.mark.parametrize("name", NAMES)
def test_one_training_step_changes_the_weights(name):
    model = make(name).train()
    b = batch(model)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    groups = model.optimizer_groups()
    opts = {k: torch.optim.Adam(v, lr=1e-2) for k, v in groups.items()}
    if model.manual_optimization:
        terms = model.training_step(b, opts, lambda loss: loss.backward(), 0)
        assert all(np.isfinite(float(v)) for v in terms.values() if np.ndim(v) == 0)
    else:
        optimizer_step(opts["all"], model.loss(b)["loss"], lambda loss: loss.backward())
    after = model.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)
