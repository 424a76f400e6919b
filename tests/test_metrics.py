"""factorseq.metrics: TimeGAN scores (sanity of the protocol), figures, evaluator registry.

Few iterations and small sets keep this fast; arrays are (windows, time, features).
"""
from __future__ import annotations

import base64

import numpy as np
import pytest
from matplotlib.figure import Figure

from factorseq.data.scaler import MinMaxScaler
from factorseq.errors import FactorseqError, ShapeError
from factorseq.metrics import (
    Evaluator,
    discriminative_score,
    discriminative_scores,
    evaluator,
    get_evaluator,
    predictive_score,
    predictive_scores,
    predictive_table,
    repeated,
)
from factorseq.metrics.evaluators import protocol_scaler
from factorseq.metrics.plots import (
    figure_to_base64_png,
    loss_curves_figure,
    pca_tsne_figures,
    samples_figure,
)

IT = 300  # training iterations in these tests (the protocol's are 2000 / 5000)


def sines(n: int, t: int = 24, d: int = 4, seed: int = 0) -> np.ndarray:
    """Windows of one sine per window (random frequency and phase), the channels shifted copies
    of it, scaled to [0, 1]: channel j < d-1 leads by j steps and the last channel lags by one,
    so its next value is channel 0's current one (learnable one step ahead)."""
    rng = np.random.default_rng(seed)
    freq = rng.uniform(0.1, 0.5, (n, 1, 1))
    phase = rng.uniform(0, 2 * np.pi, (n, 1, 1))
    lead = np.r_[np.arange(d - 1), -1.0]
    steps = np.arange(t)[None, :, None] + lead[None, None, :]
    return ((np.sin(freq * steps + phase) + 1) / 2).astype(np.float32)


def noise(n: int, t: int = 24, d: int = 4, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 1, (n, t, d)).astype(np.float32)


@pytest.fixture(scope="module")
def real() -> np.ndarray:
    return sines(1000)


# --- discriminative ------------------------------------------------------------------------
def test_real_vs_real_is_indistinguishable(real):
    assert discriminative_score(real[:500], real[500:], iterations=IT) < 0.1


def test_real_vs_noise_is_separable(real):
    # the small GRU (2 units) needs ~1000 updates to separate them; small batches keep it fast
    assert discriminative_score(real[:300], noise(300), iterations=1000, batch_size=32) > 0.35


def test_unequal_sizes_are_balanced(real):
    # the larger set is cut to the smaller one's size: same distribution still scores ~0
    x = sines(2400, seed=3)
    out = repeated(discriminative_score, 3, x[:2000], x[2000:], iterations=100)
    assert out["mean"] < 0.1


def test_discriminative_is_seeded(real):
    a = discriminative_score(real[:200], noise(200), iterations=30, seed=3)
    assert a == discriminative_score(real[:200], noise(200), iterations=30, seed=3)
    assert 0.0 <= a <= 0.5


def test_side_by_side_repeats_match_single_runs(real):
    x, y = real[:200], real[200:400] * 0.9
    many = discriminative_scores(x, y, seeds=[0, 1], iterations=40)
    assert many == [discriminative_score(x, y, iterations=40, seed=s) for s in (0, 1)]
    many = predictive_scores(y, x, seeds=[0, 1], iterations=40)
    single = [predictive_score(y, x, iterations=40, seed=s) for s in (0, 1)]
    assert many == pytest.approx(single, rel=1e-5)  # equal up to float rounding
    table = predictive_table({"syn": y, "real": x}, x, seeds=[0, 1], iterations=40)
    assert table["syn"] == pytest.approx(single, rel=1e-5)
    assert table["real"] == pytest.approx(predictive_scores(x, x, seeds=[0, 1], iterations=40),
                                          rel=1e-5)


# --- predictive ----------------------------------------------------------------------------
def test_predictive_learnable_signal_beats_noise(real):
    on_signal = predictive_score(real[:500], real[500:], iterations=IT)
    on_noise = predictive_score(noise(500), real[500:], iterations=IT)
    assert on_signal < on_noise - 0.05


