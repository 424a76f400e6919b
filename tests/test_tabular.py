"""Categorical columns and per-entity attributes of long tables (issue #24): loading, the
one-hot scaler's round trip, conditioning, sampling for given attributes in the input's
layout, the scores, and the command line of the issue's example."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import factorseq as fs
from clihelp import cli, user_error
from factorseq.config import build
from factorseq.data.config import DataConfig
from factorseq.data.loaders import load_data
from factorseq.data.scaler import MinMaxScaler, Scaler, TabularScaler
from factorseq.errors import FactorseqError
from factorseq.metrics.tabular import attribute_fidelity, category_distance

TINY_DIFFUSION = ["--set", "timesteps=20", "--set", "sampling_steps=5", "--set", "d_model=16",
                  "--set", "heads=2", "--set", "enc_layers=1", "--set", "dec_layers=1"]
QUIET = {"progress": False, "tensorboard": False, "batch_size": 32}


def shop_table(n_entities: int = 12, steps: int = 40, seed: int = 0) -> pd.DataFrame:
    """Entities of three kinds; ``load`` is the kind's base plus 2 while ``state`` is busy."""
    rng = np.random.default_rng(seed)
    rows = []
    for e in range(n_entities):
        kind = ("shop", "home", "office")[e % 3]
        base = {"shop": 5.0, "home": 1.0, "office": 3.0}[kind]
        for t in range(steps):
            state = "busy" if (t // 5 + e) % 2 == 0 else "idle"
            rows.append({"entity": f"e{e}", "t": t, "kind": kind, "state": state,
                         "load": base + 2.0 * (state == "busy") + rng.normal(0, 0.1)})
    return pd.DataFrame(rows)[["entity", "t", "kind", "load", "state"]]


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    path = tmp_path_factory.mktemp("tab") / "t.csv"
    shop_table().to_csv(path, index=False)
    return path


def cfg(path, **kw) -> DataConfig:
    return DataConfig(source=str(path), id_column="entity", time_column="t", window=12, **kw)


# --- loading -----------------------------------------------------------------------------

def test_text_columns_are_categories_and_attributes_one_value_per_entity(table):
    d = load_data(cfg(table, attribute_columns="kind"))
    assert d.feature_names == ["load", "state"]
    assert d.meta["categories"] == {"state": ["busy", "idle"]}
    assert d.meta["attributes"] == [{"name": "kind", "kind": "categorical",
                                     "categories": ["home", "office", "shop"]}]
    df = shop_table()
    first = df[df.entity == "e0"].sort_values("t")
    # entity e0's first window: its rows, state coded busy=0 / idle=1, kind shop=2
    np.testing.assert_allclose(d.x[0, :, 0], first.load[:12], rtol=1e-6)
    np.testing.assert_array_equal(d.x[0, :, 1], (first.state[:12] == "idle").astype(float))
    assert d.attributes.shape == (d.n_windows, 1)
    np.testing.assert_array_equal(d.attributes[d.seq_id == 0], 2.0)
    np.testing.assert_array_equal(d.attributes[d.seq_id == 1], 0.0)  # e1 is a home


def test_declared_categorical_numbers_and_numeric_attributes(tmp_path):
    df = shop_table()
    df["code"] = np.where(df.state == "busy", 7, 3)  # a numeric status code
    df["size"] = df.entity.str[1:].astype(int) * 10.0  # a numeric attribute
    path = tmp_path / "c.csv"
    df.to_csv(path, index=False)
    d = load_data(cfg(path, categorical_columns="code", attribute_columns="kind,size"))
    assert d.meta["categories"]["code"] == ["3", "7"]  # labels in numeric order
    assert [a["kind"] for a in d.meta["attributes"]] == ["categorical", "numeric"]
    np.testing.assert_array_equal(np.unique(d.attributes[d.seq_id == 4, 1]), [40.0])


def test_table_errors_are_one_line_and_name_the_culprit(tmp_path, table):
    df = shop_table()
    df.loc[5, "kind"] = "home"  # entity e0 changes kind half-way
    bad = tmp_path / "varies.csv"
    df.to_csv(bad, index=False)
    with pytest.raises(FactorseqError, match="'kind' varies within entity 'e0'"):
        load_data(cfg(bad, attribute_columns="kind"))
    with pytest.raises(FactorseqError, match="need id_column"):
        build(DataConfig, {"source": str(table), "attribute_columns": "kind"})
    with pytest.raises(FactorseqError, match="attribute column 'nope' is not a column"):
        load_data(cfg(table, attribute_columns="nope"))
    with pytest.raises(FactorseqError, match="categorical column 'nope' is not a feature"):
        load_data(cfg(table, categorical_columns="nope"))
    with pytest.raises(FactorseqError, match="'idle' .* never saw; its categories: busy"):
        load_data(cfg(table, categories={"state": ["busy"]}))
    with pytest.raises(FactorseqError, match="'state' .* 2 distinct values, more than"):
        load_data(cfg(table, max_categories=1, attribute_columns="kind"))
    df = shop_table()
    df["state"] = df["state"].astype(object)
    df.loc[3, "state"] = None
    df.to_csv(tmp_path / "empty.csv", index=False)
    with pytest.raises(FactorseqError, match="'state' .* empty cell \\(row 3\\)"):
        load_data(cfg(tmp_path / "empty.csv"))


# --- the scaler ------------------------------------------------------------------------

def coded_windows() -> np.ndarray:
    """Windows (3, 2, 3): a number, a category among codes {0, 2} (1 never occurs), a number."""
    x = np.array([[[1.0, 0, 10], [2.0, 2, 20]], [[3.0, 2, 30], [4.0, 0, 40]],
                  [[5.0, 0, 50], [6.0, 0, 60]]])
    return x


def test_one_hot_blocks_round_trip_to_the_same_categories_and_units():
    x = coded_windows()
    s = TabularScaler(MinMaxScaler(), [1], 3).fit(x)
    z = s.transform(x)
    assert z.shape == (3, 2, 4) and s.width == 4  # two numbers + a block of 2 seen codes
    np.testing.assert_allclose(z[0, 0], [0.0, 0.0, 1.0, 0.0], atol=1e-6)  # 1 -> 0, 10 -> 0
    np.testing.assert_allclose(z[0, 1, 2:], [0.0, 1.0])  # code 2: second entry of the block
    np.testing.assert_allclose(s.inverse_transform(z), x, rtol=1e-6, atol=1e-5)
    # any model output decodes to a category training saw (never code 1): argmax of a block
    noise = np.random.default_rng(0).normal(size=(50, 2, 4))
    assert set(np.unique(s.inverse_transform(noise)[..., 1])) <= {0.0, 2.0}
    assert s.get_feature_names_out(["a", "b", "c"]) == ["a", "c", "b=0", "b=2"]
    mask = np.ones((3, 2, 3), dtype=bool)
    mask[0, 0, 2] = False
    wide = s.transform_mask(mask)
    assert wide.shape == (3, 2, 4) and not wide[0, 0, 1] and wide[0, 0, 2:].all()


def test_attribute_encoding_and_json_state():
    s = TabularScaler(MinMaxScaler(), [1], 3, ["categorical", "numeric"]).fit(coded_windows())
    a = np.array([[1.0, 2.0], [1.0, 4.0], [3.0, 4.0], [3.0, 6.0]])
    s.fit_attributes(a)
    enc = s.transform_attributes(np.array([[3.0, 4.0], [5.0, 2.0]]))
    std = np.std([2.0, 4, 4, 6]) + 1e-8  # numeric: (v - mean) / std over training rows
    np.testing.assert_allclose(enc, [[0, 1, 0.0], [0, 0, -2 / std]], atol=1e-6)
    state = json.loads(json.dumps(s.to_dict()))  # JSON only, never pickle
    back = Scaler.from_dict(state)
    x = coded_windows()
    np.testing.assert_allclose(back.transform(x), s.transform(x))
    np.testing.assert_allclose(back.transform_attributes(a), s.transform_attributes(a))
    assert back.counts_.tolist() == [1, 1, 1, 1]


# --- scores ------------------------------------------------------------------------------

def test_category_distance_by_hand():
    # p = (1/2, 1/2, 0), q = (3/4, 0, 1/4): TV = (1/4 + 1/2 + 1/4) / 2 = 1/2
    assert category_distance(np.array([0, 0, 1, 1]), np.array([0, 0, 0, 2]), 3) == 0.5
    assert category_distance(np.array([0, 1]), np.array([1, 0]), 2) == 0.0


def test_attribute_fidelity_sees_conditioning_and_its_absence():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 200).astype(float)
    real = labels[:, None, None] * 2.0 + rng.normal(0, 0.3, (200, 6, 1))
    good = labels[:, None, None] * 2.0 + rng.normal(0, 0.3, (200, 6, 1))
    lost = rng.normal(1.0, 1.0, (200, 6, 1))  # windows that ignore their attribute
    spec = [{"name": "kind", "kind": "categorical"}]
    a = labels[:, None]
    assert attribute_fidelity(real, a, good, a, spec)["kind"]["accuracy"] > 0.95
    assert attribute_fidelity(real, a, lost, a, spec)["kind"]["accuracy"] < 0.7
    num = attribute_fidelity(real, a, good, a, [{"name": "size", "kind": "numeric"}])
    assert num["size"]["r2"] > 0.8


