"""Windows on disk (data.store): same data, same training, bounded reads, clear errors."""
from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clihelp import user_error
from factorseq.data import DataConfig, MinMaxScaler, StandardScaler, load_data
from factorseq.data.store import DiskWindows, is_lazy, read_store, store_dir, write_store
from factorseq.errors import FactorseqError


@pytest.fixture
def windows(tmp_path):
    x = np.random.default_rng(0).normal(size=(37, 5, 3)).astype(np.float32)
    path = tmp_path / "x.f32"
    path.write_bytes(x.astype("<f4").tobytes())
    return x, DiskWindows(path, x.shape)


@settings(max_examples=60, deadline=None)
@given(idx=st.lists(st.integers(-37, 36), max_size=50), lo=st.integers(-40, 40),
       hi=st.integers(-40, 40), step=st.integers(1, 4))
def test_indexing_matches_numpy(tmp_path_factory, idx, lo, hi, step):
    x = np.random.default_rng(0).normal(size=(37, 5, 3)).astype(np.float32)
    path = tmp_path_factory.mktemp("w") / "x.f32"
    path.write_bytes(x.tobytes())
    w = DiskWindows(path, x.shape)
    ix = np.array(idx, dtype=np.int64)
    assert np.array_equal(w[ix], x[ix])  # any order, repeats and negative rows
    assert np.array_equal(w[lo:hi:step], x[lo:hi:step])
    mask = (np.arange(37) % step) == 0
    assert np.array_equal(w[mask], x[mask])
    sub = w.subset(ix)  # a lazy view of a view reads the same rows
    assert len(sub) == len(ix) and np.array_equal(np.asarray(sub), x[ix])
    if len(ix):
        assert np.array_equal(sub.subset(slice(None, None, -1))[0], x[ix][-1])


def test_views_transforms_and_errors(windows, tmp_path):
    x, w = windows
    assert w.shape == x.shape and w.ndim == 3 and w.nbytes == x.nbytes and len(w) == 37
    assert np.array_equal(w[4], x[4]) and np.array_equal(w[[1, 2], :, 0], x[[1, 2], :, 0])
    t = w.with_transform(lambda c: c * 2).with_transform(lambda c: c + 1)
    assert np.allclose(t[3:6], x[3:6] * 2 + 1)
    assert sum(len(c) for c in w.iter_chunks(rows=8)) == 37
    with pytest.raises(IndexError):
        w[np.array([37])]
    (tmp_path / "short.f32").write_bytes(x.tobytes()[:-4])
    with pytest.raises(FactorseqError, match="corrupt"):
        DiskWindows(tmp_path / "short.f32", x.shape)


@pytest.mark.parametrize("scaler", [StandardScaler, MinMaxScaler])
def test_scalers_fit_chunk_by_chunk_and_scale_as_read(windows, scaler, monkeypatch):
    x, w = windows
    import factorseq.data.store as store
    monkeypatch.setattr(store, "_CHUNK_BYTES", 4 * 5 * 3 * 4)  # 4 rows per chunk: 10 chunks
    eager, lazy = scaler().fit(x), scaler().fit(w)
    for k, v in vars(eager).items():
        if isinstance(v, np.ndarray):
            assert np.allclose(v, getattr(lazy, k), rtol=1e-12, atol=1e-12), k
    scaled = lazy.transform(w)
    assert is_lazy(scaled) and np.allclose(scaled[[5, 1]], eager.transform(x[[5, 1]]))


def test_store_round_trip_and_reuse(tmp_path):
    cfg = DataConfig(source="fsdd-strings", options={"n_sequences": 12})
    plain = load_data(cfg)
    stored = load_data(DataConfig(source="fsdd-strings", options={"n_sequences": 12},
                                  store=str(tmp_path)))
    assert is_lazy(stored.x) and is_lazy(stored.test.x)
    assert np.array_equal(np.asarray(stored.x), plain.x)
    assert np.array_equal(np.asarray(stored.test.x), plain.test.x)
    assert np.array_equal(stored.seq_id, plain.seq_id) and stored.meta == plain.meta
    for k, v in plain.extras.items():
        assert np.array_equal(stored.extras[k], v), k
    sub = stored.subset(np.array([3, 1]))
    assert is_lazy(sub.x) and np.array_equal(sub.x[0], plain.x[3])
    folders = list(tmp_path.iterdir())
    assert len(folders) == 1 and (folders[0] / "meta.json").is_file()
    load_data(DataConfig(source="fsdd-strings", options={"n_sequences": 12},
                         store=str(tmp_path)))
    assert list(tmp_path.iterdir()) == folders  # reused, not rewritten


