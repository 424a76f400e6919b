"""The model contract, parametrised over every registered model (and the conditional variant
of models whose config makes them conditional): every capability a model declares is called
and checked, every capability it lacks is refused with one clear error; shapes, save/load
round trip, seeded sampling, the Run in the user's units, one optimisation step."""
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
from factorseq.models.base import CAPABILITIES
from factorseq.models.outputs import Codes, Decomposition
from factorseq.nn.adversarial import optimizer_step
from factorseq.train.config import TrainConfig

NAMES = [n for n in registry.available() if not n.startswith("_")]
T, D, B, A = 24, 3, 8, 3
# (name, config overrides): every model, plus configs that switch a capability on
VARIANTS = [(n, {}) for n in NAMES] + [(n, {"conditional": True, "n_classes": 3})
                                        for n in ("gan", "iwgan")] + [
    ("timevae", {"observation_noise": "full"})] + [
    (n, {"n_attributes": A}) for n in NAMES
    if "attributes" in registry.get_model_class(n).capabilities]
IDS = [n + ("-" + "-".join(k for k in o) if o else "") for n, o in VARIANTS]


def make(name: str, **overrides):
    cls = registry.get_model_class(name)
    torch.manual_seed(0)
    return cls(build(cls.Config, {"seq_len": T, "n_features": D, **overrides}))


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
        "attributes": torch.rand(B, max(getattr(model.config, "n_attributes", 0), 1),
                                 generator=g),
    }


def xs(n: int = B, seed: int = 1) -> torch.Tensor:
    return torch.rand(n, T, D, generator=torch.Generator().manual_seed(seed))


@pytest.fixture(params=VARIANTS, ids=IDS)
def model(request):
    name, overrides = request.param
    return make(name, **overrides).eval()


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


def test_capabilities_are_known_names(model):
    assert set(model.capabilities) <= set(CAPABILITIES)
    assert set(model.supported()) <= set(model.capabilities)


def test_loss_is_a_finite_scalar_dict(model):
    out = model.loss(batch(model))
    assert "loss" in out and out["loss"].ndim == 0 and torch.isfinite(out["loss"])


def test_bad_shape_names_the_tensor(model):
    b = batch(model)
    b["x"] = torch.rand(B, T, D + 1)
    with pytest.raises(ShapeError, match=r"x.*\(8, 24, 4\)|\(8, 24, 4\).*x"):
        model.loss(b)
    for cap, call in (("encodes", model.encode), ("decomposes", model.decompose),
                      ("classifies", model.predict_proba)):
        if model.has(cap):
            with pytest.raises(ShapeError, match=r"\(24, 3\)"):
                call(torch.rand(T, D))


_CALLS = {
    "generates": lambda m: m.sample(2),
    "encodes": lambda m: m.encode(xs(2)),
    "decodes": lambda m: m.decode(torch.zeros(2, 4)),
    "conditional": lambda m: m.sample(2, y=0),
    "factors": lambda m: m.generate(2),
    "decomposes": lambda m: m.decompose(xs(2)),
    "classifies": lambda m: m.predict_proba(xs(2)),
    "attributes": lambda m: m.sample(2, attributes=torch.zeros(A)),
}


def test_a_missing_capability_is_one_clear_error(model):
    for cap, call in _CALLS.items():
        if model.has(cap):
            continue
        # (sampling for a label on a model that does not sample at all names 'generates')
        with pytest.raises(FactorseqError, match=f"cannot do '({cap}|generates)'") as e:
            call(model)
        assert "\n" not in str(e.value)


def test_sampling_shape_and_seeded_determinism(model):
    if not model.has("generates"):
        pytest.skip("does not generate")
    a = model.sample(5, generator=torch.Generator().manual_seed(3))
    b = model.sample(5, generator=torch.Generator().manual_seed(3))
    c = model.sample(5, generator=torch.Generator().manual_seed(4))
    assert a.shape == (5, T, D) and torch.isfinite(a).all()
    assert torch.equal(a, b) and not torch.equal(a, c)
    for bad in (0, -1, 2.5, True):
        with pytest.raises(FactorseqError, match="positive integer"):
            model.sample(bad)


def test_batched_sampling_matches_one_batch_shape(model):
    if not model.has("generates"):
        pytest.skip("does not generate")
    model.infer_batch = 2  # the base class cuts n = 5 into chunks 2 + 2 + 1
    assert model.sample(5, generator=torch.Generator().manual_seed(0)).shape == (5, T, D)


def test_labels_are_checked_once_for_every_model(model):
    if not model.has("generates"):
        pytest.skip("does not generate")
    if not model.has("conditional"):
        with pytest.raises(FactorseqError, match="conditional"):
            model.sample(3, y=1)
        return
    k = model.config.n_classes
    one = model.sample(4, y=1, generator=torch.Generator().manual_seed(0))
    many = model.sample(4, y=[1, 1, 1, 1], generator=torch.Generator().manual_seed(0))
    assert torch.equal(one, many)
    other = model.sample(4, y=0, generator=torch.Generator().manual_seed(0))
    assert not torch.equal(one, other)  # the label changes what is generated
    for bad, msg in ((k, "0.." + str(k - 1)), (-1, "label"), ([0, 1], "2 labels"),
                     (0.5, "class indices")):
        with pytest.raises(FactorseqError, match=msg):
            model.sample(4, y=bad)


