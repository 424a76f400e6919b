"""benchmarks/ssvae_bench.py over the harness: a cell per (data, labels, alpha, objective)
whose seed is the label draw, the baseline a cell of its own (objective=classifier), and a
table of mean ± sample std over the kept draws with the paired gain."""
from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
import harness  # noqa: E402
import ssvae_bench  # noqa: E402

from factorseq.metrics.scoring import SCORING_VERSION  # noqa: E402

DIGITS = ["--set", "backbone=mlp", "--set", "z_dim=4", "--set", "supervision_rate=0.25"]
QUIET = ["--set", "train.tensorboard=false", "--set", "train.threads=1"]


def folder(name: str, seed: int) -> str:
    return f"benchmarks/out/ssvae/{name}/s{seed}"


@pytest.mark.parametrize("seed", [0, 1])
def test_the_cells_commands_train_each_draw_and_score_only_that_run(seed):
    cells = ssvae_bench.cells(ssvae_bench.parse(
        ["run", "--data", "digits", "--alphas", "default", "3", "--seeds", str(seed)]))
    assert [c.name for c in cells] == ["digits_n50_classifier", "digits_n50_alphadefault",
                                       "digits_n50_alpha3"]
    clf, semi, alpha3 = (c.commands() for c in cells)
    run = folder("digits_n50_alphadefault", seed) + "/run"
    # the draw is the seed: labels kept, split and initialisation follow it
    assert semi == (
        ["train", "ssvae", "--data", "digits", "--labels", "50",
         "--set", f"data.label_seed={seed}", *DIGITS, *QUIET,
         "--out", run, "--force", "--seed", str(seed)],
        ["evaluate", run, "--out", folder("digits_n50_alphadefault", seed) + "/metrics.json",
         "--force", "--seed", str(seed)])
    assert alpha3[0][:-5] == ["train", "ssvae", "--data", "digits", "--labels", "50", "--set",
                              f"data.label_seed={seed}", *DIGITS, "--set", "alpha=3", *QUIET]
    # the baseline: the same model settings trained as a plain classifier on the N labels,
    # no validation split (no label beyond the N may stop it), 300 epochs
    run = folder("digits_n50_classifier", seed) + "/run"
    assert clf == (
        ["train", "ssvae", "--data", "digits", "--labels", "50",
         "--set", f"data.label_seed={seed}", *DIGITS, "--set", "objective=classifier",
         "--set", "train.val_fraction=0", "--set", "train.epochs=300",
         "--set", "train.patience=300", *QUIET, "--out", run, "--force", "--seed", str(seed)],
        ["evaluate", run, "--out", folder("digits_n50_classifier", seed) + "/metrics.json",
         "--force", "--seed", str(seed)])
    assert not any("draws" in a or "baseline" in a for c in cells for a in c.commands()[1])


def test_fsdd_cells_keep_their_settings_and_the_classifier_its_own_epochs():
    a = ssvae_bench.parse(["run", "--data", "fsdd-digits", "--labels", "20", "100",
                           "--alphas", "30", "--seeds", "0", "1", "--tag", "z2", "--",
                           "--set", "z_dim=2"])
    cells = ssvae_bench.cells(a)
    assert [(c.name, c.seed) for c in cells] == [
        ("fsdd-digits_n20_classifier", 0), ("fsdd-digits_n20_alpha30_z2", 0),
        ("fsdd-digits_n100_classifier", 0), ("fsdd-digits_n100_alpha30_z2", 0),
        ("fsdd-digits_n20_classifier", 1), ("fsdd-digits_n20_alpha30_z2", 1),
        ("fsdd-digits_n100_classifier", 1), ("fsdd-digits_n100_alpha30_z2", 1)]
    semi, clf = cells[5].train, cells[4].train
    assert semi == ("ssvae", "--data", "fsdd-digits", "--labels", "20", "--set",
                    "data.label_seed=1", "--set", "backbone=conv", "--set", "hidden=64",
                    "--set", "z_dim=4", "--set", "supervision_rate=0.25", "--set",
                    "y_estimator=relaxed", "--set", "train.epochs=40", "--set", "alpha=30",
                    *QUIET, "--set", "z_dim=2")
    assert "train.epochs=40" not in clf and "train.epochs=300" in clf  # the baseline's own
    assert "z_dim=2" not in clf and "objective=classifier" in clf  # every variant's baseline
    with pytest.raises(SystemExit):  # extra args change the cells: they need a name
        ssvae_bench.parse(["run", "--", "--set", "z_dim=2"])


def test_the_documented_commands_are_the_studys_verbs(monkeypatch):
    """Every ``ssvae_bench.py`` line of SSVAE_RESULTS.md's first bash block (the section's
    commands) parses with the new verbs."""
    text = (REPO / "benchmarks" / "SSVAE_RESULTS.md").read_text()
    block = re.findall(r"```bash\n(.*?)```", text, re.S)[0].replace("\\\n", " ")
    lines = [re.sub(r"\s#.*", "", line) for line in block.splitlines()
             if "ssvae_bench.py" in line]
    verbs = [ssvae_bench.parse(shlex.split(line.split("ssvae_bench.py", 1)[1])).verb
             for line in lines]
    assert verbs and set(verbs) == {"run", "table"}


