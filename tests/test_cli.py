"""The command line end to end on tiny data: train, sample, evaluate, report, bad input."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from clihelp import cli, user_error

FAST = ["--epochs", "2", "--batch-size", "32", "--set", "train.tensorboard=false"]
EVAL_FAST = ["--repeats", "2", "--set", "disc_iterations=30", "--set", "pred_iterations=30",
             "--set", "ts2vec_iterations=2"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """timevae trained two epochs on a user's CSV with a time column."""
    root = tmp_path_factory.mktemp("cli")
    rng = np.random.default_rng(0)
    t = np.arange(300)
    df = pd.DataFrame({"date": pd.date_range("2020-01-01", periods=300).astype(str),
                       "a": np.sin(t / 7) + 0.1 * rng.standard_normal(300),
                       "b": np.cos(t / 11) + 5.0, "c": t / 30.0})
    csv = root / "mine.csv"
    df.to_csv(csv, index=False)
    run = root / "run"
    assert cli("train", "timevae", "--data", csv, "--time-column", "date", "--window", 16,
               "--out", run, *FAST, "--set", "trend_poly=2", "--set", "custom_seas=[[4,4]]") == 0
    return root, csv, run


def test_datasets_lists_the_bundled_sets(capsys):
    assert cli("datasets") == 0
    out = capsys.readouterr().out
    for name in ("sines", "stocks", "stockv", "energy"):
        assert name in out


def test_train_writes_a_complete_run(trained):
    _, _, run = trained
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["model"] == "timevae" and cfg["status"] == "trained"
    assert cfg["model_config"]["trend_poly"] == 2 and cfg["model_config"]["seq_len"] == 16
    assert cfg["data_config"]["time_column"] == "date"
    assert cfg["data_schema"]["feature_names"] == ["a", "b", "c"]
    assert cfg["scaler"]["kind"] == "minmax" and cfg["train_config"]["epochs"] == 2
    assert (run / "model.safetensors").is_file() and (run / "logs" / "metrics.csv").is_file()
    assert (run / "checkpoints" / "last.ckpt").is_file()


@pytest.mark.parametrize("fmt", ["npz", "csv", "parquet"])
def test_sample_in_original_units(trained, fmt, capsys):
    root, _, run = trained
    out = root / f"s.{fmt}"
    assert cli("sample", run, "--n", 7, "--out", out, "--force") == 0
    from factorseq.io import read_windows
    x = read_windows(out)
    assert x.shape == (7, 16, 3)
    assert 2.0 < x[..., 1].mean() < 8.0  # feature b lives around 5: inverse-transformed
    msg = user_error(capsys, "sample", run, "--n", 7, "--out", out)
    assert "exists" in msg and "--force" in msg


def test_evaluate_and_report(trained, capsys):
    root, csv, run = trained
    metrics = run / "metrics.json"
    assert cli("evaluate", run, "--data", csv, "--out", metrics, *EVAL_FAST) == 0
    m = json.loads(metrics.read_text())
    for key in ("discriminative", "predictive", "predictive_real"):
        assert {"mean", "std"} <= set(m[key]) and len(m[key]["values"]) == 2
        assert 0.0 <= m[key]["mean"] <= 1.0
    from factorseq.metrics.scoring import SCORING_VERSION
    assert m["scoring_version"] == SCORING_VERSION and m["evaluator"] == "generative"
    html = root / "report.html"
    assert cli("report", run, "--out", html) == 0
    page = html.read_text()
    assert "older scoring version" not in page
    assert page.count("data:image/png;base64,") >= 4
    for word in ("discriminative", "PCA", "t-SNE", "loss", "decomposition", "(scaled values)"):
        assert word.lower() in page.lower(), word


def test_evaluate_with_a_samples_file(trained):
    root, csv, run = trained
    s = root / "given.npz"
    assert cli("sample", run, "--n", 50, "--out", s, "--force") == 0
    out = root / "m2.json"
    assert cli("evaluate", run, "--samples", s, "--out", out, *EVAL_FAST) == 0
    assert json.loads(out.read_text())["n_synthetic"] == 50


def test_resume_continues_training(trained):
    root, csv, _ = trained
    run = root / "resumed"
    base = ["train", "vae_conv", "--data", csv, "--time-column", "date", "--window", 16,
            "--out", run, "--batch-size", 32]
    assert cli(*base, "--epochs", 1) == 0
    assert cli(*base, "--epochs", 3, "--resume") == 0
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["training"]["epochs_run"] == 3
    log = pd.read_csv(run / "logs" / "metrics.csv")
    assert sorted(log["epoch"].dropna().unique()) == [0, 1, 2]


