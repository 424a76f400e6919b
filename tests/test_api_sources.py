"""``fs.fit`` takes what a user has in hand (issue #24): a DataFrame, an array, a path, with
options by name; ``sample(as_frame=True)`` gives a long table; an in-memory run can be saved."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import factorseq as fs

QUIET = {"epochs": 1, "progress": False, "tensorboard": False}


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FACTORSEQ_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def long_table(n_sites=3, steps=60, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(steps)
    return pd.DataFrame({"site": np.repeat([f"s{i}" for i in range(n_sites)], steps),
                         "t": np.tile(t, n_sites),
                         "temp": np.concatenate([np.sin(t / 5 + i) for i in range(n_sites)]),
                         "hum": rng.normal(size=n_sites * steps)})


def test_a_long_dataframe_trains_as_the_cli_would(cache):
    df = long_table()
    run = fs.fit("vae_conv", df, id_column="site", time_column="t", window=12, batch_size=16,
                 **QUIET)
    data = run.load_data()
    assert data.x.shape[1:] == (12, 2) and data.feature_names == ["temp", "hum"]
    assert data.meta["n_sequences"] == 3
    # the same table again is the same cache file (content-addressed), another is not
    again = fs.fit("vae_conv", df.copy(), id_column="site", time_column="t", window=12,
                   batch_size=16, **QUIET)
    assert again.config["data_config"]["source"] == run.config["data_config"]["source"]
    other = long_table(seed=1)
    assert fs.train.sources.frame_file(other) != fs.train.sources.frame_file(df)
    assert len(list(cache.glob("frames/*"))) == 2


def test_arrays_of_windows_and_of_one_series_train():
    rng = np.random.default_rng(0)
    windows = rng.normal(size=(80, 10, 3)).astype(np.float32)
    run = fs.fit("vae_conv", windows, batch_size=16, **QUIET)
    assert run.sample(4).shape == (4, 10, 3)
    series = np.sin(np.arange(300) / 7)[:, None] * [1.0, 2.0]
    run = fs.fit("vae_conv", series, window=20, batch_size=16, **QUIET)
    assert run.sample(2).shape == (2, 20, 2)


def test_bad_data_and_unknown_options_are_one_line_errors():
    with pytest.raises(fs.FactorseqError, match="must be a DataConfig"):
        fs.fit("vae_conv", {"a": 1}, **QUIET)
    with pytest.raises(fs.FactorseqError, match="unknown option.*bogus"):
        fs.fit("vae_conv", "sines", bogus=1)
    with pytest.raises(fs.FactorseqError, match="windows .* or one series"):
        fs.fit("vae_conv", np.zeros((2, 2, 2, 2)))


def test_sample_as_frame_and_save_an_in_memory_run(tmp_path):
    run = fs.fit("vae_conv", long_table(), id_column="site", time_column="t", window=12,
                 batch_size=16, latent_dim=4, **QUIET)
    assert run.model.config.latent_dim == 4  # a model option by name
    frame = run.sample(3, as_frame=True, seed=5)
    assert list(frame.columns) == ["sample", "step", "temp", "hum"] and len(frame) == 36
    np.testing.assert_allclose(frame[["temp", "hum"]].to_numpy().reshape(3, 12, 2),
                               run.sample(3, seed=5))
    saved = run.save(tmp_path / "kept")
    np.testing.assert_allclose(saved.sample(3, seed=5), run.sample(3, seed=5), rtol=1e-6)
    with pytest.raises(fs.FactorseqError, match="not an empty folder"):
        run.save(tmp_path / "kept")
