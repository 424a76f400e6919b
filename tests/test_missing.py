"""Missing values: imputation along whole series, the mean fallback, gaps kept as a mask,
nan-aware scalers, dropping columns, +-inf, damaged files, the store, removing values on
purpose. Arrays are (windows, time, features); tables (time, features)."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from clihelp import cli, user_error
from factorseq.data import DataConfig, MinMaxScaler, StandardScaler, load_data
from factorseq.data.missing import fill_along_series, remove_values
from factorseq.data.windows import sliding_windows
from factorseq.errors import FactorseqError
from factorseq.train.data import WindowDataset, check_missing_support

nan = np.nan


# ------------------------------------------------------------------ imputation along a series

def _two_series(tmp_path) -> str:
    """Series a (8 rows) has a gap of 5 rows, longer than a window of 3; series b starts with
    a gap. Rows are shuffled and interleaved: the loader sorts by id and time."""
    a = [0, nan, nan, nan, nan, nan, 12, 14]
    b = [nan, nan, 100, nan, 104]
    df = pd.DataFrame({"id": ["a"] * 8 + ["b"] * 5, "t": list(range(8)) + list(range(5)),
                       "u": a + b, "v": np.arange(13.0)})
    path = tmp_path / "two.csv"
    df.sample(frac=1.0, random_state=3).to_csv(path, index=False)
    return str(path)


@pytest.mark.parametrize("mode, a, b", [
    ("linear", [0, 2, 4, 6, 8, 10, 12, 14], [100, 100, 100, 102, 104]),
    ("ffill", [0, 0, 0, 0, 0, 0, 12, 14], [100, 100, 100, 100, 104]),
])
def test_gap_longer_than_a_window_is_bridged_within_its_series(tmp_path, mode, a, b):
    cfg = DataConfig(source=_two_series(tmp_path), window=3, id_column="id", time_column="t",
                     impute=mode)
    data = load_data(cfg)
    # every window of the filled series, series by series: b never borrows a's 14
    want = np.concatenate([sliding_windows(np.array(a, float)[:, None], 3),
                           sliding_windows(np.array(b, float)[:, None], 3)])
    np.testing.assert_allclose(data.x[:, :, :1], want)
    np.testing.assert_array_equal(data.seq_id, [0] * 6 + [1] * 3)
    assert data.x_mask is None and data.impute == mode
    assert data.missing_rate == pytest.approx({"u": 8 / 13, "v": 0.0})


def test_fill_along_series_by_hand():
    values = np.array([[1.0], [nan], [nan], [7.0], [nan], [nan], [5.0]])
    mask = np.isnan(values)
    out, empty = fill_along_series(values, mask, np.array([0, 5]), "linear")
    # first series rows 0-4: 1, 3, 5, 7, then 7 held; second rows 5-6: 5 held backwards
    np.testing.assert_allclose(out[:, 0], [1, 3, 5, 7, 7, 5, 5])
    out, empty = fill_along_series(values, mask, np.array([0, 4, 5]), "ffill")
    np.testing.assert_allclose(out[:4, 0], [1, 1, 1, 7])
    assert np.isnan(out[4, 0]) and empty[:, 0].tolist() == [False, True, False]


def test_a_series_without_a_value_is_named_and_mean_fills_it(tmp_path):
    df = pd.DataFrame({"id": ["a"] * 4 + ["b"] * 4, "u": [1, 2, 3, 6, nan, nan, nan, nan]})
    path = tmp_path / "t.csv"
    df.to_csv(path, index=False)
    base = dict(source=str(path), window=2, id_column="id")
    with pytest.raises(FactorseqError, match=r"column 'u' .* in series 'b' \(4 rows\).*"
                                             r"--impute mean"):
        load_data(DataConfig(**base, impute="linear"))
    data = load_data(DataConfig(**base, impute="mean"))
    np.testing.assert_allclose(data.x[data.seq_id == 1], 3.0)  # (1 + 2 + 3 + 6) / 4


# ---------------------------------------------------------------------------- window arrays

def _windows_with_gaps(tmp_path) -> tuple[str, np.ndarray]:
    x = np.arange(2 * 4 * 2, dtype=float).reshape(2, 4, 2)
    x[0, 1, 0] = nan
    x[1, :, 1] = nan  # window 1 never observes feature 1
    path = tmp_path / "gaps.npz"
    np.savez(path, data=x, feature_names=np.array(["p", "q"]))
    return str(path), x


def test_array_fallback_mean_and_named_errors(tmp_path):
    path, x = _windows_with_gaps(tmp_path)
    with pytest.raises(FactorseqError, match=r"column 'q' of gaps.npz has no observed value "
                                             r"in 1 of 2 windows \(first: window 1\).*mean"):
        load_data(DataConfig(source=path, impute="linear"))
    data = load_data(DataConfig(source=path, impute="mean"))
    mean_p = np.nanmean(x[..., 0])
    mean_q = np.nanmean(x[..., 1])  # the feature's mean over its observed values
    assert data.x[0, 1, 0] == pytest.approx(mean_p) and mean_q == pytest.approx(4.0)
    np.testing.assert_allclose(data.x[1, :, 1], mean_q)
    assert data.x_mask is None
    assert data.schema()["missing_rate"] == {"p": 0.125, "q": 0.5}
    assert data.schema()["impute"] == "mean"


def test_inf_is_missing_like_nan(tmp_path):
    x = np.ones((3, 5, 1))
    x[0, 2, 0], x[1, 1, 0] = np.inf, -np.inf
    x[0, 3, 0] = 3.0
    np.save(tmp_path / "inf.npy", x)
    with pytest.raises(FactorseqError, match=r"2 missing values \(NaN/inf\).*f0 2 of 15"):
        load_data(DataConfig(source=str(tmp_path / "inf.npy")))
    lin = load_data(DataConfig(source=str(tmp_path / "inf.npy"), impute="linear"))
    assert np.isfinite(lin.x).all() and lin.x[0, 2, 0] == pytest.approx(2.0)


# ------------------------------------------------------------------------------- the mask

def test_mask_travels_with_a_finite_placeholder(tmp_path):
    path, x = _windows_with_gaps(tmp_path)
    data = load_data(DataConfig(source=path, impute="mask"))
    missing = np.isnan(x)
    assert data.x_mask.shape == x.shape and data.x_mask.dtype == bool
    np.testing.assert_array_equal(data.x_mask, ~missing)
    assert np.isfinite(data.x).all()
    np.testing.assert_allclose(data.x[missing], np.broadcast_to(np.nanmean(x, (0, 1)),
                                                                x.shape)[missing])
    np.testing.assert_array_equal(data.x[~missing], x[~missing])  # observed values untouched
    assert data.subset(np.array([1])).x_mask.shape == (1, 4, 2)
    batch = WindowDataset(data).__getitems__([1, 0])
    assert batch["x_mask"].dtype == torch.float32 and batch["x_mask"].shape == (2, 4, 2)
    assert batch["x_mask"][0, :, 1].sum() == 0 and batch["x_mask"][0, :, 0].sum() == 4


@pytest.mark.parametrize("cls", [MinMaxScaler, StandardScaler])
def test_scalers_fit_on_observed_values_only(cls):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 6, 2)) * [1.0, 10.0] + [0.0, 50.0]
    mask = rng.random(x.shape) > 0.3
    filled = np.where(mask, x, 1000.0)  # a placeholder far off: it must not count
    s = cls().fit(filled, mask)
    obs = [x[..., j][mask[..., j]] for j in range(2)]
    if cls is MinMaxScaler:
        np.testing.assert_allclose(s.min_, [o.min() for o in obs])
        np.testing.assert_allclose(s.scale_, [o.max() - o.min() + 1e-7 for o in obs])
    else:
        np.testing.assert_allclose(s.mean_, [o.mean() for o in obs])
        np.testing.assert_allclose(s.std_, [o.std() + 1e-8 for o in obs])
    key = "scale" if cls is MinMaxScaler else "mean"
    assert not np.allclose(cls().fit(filled).to_dict()[key], s.to_dict()[key])  # mask used
    with pytest.raises(FactorseqError, match="feature 1 has no observed value"):
        cls().fit(filled, np.stack([mask[..., 0], np.zeros_like(mask[..., 1])], -1))


def test_models_that_ignore_the_mask_are_refused(tmp_path, capsys, monkeypatch):
    path, _ = _windows_with_gaps(tmp_path)
    from factorseq.registry import get_model_class

    cls = get_model_class("gan")  # adversarial: its discriminator would see the placeholders
    data = load_data(DataConfig(source=path, impute="mask"))
    with pytest.raises(FactorseqError, match="gan cannot train on data with gaps"):
        check_missing_support(cls, data)
    msg = user_error(capsys, "train", "gan", "--data", path, "--impute", "mask",
                     "--out", tmp_path / "r")
    assert "impute first with --impute linear, ffill or mean" in msg and "timevae" in msg
    assert not (tmp_path / "r" / "config.json").exists()


def test_mask_end_to_end_with_a_model_that_handles_it(tmp_path, monkeypatch):
    """The mask reaches the model's batches and the schema saved with the run."""
    from factorseq.registry import get_model_class

    cls = get_model_class("vae_dense")
    monkeypatch.setattr(cls, "handles_missing", True, raising=False)
    seen = []
    loss = cls.loss
    monkeypatch.setattr(cls, "loss", lambda self, batch: (seen.append(batch.get("x_mask")),
                                                          loss(self, batch))[1])
    x = np.sin(np.arange(40 * 8 * 2).reshape(40, 8, 2) / 5.0)
    x[::3, 2:5, 1] = nan
    np.save(tmp_path / "g.npy", x)
    assert cli("train", "vae_dense", "--data", tmp_path / "g.npy", "--impute", "mask",
               "--out", tmp_path / "run", "--epochs", 1, "--batch-size", 8) == 0
    cfg = json.loads((tmp_path / "run" / "config.json").read_text())
    rate = np.isnan(x).mean(axis=(0, 1))
    assert cfg["data_schema"]["impute"] == "mask"
    assert cfg["data_schema"]["missing_rate"] == pytest.approx({"f0": 0.0, "f1": rate[1]})
    masks = [m for m in seen if m is not None]
    assert masks and all(m.dtype == torch.float32 and m.shape[1:] == (8, 2) for m in masks)
    assert sum(float((1 - m).sum()) for m in masks) > 0


