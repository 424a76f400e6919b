"""benchmarks/disentanglement_table.py (section 6) over the harness: its cells run exactly the
commands the earlier script ran, and its table is mean ± sample std over the kept seeds."""
from __future__ import annotations

import json
import re
import shlex
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
import disentanglement_table as dt  # noqa: E402
import harness  # noqa: E402

from factorseq.metrics.scoring import SCORING_VERSION  # noqa: E402
from studyhelp import repo_path, same_commands, split_command  # noqa: E402

# --- the reference: the earlier script's cells and command building, copied as they were ---
OLD_OUT = REPO / "benchmarks" / "out" / "disentanglement"
EXE = "factorseq"
COMMON = ["--batch-size", "128", "--set", "train.tensorboard=false", "--set", "train.threads=1"]
# known-factors: patience 30 (the re-weighted FHVAE sits on a plateau of the validation loss for
# >10 epochs before z1 is used); fsdd-strings: 10, as in BENCHMARKS.md section 2
KF = ["--set", "train.patience=30"]
INFOGAN = ["--set", "hidden=64", "--set", "n_categories=4", "--set", "n_continuous=3"]
FH_SMALL = ["--set", "hidden=64", "--set", "layers=1", "--set", "z1_dim=8", "--set", "z2_dim=8"]
# name: (model, data, epochs, train options, evaluator options)
OLD_CELLS = {
    "fhvae": ("fhvae", "known-factors", 300, [*KF, *FH_SMALL, "--set", "alpha=10"], []),
    "fhvae_rw": ("fhvae", "known-factors", 300,
                 [*KF, *FH_SMALL, "--set", "alpha=10", "--set", "z1_kl_weight=3",
                  "--set", "z2_mean_weight=50"], []),
    "vae": ("vae", "known-factors", 300, [*KF, "--set", "hidden=64", "--set", "layers=1",
                                         "--set", "latent_dim=16"], []),
    "fhvae_fsdd_unseen": ("fhvae", "fsdd-strings", 100,
                          ["--set", "train.patience=10", "--set", "hidden=128",
                           "--set", "layers=1", "--set",
                           "data.options={heldout_speakers: [jackson, theo]}",
                           "--set", "z1_kl_weight=3", "--set", "z2_mean_weight=50"],
                          ["--set", "metrics=[eer]"]),
    # the sequence peers (issue #12): time-bound runs (train.max_minutes) on the shared CPU
    "dsvae": ("dsvae", "known-factors", 300, [*KF, "--set", "hidden=64", "--set", "f_dim=8",
                                             "--set", "z_dim=8", "--set", "train.max_minutes=25"],
              []),
    "infogan": ("infogan", "known-factors", 300, [*INFOGAN, "--set", "train.max_minutes=25"],
                []),
    # issue #25: InfoGAN's category target, 4-minute runs (short lane); the "_val" cells score
    # 30 validation speakers (test_seed=1), the others the reported test speakers
    **{f"{name}{split}": ("infogan", "known-factors", 300,
                          [*INFOGAN, *opts, "--set", "train.max_minutes=4", *data],
                          ["--set", "metrics=[category]"])
       for name, opts in (("infogan_short", []), ("infogan_wn", ["--set", "window_noise=16"]),
                          ("infogan_wn_l3", ["--set", "window_noise=16", "--set",
                                             "lambda_cat=3"]))
       for split, data in (("_val", ["--set", "data.options={test_seed: 1}"]), ("", []))},
    # issue #25: six unseen voices (two held-out speakers x three vocal-tract warps), FHVAE
    # with fhvae_fsdd_unseen's settings (nothing tuned), 4-minute runs (short lane)
    "fhvae_voices": ("fhvae", "fsdd-strings", 100,
                     ["--set", "train.patience=10", "--set", "hidden=128", "--set", "layers=1",
                      "--set", "data.options={heldout_speakers: [jackson, theo], "
                      "voice_warps: [0.85, 1.0, 1.15]}", "--set", "z1_kl_weight=3",
                      "--set", "z2_mean_weight=50", "--set", "train.max_minutes=4"],
                     ["--set", "metrics=[eer]"]),
    "dsvae_fsdd_unseen": ("dsvae", "fsdd-strings", 50,
                          ["--set", "train.patience=10", "--set", "hidden=128", "--set",
                           "f_dim=32", "--set", "z_dim=16", "--set",
                           "data.options={heldout_speakers: [jackson, theo]}",
                           "--set", "train.max_minutes=35"], ["--set", "metrics=[eer]"]),
    "vae_fsdd": ("vae", "fsdd-strings", 50,
                 ["--set", "train.patience=10", "--set", "hidden=128", "--set", "layers=1",
                  "--set", "latent_dim=32", "--set", "train.max_minutes=20"],
                 ["--set", "metrics=[eer,mig,modularity]"]),
}


