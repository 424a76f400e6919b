"""benchmarks/fhvae_table.py (section 2) over the harness: its cells run the commands the
earlier script ran for the same configuration (at 200 epochs), and its table is mean ± sample
std over the kept seeds with ✓/✗ against the issue's targets."""
from __future__ import annotations

import argparse
import re
import shlex
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
import fhvae_table as ft  # noqa: E402
import harness  # noqa: E402

from factorseq.metrics.scoring import SCORING_VERSION  # noqa: E402
from studyhelp import repo_path, same_commands  # noqa: E402

# --- the reference: the earlier script's command building (git history at cad6eba), copied ---
OUT = REPO / "benchmarks" / "out" / "fhvae"
EXE = "factorseq"


def train_args(args: argparse.Namespace, alpha: float) -> list[str]:
    extra = [a for kv in args.set for a in ("--set", kv)]
    return ["--epochs", str(args.epochs), "--batch-size", str(args.batch_size),
            "--seed", str(args.seed),
            "--set", f"alpha={alpha:g}", "--set", f"hidden={args.hidden}",
            "--set", f"layers={args.layers}", "--set", f"train.patience={args.patience}",
            "--set", "train.tensorboard=false", "--set", "train.threads=1", *extra]


def old_commands(alpha: float, args: argparse.Namespace) -> tuple[list[str], list[str]]:
    """The earlier ``run_cell``'s training and evaluation commands."""
    cell = OUT / args.tag / f"alpha{alpha:g}"
    run, metrics = cell / "run", cell / "metrics.json"
    cmd = [EXE, "train", "fhvae", "--data", "fsdd-strings", "--out", str(run), "--force",
           *train_args(args, alpha)]
    evaluate = [EXE, "evaluate", str(run), "--out", str(metrics), "--force",
                "--repeats", str(args.repeats)]
    return cmd, evaluate
# --- end of the reference ---


def old_args(argv: str) -> argparse.Namespace:
    """The earlier script's options as FHVAE_RESULTS.md's bash block gave them."""
    ap = argparse.ArgumentParser()
    for name, default in (("--hidden", 128), ("--layers", 1), ("--epochs", 100),
                          ("--patience", 10), ("--batch-size", 128), ("--repeats", 3),
                          ("--seed", 0)):
        ap.add_argument(name, type=int, default=default)
    ap.add_argument("--set", action="append", default=[])
    ap.add_argument("--tag", default="default")
    return ap.parse_args(shlex.split(argv))


RW = "--set z2_mean_weight=50 --set z1_kl_weight=3"
# cell -> (alpha, the earlier script's options for that configuration, at 200 epochs)
SAME = {
    "paper_a10": (10, "--tag small --hidden 128 --layers 1 --epochs 200 --patience 10 "
                      "--batch-size 128 --repeats 3"),
    "paper_a0": (0, "--tag small --hidden 128 --layers 1 --epochs 200 --patience 10 "
                    "--batch-size 128 --repeats 3"),
    "reweighted_a10": (10, "--tag m50z1x3e200s1 --epochs 200 --hidden 128 --layers 1 "
                           f"--patience 10 --batch-size 128 --repeats 3 {RW}"),
    "reweighted_a0": (0, "--tag m50z1x3e200 --epochs 200 --hidden 128 --layers 1 "
                         f"--patience 10 --batch-size 128 --repeats 3 {RW}"),
}


@pytest.mark.parametrize("seed", [0, 3])
@pytest.mark.parametrize("name", list(SAME))
def test_each_cell_runs_the_earlier_scripts_commands(name, seed):
    alpha, argv = SAME[name]
    old_train, old_eval = old_commands(alpha, old_args(f"{argv} --seed {seed}"))
    c = ft.cell(name, seed)
    assert (c.name, c.seed) == (name, seed)
    _, new_t, new_e_args, new_e = same_commands(c, "fhvae", old_train, old_eval)
    assert new_e_args == ["evaluate", "--repeats", "3"]
    assert repo_path(new_t["--out"]) == OUT / name / f"s{seed}" / "run" == repo_path(new_e["run"])


def test_the_headline_cell_has_four_seeds_the_others_one(monkeypatch):
    ran = []
    monkeypatch.setattr(harness, "run_cell", lambda c, train_only=False: ran.append(
        (c.name, c.seed)))
    ft.run(list(ft.CELLS), None, train_only=True)
    assert ran == [("reweighted_a10", 0), ("reweighted_a0", 0), ("paper_a10", 0),
                   ("paper_a0", 0), ("reweighted_a10", 1), ("reweighted_a10", 2),
                   ("reweighted_a10", 3)]  # seeds outer: one seed of every cell first
    ran.clear()
    ft.run(["paper_a0"], [4], train_only=True)
    assert ran == [("paper_a0", 4)]