def _result(acc: float, seed: int, probe: float | None = None, epochs: int = 100) -> dict:
    metrics = {"accuracy": acc, "chance": 0.102, "n_labels": 50, "label_seed": seed,
               "n_test": 450, "evaluator": "ssvae", "scoring_version": SCORING_VERSION}
    if probe is not None:
        metrics["label_from_style_acc"] = probe
    return {"study": "ssvae", "seed": seed,
            "training": {"epochs_run": epochs, "train_seconds": 30.0 + 10 * seed},
            "metrics": metrics}


def test_the_table_is_mean_and_sample_std_over_the_kept_draws(tmp_path, monkeypatch):
    monkeypatch.setattr(harness, "RESULTS", tmp_path)
    semi = {0: (0.90, 0.20), 1: (0.86, 0.26), 2: (0.88, 0.23)}
    base = {0: 0.80, 1: 0.84, 2: 0.82}
    for s in range(3):
        harness.keep(_result(semi[s][0], s, semi[s][1], epochs=100 + 4 * s),
                     ssvae_bench.cell("digits", 50, None, "semi", s))
        harness.keep(_result(base[s], s, epochs=300),
                     ssvae_bench.cell("digits", 50, None, "classifier", s))
    harness.keep(_result(0.91, 0, 0.19), ssvae_bench.cell("digits", 50, 3.0, "semi", 0))
    assert (tmp_path / "ssvae" / "digits_n50_classifier_s2.json").is_file()
    lines = ssvae_bench.table().splitlines()
    assert lines[0].split(" | ")[3:7] == ["draws", "accuracy of q(y\\|x) %", "baseline %",
                                          "paired gain (points)"]
    rows = [line.split(" | ") for line in lines[2:5]]
    assert [r[:3] for r in rows] == [["| digits", "50", "— (plain classifier)"],
                                     ["| digits", "50", "default"], ["| digits", "50", "3"]]
    # baseline .80 .84 .82 -> 82.0 ± 2.0; it has no style code: no probe
    assert rows[0][3:] == ["0, 1, 2", "82.0 ± 2.0", "", "", "", "10.2 ± 0.0", "", "300 ± 0",
                           "40 ± 10 |"]
    # accuracy .90 .86 .88 -> 88.0 ± 2.0; paired gains +10, +2, +6 -> +6.0 ± 4.0 (unpaired
    # means would say the same, their stds not); probe 20, 26, 23 -> 23.0 ± 3.0, minus chance
    assert rows[1][3:] == ["0, 1, 2", "88.0 ± 2.0", "82.0 ± 2.0", "+6.0 ± 4.0", "23.0 ± 3.0",
                           "10.2 ± 0.0", "+12.8 ± 3.0", "104 ± 4", "40 ± 10 |"]
    # one draw: no ±; paired with the classifier of draw 0 only
    assert rows[2][3:] == ["0", "91.0", "80.0", "+11.0", "19.0", "10.2", "+8.8", "100",
                           "30 |"]
    assert "Stale" not in ssvae_bench.table()
    harness.keep({**_result(0.5, 3, 0.1), "metrics": {"accuracy": 0.5, "chance": 0.1}},
                 ssvae_bench.cell("digits", 50, None, "semi", 3))
    assert "Stale" in ssvae_bench.table()  # a result without its scoring version
    (tmp_path / "ssvae" / "digits_50_s0.json").write_text("{}")
    with pytest.raises(SystemExit, match="is not the name of a ssvae cell"):
        ssvae_bench.table()


def test_run_keeps_each_harness_result(tmp_path, monkeypatch):
    monkeypatch.setattr(harness, "RESULTS", tmp_path)
    ran = []

    def fake_run_cell(cell):  # no CLI: the harness's run is tested elsewhere
        ran.append((cell.name, cell.seed))
        return _result(0.8, cell.seed, None if "classifier" in cell.name else 0.2)

    monkeypatch.setattr(harness, "run_cell", fake_run_cell)
    assert ssvae_bench.main(["run", "--data", "digits", "--seeds", "0", "1"]) == 0
    assert ran == [("digits_n50_classifier", 0), ("digits_n50_alphadefault", 0),
                   ("digits_n50_classifier", 1), ("digits_n50_alphadefault", 1)]
    assert sorted(harness.kept("ssvae", "digits_n50_alphadefault")) == [0, 1]
    assert sorted(harness.kept("ssvae", "digits_n50_classifier")) == [0, 1]


def test_variants_are_listed_in_natural_order_of_their_tags(tmp_path, monkeypatch):
    monkeypatch.setattr(harness, "RESULTS", tmp_path)
    for tag in ("adv10", "adv3", "adv1"):
        harness.keep(_result(0.9, 0, 0.2), ssvae_bench.cell("digits", 50, None, "semi", 0, tag))
    rows = [r.split(" | ")[2] for r in ssvae_bench.table().splitlines()[2:5]]
    assert rows == ["default [adv1]", "default [adv3]", "default [adv10]"]
