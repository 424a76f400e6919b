"""Models that batch their windows themselves (FHVAE's rounds, SSVAE's labelled share, DANN's
domain halves) train with two DDP processes on CPU: their batches are split over the
processes by the trainer's BatchPlan, rounds stay in step. Each case runs the CLI in a
subprocess (Lightning's launcher re-runs the command for the second process)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).parent
BASE = ["--epochs", "1", "--devices", "2", "--strategy", "ddp", "--set",
        "train.tensorboard=false", "--set", "train.progress=false"]


def _fhvae_data(root: Path) -> list[str]:
    rng = np.random.default_rng(0)
    seq = np.repeat(np.arange(12), 6)
    x = rng.normal(size=(len(seq), 6, 3)) + seq[:, None, None] % 3
    np.savez(root / "seq.npz", data=x.astype(np.float32), seq_id=seq)
    return ["--data", str(root / "seq.npz"), "--batch-size", "8", "--sequences-per-round", "4",
            "--set", "hidden=6", "--set", "layers=1", "--set", "z1_dim=2", "--set", "z2_dim=2"]


def _ssvae_data(root: Path) -> list[str]:
    rng = np.random.default_rng(0)
    y = np.tile(np.arange(3), 40).astype(float)
    x = np.sin((0.4 + 0.5 * y[:, None, None]) * np.arange(8)[None, :, None]
               + rng.uniform(0, 3, (len(y), 1, 2)))
    y[30:] = -1  # unlabelled
    np.savez(root / "lab.npz", data=x.astype(np.float32), y=y)
    return ["--data", str(root / "lab.npz"), "--batch-size", "16", "--set", "hidden=8",
            "--set", "z_dim=2", "--set", "backbone=mlp", "--set", "supervision_rate=0.25"]


def _dann_data(root: Path) -> list[str]:
    return ["--data", "tiny-domains", "--batch-size", "16", "--set", "hidden=8", "--set",
            "layers=1", "--set", "feature_dim=8", "--set", "head_hidden=8"]


@pytest.mark.slow
@pytest.mark.parametrize("model, make", [("fhvae", _fhvae_data), ("ssvae", _ssvae_data),
                                         ("dann", _dann_data)])
def test_models_with_their_own_batches_train_with_ddp(tmp_path, model, make):
    out = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(HERE.parent / "src"), str(HERE),
                                          os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, str(HERE / "ddp_cli.py"), "train", model,
                           *make(tmp_path), "--out", str(out), *BASE],
                          capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["status"] == "trained" and cfg["train_config"]["devices"] == 2
    assert cfg["training"]["epochs_run"] == 1
