"""The semi-supervised VAE (Siddharth et al. 2017): the labelled-term estimator, the exact
enumeration ELBO against hand computations, batching of the fixed labelled subset, the
``digits`` set."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from clihelp import cli, user_error
from factorseq.batching import LabelledShare as _Batches
from factorseq.config import build
from factorseq.errors import FactorseqError, ShapeError
from factorseq.models.ssvae import SSVAE, SSVAEConfig, labelled_term
from factorseq.nn.densities import log_normal

T, D, K = 6, 3, 4


def make(**kw) -> SSVAE:
    torch.manual_seed(0)
    values = {"seq_len": T, "n_features": D, "n_classes": K, "z_dim": 2, "hidden": 16}
    values.update(kw)
    return SSVAE(build(SSVAEConfig, values))


def batch(n: int = 8, labelled: int = 4) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    y = torch.randint(0, K, (n,), generator=g)
    mask = torch.arange(n) < labelled
    return {"x": torch.randn(n, T, D, generator=g), "y": torch.where(mask, y, -7),
            "y_mask": mask}


def fixed_noise(model: SSVAE, seed: int = 5) -> list[torch.Tensor]:
    """Make ``model.rsample`` deterministic and record every draw it returns."""
    g = torch.Generator().manual_seed(seed)
    drawn: list[torch.Tensor] = []

    def rsample(mean, logvar):
        z = mean + torch.randn(mean.shape, generator=g) * (0.5 * logvar).exp()
        drawn.append(z)
        return z

    model.rsample = rsample
    return drawn


# --- the supervised estimator ------------------------------------------------------------

def test_labelled_term_matches_numpy_with_nonuniform_weights():
    rng = np.random.default_rng(0)
    S, B = 5, 3
    log_pxyz, log_qyz, log_r = (rng.normal(size=(S, B)) for _ in range(3))
    term, log_qy = labelled_term(*(torch.tensor(a) for a in (log_pxyz, log_qyz, log_r)), 0.3)
    log_w = log_qyz - log_r
    w = np.exp(log_w)
    want = (w / w.sum(0) * (log_pxyz - log_qyz)).sum(0) + 1.3 * np.log(w.mean(0))
    np.testing.assert_allclose(term.numpy(), want, rtol=1e-10)
    np.testing.assert_allclose(log_qy.numpy(), np.log(w.mean(0)), rtol=1e-10)


@pytest.mark.parametrize("S", [1, 7])
def test_y_then_z_weights_are_uniform_and_term_is_closed_form(S):
    """With q(y|x) independent of z (y_then_z) w_s = q(y|x) for every s: the estimator is
    mean_s[log p(x|y,z_s) + log p(z_s) - log q(z_s|x,y)] + log p(y) + alpha log q(y|x)."""
    model = make(inference="y_then_z", samples=S, alpha=0.1).double()
    b = batch(6, 6)
    x, y = b["x"].double(), b["y"]
    drawn = fixed_noise(model)
    h = model.features(x)
    term, log_qy_est = model.supervised_term(x, h, y)
    (z,) = drawn
    log_qy = torch.log_softmax(model.y_logits(h), -1).gather(-1, y[:, None])[:, 0]
    torch.testing.assert_close(log_qy_est, log_qy)  # log mean_s w_s is exact here
    mean, lv = model.z_params(h, model.onehot(y).double())
    rec = model.log_px(x.unsqueeze(0), model.decoder_params(z, model.onehot(y).double()
                                                            .expand(S, -1, -1)))
    closed = ((rec + log_normal(z) - log_normal(z, mean, lv)).mean(0) - math.log(K)
              + 0.1 * log_qy)
    torch.testing.assert_close(term, closed)


def test_z_then_y_with_y_independent_of_z_has_uniform_weights():
    """z_then_y with q(y | z, x) = q(y | x) (the z inputs of the y head zeroed): the weights
    are uniform, so mean_s w_s = q(y|x) and the term has the same closed form."""
    S = 6
    model = make(inference="z_then_y", samples=S, alpha=0.25).double()
    with torch.no_grad():
        model.y_head[0].weight[:, model.config.hidden:] = 0.0  # columns fed by z
    b = batch(5, 5)
    x, y = b["x"].double(), b["y"]
    drawn = fixed_noise(model)
    h = model.features(x)
    term, log_qy_est = model.supervised_term(x, h, y)
    (z,) = drawn
    logits = model.y_logits(h.expand(S, *h.shape), z)
    assert torch.allclose(logits, logits[:1].expand_as(logits))  # w_s equal over s
    log_qy = torch.log_softmax(logits[0], -1).gather(-1, y[:, None])[:, 0]
    torch.testing.assert_close(log_qy_est, log_qy)
    mean, lv = model.z_params(h)
    rec = model.log_px(x.unsqueeze(0), model.decoder_params(z, model.onehot(y).double()
                                                            .expand(S, -1, -1)))
    closed = ((rec + log_normal(z) - log_normal(z, mean, lv)).mean(0) - math.log(K)
              + 0.25 * log_qy)
    torch.testing.assert_close(term, closed)


def test_z_then_y_weights_follow_q_y_given_z():
    """Non-trivial weights: w_s = q(y | z_s, x), and log q(y|x) is estimated by log mean_s w_s."""
    S = 4
    model = make(inference="z_then_y", samples=S).double()
    b = batch(3, 3)
    x, y = b["x"].double(), b["y"]
    drawn = fixed_noise(model)
    h = model.features(x)
    _, log_qy_est = model.supervised_term(x, h, y)
    (z,) = drawn
    w = torch.softmax(model.y_logits(h.expand(S, *h.shape), z), -1).gather(
        -1, y.expand(S, -1)[..., None])[..., 0]
    assert w.std(0).max() > 0  # really not uniform
    torch.testing.assert_close(log_qy_est, w.mean(0).log())


# --- exact enumeration on a 2-class toy, by hand ------------------------------------------

def toy_model(inference: str) -> SSVAE:
    """K=2, z_dim=1, x of one step and one feature; every network replaced by a known map."""
    model = SSVAE(build(SSVAEConfig, {"seq_len": 1, "n_features": 1, "n_classes": 2,
                                      "z_dim": 1, "hidden": 4, "backbone": "mlp",
                                      "inference": inference})).double()
    model.features = lambda x: x.reshape(x.shape[0], 1)  # h = x
    model.rsample = lambda mean, logvar: mean + 0.5 * (0.5 * logvar).exp()  # eps = 0.5
    with torch.no_grad():
        model.obs_logvar.fill_(math.log(0.25))  # p(x|y,z) = N(mean, 0.5^2)
    return model


def test_enumerated_elbo_y_then_z_matches_hand_computation():
    model = toy_model("y_then_z")
    # q(y|x) = softmax([0, log 3]) = (1/4, 3/4); q(z|x,y) = N(m_y, s_y^2), m = (-1, 2), s^2 = (1, 4)
    model.y_logits = lambda h, z=None: torch.cat([torch.zeros_like(h),
                                                  torch.full_like(h, math.log(3))], -1)
    m = torch.tensor([-1.0, 2.0], dtype=torch.float64)
    lv = torch.tensor([0.0, math.log(4)], dtype=torch.float64)
    model.z_params = lambda h, y=None: ((y * m).sum(-1, keepdim=True),
                                        (y * lv).sum(-1, keepdim=True))
    # decoder mean: z + 10 * [y == 1]
    model.decoder_params = lambda z, y: (z + 10 * y[..., 1:]).unsqueeze(-1)
    x = 11.0
    q = [0.25, 0.75]
    zs = [-1 + 0.5 * 1, 2 + 0.5 * 2]  # z = m + eps * s with eps = 0.5
    means = [zs[0], zs[1] + 10]
    sd = [1.0, 2.0]

    def lognorm(v, mu, s):
        return -0.5 * math.log(2 * math.pi * s * s) - 0.5 * ((v - mu) / s) ** 2

    want = 0.0
    for k in range(2):
        inner = (lognorm(x, means[k], 0.5) + lognorm(zs[k], 0, 1) - lognorm(zs[k], [-1, 2][k],
                                                                           sd[k]))
        want += q[k] * (inner + math.log(0.5) - math.log(q[k]))
    xt = torch.tensor([[[x]]]).double()
    got = model.unlabelled_term(xt, model.features(xt))
    assert got.item() == pytest.approx(want, rel=1e-12)
    out = model.loss({"x": xt, "y": torch.tensor([0]), "y_mask": torch.tensor([False])})
    assert out["loss"].item() == pytest.approx(-want, rel=1e-12)


def test_enumerated_elbo_z_then_y_matches_hand_computation():
    model = toy_model("z_then_y")
    model.z_params = lambda h, y=None: (torch.full_like(h, 0.5), torch.zeros_like(h))  # N(.5, 1)
    # q(y | z, x) = softmax([0, z]) -> at z = 1: (1/(1+e), e/(1+e))
    model.y_logits = lambda h, z=None: torch.cat([torch.zeros_like(z), z], -1)
    model.decoder_params = lambda z, y: (2 * z * y[..., :1] - z * y[..., 1:]).unsqueeze(-1)
    x, z = 1.5, 1.0  # z = 0.5 + 0.5 * 1
    q = [1 / (1 + math.e), math.e / (1 + math.e)]

    def lognorm(v, mu, s):
        return -0.5 * math.log(2 * math.pi * s * s) - 0.5 * ((v - mu) / s) ** 2

    want = lognorm(z, 0, 1) - lognorm(z, 0.5, 1)
    for k, mean in enumerate([2 * z, -z]):
        want += q[k] * (lognorm(x, mean, 0.5) + math.log(0.5) - math.log(q[k]))
    xt = torch.tensor([[[x]]]).double()
    got = model.unlabelled_term(xt, model.features(xt))
    assert got.item() == pytest.approx(want, rel=1e-12)


def test_enumeration_equals_sum_of_labelled_elbos_weighted_by_q():
    """Unlabelled ELBO = sum_y q(y|x) [ELBO(x, y) - log q(y|x)] with S=1 and shared noise."""
    model = make(inference="y_then_z", backbone="mlp", alpha=0.0).double()
    model.rsample = lambda mean, logvar: mean + 0.3 * (0.5 * logvar).exp()
    x = batch(3, 0)["x"].double()
    h = model.features(x)
    u = model.unlabelled_term(x, h)
    log_q = torch.log_softmax(model.y_logits(h), -1)
    per_class = torch.stack([model.supervised_term(x, h, torch.full((3,), k))[0]
                             for k in range(K)], -1)  # alpha=0: ELBO(x,y) - log q(y|x) + log q
    want = (log_q.exp() * (per_class - log_q)).sum(-1)
    torch.testing.assert_close(u, want)


# --- the loss: one code path over the mask -------------------------------------------------

@pytest.mark.parametrize("backbone", ["gru", "conv", "mlp"])
@pytest.mark.parametrize("inference", ["y_then_z", "z_then_y"])
@pytest.mark.parametrize("est", ["enumerate", "relaxed"])
def test_loss_mixed_batch_is_finite_and_trains(backbone, inference, est):
    model = make(backbone=backbone, inference=inference, y_estimator=est, samples=2)
    b = batch(8, 3)
    out = model.loss(b)
    assert torch.isfinite(out["loss"]) and out["n_labelled"].item() == 3
    out["loss"].backward()
    assert all(p.grad is not None for n, p in model.named_parameters()
               if n != "obs_logvar" or model.config.likelihood == "gaussian")


def test_loss_is_mean_of_per_row_terms_with_gamma():
    model = make(backbone="mlp", gamma=2.5, alpha=0.1)
    b = batch(6, 2)
    torch.manual_seed(3)
    out = model.loss(b)
    torch.manual_seed(3)
    h = model.features(b["x"])
    m = b["y_mask"]
    u = model.unlabelled_term(b["x"][~m], h[~m])
    s, _ = model.supervised_term(b["x"][m], h[m], b["y"][m])
    torch.testing.assert_close(out["loss"], -(u.sum() + 2.5 * s.sum()) / 6)


def test_masked_rows_ignore_their_label_values():
    model = make(backbone="mlp")
    b = batch(6, 2)
    torch.manual_seed(0)
    a = model.loss(b)["loss"]
    b["y"] = torch.where(b["y_mask"], b["y"], 3)
    torch.manual_seed(0)
    assert torch.equal(a, model.loss(b)["loss"])
    torch.manual_seed(0)
    nolabel = model.loss({"x": b["x"], "y": b["y"], "y_mask": torch.zeros(6, dtype=torch.bool)})
    torch.manual_seed(0)
    assert torch.equal(nolabel["loss"], model.loss({"x": b["x"]})["loss"])


def test_classifier_objective_is_cross_entropy_on_labelled_rows():
    model = make(backbone="mlp", objective="classifier")
    b = batch(8, 5)
    out = model.loss(b)
    m = b["y_mask"]
    logits = model.class_logits(model.features(b["x"][m]))
    torch.testing.assert_close(out["loss"], torch.nn.functional.cross_entropy(logits, b["y"][m]))
    none = model.loss({"x": b["x"], "y": b["y"], "y_mask": torch.zeros(8, dtype=torch.bool)})
    assert none["loss"].item() == 0.0 and none["loss"].requires_grad


def test_bernoulli_likelihood_and_sampling_by_class():
    model = make(likelihood="bernoulli", backbone="mlp").eval()
    b = batch()
    b["x"] = torch.rand_like(b["x"])
    assert torch.isfinite(model.loss(b)["loss"])
    with torch.no_grad():
        s = model.sample(5, generator=torch.Generator().manual_seed(0), y=2)
    assert s.shape == (5, T, D) and ((s >= 0) & (s <= 1)).all()


def test_sample_decode_encode_contract():
    model = make().eval()
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        a = model.sample(4, generator=g, y=1)
        b = model.sample(4, generator=torch.Generator().manual_seed(0), y=[1, 1, 1, 1])
        assert torch.equal(a, b) and a.shape == (4, T, D)
        codes = model.encode(batch()["x"])
        assert codes["z"].shape == (8, 2) and codes["probs"].shape == (8, K)
        assert model.reconstruct(batch()["x"]).shape == (8, T, D)
    with pytest.raises(FactorseqError, match="label"):
        model.sample(2, y=K)
    with pytest.raises(ShapeError, match="x"):
        model.loss({"x": torch.randn(2, T, D + 1)})
    with pytest.raises(FactorseqError):
        build(SSVAEConfig, {"inference": "nope"})


# --- the fixed labelled subset --------------------------------------------------------------

def test_batches_keep_the_supervision_rate_and_never_rotate_labels():
    lab, unl = np.arange(5), np.arange(5, 105)
    sampler = _Batches(lab, unl, 20, 0.25, seed=0)
    for _epoch in range(3):
        batches = list(sampler)
        assert len(batches) == len(sampler) == 7  # ceil(100 / 15)
        seen_unl = np.concatenate([[i for i in bt if i >= 5] for bt in batches])
        assert sorted(seen_unl) == list(unl)  # every unlabelled row once per epoch
        assert all(sum(i < 5 for i in bt) == 5 for bt in batches)  # 25% of 20
        assert {i for bt in batches for i in bt if i < 5} <= set(lab)
    only = list(_Batches(lab, unl, 2, None, seed=0))
    assert sorted(np.concatenate(only)) == list(lab)


def test_make_batch_sampler_uses_the_data_mask():
    from factorseq.data.container import SequenceData

    y = np.arange(40) % K
    mask = np.zeros(40, dtype=bool)
    mask[[1, 5, 9, 20]] = True
    data = SequenceData(x=np.zeros((40, T, D)), y=y, y_mask=mask)
    clf = make(objective="classifier").make_batch_sampler(data, 8, 0)
    assert sorted(np.concatenate(list(clf))) == [1, 5, 9, 20]
    assert make(supervision_rate=None).make_batch_sampler(data, 8, 0) is None
    semi = make(supervision_rate=0.5).make_batch_sampler(data, 8, 0)
    assert all(sum(mask[i] for i in bt) == 4 for bt in semi)


# --- the bundled digits set ------------------------------------------------------------------

def test_digits_set_split_is_stratified_and_fixed():
    from factorseq.data import DataConfig, load_data

    d = load_data(DataConfig(source="digits"))
    assert d.x.shape[1:] == (8, 8) and d.test is not None
    assert d.x.shape[0] + d.test.x.shape[0] == 1797
    assert d.meta["n_classes"] == 10 and d.y_mask.all()
    frac = np.bincount(d.test.y) / (np.bincount(d.test.y) + np.bincount(d.y))
    assert np.allclose(frac, 0.25, atol=0.01)
    d2 = load_data(DataConfig(source="digits", labels=50, label_seed=3, seed=9))
    assert np.array_equal(d2.test.x, d.test.x)  # the test split ignores the seeds
    assert d2.y_mask.sum() == 50 and (np.bincount(d2.y[d2.y_mask]) == 5).all()


# --- end to end through the CLI -------------------------------------------------------------

FAST = ["--epochs", "2", "--batch-size", "64", "--set", "train.tensorboard=false",
        "--set", "train.progress=false", "--set", "hidden=16", "--set", "z_dim=4"]


@pytest.mark.parametrize("source, backbone, labels", [("digits", "mlp", 50),
                                                      ("fsdd-digits", "conv", 30)])
def test_train_evaluate_sample_end_to_end(tmp_path, capsys, source, backbone, labels):
    import json

    run = tmp_path / "run"
    extra = ["--epochs", "1"] if source == "fsdd-digits" else []
    assert cli("train", "ssvae", "--data", source, "--labels", labels, "--out", run, *FAST,
               *extra, "--set", f"backbone={backbone}", "--set", "supervision_rate=0.25") == 0
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["model_config"]["n_classes"] == 10 and cfg["data_config"]["labels"] == labels
    assert cli("evaluate", run, "--out", tmp_path / "m.json") == 0
    m = json.loads((tmp_path / "m.json").read_text())
    for key in ("accuracy", "label_from_style_acc", "chance"):
        assert isinstance(m[key], float) and 0.0 <= m[key] <= 1.0
    assert m["n_labels"] == labels and m["n_test"] == (450 if source == "digits" else 300)
    assert m["label_seed"] == 0 and "baseline_accuracy" not in m
    assert cli("sample", run, "--n", 16, "--label", 7, "--out", tmp_path / "s.npz") == 0
    with np.load(tmp_path / "s.npz") as z:
        assert z["data"].shape[0] == 16 and (z["label"] == 7).all()
    capsys.readouterr()
    assert cli("sample", run, "--n", 2, "--label", 10, "--out", tmp_path / "bad.npz") == 2
    assert capsys.readouterr().err.startswith("error: label must be in 0..9")


def test_labels_all_stay_in_the_training_split(tmp_path):
    """--labels N is exact: the trainer's validation windows come from unlabelled ones."""
    from factorseq.data import DataConfig, load_data
    from factorseq.data.split import make_split

    data = load_data(DataConfig(source="digits", labels=20))
    split = make_split(data, "auto", 0.1, 0.1, 0, labels=20)
    assert split.kind == "random"  # digits' windows carry no positions in time
    train, val, held = split.parts(data)
    assert train.y_mask.sum() == 20 and not val.y_mask.any() and held is None
    assert train.n_windows + val.n_windows == data.n_windows


