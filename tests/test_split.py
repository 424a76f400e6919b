"""The run's split (data/split.py): blocks in time by hand, the gap, kept labels, series too
short for blocks, positions recovered from overlapping windows, saved with the run and
re-derived for runs saved before."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import factorseq as fs
from factorseq.checkpoint import load
from factorseq.data import DataConfig, load_data
from factorseq.data.split import make_split, portions, random_split, shares_steps, time_split
from factorseq.data.windows import recover_starts, sliding_windows
from factorseq.errors import FactorseqError


def test_time_blocks_by_hand():
    # 37 stride-1 windows of 4 steps span 40 steps: cuts at 0.8 * 40 = 32 and 0.9 * 40 = 36
    start = np.arange(37)
    s = time_split(np.zeros(37, int), start, 4, 0.1, 0.1)
    assert s.train.tolist() == list(range(29))  # windows ending by step 32
    assert (s.val.tolist(), s.holdout.tolist()) == ([32], [36])
    assert s.dropped == 6 == 2 * (4 - 1)  # the windows straddling a cut: the gap
    assert not shares_steps(s, np.zeros(37, int), start)
    old = random_split(37, 4, 0.2, 0)
    assert shares_steps(old, np.zeros(37, int), start)  # what the time split removes


def test_chunks_spread_the_held_out_steps_and_mirror():
    # 200 steps, 2 chunks of 100: train | val | held out, then held out | val | train
    edges, labels = portions(200, 4, 0.1, 0.1, blocks=2)
    assert edges.tolist() == [0, 80, 90, 110, 120, 200]  # the two held-out stretches meet
    assert labels.tolist() == [0, 1, 2, 1, 0]
    # fewer chunks when a portion would span less than two windows (20 / 8 -> 2, 10 / 8 -> 1)
    assert len(portions(200, 4, 0.1, 0.1, blocks=9)[1]) == 5
    assert portions(100, 4, 0.1, 0.1, blocks=9)[1].tolist() == [0, 1, 2]
    assert portions(100, 4, 0.0, 0.2, blocks=2)[1].tolist() == [0, 2, 0]  # no validation
    s = time_split(np.zeros(197, int), np.arange(197), 4, 0.1, 0.1, blocks=2)
    assert s.holdout.tolist() == list(range(90, 107))  # windows inside [90, 110)
    assert not shares_steps(s, np.zeros(197, int), np.arange(197))


def test_kept_labels_train_and_their_neighbours_leave_validation():
    start = np.arange(97)  # span 100: cuts at 70 and 90
    keep = np.zeros(97, bool)
    keep[80] = True
    s = time_split(np.zeros(97, int), start, 4, 0.2, 0.1, keep)
    assert 80 in s.train and s.train.max() == 80
    assert s.val.tolist() == [*range(70, 77), *range(84, 87)]  # 77..83 share a step with 80
    assert s.holdout.tolist() == list(range(90, 97))


def test_each_long_series_is_cut_and_short_ones_share_a_line():
    # series 0: 97 windows (span 100); series 1 and 2: 7 windows each (span 10 < 4 / 0.1)
    series = np.r_[np.zeros(97, int), np.ones(7, int), np.full(7, 2)]
    start = np.r_[np.arange(97), np.arange(7), np.arange(7)]
    s = time_split(series, start, 4, 0.2, 0.1)
    in_ = lambda block, k: start[block[series[block] == k]].tolist()  # noqa: E731
    assert (in_(s.val, 0), in_(s.holdout, 0)) == (list(range(70, 87)), list(range(90, 97)))
    # series 1 and 2 laid end to end (20 steps): cuts at 14 and 18
    assert in_(s.train, 1) == list(range(7)) and in_(s.train, 2) == [0]
    assert in_(s.val, 2) == [4] and in_(s.holdout, 2) == []
    assert not shares_steps(s, series, start)


def test_positions_recovered_from_overlapping_windows():
    series = np.random.default_rng(0).normal(size=(60, 2))
    w = sliding_windows(series, 8)
    perm = np.random.default_rng(1).permutation(len(w))
    assert (recover_starts(w[perm]) == perm).all()
    # two stretches that share no row: laid one window length apart
    two = np.concatenate([w[:3], w[40:42]])
    assert recover_starts(two).tolist() == [0, 1, 2, 18, 19]  # 10 rows + a gap of 8
    repeated = np.concatenate([series[:20], series[:20]])  # a row with two successors
    assert recover_starts(sliding_windows(repeated, 8)) is None


def test_bundled_windows_split_in_time():
    data = load_data(DataConfig(source="stockv", options={"percent": 10}))
    assert data.meta["positions"] == "recovered" and data.start is not None
    s = make_split(data, "auto", 0.1, 0.1, 0)
    assert s.kind == "time" and "recovered" in s.note
    assert not shares_steps(s, np.zeros(data.n_windows, int), data.start)
    # the windows really are disjoint: no held-out row occurs among the training rows
    train, _, held = s.parts(data)
    rows = {r.tobytes() for r in train.x.reshape(-1, data.n_features)}
    assert not any(r.tobytes() in rows for r in held.x.reshape(-1, data.n_features))
    assert make_split(data, "random", 0.1, 0.1, 0).kind == "random"
    digits = load_data(DataConfig(source="digits"))
    assert make_split(digits, "auto", 0.1, 0.1, 0).kind == "random"
    with pytest.raises(FactorseqError, match="positions in time"):
        make_split(digits, "time", 0.1, 0.1, 0)


def test_a_short_table_falls_back_to_random_unless_time_is_asked(tmp_path):
    path = tmp_path / "short.csv"
    pd.DataFrame({"a": np.arange(40.0)}).to_csv(path, index=False)
    data = load_data(DataConfig(source=str(path), window=8))
    s = make_split(data, "auto", 0.1, 0.1, 0)
    assert s.kind == "random" and "no validation windows" in s.note
    with pytest.raises(FactorseqError, match="no validation windows"):
        make_split(data, "time", 0.1, 0.1, 0)


def test_the_split_is_saved_with_the_run_and_old_runs_rederive_theirs(tmp_path, tiny_csv):
    cfg = DataConfig(source=str(tiny_csv), time_column="date", window=24)
    train = {"epochs": 1, "batch_size": 32, "tensorboard": False, "progress": False}
    run = fs.fit("vae_dense", cfg, train, out=tmp_path / "r")
    summary = json.loads((tmp_path / "r" / "config.json").read_text())["data_split"]
    assert (summary["kind"], summary["n_train"], summary["n_val"], summary["n_holdout"]) == \
        ("time", 217, 7, 7)  # 300 rows: train ends by 240, validation 240..270, held out 270..
    assert run.config["training"]["n_train"] == 217
    again = load(tmp_path / "r")
    assert (again.split.train == run.split.train).all() and again.split.kind == "time"
    parts = again.splits()
    assert parts.holdout.n_windows == 7 and parts.held_out is parts.holdout
    # a run saved before splits were saved: its seeded random split, re-derived and marked
    stored = json.loads((tmp_path / "r" / "config.json").read_text())
    del stored["data_split"]
    (tmp_path / "r" / "config.json").write_text(json.dumps(stored))
    (tmp_path / "r" / "split.npz").unlink()
    old = load(tmp_path / "r")
    assert old.split is None and old.data_config.split == "random"  # so resume agrees
    parts = old.splits()
    assert old.split.legacy and old.split.kind == "random" and parts.holdout is None
    assert parts.val.n_windows == 28 and parts.held_out is parts.val  # 10 % of 277
    assert (old.split.val == random_split(277, 24, 0.1, 0).val).all()


def test_prepared_data_is_the_runs_own_blocks_scaled(tmp_path, tiny_csv):
    """What benchmarks time or probe outside a run: fit's own training and validation
    blocks, in the model's scaled space (the same windows a trained run reads back)."""
    from factorseq.train.fit import prepared_data
    cfg = DataConfig(source=str(tiny_csv), time_column="date", window=24)
    train_cfg = {"epochs": 1, "batch_size": 32, "tensorboard": False, "progress": False}
    train, val = prepared_data("vae_dense", cfg, train_cfg)
    assert (train.n_windows, val.n_windows) == (217, 7)  # the time split of the test above
    run = fs.fit("vae_dense", cfg, train_cfg, out=tmp_path / "r")
    parts = run.splits()
    np.testing.assert_allclose(train.x, run.to_model(parts.train.x), atol=1e-6)
    np.testing.assert_allclose(val.x, run.to_model(parts.val.x), atol=1e-6)
    assert not np.allclose(train.x[:7], parts.train.x[:7])  # scaled, not the raw units