def _result(seed, **metrics):
    return {"seed": seed, "train_wall_s": 600.0 * (seed + 1), "eval_wall_s": 120.0,
            "train_peak_rss_mb": 600.0 + 10 * seed,
            "training": {"epochs_run": 200 - seed, "best_epoch": 190 - seed},
            "metrics": {"scoring_version": SCORING_VERSION, **metrics}}


GOOD = {"speaker_eer": 0.0, "speaker_acc_z2": 0.998, "content_acc_z1": 0.728,
        "content_acc_z2": 0.264, "conversion_speaker_acc": 0.986, "speaker_chance": 0.211}


def test_the_table_is_mean_and_sample_std_over_the_kept_seeds(tmp_path, monkeypatch):
    monkeypatch.setattr(harness, "RESULTS", tmp_path)
    # speaker_acc_z1 .40 / .52 / .46: mean .46 ± .06 (met by the mean, by 2 of 3 seeds);
    # conversion_content_acc .72 / .69 / .70: mean .703 met (>= .7), one seed misses
    for seed, z1, conv in ((0, 0.40, 0.72), (1, 0.52, 0.69), (2, 0.46, 0.70)):
        harness.keep(_result(seed, speaker_acc_z1=z1, conversion_content_acc=conv, **GOOD),
                     ft.cell("reweighted_a10", seed))
    harness.keep(_result(0, speaker_acc_z1=0.76, conversion_content_acc=0.741,
                         conversion_content_acc_std=0.016,
                         **{**GOOD, "content_acc_z2": 0.61}), ft.cell("paper_a0", 0))
    lines = ft.table(list(ft.CELLS)).splitlines()
    assert lines[0] == ("| metric (held-out) | target | re-weighted, alpha 10 (n=3) | "
                        "paper's bound, alpha 0 (ablation) (n=1) |")  # no file: no column
    cells = [[c.strip() for c in r.strip("|").split("|")] for r in lines[2:] if r.startswith("|")]
    rows = {c[0]: c[2:] for c in cells}
    assert rows["`speaker_acc_z1`"] == ["0.460 ± 0.060 ✓ (2/3 seeds)", "0.760 ✗"]
    assert rows["`conversion_content_acc`"] == ["0.703 ± 0.015 ✓ (2/3 seeds)",
                                                "0.741 ±ᵣ 0.016 ✓"]  # one seed: repeats
    assert rows["`content_acc_z2`"] == ["0.264 ± 0.000 ✓ (3/3 seeds)", "0.610 ✗"]
    assert rows["targets met (by the mean)"] == ["7 / 7", "5 / 7"]
    assert rows["`speaker_chance` (reference)"] == ["0.211 ± 0.000", "0.211"]
    assert rows["`reconstruction_mse` (reference)"] == ["n/a", "n/a"]
    assert rows["epochs run (best), per seed"] == ["200 (190), 199 (189), 198 (188)",
                                                   "200 (190)"]
    assert rows["training wall min"] == ["20.0 ± 10.0", "10.0"]  # 10, 20, 30 min
    assert rows["peak RSS of training, MB"] == ["610 ± 10", "600"]
    assert "Stale" not in "\n".join(lines)


def test_a_missed_mean_is_a_cross_and_a_stale_file_is_flagged(tmp_path, monkeypatch):
    monkeypatch.setattr(harness, "RESULTS", tmp_path)
    for seed, eer in ((0, 0.01), (1, 0.04)):  # mean .025 > .02: missed, one seed met it
        res = _result(seed, **{**GOOD, "speaker_eer": eer})
        res["metrics"]["scoring_version"] = SCORING_VERSION - seed  # seed 1: older rules
        harness.keep(res, ft.cell("paper_a10", seed))
    text = ft.table(["paper_a10"])
    assert "| `speaker_eer` | <= 0.02 | 0.025 ± 0.021 ✗ (1/2 seeds) |" in text
    assert "**Stale:** 1 of 2 result files" in text


def test_the_documented_commands_are_the_new_clis(monkeypatch):
    """Every ``fhvae_table.py`` line of FHVAE_RESULTS.md's bash block parses with the new verbs
    and names only the study's cells."""
    calls = []
    monkeypatch.setattr(ft, "run", lambda *a: calls.append(("run", *a)))
    monkeypatch.setattr(ft, "table", lambda cells: calls.append(("table", cells)) or "")
    text = (REPO / "benchmarks" / "FHVAE_RESULTS.md").read_text()
    block = re.findall(r"```bash\n(.*?)```", text, re.S)[0]
    for line in block.replace("\\\n", " ").splitlines():
        if "fhvae_table.py" in line:
            argv = shlex.split(re.sub(r"\s#.*", "", line).split(".py", 1)[1])
            assert ft.main(argv) == 0
    assert calls == [("run", list(ft.CELLS), None, False),
                     ("table", list(ft.CELLS))]