def test_predictive_is_seeded_and_single_feature_works(real):
    x = real[:100, :, :1]  # D = 1: the feature predicts itself one step ahead
    a = predictive_score(x, x, iterations=20, seed=5)
    assert a == predictive_score(x, x, iterations=20, seed=5)
    assert np.isfinite(a) and a >= 0


def test_repeated_mean_std(real):
    out = repeated(predictive_score, 3, real[:100], real[100:200], iterations=20, seed=7)
    assert set(out) == {"mean", "std", "values"} and len(out["values"]) == 3
    assert out["mean"] == pytest.approx(np.mean(out["values"]))
    assert out["std"] == pytest.approx(np.std(out["values"]))
    assert out["values"][1] == pytest.approx(
        predictive_score(real[:100], real[100:200], iterations=20, seed=8), rel=1e-5)
    plain = repeated(lambda a, seed: a + seed, 2, 1.0, seed=1)  # any function of seed
    assert plain["values"] == [2.0, 3.0] and plain["std"] == 0.5
    with pytest.raises(FactorseqError):
        repeated(predictive_score, 0, real, real)


# --- shapes --------------------------------------------------------------------------------
def test_bad_shapes_raise(real):
    with pytest.raises(ShapeError, match="real"):
        discriminative_score(real[0], real, iterations=1)
    with pytest.raises(ShapeError, match=r"\(100, 24, 3\)"):
        discriminative_score(real[:100], real[:100, :, :3], iterations=1)
    with pytest.raises(ShapeError, match="feature"):
        predictive_score(real[:100, :, :2], real[:100], iterations=1)
    with pytest.raises(ShapeError, match="time steps"):
        predictive_score(real[:100, :1], real[:100, :1], iterations=1)
    with pytest.raises(FactorseqError, match="NaN"):
        discriminative_score(real[:10], np.full((10, 24, 4), np.nan), iterations=1)


# --- figures -------------------------------------------------------------------------------
def test_pca_tsne_and_samples_figures(real):
    figs = pca_tsne_figures(real[:150], noise(150), n=100)
    assert [t for t, _ in figs] == ["PCA", "t-SNE"]
    assert all(isinstance(f, Figure) for _, f in figs)
    png = base64.b64decode(figure_to_base64_png(figs[0][1]))
    assert png.startswith(b"\x89PNG")
    fig = samples_figure(real[:20], noise(20), ["a", "b", "c", "d"], n=3)
    assert isinstance(fig, Figure) and len(fig.axes) == 8  # 4 features x (real, synthetic)
    with pytest.raises(ShapeError):
        samples_figure(real[:20], noise(20), ["a"])


def test_loss_curves_figure(tmp_path):
    csv = tmp_path / "metrics.csv"
    csv.write_text("epoch,step,train_loss_step,train_loss_epoch,val_loss,lr\n"
                   "0,9,1.5,,,0.001\n"
                   "0,19,1.2,,,0.001\n"
                   "0,19,,,1.1,\n"
                   "0,19,,1.3,,\n"
                   "1,29,0.9,,,0.001\n"
                   "1,39,0.8,,,0.001\n"
                   "1,39,,,0.85,\n"
                   "1,39,,0.85,,\n")
    fig = loss_curves_figure(csv)
    assert isinstance(fig, Figure)
    lines = fig.axes[0].get_lines()
    assert sorted(line.get_label() for line in lines) == \
        ["train_loss_epoch", "train_loss_step", "val_loss"]
    step = next(line for line in lines if line.get_label() == "train_loss_step")
    assert list(step.get_xdata()) == [1, 2]  # epochs numbered as in the run's summary
    assert list(step.get_ydata()) == pytest.approx([1.35, 0.85])  # per-epoch means
    assert loss_curves_figure(tmp_path / "missing.csv") is None
    (tmp_path / "other.csv").write_text("epoch,acc\n0,0.5\n")
    assert loss_curves_figure(tmp_path / "other.csv") is None