# --- training and sampling ----------------------------------------------------------------

@pytest.fixture(scope="module")
def run(table):
    return fs.fit("diffusion_ts", cfg(table, attribute_columns="kind"), epochs=3,
                  max_steps=30, timesteps=20, sampling_steps=5, d_model=16, heads=2,
                  enc_layers=1, dec_layers=1, **QUIET)


def test_sampling_for_attributes_writes_the_input_layout(run, tmp_path):
    assert run.model.config.n_attributes == 3 and run.model.config.n_features == 3
    frame = run.sample(4, attributes={"kind": "shop"}, as_frame=True, seed=1)
    assert list(frame.columns) == ["entity", "t", "kind", "load", "state"]
    assert len(frame) == 4 * 12 and set(frame.kind) == {"shop"}
    assert set(frame.state) <= {"busy", "idle"}
    assert frame.entity.tolist() == np.repeat(np.arange(4), 12).tolist()
    per_entity = pd.DataFrame({"entity": ["A", "B"], "kind": ["home", "office"]})
    two = run.sample(attributes=per_entity, as_frame=True)
    assert two.groupby("entity").kind.first().to_dict() == {"A": "home", "B": "office"}
    drawn = run.sample(6, as_frame=True)  # no attributes given: drawn from the training rows
    assert set(drawn.kind) <= {"home", "office", "shop"}
    saved = run.save(tmp_path / "r")
    np.testing.assert_allclose(saved.sample(3, attributes={"kind": "home"}, seed=2),
                               run.sample(3, attributes={"kind": "home"}, seed=2), rtol=1e-5)


