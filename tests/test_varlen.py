"""Entities of different lengths (issue #24 item 3): ``--max-length`` makes one padded,
masked sequence per entity; the run keeps the training entities' length distribution;
``sample`` writes entities of drawn lengths as a long table; the KS score of the lengths."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import factorseq as fs
from clihelp import cli, user_error
from factorseq.config import build
from factorseq.data.config import DataConfig
from factorseq.data.lengths import distribution, draw, hold_after
from factorseq.data.loaders import load_data
from factorseq.data.scaler import MinMaxScaler, TabularScaler
from factorseq.errors import FactorseqError
from factorseq.metrics.gaps import real_windows
from factorseq.metrics.tabular import length_ks

TINY_DIFFUSION = ["--set", "timesteps=20", "--set", "sampling_steps=5", "--set", "d_model=16",
                  "--set", "heads=2", "--set", "enc_layers=1", "--set", "dec_layers=1"]
QUIET = {"progress": False, "tensorboard": False, "batch_size": 8}


def entity_table(n_entities: int = 32, seed: int = 0) -> pd.DataFrame:
    """Entity e{k} has 5 + k % 16 rows (lengths 5..20), an attribute ``kind``, a numeric
    ``load`` and a text ``state``; rows shuffled (the loader sorts by id and time)."""
    rng = np.random.default_rng(seed)
    rows = [{"entity": f"e{k}", "t": t, "kind": "ab"[k % 2],
             "load": np.sin(t / 3) + rng.normal(0, 0.1) + k % 2,
             "state": "on" if (t // 3) % 2 == 0 else "off"}
            for k in range(n_entities) for t in range(5 + k % 16)]
    return pd.DataFrame(rows).sample(frac=1.0, random_state=1)


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    path = tmp_path_factory.mktemp("varlen") / "t.csv"
    entity_table().to_csv(path, index=False)
    return path


def cfg(path, **kw) -> DataConfig:
    return DataConfig(source=str(path), id_column="entity", time_column="t", **kw)


# --- loading: one padded, masked sequence per entity ----------------------------------------

def test_entities_are_padded_and_masked_by_hand(tmp_path):
    df = pd.DataFrame({"id": ["a"] * 3 + ["b"] * 5 + ["c"] * 7,
                       "t": [*range(3), *range(5), *range(7)],
                       "u": [1.0, 2, 3, 10, 11, 12, 13, 14, 20, 21, 22, 23, 24, 25, 26]})
    path = tmp_path / "abc.csv"
    df.to_csv(path, index=False)
    d = load_data(DataConfig(source=str(path), id_column="id", time_column="t", max_length=5))
    assert d.x.shape == (3, 5, 1) and d.lengths.tolist() == [3, 5, 5]
    # a: its 3 rows, then its last row held; c: its first 5 rows (cut)
    np.testing.assert_array_equal(d.x[:, :, 0], [[1, 2, 3, 3, 3], [10, 11, 12, 13, 14],
                                                 [20, 21, 22, 23, 24]])
    np.testing.assert_array_equal(d.x_mask[:, :, 0], [[1, 1, 1, 0, 0], [1] * 5, [1] * 5])
    assert d.meta["entities_cut"] == 1 and d.meta["max_length"] == 5
    assert d.start.tolist() == [0, 0, 0] and d.seq_id.tolist() == [0, 1, 2]
    # a gap kept by --impute mask stays masked beside the padding
    df.loc[1, "u"] = np.nan
    df.to_csv(path, index=False)
    g = load_data(DataConfig(source=str(path), id_column="id", time_column="t", max_length=5,
                             impute="mask"))
    np.testing.assert_array_equal(g.x_mask[0, :, 0], [1, 0, 1, 0, 0])
    assert g.missing_rate == pytest.approx({"u": 1 / 15})  # padding is no missing value
    assert d.subset(np.array([2, 0])).lengths.tolist() == [5, 3]
    # scores compare against every entity: its padding is no gap (samples are padded alike)
    x, info = real_windows(d)
    assert info["real_windows"] == "complete" and len(x) == 3
    assert real_windows(g)[1]["real_counts"]["complete"] == 2  # a's gap is one


def test_padded_categories_are_masked_in_their_one_hot_block():
    x = np.array([[[1.0, 0], [2.0, 1], [2.0, 1]]])  # (1, 3, 2): a number, a category code
    s = TabularScaler(MinMaxScaler(), [1], 2).fit(x)
    mask = np.array([[[1, 1], [1, 1], [0, 0]]], dtype=bool)  # step 2 is padding
    wide = s.transform_mask(mask)
    assert wide.shape == (1, 3, 3)
    np.testing.assert_array_equal(wide[0], [[1, 1, 1], [1, 1, 1], [0, 0, 0]])


def test_hold_after_and_draw_by_hand():
    x = np.arange(8.0).reshape(2, 4, 1)
    np.testing.assert_array_equal(hold_after(x, np.array([2, 4]))[..., 0],
                                  [[0, 1, 1, 1], [4, 5, 6, 7]])
    dist = distribution(np.array([7, 3, 7, 7]))
    assert dist == {"values": [3, 7], "counts": [1, 3]}
    drawn = draw(dist, 4000, seed=0)
    assert set(drawn.tolist()) == {3, 7} and abs((drawn == 7).mean() - 0.75) < 0.03
    np.testing.assert_array_equal(draw(dist, 50, 1), draw(dist, 50, 1))  # seeded


def test_length_ks_by_hand():
    # F_a - F_b at 1, 2, 3, 4: 1/3 - 0, 2/3 - 1/4, 1 - 1/2, 1 - 3/4 -> sup 1/2
    assert length_ks(np.array([1, 2, 3]), np.array([2, 3, 4, 5])) == pytest.approx(0.5)
    assert length_ks(np.array([4, 4, 6]), np.array([6, 4, 4])) == 0.0


def test_max_length_errors_are_one_line(table, capsys):
    with pytest.raises(FactorseqError, match="max_length .* needs id_column"):
        build(DataConfig, {"source": str(table), "max_length": 20})
    with pytest.raises(FactorseqError, match="max_length must be >= 1"):
        cfg(table, max_length=0)
    assert "needs id_column" in user_error(
        capsys, "train", "diffusion_ts", "--data", table, "--max-length", 20, "--out",
        table.parent / "no")
    msg = user_error(capsys, "train", "timegan", "--data", table, "--id-column", "entity",
                     "--time-column", "t", "--max-length", 20, "--out", table.parent / "no")
    assert "timegan cannot train on entities of different lengths" in msg
    assert "diffusion_ts" in msg and "vae_conv" in msg and "gan," not in msg


# --- training and sampling ---------------------------------------------------------------

@pytest.fixture(scope="module")
def run_dir(table):
    out = table.parent / "RUN"
    assert cli("train", "diffusion_ts", "--data", table, "--id-column", "entity",
               "--time-column", "t", "--attribute-columns", "kind", "--max-length", 20,
               "--epochs", 2, "--batch-size", 8,
               "--out", out, *TINY_DIFFUSION, "--set", "train.tensorboard=false") == 0
    return out


def test_the_run_keeps_the_training_entities_lengths(run_dir):
    run = fs.load(run_dir)
    data = run.load_data()
    assert data.lengths is not None and data.seq_len == 20
    train = data.lengths[run.split.train]
    assert run.schema["lengths"] == distribution(train)  # training entities only
    assert sum(run.schema["lengths"]["counts"]) == len(run.split.train) < 32


def test_sample_writes_entities_of_training_lengths_in_the_inputs_layout(run_dir, table):
    out = run_dir.parent / "s.csv"
    assert cli("sample", run_dir, "--n", 40, "--seed", 3, "--attributes", "kind=b",
               "--out", out) == 0
    s = pd.read_csv(out)
    assert list(s.columns) == ["entity", "t", "kind", "load", "state"]  # the input's
    assert set(s.kind) == {"b"}
    sizes = s.groupby("entity").size()
    seen = set(fs.load(run_dir).schema["lengths"]["values"])
    assert len(sizes) == 40 and set(sizes.tolist()) <= seen and len(set(sizes)) > 3
    for _, g in s.groupby("entity"):  # time steps 0..len-1 per entity
        assert g.t.tolist() == list(range(len(g)))
    assert set(s.state) <= {"on", "off"}
    run = fs.load(run_dir)
    frame = run.sample(40, seed=3, attributes={"kind": "b"}, as_frame=True)  # the same
    assert frame.groupby("entity").size().tolist() == sizes.tolist()
    np.testing.assert_allclose(frame.load, s.load, rtol=1e-5, atol=1e-5)
    assert cli("sample", run_dir, "--n", 5, "--seed", 3, "--out", run_dir.parent / "s.npz") == 0
    with np.load(run_dir.parent / "s.npz") as z:
        lengths, x = z["lengths"], z["data"]
    np.testing.assert_array_equal(lengths, run.sample_lengths(5, 3))
    k = int(np.argmin(lengths))  # the windows hold each entity's last step after its length
    np.testing.assert_array_equal(x[k, lengths[k]:], np.repeat(x[k, lengths[k] - 1:lengths[k]],
                                                               20 - lengths[k], axis=0))


def test_the_tabular_evaluator_scores_the_lengths(run_dir):
    from factorseq.metrics.evaluators import choose_evaluator

    run = fs.load(run_dir)
    data = run.load_data()
    ev = choose_evaluator(run, data)
    assert ev.name == "tabular"
    scores = ev(run, data, repeats=1, generative=False, seed=0).evaluate()
    # every real entity scored (32 < max_windows): against the lengths drawn for 32 samples
    assert scores["length_ks"] == pytest.approx(length_ks(data.lengths,
                                                          run.sample_lengths(32, 0)))
    assert set(scores["category_distance"]) == {"state"}  # the categorical column, by name


def test_a_vae_with_masked_losses_trains_on_entities_too(table):
    r = fs.fit("vae_conv", cfg(table, max_length=20, drop_columns="kind"), epochs=1,
               hidden_layer_sizes=[8, 16], **QUIET)
    frame = r.sample(6, as_frame=True, seed=0)
    assert list(frame.columns) == ["entity", "t", "load", "state"]
    assert set(frame.groupby("entity").size()) <= set(r.schema["lengths"]["values"])
