"""benchmarks/unified_table.py: section 7 as a study over the harness. Its cells are
timegan_family's; its tables are rendered from the committed result files only (fake results
kept into a temporary ``harness.RESULTS``; nothing is trained)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import harness  # noqa: E402
import tables  # noqa: E402
import unified_table as uni  # noqa: E402


@pytest.fixture
def results(tmp_path, monkeypatch):
    monkeypatch.setattr(harness, "RESULTS", tmp_path / "results")
    monkeypatch.setattr(harness, "REPO", tmp_path)  # where run folders would be
    return tmp_path


def _result(c: harness.Cell, disc: float, dcr: float, best: float | None = None) -> dict:
    train, evaluate = c.commands()
    return {"cell": c.name, "seed": c.seed, "train_command": harness.shown(train),
            "eval_command": harness.shown(evaluate), "train_wall_s": 1.0,
            "training": {"epochs_run": 78, "best_score": best,
                         "train_seconds": 60.0 * (c.seed + 1)},
            "metrics": {"discriminative": {"mean": disc, "std": 0.04 + 0.01 * c.seed},
                        "dcr": {"share_below_holdout_p5": dcr},
                        "membership_auc": {"mean": 0.5}}}


def test_the_cells_are_timegan_familys():
    for model in uni.MODELS:
        for data in uni.DATA:
            for seed in (0, 1, 2):
                family = tables.cell("timegan_family", f"{model}:{data}", seed)
                assert uni.cell(model, data, seed) == family  # same train/evaluate args
    c = uni.cell("iwgan", "stocks", 1)
    assert (c.study, c.name, c.folder.as_posix()) == (
        "timegan_family", "iwgan_stocks", "benchmarks/out/timegan_family/iwgan_stocks/s1")
    assert c.train == ("iwgan", "--data", "stocks", "--epochs", "78", "--batch-size", "128",
                       "--set", "train.threads=1", "--set", "train.tensorboard=false")
    assert c.evaluate == ("--repeats", "5")
    assert set(uni.DATA) == {"sines", "stocks", "energy"}


def test_the_pairs_table_is_mean_and_sample_std_over_seeds(results):
    for seed, (g, w) in enumerate([(0.20, 0.30), (0.26, 0.30), (0.23, 0.36)]):
        harness.keep(_result(uni.cell("gan", "stocks", seed), g, 0.01 * (seed + 1)),
                     uni.cell("gan", "stocks", seed))
        harness.keep(_result(uni.cell("iwgan", "stocks", seed), w, 0.0),
                     uni.cell("iwgan", "stocks", seed))
    for model, seed, best in (("vae", 0, 2.5), ("vae", 1, 2.6), ("aavae", 0, 2.4),
                              ("aavae", 2, 2.9)):
        harness.keep(_result(uni.cell(model, "sines", seed), 0.05, 0.0, best),
                     uni.cell(model, "sines", seed))
    cells = [[c.strip() for c in r.strip("|").split("|")] for r in uni.table().splitlines()]
    rows = {tuple(c[:2]): c for c in cells[2:]}  # columns as in UNIFIED_RESULTS.md's table
    assert list(rows) == [("sines", "vae"), ("sines", "aavae"),
                          ("sines", "*aavae − vae (paired by seed)*"), ("stocks", "gan"),
                          ("stocks", "iwgan"), ("stocks", "*iwgan − gan (paired by seed)*")]
    assert cells[0][9:] == ["mean repeat std (disc)", "best val loss", "epochs run", "train s"]
    gan, iwgan, diff = (rows[("stocks", m)] for m in (
        "gan", "iwgan", "*iwgan − gan (paired by seed)*"))
    # gan disc .20 .26 .23: mean .23, sample std sqrt((.03² + .03² + 0) / 2) = .030
    assert gan[2:5] == ["3", "0.230 ± 0.030", "—"]  # no predictive score: —
    assert gan[8] == "0.020 ± 0.010" and gan[7] == "0.500 ± 0.000"  # DCR .01 .02 .03; AUC
    # the repeats' std (.04 .05 .06) is averaged, not spread; GANs keep no val loss
    assert gan[9:] == ["0.050", "—", "78/78/78", "120"]
    # iwgan .30 .30 .36: sqrt((.02² + .02² + .04²) / 2) = .0346
    assert iwgan[3] == "0.320 ± 0.035"
    # paired by seed: .10 .04 .13, mean .09, sqrt((.01² + .05² + .04²) / 2) = .0458
    assert diff[2:4] == ["3", "0.090 ± 0.046"]
    # the vae pair shares seed 0 only: one difference, no ±; val loss 2.4 - 2.5
    vae, pair = rows[("sines", "vae")], rows[("sines", "*aavae − vae (paired by seed)*")]
    assert vae[10] == "2.550 ± 0.071" and pair[2] == "1" and pair[9:11] == ["", "-0.100"]


def test_run_keeps_the_harness_cells_and_the_weights_table_reads_the_kept_logs(
        results, monkeypatch):
    ran = []

    def fake_run_cell(c, train_only=False):  # stands in for the CLI: a trained, scored cell
        ran.append(c)
        run = results / c.folder / "run" / "logs"
        run.mkdir(parents=True)
        (run / "metrics.csv").write_text(
            "epoch,train_iw_ess,train_loss\n0,0.9,\n0,,1.0\n1,0.95,\n2,0.99,\n")
        return _result(c, 0.4, 0.0)

    monkeypatch.setattr(harness, "run_cell", fake_run_cell)
    assert uni.main(["run", "--seeds", "0", "1", "--models", "iwgan", "--data", "stocks"]) == 0
    assert ran == [tables.cell("timegan_family", "iwgan:stocks", s) for s in (0, 1)]
    kept = harness.kept("timegan_family", "iwgan_stocks")
    assert sorted(kept) == [0, 1] and kept[1]["train_command"].endswith("--seed 1")
    weights = json.loads((results / "results" / "unified" / "weights_iwgan_stocks_s1.json")
                         .read_text())
    assert weights["epoch_means"] == {"train_iw_ess": [0.9, 0.95, 0.99]}
    assert weights["train_command"] == kept[1]["train_command"]
    for s in (0, 1):  # the run folders are not committed: the table must not need them
        (results / uni.cell("iwgan", "stocks", s).folder / "run" / "logs" / "metrics.csv"
         ).unlink()
    rows = uni.weights_table().splitlines()
    assert rows[2:] == ["| stocks | iwgan | 2 | iw_ess 0.990000 ± 0.000000 | "
                        "min iw_ess 0.900000 ± 0.000000 |"]
