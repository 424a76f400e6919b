"""The verbs every model shares, end to end on tiny runs: sample, encode and generate read the
model's capabilities; asking a model for what it cannot do is one ``error:`` line."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from clihelp import cli, user_error
from factorseq.io import read_windows

FAST = ["--epochs", "1", "--batch-size", "32", "--set", "train.tensorboard=false"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A timevae run on a table and an ssvae run on labelled windows (tiny, 1 epoch)."""
    root = tmp_path_factory.mktemp("verbs")
    rng = np.random.default_rng(0)
    t = np.arange(300)
    pd.DataFrame({"a": np.sin(t / 5) + 0.1 * rng.standard_normal(300),
                  "b": np.cos(t / 9) + 0.1 * rng.standard_normal(300)}).to_csv(
        root / "mine.csv", index=False)
    y = rng.integers(0, 3, 240)
    x = (y[:, None, None] + 0.3 * rng.standard_normal((240, 12, 2))).astype(np.float32)
    np.savez(root / "lab.npz", data=x, y=y)
    tv, ss = root / "tv", root / "ss"
    assert cli("train", "timevae", "--data", root / "mine.csv", "--window", 12, "--out", tv,
               *FAST, "--set", "hidden_layer_sizes=[8,16]", "--set", "latent_dim=3",
               "--set", "custom_seas=[[3,2]]") == 0
    assert cli("train", "ssvae", "--data", root / "lab.npz", "--out", ss, *FAST,
               "--set", "hidden=16", "--set", "z_dim=2") == 0
    return root, tv, ss


def test_sample_refuses_a_label_for_an_unconditional_model(runs, capsys):
    root, tv, ss = runs
    err = user_error(capsys, "sample", tv, "--n", 3, "--label", 1, "--out", root / "x.npz")
    assert "conditional" in err and not (root / "x.npz").exists()
    assert cli("sample", ss, "--n", 4, "--label", 2, "--out", root / "twos.npz") == 0
    assert read_windows(root / "twos.npz").shape == (4, 12, 2)


def test_encode_any_encoding_model(runs):
    root, tv, ss = runs
    assert cli("encode", tv, "--out", root / "tv.csv") == 0
    df = pd.read_csv(root / "tv.csv")
    assert {"split", "window", "z_0", "z_2"} <= set(df.columns) and len(df) == 300 - 12 + 1
    assert cli("encode", ss, "--out", root / "ss.parquet") == 0
    df = pd.read_parquet(root / "ss.parquet")
    assert {"z_0", "z_1", "y", "probs_0", "probs_2"} <= set(df.columns)
    assert np.allclose(df[["probs_0", "probs_1", "probs_2"]].sum(axis=1), 1.0, atol=1e-5)


def test_generate_by_factor_from_the_command_line(runs, capsys):
    root, tv, ss = runs
    capsys.readouterr()
    assert cli("generate", tv, "--list") == 0
    listed = capsys.readouterr().out
    assert all(p in listed for p in ("level", "trend", "seasonal", "residual"))
    out = root / "mix.csv"
    assert cli("generate", tv, "--reference", root / "mine.csv", "--reference-index", 5,
               "--keep", "level", "--keep", "trend", "--scale", "seasonal=2", "--n", 4,
               "--out", out) == 0
    assert read_windows(out).shape == (4, 12, 2)
    assert cli("generate", ss, "--value", "y=1", "--n", 5, "--out", root / "ones.npz") == 0
    with np.load(root / "ones.npz") as z:
        assert z["data"].shape == (5, 12, 2) and (z["label"] == 1).all()
    assert "no factor 'pitch'" in user_error(capsys, "generate", tv, "--keep", "pitch",
                                             "--reference", root / "mine.csv", "--out",
                                             root / "p.npz")
    assert "reference" in user_error(capsys, "generate", tv, "--keep", "trend", "--out",
                                     root / "q.npz")
    assert "label must be" in user_error(capsys, "generate", ss, "--value", "y=9", "--out",
                                         root / "r.npz")
    assert "rows" in user_error(capsys, "generate", tv, "--reference", root / "mine.csv",
                                "--reference-index", 1, "--reference-index", 2, "--keep",
                                "trend", "--n", 3, "--out", root / "s.npz")


def test_python_run_in_user_units(runs):
    import factorseq as fs
    root, tv, ss = runs
    run = fs.load(tv)
    real = run.load_data().x
    x = run.sample(6, seed=1)  # original units: the scaler's inverse of the model's space
    assert np.allclose(x, run.scaler.inverse_transform(run.sample(6, seed=1, scaled=True)),
                       atol=1e-4)
    codes = run.encode(real[:5])
    assert codes.specs["z"].role == "latent" and codes["z"].shape == (5, 3)
    assert np.allclose(run.decode(codes), run.reconstruct(real[:5]), atol=1e-4)
    d = run.decompose(real[:5])
    assert np.allclose(sum(d.parts.values()), d.output, atol=1e-3)
    assert run.generate(3, reference=real[:1], keep=["trend"]).shape == (3, 12, 2)
    ssrun = fs.load(ss)
    assert ssrun.predict_proba(ssrun.load_data().x[:4]).shape == (4, 3)
    assert isinstance(fs.TimeVAEConfig(), fs.TimeVAEConfig)


def test_fit_takes_a_typed_model_config_and_writes_nothing_without_out(tmp_path, monkeypatch):
    import factorseq as fs
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "w.npz", data=rng.random((80, 12, 2)).astype(np.float32))
    run = fs.fit("timevae", fs.DataConfig(source=str(tmp_path / "w.npz")),
                 {"epochs": 1, "batch_size": 32, "tensorboard": False},
                 fs.TimeVAEConfig(latent_dim=3, hidden_layer_sizes=(8, 16), trend_poly=1))
    assert run.path is None and sorted(p.name for p in tmp_path.iterdir()) == ["w.npz"]
    c = run.model.config
    assert (c.latent_dim, c.trend_poly, c.seq_len, c.n_features) == (3, 1, 12, 2)
    assert run.sample(3).shape == (3, 12, 2)