def test_attributes_are_checked_and_change_what_is_generated(model):
    if not model.has("attributes"):
        pytest.skip("does not condition on attributes")
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    k = model.config.n_attributes
    if k == 0:  # able, but built without attributes
        with pytest.raises(FactorseqError, match="trained without attributes"):
            model.sample(2, attributes=torch.zeros(A))
        return
    one = torch.tensor([1.0, 0.0, 0.0])
    a = model.sample(4, attributes=one, generator=g())
    assert torch.equal(a, model.sample(4, attributes=one.expand(4, -1), generator=g()))
    assert not torch.equal(a, model.sample(4, attributes=one.flip(0), generator=g()))
    model.infer_batch = 3  # chunks of 3 + 1 take their own rows of attributes
    rows = torch.eye(A)[[0, 1, 2, 0]]
    assert torch.allclose(model.sample(4, attributes=rows, generator=g())[3],
                          model.sample(4, attributes=one, generator=g())[3], atol=1e-5)
    with pytest.raises(ShapeError, match=r"\(n, 3\)"):
        model.sample(2, attributes=torch.zeros(2, k + 1))
    with pytest.raises(ShapeError, match="rows"):
        model.sample(4, attributes=torch.zeros(3, k))


def test_encode_returns_typed_codes(model):
    if not model.has("encodes"):
        pytest.skip("does not encode")
    x = xs()
    codes = model.encode(x)
    assert isinstance(codes, Codes) and set(codes) == set(codes.specs)
    for s in codes.specs.values():
        assert tuple(codes[s.name].shape) == s.shape(B, T)
    model.infer_batch = 3  # batching inside encode does not change the codes
    again = model.encode(x)
    # 1e-4: iterative encoders (diffusion_ts' 50-step DDIM inversion) amplify the float
    # rounding of a different matmul batching ~10x; a batching bug moves codes by O(1)
    assert all(torch.allclose(codes[k].float(), again[k].float(), atol=1e-4) for k in codes)


class _OnDisk:
    """Windows read in chunks (the ``iter_chunks`` protocol of ``data.store``)."""

    def __init__(self, x: torch.Tensor, rows: int) -> None:
        self.x, self.rows, self.read = x.numpy(), rows, 0

    def iter_chunks(self):
        for i in range(0, len(self.x), self.rows):
            self.read += 1
            yield self.x[i:i + self.rows]


def test_encode_reads_windows_on_disk_a_chunk_at_a_time(model):
    if not model.has("encodes"):
        pytest.skip("does not encode")
    x = xs()
    disk = _OnDisk(x, rows=3)
    codes, whole = model.encode(disk), model.encode(x)
    assert disk.read == 3  # 8 windows, 3 at a time
    assert all(torch.allclose(codes[k].float(), whole[k].float(), atol=1e-4) for k in codes)
    with pytest.raises(ShapeError, match="no windows"):
        model.encode(_OnDisk(x[:0], rows=3))


def test_decode_takes_codes_and_checks_them(model):
    if not model.has("decodes"):
        pytest.skip("does not decode")
    specs = [s for s in model.code_specs() if s.decoded]
    if model.has("encodes"):
        codes = model.encode(xs())
        assert model.decode(codes).shape == (B, T, D)
        assert torch.allclose(model.reconstruct(xs()), model.decode(codes), atol=1e-5)
    dense = [s for s in specs if s.role != "label"]
    bad = {s.name: (torch.zeros(B, dtype=torch.long) if s.role == "label" else
                    torch.zeros(*s.shape(B, T))) for s in specs}
    bad[dense[0].name] = torch.zeros(B, dense[0].dim + 1)
    with pytest.raises(ShapeError, match=dense[0].name):
        model.decode(bad)
    if len(specs) == 1:
        assert model.decode(torch.zeros(*specs[0].shape(B, T))).shape == (B, T, D)
    else:
        with pytest.raises(FactorseqError, match="pass a dict"):
            model.decode(torch.zeros(B, 4))


