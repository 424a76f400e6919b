"""Time-series data layer: windowing, scalers, missing values, labels, files, bundled sets.

Every array is (windows, time, features); tables are (time, features).
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from factorseq.data import DataConfig, MinMaxScaler, Scaler, StandardScaler, load_data
from factorseq.data.bundled import sine_windows
from factorseq.data.loaders import handle_missing, keep_labels, sliding_windows
from factorseq.data.paths import data_dir
from factorseq.errors import FactorseqError, ShapeError

FAST = settings(max_examples=40, deadline=None)


# ------------------------------------------------------------------------- sliding windows

@FAST
@given(st.data())
def test_sliding_windows_count_and_slices(data):
    t = data.draw(st.integers(1, 60))
    d = data.draw(st.integers(1, 4))
    length = data.draw(st.integers(1, t))
    stride = data.draw(st.integers(1, 7))
    table = np.arange(t * d, dtype=np.float64).reshape(t, d)
    w = sliding_windows(table, length, stride)
    assert w.shape == ((t - length) // stride + 1, length, d)
    for i in range(len(w)):
        np.testing.assert_array_equal(w[i], table[i * stride:i * stride + length])
    assert not np.shares_memory(w, table)


def test_sliding_windows_bad_inputs():
    with pytest.raises(FactorseqError, match=r"window of 24 steps is longer than the series "
                                             r"\(10 rows\)"):
        sliding_windows(np.zeros((10, 2)), 24)
    with pytest.raises(ShapeError):
        sliding_windows(np.zeros(10), 3)


# ------------------------------------------------------------------------------- scalers

finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)


@FAST
@given(arrays(np.float64, st.tuples(st.integers(1, 5), st.integers(1, 6), st.integers(1, 3)),
              elements=finite))
def test_scaler_round_trip(x):
    for scaler in (MinMaxScaler(), StandardScaler()):
        z = scaler.fit_transform(x)
        assert z.shape == x.shape and z.dtype == np.float32
        back = scaler.inverse_transform(z)
        tol = 1e-5 * (np.abs(x).max() + 1)
        np.testing.assert_allclose(back, x, atol=tol, rtol=1e-5)
        again = Scaler.from_dict(scaler.to_dict())
        np.testing.assert_allclose(again.transform(x), z, atol=1e-6)
    z = MinMaxScaler().fit_transform(x)
    assert z.min() >= -1e-6 and z.max() <= 1 + 1e-6


def test_minmax_hits_zero_and_one():
    x = np.random.default_rng(0).normal(size=(20, 8, 3)) * 50 + 7
    z = MinMaxScaler().fit_transform(x)
    np.testing.assert_allclose(z.min(axis=(0, 1)), 0, atol=1e-6)
    np.testing.assert_allclose(z.max(axis=(0, 1)), 1, atol=1e-6)
    s = StandardScaler().fit_transform(x)
    np.testing.assert_allclose(s.reshape(-1, 3).mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(s.reshape(-1, 3).std(0), 1, atol=1e-4)


def test_quantile_scaler_maps_to_ranks_and_back_to_observed_levels():
    from factorseq.data.scaler import QuantileScaler

    rng = np.random.default_rng(0)
    heavy = rng.pareto(1.5, (300, 12))  # a heavy tail: MinMax would squeeze the bulk near 0
    levels = 10.0 * rng.integers(0, 4, (300, 12)) * (rng.random((300, 12)) < 0.4)  # 60 % zeros
    x = np.stack([heavy, levels], -1)
    s = QuantileScaler().fit(x)
    z = s.transform(x)
    assert z.shape == x.shape and z.min() >= 0 and z.max() <= 1
    # uniform output: the heavy channel's median sits at 0.5 (hand: the CDF at the median)
    assert abs(np.median(z[..., 0]) - 0.5) < 0.01
    np.testing.assert_allclose(s.inverse_transform(z)[..., 0], heavy, rtol=1e-3, atol=1e-3)
    # values in [0, 1], and beyond it, map back onto the observed levels 0, 10, 20, 30 (all
    # but those in the 1/999-wide steps of the quantile grid between two levels)
    u = rng.uniform(-0.2, 1.2, (50, 12, 2))
    back = s.inverse_transform(u)[..., 1]
    assert np.isin(back, [0.0, 10.0, 20.0, 30.0]).mean() > 0.98
    # 60 % zeros: the lower 55 % of the range is one flat stretch at 0
    assert (s.inverse_transform(np.full((1, 1, 2), 0.55))[..., 1] == 0).all()
    again = Scaler.from_dict(json.loads(json.dumps(s.to_dict())))  # JSON, no pickle
    np.testing.assert_allclose(again.transform(x), z, atol=1e-6)
    np.testing.assert_allclose(again.inverse_transform(u), s.inverse_transform(u), atol=1e-6)
    mask = np.ones(x.shape, bool)
    mask[:150] = False  # the placeholders of never-observed entries do not move the quantiles
    moved = x.copy()
    moved[:150] = 1e9
    np.testing.assert_allclose(QuantileScaler().fit(moved, mask).transform(x[150:]),
                               QuantileScaler().fit(x[150:]).transform(x[150:]), atol=1e-6)


# ----------------------------------------------------------------------------- keep_labels

@FAST
@given(st.data())
def test_keep_labels_exact_and_balanced(data):
    n_win = data.draw(st.integers(1, 80))
    k = data.draw(st.integers(1, 6))
    rng = np.random.default_rng(data.draw(st.integers(0, 10_000)))
    y = rng.integers(0, k, n_win)
    mask = rng.random(n_win) < 0.7
    n = data.draw(st.integers(0, int(mask.sum())))
    seed = data.draw(st.integers(0, 100))
    kept = keep_labels(y, mask, n, seed)
    assert kept.dtype == bool and kept.sum() == n
    assert not (kept & ~mask).any()  # only known labels are kept
    np.testing.assert_array_equal(kept, keep_labels(y, mask, n, seed))  # deterministic
    classes = np.unique(y[mask])
    quota = {c: int((kept & (y == c)).sum()) for c in classes}
    cap = {c: int((mask & (y == c)).sum()) for c in classes}
    for c in classes:  # a class may trail another by more than one only if it is exhausted
        for d in classes:
            assert quota[c] >= quota[d] - 1 or quota[c] == cap[c]


def test_keep_labels_even_split_and_errors():
    y = np.repeat([0, 1, 2], [10, 10, 2])
    kept = keep_labels(y, None, 12, seed=3)
    assert [int((kept & (y == c)).sum()) for c in range(3)] == [5, 5, 2]
    with pytest.raises(FactorseqError, match="only 22"):
        keep_labels(y, None, 23, seed=0)


# -------------------------------------------------------------------------- handle_missing

def test_handle_missing_modes():
    t = np.array([[np.nan, 1.0], [1.0, 2.0], [np.nan, -200.0], [3.0, 4.0], [np.nan, 5.0]])
    np.testing.assert_allclose(handle_missing(t, None, "ffill")[:, 0], [1, 1, 1, 3, 3])
    np.testing.assert_allclose(handle_missing(t, None, "linear")[:, 0], [1, 1, 2, 3, 3])
    np.testing.assert_allclose(handle_missing(t, -200, "linear")[:, 1], [1, 2, 3, 4, 5])
    np.testing.assert_allclose(handle_missing(t, -200, "ffill")[:, 1], [1, 2, 2, 4, 5])
    np.testing.assert_allclose(handle_missing(t, -200, "drop"), [[1, 2], [3, 4]])
    assert np.isnan(t[0, 0])  # the caller's table is untouched
    clean = np.ones((3, 2))
    np.testing.assert_array_equal(handle_missing(clean), clean)


def test_handle_missing_default_error_counts():
    t = np.array([[np.nan, 1.0], [-200.0, np.nan]])
    with pytest.raises(FactorseqError, match=r"3 missing values.*--impute"):
        handle_missing(t, -200)
    with pytest.raises(FactorseqError, match="no observed value"):
        handle_missing(np.full((3, 1), np.nan), None, "ffill")


@FAST
@given(arrays(np.float64, st.tuples(st.integers(1, 30), st.integers(1, 3)),
              elements=st.one_of(st.just(np.nan), st.floats(-9, 9))),
       st.sampled_from(["ffill", "linear"]))
def test_handle_missing_fills_everything(t, mode):
    if np.isnan(t).all(axis=0).any():
        return
    out = handle_missing(t, None, mode)
    assert np.isfinite(out).all()
    ok = ~np.isnan(t)
    np.testing.assert_array_equal(out[ok], t[ok])


# ---------------------------------------------------------------------------- long tables

def _long_table() -> pd.DataFrame:
    """Two series (a: 6 rows, b: 5 rows), rows shuffled, with time and label columns."""
    rows = []
    for sid, n in (("a", 6), ("b", 5)):
        for t in range(n):
            rows.append({"id": sid, "time": t, "u": 10 * t + (sid == "b"), "v": -t,
                         "label": "" if t == 3 else ("up" if t % 2 else "down")})
    return pd.DataFrame(rows).sample(frac=1.0, random_state=0).reset_index(drop=True)


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_table_round_trip_with_id_time_label(tmp_path, suffix):
    df = _long_table()
    path = tmp_path / f"t.{suffix}"
    df.to_csv(path, index=False) if suffix == "csv" else df.to_parquet(path)
    cfg = DataConfig(source=str(path), window=3, stride=1, id_column="id", time_column="time",
                     label_column="label")
    data = load_data(cfg)
    assert data.feature_names == ["u", "v"]
    assert data.x.shape == (4 + 3, 3, 2)
    np.testing.assert_array_equal(data.seq_id, [0] * 4 + [1] * 3)
    assert data.meta["n_sequences"] == 2
    expect_a = sliding_windows(np.stack([10 * np.arange(6), -np.arange(6)], 1), 3)
    expect_b = sliding_windows(np.stack([10 * np.arange(5) + 1, -np.arange(5)], 1), 3)
    np.testing.assert_array_equal(data.x, np.concatenate([expect_a, expect_b]))
    # label of a window = label of its last row (t = 2, 3, 4, 5); t = 3 is unlabelled
    assert data.meta["class_names"] == ["down", "up"]
    np.testing.assert_array_equal(data.y_mask, [True, False, True, True, True, False, True])
    np.testing.assert_array_equal(data.y[data.y_mask], [0, 0, 1, 0, 0])


def test_table_feature_subset_stride_and_drop(tmp_path):
    df = _long_table().sort_values(["id", "time"])
    df.loc[(df.id == "a") & (df.time == 1), "u"] = np.nan
    path = tmp_path / "t.csv"
    df.to_csv(path, index=False)
    base = dict(source=str(path), window=2, id_column="id", time_column="time",
                feature_columns=["u"])
    with pytest.raises(FactorseqError, match="1 missing values"):
        load_data(DataConfig(**base))
    data = load_data(DataConfig(**base, impute="drop", stride=2))
    # series a keeps rows t = 0, 2, 3, 4, 5 (5 rows -> 2 windows), b 5 rows -> 2 windows
    np.testing.assert_array_equal(data.x[:2, :, 0], [[0, 20], [30, 40]])
    assert data.x.shape == (4, 2, 1) and data.feature_names == ["u"]
    lin = load_data(DataConfig(**base, impute="linear"))
    assert lin.x[0, 1, 0] == 10  # interpolated within series a only


def test_numeric_labels_and_sentinel(tmp_path):
    df = pd.DataFrame({"x": [1.0, -200.0, 3.0, 4.0, 5.0], "y": [0, 1, np.nan, 1, 2]})
    path = tmp_path / "t.csv"
    df.to_csv(path, index=False)
    data = load_data(DataConfig(source=str(path), window=2, label_column="y", missing=-200,
                                impute="ffill"))
    np.testing.assert_array_equal(data.x[:, :, 0], [[1, 1], [1, 3], [3, 4], [4, 5]])
    np.testing.assert_array_equal(data.y_mask, [True, False, True, True])
    np.testing.assert_array_equal(data.y[data.y_mask], [1, 1, 2])
    assert data.meta["n_classes"] == 3


# ----------------------------------------------------------------------------- arrays

def test_npz_with_labels_seq_id_and_keep(tmp_path):
    x = np.random.default_rng(0).normal(size=(12, 5, 2))
    y = np.array([0, 1, 2, np.nan, 0, 1, 2, 0, 1, -1, 2, 0])
    path = tmp_path / "w.npz"
    np.savez_compressed(path, data=x, y=y, seq_id=np.arange(12) // 4)
    data = load_data(DataConfig(source=str(path)))
    assert data.x.shape == (12, 5, 2) and data.y_mask.sum() == 10
    assert data.meta == {"n_classes": 3, "n_sequences": 3}
    few = load_data(DataConfig(source=str(path), labels=6, label_seed=1))
    assert few.y_mask.sum() == 6
    assert sorted(np.bincount(few.y[few.y_mask])) == [2, 2, 2]
    with pytest.raises(FactorseqError, match="only 10"):
        load_data(DataConfig(source=str(path), labels=11))


def test_array_nan_and_impute(tmp_path):
    x = np.ones((4, 6, 2))
    x[1, 2, 0] = np.nan
    x[1, 3, 0] = 3.0
    path = tmp_path / "w.npy"
    np.save(path, x)
    with pytest.raises(FactorseqError, match=r"1 missing values.*--impute"):
        load_data(DataConfig(source=str(path)))
    lin = load_data(DataConfig(source=str(path), impute="linear"))
    assert lin.x[1, 2, 0] == pytest.approx(2.0)  # between 1 (t=1) and 3 (t=3), same window
    assert load_data(DataConfig(source=str(path), impute="drop")).x.shape == (3, 6, 2)


def test_bad_inputs(tmp_path):
    np.save(tmp_path / "flat.npy", np.zeros((10, 3)))
    with pytest.raises(ShapeError, match=r"\(10, 3\)"):
        load_data(DataConfig(source=str(tmp_path / "flat.npy")))
    pd.DataFrame({"a": np.arange(10.0)}).to_csv(tmp_path / "short.csv", index=False)
    with pytest.raises(FactorseqError, match=r"window of 24 steps is longer than the series "
                                             r"\(10 rows\)"):
        load_data(DataConfig(source=str(tmp_path / "short.csv")))
    # mostly numbers with a stray word: a numeric column with a typo, not categories
    pd.DataFrame({"a": np.arange(30.0), "mood": ["1"] * 29 + ["ok"]}).to_csv(
        tmp_path / "s.csv", index=False)
    with pytest.raises(FactorseqError, match="'mood' is not numeric"):
        load_data(DataConfig(source=str(tmp_path / "s.csv")))
    with pytest.raises(FactorseqError, match="not a column"):
        load_data(DataConfig(source=str(tmp_path / "s.csv"), id_column="nope"))
    with pytest.raises(FactorseqError, match="neither an existing file nor a bundled"):
        load_data(DataConfig(source="no_such_set"))
    (tmp_path / "w.txt").write_text("1 2 3")
    with pytest.raises(FactorseqError, match="cannot read"):
        load_data(DataConfig(source=str(tmp_path / "w.txt")))
    np.savez(tmp_path / "two.npz", a=np.zeros((2, 3, 1)), b=np.zeros(2))
    with pytest.raises(FactorseqError, match="named 'data'"):
        load_data(DataConfig(source=str(tmp_path / "two.npz")))


# ----------------------------------------------------------------------------- bundled sets

def test_bundled_shapes():
    stockv = load_data(DataConfig(source="stockv"))
    assert stockv.x.shape == (3919, 24, 6) and stockv.feature_names[4] == "Adj_Close"
    assert load_data(DataConfig(source="stockv", options={"percent": 10})).x.shape == (370, 24, 6)
    energy = load_data(DataConfig(source="energy"))
    assert energy.x.shape == (19711, 24, 28) and energy.feature_names[0] == "Appliances"
    assert load_data(DataConfig(source="stocks")).x.shape == (3662, 24, 6)
    sines = load_data(DataConfig(source="sines", options={"n": 50}, seed=4))
    assert sines.x.shape == (50, 24, 5) and sines.feature_names == [f"s{i}" for i in range(5)]
    with pytest.raises(FactorseqError, match="bundled percents: 2, 5, 10, 20, 100"):
        load_data(DataConfig(source="stockv", options={"percent": 50}))


def test_sines_match_timegan_generator():
    """Same draws, same order as TimeGAN's loop after np.random.seed(seed)."""
    rs = np.random.RandomState(7)
    ref = []
    for _ in range(3):
        cols = []
        for _ in range(5):
            freq, phase = rs.uniform(0, 0.1), rs.uniform(0, 0.1)
            cols.append([np.sin(freq * j + phase) for j in range(24)])
        ref.append((np.asarray(cols).T + 1) * 0.5)
    np.testing.assert_allclose(sine_windows(3, 24, 5, seed=7), np.asarray(ref), atol=1e-12)
    a = load_data(DataConfig(source="sines", options={"n": 4}, seed=1)).x
    b = load_data(DataConfig(source="sines", options={"n": 4}, seed=1)).x
    np.testing.assert_array_equal(a, b)
    assert a.min() >= 0 and a.max() <= 1