def old_commands(name: str, seed: int) -> tuple[list[str], list[str]]:
    """The earlier ``run_cell``'s two commands (verbatim but for the executable)."""
    model, data, epochs, train_opts, eval_opts = OLD_CELLS[name]
    cell = OLD_OUT / name / f"s{seed}"
    run, metrics = cell / "run", cell / "metrics.json"
    train = [EXE, "train", model, "--data", data, "--out", str(run), "--force", "--epochs",
             str(epochs), "--seed", str(seed), *COMMON, *train_opts]
    evaluate = [EXE, "evaluate", str(run), "--out", str(metrics), "--force", "--evaluator",
                "disentanglement", *eval_opts]
    return train, evaluate
# --- end of the reference ---


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("name", list(OLD_CELLS))
def test_each_cell_runs_the_earlier_scripts_commands(name, seed):
    old_train, old_eval = old_commands(name, seed)
    c = dt.cell(name, seed)
    assert (c.name, c.seed) == (name, seed)
    old_t, new_t, _, new_e = same_commands(c, "disentanglement", old_train, old_eval)
    old_e = split_command(old_eval[1:])[1]
    # the same folders as before: benchmarks/out/disentanglement/<cell>/s<seed>/
    assert repo_path(new_t["--out"]) == Path(old_t["--out"]) == repo_path(new_e["run"])
    assert repo_path(new_e["--out"]) == Path(old_e["--out"])


def test_the_study_has_the_earlier_scripts_cells():
    assert list(dt.CELLS) == list(OLD_CELLS)


def _result(mig, ratio, seconds, wall, epochs=(50, 40)):
    return {"train_wall_s": wall, "training": {"epochs_run": epochs[0], "best_epoch": epochs[1]},
            "metrics": {"mig": mig, "symmetry": {"sequence_action": {"ratio": ratio}},
                        "seconds_per_metric": {"mig": seconds},
                        "scoring_version": SCORING_VERSION}}


def test_the_table_is_mean_and_sample_std_over_the_kept_seeds(tmp_path, monkeypatch):
    monkeypatch.setattr(harness, "RESULTS", tmp_path)
    for seed, mig, ratio, sec in ((0, 0.10, 1.0, 2.0), (1, 0.12, 2.0, 4.0), (2, 0.14, 3.0, 9.0)):
        harness.keep(_result(mig, ratio, sec, 60.0 * (seed + 1)), dt.cell("fhvae", seed))
    harness.keep(_result(0.036, 1.5, 1.0, 90.0), dt.cell("vae", 0))
    harness.keep(_result(0.5, 9.0, 1.0, 90.0), dt.cell("fhvae_rw", 0))  # not asked for below
    assert sorted(p.name for p in (tmp_path / "disentanglement").iterdir()) == [
        "fhvae_rw_s0.json", "fhvae_s0.json", "fhvae_s1.json", "fhvae_s2.json", "vae_s0.json"]
    lines = dt.table(["fhvae", "vae", "dsvae"]).splitlines()
    assert lines[0] == "| metric | fhvae (n=3) | vae (n=1) |"  # dsvae: nothing kept
    seconds = lines.index("seconds_per_metric (mean over seeds)")
    rows = {r.split(" | ")[0]: r.split(" | ")[1:] for r in lines[:seconds] if r.startswith("| ")}
    # mig: mean .12, sample std sqrt((.02² + 0 + .02²) / 2) = .02; ratio 2 ± 1
    assert rows["| mig"] == ["0.120 ± 0.020", "0.036 (one seed) |"]
    assert rows["| sym_seq_ratio"] == ["2.000 ± 1.000", "1.500 (one seed) |"]
    assert "| sap" not in rows  # no cell has it
    assert rows["| epochs run (best)"] == ["50 (40), 50 (40), 50 (40)", "50 (40) |"]
    assert rows["| train wall min"] == ["1.0, 2.0, 3.0", "1.5 |"]
    assert lines[seconds + 4] == "| mig | 5.0 | 1.0 |"  # (2 + 4 + 9) / 3
    assert "Stale" not in "\n".join(lines)