# -------------------------------------------------------------------------- dropping columns

def _air(tmp_path) -> str:
    """A sensor table: -200 marks a missing reading; NMHC(GT) is never observed."""
    rng = np.random.default_rng(0)
    co = np.sin(np.arange(60) / 5.0) + 2
    co[rng.random(60) < 0.2] = -200
    df = pd.DataFrame({"Time": np.arange(60), "CO(GT)": co, "NMHC(GT)": -200.0,
                       "T": np.cos(np.arange(60) / 7.0)})
    path = tmp_path / "air.csv"
    df.to_csv(path, index=False)
    return str(path)


def test_a_never_observed_column_is_named_and_droppable_csv(tmp_path, capsys):
    path = _air(tmp_path)
    base = ["train", "vae_dense", "--data", path, "--time-column", "Time", "--window", 8,
            "--missing", -200, "--out", tmp_path / "r", "--epochs", 1, "--batch-size", 8]
    msg = user_error(capsys, *base)
    assert "NMHC(GT) 60 (all)" in msg and "--drop-columns 'NMHC(GT)'" in msg
    for mode in ("linear", "ffill", "mean", "mask", "drop"):
        msg = user_error(capsys, *base, "--impute", mode)
        assert "column 'NMHC(GT)' of air has no observed value" in msg, mode
        assert "--drop-columns 'NMHC(GT)'" in msg
    assert cli(*base, "--impute", "linear", "--drop-columns", "NMHC(GT)") == 0
    cfg = json.loads((tmp_path / "r" / "config.json").read_text())
    assert cfg["data_schema"]["feature_names"] == ["CO(GT)", "T"]
    assert cfg["data_config"]["drop_columns"] == ["NMHC(GT)"]
    assert 0 < cfg["data_schema"]["missing_rate"]["CO(GT)"] < 0.5
    by_index = load_data(DataConfig(source=path, time_column="Time", window=8, missing=-200,
                                    impute="linear", drop_columns="1"))
    assert by_index.feature_names == ["CO(GT)", "T"]
    with pytest.raises(FactorseqError, match=r"cannot drop column 'nope'.*CO\(GT\), NMHC"):
        load_data(DataConfig(source=path, drop_columns=["nope"]))