def test_loss_curves_stay_readable_when_the_first_epoch_dominates(tmp_path):
    csv = tmp_path / "metrics.csv"
    loss = [60.0, 11.0, 9.0, 8.0, 7.5, 7.0, 6.0, 5.0, 4.0, 3.5, 3.0, 2.8]
    csv.write_text("epoch,train_loss\n" + "".join(f"{e},{v}\n" for e, v in enumerate(loss)))
    ax = loss_curves_figure(csv).axes[0]
    lo, hi = ax.get_ylim()
    assert ax.get_yscale() == "linear" and 11.0 < hi < 20.0 and lo < 2.8  # later epochs fill it
    assert "first is off the scale" in ax.get_title()
    fig = loss_curves_figure(csv)
    fig.canvas.draw()
    ticks = [t for t in fig.axes[0].get_xticks() if 1 <= t <= len(loss)]
    assert ticks and all(float(t).is_integer() for t in ticks)
    # losses spanning decades get a log axis instead
    csv.write_text("epoch,train_loss\n" + "".join(f"{e},{10.0 ** -e}\n" for e in range(5)))
    assert loss_curves_figure(csv).axes[0].get_yscale() == "log"


def test_report_labels_model_time_plots_as_scaled():
    from factorseq.metrics.plots import new_figure
    from factorseq.report import _mark_scaled

    fig = new_figure()
    top, bottom = fig.subplots(2, 2, sharex=True)
    bottom[0].set_xlabel("time step")
    bottom[0].set_ylabel("decoder blocks")
    _mark_scaled(fig)
    assert top[0].get_ylabel() == "scaled value"
    assert bottom[0].get_ylabel() == "decoder blocks (scaled)"
    assert top[1].get_ylabel() == ""  # one label per row


# --- evaluators ----------------------------------------------------------------------------
class _Data:
    def __init__(self, x):
        self.x, self.feature_names = x, [f"s{i}" for i in range(x.shape[2])]


class _Model:
    def sample(self, n, generator=None):
        import torch
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
        return torch.from_numpy(sines(n, seed=seed))


class FakeRun:
    """What the evaluator uses of a checkpoint.Run: scaler, model, load_data(), sample()."""

    def __init__(self, raw):
        self.raw, self.model = raw, _Model()
        self.scaler = MinMaxScaler().fit(raw)

    def load_data(self, source=None):
        return _Data(self.raw)

    def sample(self, n, seed=0, scaled=False):
        import torch
        x = self.model.sample(n, torch.Generator().manual_seed(seed)).numpy()
        return x if scaled else self.scaler.inverse_transform(x)


FAST = {"disc_iterations": 20, "pred_iterations": 20, "plot_windows": 60, "fidelity": False,
        "privacy": False}  # those groups: tests/test_fidelity.py, tests/test_privacy.py


def test_registry():
    cls = get_evaluator("generative")
    assert issubclass(cls, Evaluator) and cls.name == "generative"
    with pytest.raises(FactorseqError, match="unknown evaluator"):
        get_evaluator("nope")

    @evaluator("test-metrics-dummy")
    class Dummy(Evaluator):
        def evaluate(self):
            return {"seed": self.seed}

    assert get_evaluator("test-metrics-dummy")(FakeRun(sines(10)), seed=4).evaluate() == \
        {"seed": 4}


def test_generative_evaluator_samples_from_run():
    run = FakeRun(3.0 * sines(120) - 1.0)  # raw units != scaled ones
    ev = get_evaluator("generative")(run, repeats=2, seed=1, **FAST)
    out = ev.evaluate()
    for key in ("discriminative", "predictive", "predictive_real"):
        assert len(out[key]["values"]) == 2 and out[key]["std"] >= 0
    assert out["n_real"] == out["n_synthetic"] == 120
    assert out["iterations"] == {"discriminative": 20, "predictive": 20, "batch_size": 128}
    assert out["protocol"].startswith("TimeGAN (GRU discriminator 20 it.")
    figs = ev.figures()
    assert [t.split(":")[0] for t, _ in figs] == ["real vs synthetic windows", "PCA", "t-SNE"]