def test_bad_inputs_exit_2_with_one_line(trained, tmp_path, capsys):
    root, csv, run = trained
    np.save(tmp_path / "rank2.npy", np.zeros((10, 3)))
    assert "3 dimensions" in user_error(capsys, "train", "vae_conv", "--data",
                                        tmp_path / "rank2.npy", "--out", tmp_path / "r1")
    bad = pd.read_csv(csv)
    bad.loc[5, "a"] = np.nan
    bad.to_csv(tmp_path / "nan.csv", index=False)
    msg = user_error(capsys, "train", "vae_conv", "--data", tmp_path / "nan.csv",
                     "--time-column", "date", "--out", tmp_path / "r2")
    assert "impute" in msg
    assert "longer" in user_error(capsys, "train", "vae_conv", "--data", csv, "--time-column",
                                  "date", "--window", 400, "--out", tmp_path / "r3")
    assert "neither an existing file" in user_error(capsys, "train", "vae_conv", "--data", "nope",
                                            "--out", tmp_path / "r4")
    assert "unknown model" in user_error(capsys, "train", "nope", "--out", tmp_path / "r5")
    assert "unknown" in user_error(capsys, "train", "vae_conv", "--data", csv, "--time-column",
                                   "date", "--out", tmp_path / "r6", "--set", "no_such_key=1")
    assert "not numeric" in user_error(capsys, "train", "vae_conv", "--data", csv, "--out",
                                       tmp_path / "r7")
    two = pd.read_csv(csv)[["date", "a", "b"]]
    two.to_csv(tmp_path / "two.csv", index=False)
    assert "features" in user_error(capsys, "evaluate", run, "--data", tmp_path / "two.csv",
                                    "--out", tmp_path / "m.json")
    assert "not found" in user_error(capsys, "sample", tmp_path / "missing", "--out",
                                     tmp_path / "s.npz")
    assert not (tmp_path / "s.npz").exists()
    # an existing run is never overwritten without --force
    before = (run / "model.safetensors").read_bytes()
    assert "--force" in user_error(capsys, "train", "vae_conv", "--data", csv, "--out", run)
    assert (run / "model.safetensors").read_bytes() == before


def test_corrupt_checkpoints_are_user_errors(trained, tmp_path, capsys):
    import shutil
    _, _, run = trained
    bad = tmp_path / "bad"
    shutil.copytree(run, bad)
    (bad / "model.safetensors").write_bytes(b"\x00garbage" * 10)
    assert "corrupt" in user_error(capsys, "sample", bad, "--out", tmp_path / "a.npz")
    (bad / "config.json").write_text("{not json")
    assert "corrupt" in user_error(capsys, "sample", bad, "--out", tmp_path / "b.npz")
    (bad / "config.json").write_text(json.dumps({"hello": 1}))
    assert "not a factorseq run" in user_error(capsys, "sample", bad, "--out", tmp_path / "c.npz")


def test_ddp_two_cpu_processes(tmp_path):
    """Two gloo processes on CPU train one model; rank 0 alone writes the run."""
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "d.npz", data=rng.random((256, 8, 2)).astype(np.float32))
    exe = Path(sys.executable).with_name("factorseq")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [str(exe), "train", "vae_conv", "--data", str(tmp_path / "d.npz"), "--out",
         str(tmp_path / "ddp"), "--epochs", "2", "--batch-size", "32", "--devices", "2",
         "--strategy", "ddp", "--set", "train.tensorboard=false"],
        capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    cfg = json.loads((tmp_path / "ddp" / "config.json").read_text())
    assert cfg["status"] == "trained" and cfg["train_config"]["devices"] == 2
    assert cfg["training"]["epochs_run"] == 2


def test_abort_and_exit_map_to_exit_codes(monkeypatch, capsys):
    """Ctrl-C (typer.Abort) is a one-line user error; typer.Exit keeps its code."""
    import typer

    import factorseq.cli as cli_mod

    def raising(exc):
        def app(**kw):
            raise exc
        return app

    monkeypatch.setattr(cli_mod, "app", raising(typer.Abort()))
    assert cli_mod.main([]) == 2
    assert capsys.readouterr().err.strip() == "error: aborted"
    monkeypatch.setattr(cli_mod, "app", raising(typer.Exit(3)))
    assert cli_mod.main([]) == 3


def test_bare_command_prints_help_and_version_works(capsys):
    assert cli() == 0
    assert "Usage" in capsys.readouterr().out
    assert cli("--version") == 0
    assert capsys.readouterr().out.strip().startswith("factorseq ")


def test_dotted_set_keys_reach_nested_data_options():
    from factorseq.cli import split_settings

    got = split_settings(None, ["data.options.n=300", "data.options.m.k=1", "train.lr=0.1",
                                "latent_dim=4"])
    assert got["data"] == {"options": {"n": 300, "m": {"k": 1}}}
    assert got["train"] == {"lr": 0.1} and got["model"] == {"latent_dim": 4}
