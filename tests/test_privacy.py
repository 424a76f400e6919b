"""DCR and the membership-inference AUC: copies leak, fresh draws do not; the held-out choice;
the generative evaluator's new keys end to end."""
from __future__ import annotations

import json

import numpy as np
import pytest

from clihelp import cli, user_error
from factorseq.errors import ShapeError
from factorseq.metrics import dcr, membership_auc
from factorseq.metrics.privacy import nearest_distances, privacy_scores, shares_time_step
from factorseq.report import _flatten


def draws(n: int, seed: int, t: int = 8, d: int = 3) -> np.ndarray:
    """Independent windows of one distribution: random-phase sines plus noise."""
    rng = np.random.default_rng(seed)
    steps = np.arange(t)[None, :, None]
    x = np.sin(rng.uniform(0.2, 0.6, (n, 1, d)) * steps + rng.uniform(0, 6.3, (n, 1, d)))
    return (0.5 + 0.4 * x + 0.05 * rng.normal(size=(n, t, d))).astype(np.float32)


@pytest.fixture(scope="module")
def split():
    x = draws(4000, 0)
    return x[:3000], x[3000:]  # training windows, held-out windows


def test_nearest_distances_by_hand():
    ref = np.array([[0.0, 0.0], [3.0, 4.0]])
    (d,) = nearest_distances(ref, np.array([[0.0, 1.0], [3.0, 4.0], [6.0, 8.0]]))
    np.testing.assert_allclose(d, [1.0, 0.0, 5.0])


def test_copies_of_training_windows_leak(split):
    train, holdout = split
    out = dcr(train, holdout, train[:2000])
    assert out["share_below_holdout_p5"] == 1.0 and out["share_copies"] == 1.0
    assert out["synthetic_median"] == 0.0 < out["holdout_p5"] <= out["holdout_median"]
    # a sampled member has a synthetic copy with probability 2 / 3
    assert membership_auc(train, holdout, train[:2000], seed=0) > 0.75
    assert membership_auc(train, holdout, train, seed=0) == 1.0


def test_fresh_draws_do_not_leak(split):
    train, holdout = split
    fresh = draws(3000, 7)
    out = dcr(train, holdout, fresh)
    assert out["share_below_holdout_p5"] < 0.12 and out["share_copies"] == 0.0
    assert out["synthetic_median"] == pytest.approx(out["holdout_median"], rel=0.1)
    aucs = [membership_auc(train, holdout, fresh, seed=s) for s in range(3)]
    assert abs(np.mean(aucs) - 0.5) < 0.04  # +-0.02 between data seeds (measured)
    assert len(set(aucs)) == 3  # each seed draws other members


def test_noisy_copies_lie_between(split):
    train, holdout = split
    near = train + 0.01 * np.random.default_rng(3).normal(size=train.shape).astype(np.float32)
    assert membership_auc(train, holdout, near, seed=0) > 0.9
    assert dcr(train, holdout, near)["share_copies"] == 0.0


def test_overlapping_stride_windows_are_detected():
    series = np.random.default_rng(0).normal(size=(500, 2)).astype(np.float32)
    windows = np.lib.stride_tricks.sliding_window_view(series, 8, axis=0).transpose(0, 2, 1)
    perm = np.random.default_rng(1).permutation(len(windows))
    train, holdout = windows[np.sort(perm[50:])], windows[np.sort(perm[:50])]
    assert shares_time_step(train, holdout).all()  # stride 1: every held-out window overlaps
    assert not shares_time_step(train, draws(20, 5, d=2)).any()
    out = privacy_scores(train, holdout, train, seeds=[0, 1])
    assert out["dcr"]["holdout"] == "overlapping" and out["dcr"]["n_holdout"] == 50
    assert out["membership_auc"]["mean"] == 1.0  # exact copies still stand out


def test_privacy_scores_use_disjoint_windows_when_there_are_enough(split):
    train, holdout = split
    mixed = np.concatenate([holdout, train[:30]])  # 30 held-out windows that are training ones
    out = privacy_scores(train, mixed, draws(500, 9), seeds=[0])
    assert out["dcr"]["holdout"] == "disjoint"
    assert out["dcr"]["n_holdout"] == out["dcr"]["n_holdout_disjoint"] == len(holdout)


def test_shapes_must_agree(split):
    train, holdout = split
    with pytest.raises(ShapeError):
        dcr(train, holdout, train[:, :4])


# ----------------------------------------------------------------- the evaluator, end to end
def test_evaluate_writes_fidelity_and_privacy_keys(tmp_path, tiny_csv, capsys):
    run, out = tmp_path / "run", tmp_path / "m.json"
    assert cli("train", "timevae", "--data", tiny_csv, "--time-column", "date", "--out", run,
               "--epochs", "2",
               "--batch-size", "32", "--set", "train.tensorboard=false") == 0
    fast = ["--repeats", "2", "--set", "disc_iterations=5", "--set", "pred_iterations=5",
            "--set", "ts2vec_iterations=3"]
    capsys.readouterr()
    assert cli("evaluate", run, "--out", out, *fast) == 0
    printed = capsys.readouterr().out
    metrics = json.loads(out.read_text())
    for key in ("context_fid", "correlational", "membership_auc"):
        assert len(metrics[key]["values"]) == 2 and metrics[key]["mean"] >= 0
        assert key in printed
    # the held-out block: the last 30 of 300 rows hold 7 windows of 24 steps, no step shared
    assert metrics["dcr"]["n_holdout"] == metrics["dcr"]["n_holdout_disjoint"] == 7
    assert (metrics["dcr"]["holdout"], metrics["dcr"]["split"]) == ("disjoint", "time")
    assert set(metrics["score_seconds"]) == {"context_fid", "correlational", "privacy"}
    rows = dict(_flatten(metrics))  # the report's metrics table
    assert "&plusmn;" in rows["context_fid"] and "&plusmn;" in rows["membership_auc"]
    assert float(rows["dcr.share_below_holdout_p5"]) >= 0

    out2 = tmp_path / "m2.json"
    assert cli("evaluate", run, "--out", out2, *fast, "--set", "fidelity=false",
               "--set", "privacy=false") == 0
    assert not {"context_fid", "dcr", "score_seconds"} & set(json.loads(out2.read_text()))
    cfg = json.loads((run / "config.json").read_text())  # a run saved before splits were
    del cfg["data_split"]                                 # saved, which held nothing out
    cfg["train_config"]["val_fraction"] = 0.0
    (run / "config.json").write_text(json.dumps(cfg))
    out3 = tmp_path / "m3.json"
    assert cli("evaluate", run, "--out", out3, *fast, "--set", "fidelity=false") == 0
    skipped = json.loads(out3.read_text())
    assert skipped["dcr"] is None and "held out no windows" in skipped["privacy_skipped"]
    assert "true or false" in user_error(capsys, "evaluate", run, "--out", tmp_path / "x.json",
                                         "--set", "privacy=maybe")
    assert "ts2vec_iterations" in user_error(capsys, "evaluate", run, "--out",
                                             tmp_path / "y.json", "--set",
                                             "ts2vec_iterations=-1")