def test_generative_evaluator_given_samples_and_errors():
    raw = 3.0 * sines(80) - 1.0
    run = FakeRun(raw)
    cls = get_evaluator("generative")
    out = cls(run, _Data(raw), repeats=1, samples=raw[::-1].copy(), **FAST).evaluate()
    assert out["n_synthetic"] == 80
    with pytest.raises(ShapeError, match=r"\(80, 24, 3\).*\(80, 24, 4\)"):
        cls(run, repeats=1, samples=raw[:, :, :3], **FAST).evaluate()
    with pytest.raises(FactorseqError, match="unknown generative evaluator option"):
        cls(run, bogus=1)
    with pytest.raises(FactorseqError, match="disc_iterations"):
        cls(run, disc_iterations=-1)
    assert cls(run, disc_iterations=1e3).options["disc_iterations"] == 1000  # --set 1e3


@pytest.mark.slow
def test_generative_evaluator_processes_match_serial():
    run = FakeRun(sines(60))
    cls = get_evaluator("generative")
    serial = cls(run, repeats=2, **FAST).evaluate()
    pooled = cls(run, repeats=2, processes=2, **FAST).evaluate()
    assert pooled == serial


def test_evaluation_space_follows_the_data_or_the_option():
    """TimeGAN scores sines in raw units: a set declaring meta eval_space=raw is scored there;
    the option overrides; MAE scales with the data's range."""
    raw = 0.5 + 0.25 * sines(100)  # a quarter of the [0, 1] range
    run = FakeRun(raw)
    cls = get_evaluator("generative")
    data = _Data(raw)
    data.meta = {"eval_space": "raw"}
    fast = {**FAST, "pred_iterations": 200}
    got_raw = cls(run, data, repeats=1, samples=raw.copy(), **fast).evaluate()
    got_scaled = cls(run, data, repeats=1, samples=raw.copy(), space="scaled", **fast).evaluate()
    assert got_raw["space"] == "raw" and got_scaled["space"] == "scaled"
    assert got_raw["scaled_by"] is None and got_scaled["scaled_by"] == "run"
    assert got_raw["predictive_real"]["mean"] < got_scaled["predictive_real"]["mean"]
    with pytest.raises(FactorseqError, match="space must be scaled or raw"):
        cls(run, space="log")


def test_a_run_fitted_on_other_windows_is_scored_in_the_real_windows_space():
    """A MinMax run fitted on a subset (``--impute drop`` keeps few windows) is scored in the
    MinMax space of the real windows it is compared with, like every other run on them; a
    run fitted on those same windows keeps its own scaler (no round trip)."""
    raw = 3.0 * sines(80) - 1.0
    narrow = FakeRun(raw)
    narrow.scaler = MinMaxScaler().fit(raw[:5])  # a smaller range than the real windows'
    same = FakeRun(raw)
    assert protocol_scaler(same.scaler, raw) is same.scaler
    assert protocol_scaler(narrow.scaler, raw) is not narrow.scaler
    real, _ = get_evaluator("generative")(narrow, _Data(raw), repeats=1, samples=raw.copy(),
                                          **FAST).real_and_synthetic()
    np.testing.assert_allclose(real, MinMaxScaler().fit_transform(raw), atol=1e-6)
    assert real.min() == pytest.approx(0.0, abs=1e-6) and real.max() == pytest.approx(
        1.0, abs=1e-5)


def test_scores_are_in_the_protocols_minmax_space_whatever_the_models_scaler():
    """A run trained on quantile (or standardised) inputs is scored in TimeGAN's [0, 1] MinMax
    space of the real windows, not in its own preprocessing's space."""
    from factorseq.data.scaler import QuantileScaler

    raw = 3.0 * sines(80) - 1.0
    minmax_run, quantile_run = FakeRun(raw), FakeRun(raw)
    quantile_run.scaler = QuantileScaler().fit(raw)
    cls = get_evaluator("generative")
    got = [cls(r, _Data(raw), repeats=1, samples=raw[::-1].copy(), **FAST).real_and_synthetic()
           for r in (minmax_run, quantile_run)]
    for a, b in zip(got[0], got[1], strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)
    np.testing.assert_allclose(got[1][0], MinMaxScaler().fit_transform(raw), atol=1e-5)
    assert not np.allclose(got[1][0], quantile_run.scaler.transform(raw), atol=1e-2)