def test_run_keeps_each_harness_result_and_dump_reads_the_kept_files(tmp_path, monkeypatch):
    monkeypatch.setattr(harness, "RESULTS", tmp_path)
    ran = []

    def fake_run_cell(cell, train_only=False):  # no CLI: the harness's run is tested elsewhere
        ran.append((cell.name, cell.seed, train_only))
        return None if train_only else _result(0.1 + cell.seed / 10, 1.0, 1.0, 60.0)

    monkeypatch.setattr(harness, "run_cell", fake_run_cell)
    dt.run(["vae"], [0, 1], train_only=True)
    assert not (tmp_path / "disentanglement").exists()  # trained only: nothing to keep
    dt.run(["vae"], [0, 1])
    assert ran[2:] == [("vae", 0, False), ("vae", 1, False)]
    assert sorted(harness.kept("disentanglement", "vae")) == [0, 1]
    dt.dump(["vae", "dsvae"], str(tmp_path / "d.json"))
    d = json.loads((tmp_path / "d.json").read_text())
    assert d["scoring_version"] == SCORING_VERSION and list(d["runs"]) == ["vae"]
    assert d["summary"]["vae"]["mig"]["mean"] == pytest.approx(0.15)
    assert d["summary"]["vae"]["mig"]["std"] == pytest.approx(0.0707107, abs=1e-6)


def test_the_documented_commands_are_the_new_clis(monkeypatch):
    """Every ``disentanglement_table.py`` line of the sections' bash blocks parses with the new
    verbs and names only the study's cells."""
    calls = []
    monkeypatch.setattr(dt, "run", lambda *a: calls.append(("run", *a)))
    monkeypatch.setattr(dt, "table", lambda cells: calls.append(("table", cells)) or "")
    monkeypatch.setattr(dt, "dump", lambda cells, path: calls.append(("json", cells)))
    for section in ("DISENTANGLEMENT_RESULTS.md", "FACTORS_RESULTS.md"):
        text = (REPO / "benchmarks" / section).read_text()
        for block in re.findall(r"```bash\n(.*?)```", text, re.S):
            for line in block.replace("\\\n", " ").splitlines():
                if "disentanglement_table.py" in line:
                    argv = shlex.split(re.sub(r"\s#.*", "", line).split(".py", 1)[1])
                    assert dt.main([a if a != "S" else "0" for a in argv]) == 0
    # section 12 runs its validation and test cells; its tables are render.py views
    assert [c[0] for c in calls] == ["run"] * 3 + ["table"] * 2 + ["run"] * 2
    assert calls[-2][1:3] == (["infogan_short_val", "infogan_wn_val", "infogan_wn_l3_val"], [0])
    assert calls[-1][1:3] == (["infogan_short", "infogan_wn", "fhvae_voices"], [0, 1, 2])


def test_the_category_code_is_read_against_each_factor():
    m = {"category_accuracy": {"c_cat": {"mixing": 0.4855, "regime": 0.4930, "shape": 0.2887}},
         "category_accuracy_best": 0.4930}
    assert dt.flat(m) == {"category_accuracy_best": 0.4930, "category_mixing": 0.4855,
                          "category_regime": 0.4930, "category_shape": 0.2887}
    assert dt.flat({"mig": 0.1}) == {"mig": 0.1}  # a run without a categorical code