def test_generation_by_factor(model):
    if not model.has("factors"):
        pytest.skip("has no factors")
    factors = {f.name: f for f in model.factors()}
    assert factors
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    assert model.generate(5, generator=g()).shape == (5, T, D)
    with pytest.raises(FactorseqError, match="no factor 'nope'"):
        model.generate(2, keep=["nope"], reference=xs(2))
    kept = [n for n, f in factors.items() if f.kind in ("code", "part")]
    if kept:
        with pytest.raises(FactorseqError, match="reference"):
            model.generate(2, keep=kept[:1])
        out = model.generate(B, reference=xs(), keep=kept, generator=g())
        assert out.shape == (B, T, D)
        with pytest.raises(ShapeError, match="rows"):  # 3 reference windows for 5 outputs
            segment = [n for n in kept if factors[n].role != "sequence"]
            if not segment:
                raise ShapeError("no per-window factor: 3 rows for 5 is fine")
            model.generate(5, reference=xs(3), keep=segment)
    parts = [n for n, f in factors.items() if f.kind == "part"]
    if parts:  # every part from the reference, unscaled, is the reconstruction
        x = xs()
        got = model.generate(B, reference=x, keep=parts, generator=g())
        assert torch.allclose(got, model.reconstruct(x), atol=1e-5)
        zero = model.generate(B, reference=x, keep=parts, scale={p: 0.0 for p in parts})
        assert torch.allclose(zero, torch.zeros_like(zero))
    for name in (n for n, f in factors.items() if f.kind == "label"):
        a = model.generate(4, values={name: 1}, generator=g())
        assert torch.allclose(a, model.sample(4, y=1, generator=g()))
        with pytest.raises(FactorseqError, match="label must be"):
            model.generate(4, values={name: model.config.n_classes})


def test_decomposition_parts_sum_to_the_output(model):
    if not model.has("decomposes"):
        pytest.skip("does not decompose")
    d = model.decompose(xs())
    assert isinstance(d, Decomposition) and d.output.shape == (B, T, D)
    assert all(p.shape == (B, T, D) for p in d.parts.values())
    assert torch.allclose(sum(d.parts.values()), d.output, atol=1e-5)


def test_classifier_probabilities(model):
    if not model.has("classifies"):
        pytest.skip("does not classify")
    p = model.predict_proba(xs())
    assert p.shape == (B, model.config.n_classes)
    assert torch.allclose(p.sum(1), torch.ones(B), atol=1e-5) and (p >= 0).all()


def _saved(model, tmp_path):
    scaler = MinMaxScaler().fit(np.random.default_rng(0).random((10, T, D)) * 5 + 2)
    schema = {"name": "t", "seq_len": T, "n_features": D, "feature_names": ["a", "b", "c"],
              "meta": {}}
    save_run(tmp_path / "run", model, scaler, schema, DataConfig(source="x"), TrainConfig())
    return load(tmp_path / "run")


def test_save_load_round_trip(model, tmp_path):
    run = _saved(model, tmp_path)
    assert type(run.model) is type(model)
    sd0, sd1 = model.state_dict(), run.model.state_dict()
    assert sd0.keys() == sd1.keys()
    assert all(torch.equal(sd0[k], sd1[k]) for k in sd0)
    x = xs()
    if model.has("encodes"):
        e0, e1 = model.encode(x), run.model.encode(x)
        assert all(torch.allclose(e0[k].float(), e1[k].float()) for k in e0)
    if model.has("generates"):
        g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
        assert torch.equal(model.sample(3, generator=g()), run.model.sample(3, generator=g()))
    if model.has("classifies"):
        assert torch.allclose(model.predict_proba(x), run.model.predict_proba(x))


def test_run_speaks_the_users_units(model, tmp_path):
    run = _saved(model, tmp_path)
    raw = np.random.default_rng(2).random((B, T, D)).astype(np.float32) * 5 + 2
    scaled = run.scaler.transform(raw)
    if model.has("generates"):
        want = run.scaler.inverse_transform(
            run.model.sample(4, generator=torch.Generator().manual_seed(7)).numpy())
        assert np.allclose(run.sample(4, seed=7), want, atol=1e-5)
        assert np.allclose(run.sample(4, seed=7, scaled=True), run.scaler.transform(want),
                           atol=1e-4)
    if model.has("encodes"):
        codes = run.encode(raw)
        want = run.model.encode(torch.as_tensor(scaled))
        assert all(np.allclose(codes[k], want[k].numpy(), atol=1e-5) for k in want)
        if model.has("decodes"):
            back = run.decode(codes)
            assert np.allclose(back, run.scaler.inverse_transform(
                run.model.decode(want).numpy()), atol=1e-4)
    if model.has("decomposes"):
        d = run.decompose(raw)
        assert np.allclose(sum(d.parts.values()), d.output, atol=1e-3)
        assert np.allclose(d.output, run.scaler.inverse_transform(
            run.model.decompose(torch.as_tensor(scaled)).output.numpy()), atol=1e-3)
    if model.has("classifies"):
        assert np.allclose(run.predict_proba(raw),
                           run.model.predict_proba(torch.as_tensor(scaled)).numpy())


def test_one_training_step_changes_the_weights(model):
    model.train()
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


def test_a_class_that_declares_a_capability_must_implement_it():
    from factorseq.models.base import GENERATES, ModelConfig, SequenceModel

    class Broken(SequenceModel):
        capabilities = frozenset({GENERATES})

        def loss(self, batch):
            return {"loss": torch.zeros(())}

    with pytest.raises(TypeError, match="_sample"):
        Broken(ModelConfig())