def test_the_run_speaks_the_users_units_and_categories(run, tmp_path):
    real = run.load_data()
    back = run.to_user(run.to_model(real.x))
    np.testing.assert_allclose(back, real.x, rtol=1e-5, atol=1e-5)  # codes and load values
    other = shop_table(n_entities=3, seed=5)
    other = other[other.state == "idle"]  # a file with one category: coded as the run's
    path = tmp_path / "o.csv"
    other.to_csv(path, index=False)
    d = run.load_data(str(path))
    assert set(np.unique(d.x[..., 1])) == {1.0}  # idle keeps its code 1
    other.loc[other.index[0], "state"] = "broken"
    other.to_csv(path, index=False)
    with pytest.raises(FactorseqError, match="'broken' .* never saw"):
        run.load_data(str(path))


def test_attribute_errors_at_sampling(run):
    with pytest.raises(FactorseqError, match="no value 'park' in training; allowed: home, "
                                             "office, shop"):
        run.sample(2, attributes={"kind": "park"})
    with pytest.raises(FactorseqError, match="unknown attribute 'color'; the run's "
                                             "attributes: kind"):
        run.sample(2, attributes={"color": "red"})


def test_a_vae_conditions_on_attributes_too(table):
    r = fs.fit("vae_conv", cfg(table, attribute_columns="kind"), epochs=2,
               hidden_layer_sizes=[8, 16], **QUIET)
    assert r.model.config.n_attributes == 3
    a = r.sample(3, attributes={"kind": "shop"}, seed=0)
    b = r.sample(3, attributes={"kind": "home"}, seed=0)
    assert a.shape == (3, 12, 2) and not np.allclose(a, b)
    with pytest.raises(FactorseqError, match="vae_dense cannot condition on attributes "
                                             "\\(kind\\); models that can: .*diffusion_ts"):
        fs.fit("vae_dense", cfg(table, attribute_columns="kind"), epochs=1, **QUIET)