def test_stocks_follow_timegan_preprocessing():
    table = pd.read_csv(data_dir() / "timegan" / "stock_data.csv").to_numpy()
    data = load_data(DataConfig(source="stocks", window=5, seed=0))
    expect = sliding_windows(table[::-1], 5)  # TimeGAN flips the rows, then windows
    order = np.lexsort(data.x[:, 0, ::-1].T)
    np.testing.assert_allclose(data.x[order], expect[np.lexsort(expect[:, 0, ::-1].T)],
                               rtol=1e-6)
    assert not np.allclose(data.x[:, 0, 0], expect[:, 0, 0])  # shuffled
    fwd = load_data(DataConfig(source="stocks", window=5, options={"reverse": False}))
    assert fwd.meta["reversed"] is False and fwd.x.shape == data.x.shape


def test_dates_text_numbers_and_folders(tmp_path):
    df = pd.DataFrame({"day": ["3 Jan 2020", "1 Jan 2020", "2 Jan 2020", "4 Jan 2020"],
                       "v": ["3", "1", "2", "4"], "on": [True, False, True, True]})
    df.to_parquet(tmp_path / "d.parquet")
    data = load_data(DataConfig(source=str(tmp_path / "d.parquet"), window=2,
                                time_column="day"))
    np.testing.assert_array_equal(data.x[:, :, 0], [[1, 2], [2, 3], [3, 4]])  # date order
    assert data.feature_names == ["v", "on"]
    with pytest.raises(FactorseqError, match="holds no .wav or .flac files"):
        load_data(DataConfig(source=str(tmp_path)))
    with pytest.raises(FactorseqError, match="needs labelled data"):
        load_data(DataConfig(source="sines", options={"n": 5}, labels=2))


def test_an_option_the_data_set_never_reads_is_an_error():
    """--target-speaker on a set without speakers, or a misspelt option, is refused; the
    error lists the options the set does read."""
    with pytest.raises(FactorseqError, match=r"target_speaker are not used by the data set "
                                             r"'sines' \(its options: .*n"):
        load_data(DataConfig(source="sines", options={"n": 20, "target_speaker": "theo"}))
    with pytest.raises(FactorseqError, match="nn are not used"):
        load_data(DataConfig(source="sines", options={"nn": 20}))
    assert len(load_data(DataConfig(source="sines", options={"n": 20})).x) > 0