# --- the evaluator scores only the run it is given (issue #22) -------------------------------

@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """(semi-supervised run, plain-classifier run) of digits with 20 labels, 1 epoch each."""
    root = tmp_path_factory.mktemp("ssvae-runs")
    common = ["--data", "digits", "--labels", 20, *FAST, "--epochs", "1", "--set", "backbone=mlp"]
    assert cli("train", "ssvae", "--out", root / "semi", *common) == 0
    assert cli("train", "ssvae", "--out", root / "clf", *common, "--set", "objective=classifier",
               "--set", "train.val_fraction=0") == 0
    return root / "semi", root / "clf"


def test_evaluator_figures(runs):
    from factorseq.checkpoint import load
    from factorseq.metrics.evaluators import get_evaluator

    r = load(runs[0])
    figs = get_evaluator("ssvae")(r, repeats=1).figures()
    assert [t.split(":")[0] for t, _ in figs] == ["generated samples",
                                                  "confusion matrix of q(y|x) on the test set"]
    assert len(figs[0][1].axes) == 6 * 10


def test_evaluate_scores_the_run_and_trains_nothing(runs, tmp_path, monkeypatch):
    """A run with drawn labels (--labels) is scored as it is: the evaluator once retrained it
    and a plain classifier over label draws through ``fit``; now ``fit`` is never called."""
    import json
    import sys

    import factorseq.train
    from factorseq.checkpoint import load

    def no_training(*args, **kwargs):
        raise AssertionError("the evaluator trained a model")

    monkeypatch.setattr(factorseq.train, "fit", no_training)
    monkeypatch.setattr(sys.modules["factorseq.train.fit"], "fit", no_training)
    assert cli("evaluate", runs[0], "--out", tmp_path / "m.json", "--repeats", 3) == 0
    m = json.loads((tmp_path / "m.json").read_text())
    r = load(runs[0])
    test = r.load_data().test
    own = float((r.predict_proba(test.x).argmax(1) == test.y).mean())  # the run's own q(y|x)
    assert m["accuracy"] == pytest.approx(own)
    assert m["chance"] == pytest.approx(np.bincount(test.y).max() / len(test.y))
    assert 0.0 <= m["label_from_style_acc"] <= 1.0 and m["n_labels"] == 20
    assert not {"draws", "per_draw", "baseline_accuracy", "accuracy_gain"} & set(m)