def test_the_tabular_evaluator_is_chosen_and_scores(run):
    from factorseq.metrics.evaluators import choose_evaluator

    data = run.load_data()
    ev = choose_evaluator(run, data)
    assert ev.name == "tabular"
    scores = ev(run, data, repeats=1, generative=False, max_windows=90).evaluate()
    assert set(scores["category_distance"]) == {"state"}  # the categorical column, by name
    assert set(scores["attribute_fidelity"]) == {"kind"}  # the attribute, by name
    fid = scores["attribute_fidelity"]["kind"]
    # 4 entities of each kind: in 90 windows drawn from them the largest kind's share is near
    # 1/3, far from what a baseline read off one entity or one kind would give (1.0)
    assert 1 / 3 <= fid["majority"] < 0.45
    assert scores["n_tabular_windows"] == 90


# --- the command line: the issue's example --------------------------------------------------

def test_cli_example_of_the_issue(table, tmp_path, capsys):
    out = tmp_path / "RUN"
    assert cli("train", "diffusion_ts", "--data", table, "--id-column", "entity",
               "--time-column", "t", "--attribute-columns", "kind", "--window", 12,
               "--epochs", 2, "--batch-size", 32, "--out", out, *TINY_DIFFUSION,
               "--set", "train.tensorboard=false") == 0
    s = tmp_path / "s.csv"
    assert cli("sample", out, "--n", 20, "--attributes", "kind=shop", "--out", s) == 0
    df = pd.read_csv(s)
    assert list(df.columns) == ["entity", "t", "kind", "load", "state"]
    assert len(df) == 20 * 12 and set(df.kind) == {"shop"} and set(df.state) <= {"busy", "idle"}
    per = tmp_path / "a.csv"
    pd.DataFrame({"entity": ["x", "y", "z"], "kind": ["home", "shop", "home"]}).to_csv(
        per, index=False)
    assert cli("sample", out, "--attributes-from", per, "--out", tmp_path / "p.parquet") == 0
    p = pd.read_parquet(tmp_path / "p.parquet")
    assert p.groupby("entity").kind.first().to_dict() == {"x": "home", "y": "shop", "z": "home"}
    assert "allowed: home, office, shop" in user_error(
        capsys, "sample", out, "--n", 2, "--attributes", "kind=park", "--out", tmp_path / "e.csv")
    assert "unknown attribute 'color'" in user_error(
        capsys, "sample", out, "--attributes", "color=red", "--out", tmp_path / "e.csv")
    assert "name=value" in user_error(
        capsys, "sample", out, "--attributes", "kind", "--out", tmp_path / "e.csv")
    plain = tmp_path / "plain"
    assert cli("train", "vae_dense", "--data", table, "--id-column", "entity", "--time-column",
               "t", "--window", 12, "--epochs", 1, "--batch-size", 32, "--out", plain,
               "--set", "train.tensorboard=false") == 0
    assert "vae_dense cannot do 'attributes'" in user_error(
        capsys, "sample", plain, "--attributes", "kind=shop", "--out", tmp_path / "e.csv")