def test_store_follows_the_source_file(tmp_path, tiny_npz):
    root = tmp_path / "store"
    a = load_data(DataConfig(source=str(tiny_npz), store=str(root)))
    x = np.load(tiny_npz)["data"]
    np.savez(tiny_npz, data=x[:50] + 1)  # the user's file changed: a new stored copy
    b = load_data(DataConfig(source=str(tiny_npz), store=str(root)))
    assert len(a.x) == 200 and len(b.x) == 50 and np.allclose(b.x[0], x[0] + 1)
    assert len(list(root.iterdir())) == 2


def test_labels_are_masked_after_the_store(tmp_path):
    kw = dict(source="digits", options={})
    stored = load_data(DataConfig(**kw, labels=20, store=str(tmp_path)))
    plain = load_data(DataConfig(**kw, labels=20))
    assert stored.y_mask.sum() == 20 and np.array_equal(stored.y_mask, plain.y_mask)


def test_training_from_the_store_matches_memory(tmp_path):
    """Same data, same seed: the stored path trains to the same weights as the in-memory one."""
    from factorseq.train import TrainConfig, fit
    tc = dict(epochs=1, batch_size=32, tensorboard=False, threads=1, progress=False)
    model = {"hidden": 8, "layers": 1, "z1_dim": 4, "z2_dim": 4, "sequences_per_round": 5}
    opts = {"n_sequences": 12}
    a = fit("fhvae", DataConfig(source="fsdd-strings", options=opts), TrainConfig(**tc),
            model, tmp_path / "a")
    b = fit("fhvae", DataConfig(source="fsdd-strings", options=opts, store=str(tmp_path / "s")),
            TrainConfig(**tc), model, tmp_path / "b")
    for (k, va), vb in zip(a.model.state_dict().items(), b.model.state_dict().values(),
                           strict=True):
        assert np.allclose(va.numpy(), vb.numpy(), atol=1e-5), k
    assert json.loads((tmp_path / "b" / "config.json").read_text())["data_config"]["store"]


def test_corrupt_store_is_a_user_error(tmp_path, capsys):
    root = tmp_path / "s"
    cfg = DataConfig(source="fsdd-strings", options={"n_sequences": 6}, store=str(root))
    load_data(cfg)
    folder = next(root.iterdir())
    (folder / "x.f32").write_bytes(b"\0" * 10)
    msg = user_error(capsys, "train", "fhvae", "--data", "fsdd-strings", "--out",
                     tmp_path / "run", "--epochs", "1", "--set", f"data.store={root}",
                     "--set", "data.options={n_sequences: 6}")
    assert "corrupt" in msg and not (tmp_path / "run" / "model.safetensors").exists()
    (tmp_path / "afile").write_text("")
    msg = user_error(capsys, "train", "timevae", "--data", "stockv", "--out", tmp_path / "r2",
                     "--epochs", "1", "--set", f"data.store={tmp_path / 'afile'}")
    assert "cannot write the data store" in msg


def test_write_and_read_store_directly(tmp_path):
    data = load_data(DataConfig(source="sines"))
    folder = write_store(data, store_dir(tmp_path, {"source": "sines"}), {"source": "sines"})
    back = read_store(folder)
    assert back.name == data.name and np.allclose(np.asarray(back.x), data.x)
    assert back.test is None if data.test is None else len(back.test.x) == len(data.test.x)


def test_fhvae_from_the_store_end_to_end(tmp_path):
    """train -> evaluate -> encode on a stored set: every command reads the rows it needs."""
    import pandas as pd

    from clihelp import cli
    run, store = tmp_path / "run", tmp_path / "store"
    assert cli("train", "fhvae", "--data", "fsdd-strings", "--out", run, "--epochs", 1,
               "--batch-size", 32, "--set", "train.tensorboard=false", "--set", "hidden=8",
               "--set", "layers=1", "--set", "z1_dim=4", "--set", "z2_dim=4",
               "--set", "data.options={n_sequences: 12}", "--set", f"data.store={store}",
               "--sequences-per-round", 5) == 0
    assert cli("evaluate", run, "--out", tmp_path / "m.json", "--repeats", 1, "--set",
               "probe_iterations=20", "--set", "feature_probe_iterations=5") == 0
    m = json.loads((tmp_path / "m.json").read_text())
    assert 0 <= m["speaker_eer"] <= 1 and 0 <= m["conversion_content_acc"] <= 1
    assert cli("encode", run, "--out", tmp_path / "r.parquet") == 0
    assert set(pd.read_parquet(tmp_path / "r.parquet")["split"]) == {"train", "test"}