@pytest.mark.parametrize("option", ["draws=5", "baseline_epochs=20", "baseline=false"])
def test_the_retraining_options_are_refused(runs, tmp_path, capsys, option):
    err = user_error(capsys, "evaluate", runs[0], "--out", tmp_path / "m.json", "--set", option)
    assert err.startswith(f"error: ssvae evaluator option(s) {option.split('=')[0]} no longer")
    assert "--set objective=classifier" in err and not (tmp_path / "m.json").exists()


def test_evaluator_options_are_typed(runs, tmp_path, capsys):
    out = ["evaluate", runs[0], "--out", tmp_path / "m.json"]
    assert "probe_folds must be >= 2" in user_error(capsys, *out, "--set", "probe_folds=1")
    assert "grid_rows must be an integer" in user_error(capsys, *out, "--set", "grid_rows=many")
    assert "unknown ssvae evaluator option(s) folds" in user_error(capsys, *out, "--set",
                                                                     "folds=3")


def test_the_plain_classifier_is_its_own_run_scored_the_same_way(runs, tmp_path, capsys):
    """The baseline: the same model trained with objective=classifier. Its style head and
    decoder are never trained, so it declares no style code and does not generate: the
    evaluator scores its q(y|x) alone (no style probe, no sample grid)."""
    import json

    from factorseq.checkpoint import load
    from factorseq.metrics.evaluators import get_evaluator

    r = load(runs[1])
    assert [s.name for s in r.model.code_specs()] == ["y", "probs"]
    assert r.has("classifies") and r.has("encodes")
    assert not any(r.has(c) for c in ("generates", "conditional", "decodes", "factors"))
    assert set(r.encode(r.load_data().test.x[:5])) == {"y", "probs"}
    assert cli("evaluate", runs[1], "--out", tmp_path / "c.json") == 0
    m = json.loads((tmp_path / "c.json").read_text())
    test = r.load_data().test
    assert m["accuracy"] == pytest.approx(
        float((r.predict_proba(test.x).argmax(1) == test.y).mean()))
    assert "label_from_style_acc" not in m and m["n_labels"] == 20
    figs = get_evaluator("ssvae")(r, repeats=1).figures()
    assert [t for t, _ in figs] == ["confusion matrix of q(y|x) on the test set"]
    assert "cannot do 'generates'" in user_error(capsys, "sample", runs[1], "--n", 4, "--out",
                                                 tmp_path / "s.npz")
    assert load(runs[0]).has("generates")  # the semi-supervised run still does