def test_a_never_observed_column_is_droppable_npz(tmp_path):
    x = np.ones((5, 4, 3))
    x[:, :, 1] = nan
    np.savez(tmp_path / "w.npz", data=x)
    with pytest.raises(FactorseqError, match=r"column 'f1' of w.npz has no observed value.*"
                                             r"--drop-columns f1"):
        load_data(DataConfig(source=str(tmp_path / "w.npz"), impute="mean"))
    for drop in ("f1", "1", ["1"]):
        data = load_data(DataConfig(source=str(tmp_path / "w.npz"), drop_columns=drop))
        assert data.x.shape == (5, 4, 2) and data.feature_names == ["f0", "f2"]
    stockv = load_data(DataConfig(source="stockv", drop_columns="Volume,0"))
    assert stockv.feature_names == ["High", "Low", "Close", "Adj_Close"]


# --------------------------------------------------------------------------- damaged files

@pytest.mark.parametrize("damage", ["truncated", "garbled", "empty"])
def test_damaged_npz_is_one_error_line(tmp_path, capsys, damage):
    good = tmp_path / "good.npz"
    np.savez_compressed(good, data=np.random.default_rng(0).normal(size=(50, 8, 3)))
    raw = good.read_bytes()
    bad = tmp_path / "bad.npz"
    bad.write_bytes({"truncated": raw[: len(raw) // 2], "empty": b"",
                     "garbled": raw[:150] + bytes(50) + raw[200:]}[damage])
    msg = user_error(capsys, "train", "vae_dense", "--data", bad, "--out", tmp_path / "r")
    assert msg.startswith(f"error: cannot read {bad}")


# ----------------------------------------------------------------------------------- store

def test_store_keeps_the_mask(tmp_path):
    path, x = _windows_with_gaps(tmp_path)
    cfg = DataConfig(source=path, impute="mask", store=str(tmp_path / "store"))
    stored, memory = load_data(cfg), load_data(DataConfig(source=path, impute="mask"))
    from factorseq.data.store import is_lazy

    assert is_lazy(stored.x)
    np.testing.assert_array_equal(stored.x_mask, memory.x_mask)
    np.testing.assert_array_equal(np.asarray(stored.x), memory.x)
    assert stored.schema() == memory.schema()
    again = load_data(cfg)  # read back from the folder
    np.testing.assert_array_equal(again.subset(np.array([1])).x_mask, memory.x_mask[1:])
    a = MinMaxScaler().fit(stored.x, stored.x_mask)
    b = MinMaxScaler().fit(memory.x, memory.x_mask)
    np.testing.assert_array_equal(a.min_, b.min_)


# ------------------------------------------------------------------- removing values on purpose

def test_remove_values_mcar_is_exact_and_seeded():
    x = np.zeros((50, 24, 6))
    out, mask = remove_values(x, 0.3, "mcar", seed=1)
    assert (~mask).sum() == round(0.3 * x.size)
    np.testing.assert_array_equal(np.isnan(out), ~mask)
    assert np.array_equal(remove_values(x, 0.3, "mcar", seed=1)[1], mask)
    assert not np.array_equal(remove_values(x, 0.3, "mcar", seed=2)[1], mask)


def test_remove_values_runs_rate_lengths_and_seed():
    x = np.zeros((10, 2000, 3))
    _, mask = remove_values(x, 0.25, "runs", seed=4)
    assert abs((~mask).mean() - 0.25) < 0.02
    lengths = []
    for lane in (~mask).transpose(0, 2, 1).reshape(-1, 2000):
        edges = np.flatnonzero(np.diff(np.r_[0, lane.astype(int), 0]))
        starts, ends = edges[::2], edges[1::2]
        inner = (starts > 0) & (ends < 2000)  # runs cut by a lane's ends are shorter
        lengths += (ends - starts)[inner].tolist()
    assert min(lengths) >= 6 and max(lengths) <= 30 and len(lengths) > 300
    assert np.array_equal(remove_values(x, 0.25, "runs", seed=4)[1], mask)
    with pytest.raises(FactorseqError, match="remove rate"):
        remove_values(x, 0.95, "runs")


def test_remove_values_from_a_bundled_set_keeps_the_test_split():
    cfg = DataConfig(source="digits", remove_rate=0.2, remove_pattern="runs", impute="mask",
                     remove_seed=3)
    data = load_data(cfg)
    assert abs((~data.x_mask).mean() - 0.2) < 0.03
    assert data.test.x_mask is None and np.isfinite(data.test.x).all()
    assert data.schema()["impute"] == "mask"
    assert np.array_equal(load_data(cfg).x_mask, data.x_mask)  # seeded: the run reloads it
    mean = load_data(DataConfig(source="digits", remove_rate=0.2, impute="mean"))
    assert mean.x_mask is None and np.isfinite(mean.x).all()
