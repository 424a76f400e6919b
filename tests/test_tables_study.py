"""benchmarks/tables.py: the cells of sections 1, 4 and 5 as harness cells, and their tables
rendered from the committed result files only."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import harness  # noqa: E402
import tables  # noqa: E402


def test_a_noise_variant_is_its_base_cell_plus_the_noise_option():
    base = tables.cell("timegan_family", "timevae:stocks", 2)
    noisy = tables.cell("timegan_family", "timevae+full:stocks", 2)
    assert noisy.name == "timevae_full_stocks" and base.name == "timevae_stocks"
    # same training (model, data, budget, seed): only the noise fitted after it differs
    assert noisy.train == (*base.train, "--set", "observation_noise=full")
    assert noisy.seed == base.seed and noisy.evaluate == base.evaluate == ("--repeats", "5")
    assert base.train[:6] == ("timevae", "--data", "stocks", "--epochs", "78", "--batch-size")


def test_timevae_paper_cells_follow_the_reference_batch_and_sizes():
    small = tables.cell("timevae_paper", "vae_conv:sines:10", 0)
    assert "data.options={n: 1000}" in small.train and small.train[
        small.train.index("--batch-size") + 1] == "16"
    big = tables.cell("timevae_paper", "timevae:energy:100", 0)
    assert big.train[-2:] == ("--epochs", "40") and "data.options={percent: 100}" in big.train
    assert "fidelity=false" in big.evaluate  # section 1 reports TimeGAN's two scores only
    with pytest.raises(SystemExit, match="no cell"):
        tables.cell("timevae_paper", "timevae:sines:50", 0)


def test_the_table_is_mean_and_sample_std_over_the_kept_seeds(tmp_path, monkeypatch):
    monkeypatch.setattr(harness, "RESULTS", tmp_path)
    for seed, disc, dcr in ((0, 0.20, 0.01), (1, 0.26, 0.03), (2, 0.23, 0.02)):
        c = tables.cell("timegan_family", "gan:stocks", seed)
        result = {"train_wall_s": 60.0 * (seed + 1), "training": {"epochs_run": 78},
                  "metrics": {"discriminative": {"mean": disc, "std": 0.4},
                              "dcr": {"share_below_holdout_p5": dcr},
                              "membership_auc": {"mean": 0.5}}}
        harness.keep(result, c)
    assert sorted(p.name for p in (tmp_path / "timegan_family").iterdir()) == [
        "gan_stocks_s0.json", "gan_stocks_s1.json", "gan_stocks_s2.json"]
    rows = tables.table("timegan_family").splitlines()
    assert len(rows) == 3  # header, rule, the one cell with results
    row = rows[2].split(" | ")
    # disc: mean .23, sample std sqrt((.03² + .03² + 0) / 2) = .03; dcr .02 ± .01
    assert row[0] == "| `gan:stocks`" and row[1] == "0, 1, 2" and row[2] == "0.230 ± 0.030"
    assert row[3] == "—"  # no predictive score in these results
    assert row[6] == "0.020 ± 0.010" and row[7] == "0.500 ± 0.000"
    assert row[9] == "2.0 ± 1.0 |"  # train minutes 1, 2, 3
    assert json.loads((tmp_path / "timegan_family" / "gan_stocks_s1.json").read_text())[
        "train_wall_s"] == 120.0


def test_a_dann_task_is_scored_against_its_source_only_twin(tmp_path, monkeypatch):
    adapted = tables.cell("family_dann", "theo", 1)
    twin = tables.cell("family_dann", "theo:source_only", 1)
    assert twin.train == (*adapted.train, "--set", "lambda_max=0") and twin.evaluate == ()
    assert adapted.evaluate == ("--set", f"baseline={twin.folder / 'run'}")
    monkeypatch.setattr(harness, "RESULTS", tmp_path)
    for speaker, seed, acc, base in (("theo", 0, 0.8, 0.6), ("theo", 1, 0.6, 0.6),
                                     ("lucas", 0, 0.9, 0.5)):
        harness.keep({"train_wall_s": 60.0, "training": {},
                      "metrics": {"target_accuracy": acc, "baseline_target_accuracy": base,
                                  "adaptation_gain": acc - base}},
                     tables.cell("family_dann", speaker, seed))
    rows = tables.table("family_dann").splitlines()
    assert [r.split(" | ")[0] for r in rows[2:]] == ["| `lucas`", "| `theo`", "| **mean of 2**"]
    theo = rows[3].split(" | ")
    assert theo[2:5] == ["0.700 ± 0.141", "0.600 ± 0.000", "0.100 ± 0.141"]
    # the mean of the two tasks' seed means: target (0.9 + 0.7) / 2, gain (0.4 + 0.1) / 2
    assert rows[4].split(" | ")[2:5] == ["0.800", "0.550", "0.250"]


def test_a_budget_check_cell_is_its_base_cell_with_five_times_the_epochs():
    base = tables.cell("timegan_family", "timegan:stocks", 1).commands()[0]
    five = tables.cell("timegan_family", "timegan*5:stocks", 1)
    assert five.name == "timegan_x5_stocks"
    train = five.commands()[0]
    i = base.index("--epochs")
    assert base[i + 1] == "78" and train[i + 1] == "390"
    assert train[:i + 1] + train[i + 2:] == [a.replace("timegan_stocks", "timegan_x5_stocks")
                                             for a in base[:i + 1] + base[i + 2:]]