# --- choosing alpha without the test split (issue #12) ---------------------------------------

@pytest.mark.parametrize("inference", ["y_then_z", "z_then_y"])
def test_style_adversary_adds_the_reversed_label_cross_entropy(inference):
    """Weight 0 is the paper's model parameter for parameter; weight w adds CE(c(style), y) on
    the labelled rows, the style read at the row's own class (y_then_z: E[z|x,y]; z_then_y:
    E[z|x]), reaching the encoder times -w and the head times +1."""
    assert not any(k.startswith("style_adversary") for k in make().state_dict())
    m = make(style_adversary_weight=3.0, inference=inference)
    b = batch()
    torch.manual_seed(3)
    on = m.loss(b)
    torch.manual_seed(3)
    off = m.loss(b, adversary=False)
    mask = b["y_mask"]
    h, y = m.features(b["x"][mask]), b["y"][mask]
    eye = torch.eye(K)
    z = m.z_params(h, eye[y])[0] if inference == "y_then_z" else m.z_params(h)[0]
    ce = torch.nn.functional.cross_entropy(m.style_adversary(z), y)
    assert (on["loss"] - off["loss"]).item() == pytest.approx(ce.item(), rel=1e-5)
    assert on["style_adv_loss"].item() == pytest.approx(ce.item(), rel=1e-6)
    m.zero_grad()
    (on["loss"] - off["loss"]).backward()
    enc = [p.grad.clone() for p in m.encoder.parameters()]
    head = [p.grad.clone() for p in m.style_adversary.parameters()]
    m.zero_grad()
    ce.backward()
    for g, p in zip(enc, m.encoder.parameters(), strict=True):
        torch.testing.assert_close(g, -3.0 * p.grad, rtol=1e-4, atol=1e-5)
    for g, p in zip(head, m.style_adversary.parameters(), strict=True):
        torch.testing.assert_close(g, p.grad, rtol=1e-4, atol=1e-5)
    # the dann schedule starts at lambda 0: the encoder gets nothing from the adversary
    m = make(style_adversary_weight=3.0, style_adversary_schedule="dann")
    m.on_train_epoch_start(0, 10)
    torch.manual_seed(3)
    on = m.loss(b)["loss"]
    torch.manual_seed(3)
    (on - m.loss(b, adversary=False)["loss"]).backward()
    assert all(float(p.grad.abs().max()) < 1e-5 for p in m.encoder.parameters())
    assert any(float(p.grad.abs().max()) > 0 for p in m.style_adversary.parameters())


def test_style_adversary_mode_reaches_the_head():
    m = make(style_adversary_weight=1.0, style_adversary_mode="confusion")
    assert m.style_adversary.mode == "confusion"
    with pytest.raises(FactorseqError, match="style_adversary_mode"):
        make(style_adversary_weight=1.0, style_adversary_mode="flip")
