"""Hostile inputs (issue #21): every one ends in exit 0 with a valid result, or exit 2 with one
``error:`` line and no file created, changed or lost. Named cases first, then hypothesis
strategies over data files, ``--set`` values and run configs."""
from __future__ import annotations

import contextlib
import json
import resource
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clihelp import cli, sine_windows_npz, user_error
from factorseq.checkpoint import load
from factorseq.data.tables import _time_rank

FAST = ["--epochs", "1", "--batch-size", "8", "--set", "train.tensorboard=false",
        "--set", "train.progress=false"]
QUICK = settings(max_examples=8, deadline=None, derandomize=True,
                 suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    data = sine_windows_npz(root, 48)
    assert cli("train", "timevae", "--data", data, "--out", root / "run", *FAST) == 0
    return root


@contextlib.contextmanager
def memory_cap(gb: float = 10.0):
    """A fuzzed size must fail as an error, never by the kernel's OOM killer taking the
    machine down: cap this process's address space for the case (restored after)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (int(gb * 2**30), hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def clean_outcome(capsys, args, folder: Path) -> int:
    """Run the CLI; exit 0, or exit 2 with exactly one error line and ``folder`` untouched."""
    before = snapshot(folder)
    capsys.readouterr()
    code = cli(*args)
    err = capsys.readouterr().err.strip().splitlines()
    assert code in (0, 2), (code, err[-3:])
    if code == 2:
        assert len(err) == 1 and err[0].startswith("error: "), err
        assert snapshot(folder) == before
    return code


def write(folder: Path, name: str, content: bytes) -> Path:
    p = folder / name
    p.write_bytes(content)
    return p


def test_named_cases_are_one_line_errors(work, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(work / "run", run)
    np.savez(tmp_path / "zero.npz", data=np.zeros((0, 12, 2), np.float32))
    np.savez(tmp_path / "complex.npz", data=np.ones((40, 12, 2)) * (1 + 1j))
    write(tmp_path, "bin.yaml", bytes(range(128, 256)))
    write(tmp_path, "list.json", b"[1, 2]")
    cases = [
        ["train", "vae_conv", "--data", tmp_path / "zero.npz", "--out", tmp_path / "o", *FAST],
        ["train", "vae_conv", "--data", tmp_path / "complex.npz", "--out", tmp_path / "o",
         *FAST],
        ["train", "vae_conv", "--data", work / "w.npz", "--config", tmp_path / "bin.yaml",
         "--out", tmp_path / "o", *FAST],
        ["generate", run, "--scale", "seasonal=nan", "--n", "2", "--out", tmp_path / "g.npz"],
        ["generate", run, "--value", "y=abc", "--n", "2", "--out", tmp_path / "g.npz"],
        ["sample", run, "--n", "100000000000", "--out", tmp_path / "s.npz"],
        ["report", run, "--metrics", tmp_path / "list.json", "--out", tmp_path / "r.html"],
    ]
    for args in cases:
        assert clean_outcome(capsys, args, tmp_path) == 2, args


@pytest.mark.parametrize("edit", [
    lambda c: c["scaler"].pop("scale"),
    lambda c: c["scaler"].update(kind="bogus"),
    lambda c: c["scaler"].update(min="abc"),
])
def test_a_damaged_run_config_is_a_one_line_error(edit, work, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(work / "run", run)
    cfg = json.loads((run / "config.json").read_text())
    edit(cfg)
    (run / "config.json").write_text(json.dumps(cfg))
    assert clean_outcome(capsys, ["sample", run, "--n", "2", "--out", tmp_path / "s.npz"],
                         tmp_path) == 2


def test_encode_refuses_strings_and_nan(work):
    run = load(work / "run")
    for bad in (np.full((1, 12, 2), "a"), np.full((1, 12, 2), np.nan)):
        with pytest.raises(Exception, match="numbers|NaN"):
            run.encode(bad)


VALUES = st.one_of(st.integers(-10**20, 10**20), st.floats(allow_nan=True),
                   st.text(max_size=6), st.sampled_from(["null", "true", "[1]", "{a: 1}", ""]))
KEYS = st.sampled_from(["train.lr", "train.weight_decay", "train.grad_clip", "train.min_lr",
                        "train.patience", "train.max_steps", "train.val_fraction",
                        "train.lr_schedule", "train.warmup_steps", "latent_dim",
                        "trend_poly", "data.window", "data.stride"])


@QUICK
@given(key=KEYS, value=VALUES)
def test_any_set_value_trains_or_is_refused_cleanly(work, tmp_path, capsys, key, value):
    folder = tmp_path / "case"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    with memory_cap():
        code = clean_outcome(capsys, ["train", "timevae", "--data", work / "w.npz", "--out",
                                      folder / "o", *FAST, "--set", f"{key}={value}"], folder)
    if code == 0:
        run = load(folder / "o")
        assert np.isfinite(run.sample(2)).all()


@QUICK
@given(n=st.integers(0, 20), t=st.integers(0, 6), d=st.integers(0, 3),
       fill=st.sampled_from([0.0, np.nan, np.inf, 1e38, -1e30]), frac=st.floats(0, 1))
def test_any_window_array_trains_or_is_refused_cleanly(work, tmp_path, capsys, n, t, d, fill,
                                                       frac):
    folder = tmp_path / "case"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    rng = np.random.default_rng(n * 100 + t * 10 + d)
    x = rng.normal(size=(n, t, d)).astype(np.float64)
    x[rng.random(x.shape) < frac] = fill
    np.savez(folder / "x.npz", data=x)
    with memory_cap():
        clean_outcome(capsys, ["train", "vae_dense", "--data", folder / "x.npz", "--out",
                               folder / "o", *FAST, "--batch-size", "2"], folder)


def test_table_values_beyond_float32_and_unordered_time_are_named(tmp_path, capsys):
    rows = "\n".join(f"{i},{i % 7},{i % 5}" for i in range(1, 41))
    (tmp_path / "big.csv").write_text("t,a,b\n" + rows.replace("\n4,4,4", "\n4,1e308,4"))
    (tmp_path / "text.csv").write_text("t,a,b\n" + rows.replace("\n4,", "\nsoon,", 1))
    before = snapshot(tmp_path)
    for name, says in (("big", "beyond float32"), ("text", "neither a number nor a date")):
        msg = user_error(capsys, "train", "vae_conv", "--data", tmp_path / f"{name}.csv",
                         "--time-column", "t", "--window", "8", "--out", tmp_path / "o", *FAST)
        assert says in msg, msg
    assert snapshot(tmp_path) == before
    assert list(_time_rank(pd.Series(["10", "9", "11"], name="t"))) == [1, 0, 2]  # not text


def test_nan_weights_are_refused_at_load(work, tmp_path):
    from safetensors.torch import load_file, save_file

    run = tmp_path / "run"
    shutil.copytree(work / "run", run)
    tensors = load_file(run / "model.safetensors")
    first = next(iter(tensors))
    tensors[first] = tensors[first] * float("nan")
    save_file(tensors, run / "model.safetensors")
    with pytest.raises(Exception, match="NaN/inf weights"):
        load(run)


def test_a_run_config_naming_a_store_folder_never_creates_it(work, tmp_path):
    """A run folder may come from elsewhere: reading its data writes nowhere it names."""
    run = tmp_path / "run"
    shutil.copytree(work / "run", run)
    cfg = json.loads((run / "config.json").read_text())
    shutil.copy(work / "run" / cfg["data_config"]["source"], tmp_path)  # data moves with it
    cfg["data_config"]["store"] = str(tmp_path / "elsewhere")
    (run / "config.json").write_text(json.dumps(cfg))
    assert load(run).load_data().x.shape[1:] == (12, 2)
    assert not (tmp_path / "elsewhere").exists()


RUN_KEYS = st.sampled_from([("scaler", "scale"), ("scaler", "min"), ("scaler", "kind"),
                            ("data_schema", "feature_names"), ("data_schema", "seq_len"),
                            ("data_schema", "n_features"), ("model_config", "latent_dim"),
                            ("model_config", "seq_len"), ("model_config", "trend_poly"),
                            ("model",), ("format",), ("status",), ("class",)])
JSON_VALUES = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70),
                        st.floats(allow_nan=True), st.text(max_size=5),
                        st.lists(st.floats(allow_nan=True), max_size=3),
                        st.just({"a": 1}), st.just("__drop__"))


@QUICK
@given(key=RUN_KEYS, value=JSON_VALUES, cut=st.one_of(st.none(), st.integers(0, 2000)))
def test_any_damaged_run_folder_samples_or_is_refused_cleanly(work, tmp_path, capsys, key,
                                                              value, cut):
    """A run folder from elsewhere: any one config value (or its removal), or weights cut
    short, gives valid windows or a one-line refusal that writes nothing."""
    folder = tmp_path / "case"
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(work / "run", folder / "run")
    cfg = json.loads((folder / "run" / "config.json").read_text())
    node = cfg
    for part in key[:-1]:
        node = node[part]
    if value == "__drop__":
        node.pop(key[-1], None)
    else:
        node[key[-1]] = value
    (folder / "run" / "config.json").write_text(json.dumps(cfg))
    if cut is not None:
        weights = folder / "run" / "model.safetensors"
        weights.write_bytes(weights.read_bytes()[:cut])
    code = clean_outcome(capsys, ["sample", folder / "run", "--n", "3", "--out",
                                  folder / "s.npz"], folder)
    if code == 0:
        with np.load(folder / "s.npz") as z:
            assert z["data"].shape == (3, 12, 2) and np.isfinite(z["data"]).all()


CELLS = st.one_of(st.floats(allow_nan=True, allow_infinity=True, width=64),
                  st.integers(-10**20, 10**20), st.sampled_from(["", "NA", "abc", "1e400", " "]))


@QUICK
@given(rows=st.integers(0, 30), cols=st.integers(1, 3), ids=st.integers(0, 3),
       cells=st.lists(CELLS, min_size=0, max_size=12), seed=st.integers(0, 99))
def test_any_long_table_trains_or_is_refused_cleanly(tmp_path, capsys, rows, cols, ids, cells,
                                                     seed):
    """A CSV long table (time column, optional entity ids) with hostile cells scattered in."""
    folder = tmp_path / "case"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    rng = np.random.default_rng(seed)
    table = pd.DataFrame({"t": np.arange(rows) % max(rows // max(ids, 1), 1)})
    for j in range(cols):
        table[f"f{j}"] = np.sin(np.arange(rows) / (j + 2)).astype(object)
    table = table.astype(object)
    for cell in cells:  # each hostile cell lands at a random place (the time column too)
        if rows:
            table.iat[int(rng.integers(rows)), int(rng.integers(cols + 1))] = cell
    extra = []
    if ids:
        table["site"] = np.arange(rows) * ids // max(rows, 1)
        extra = ["--id-column", "site"]
    table.to_csv(folder / "x.csv", index=False)
    with memory_cap():
        code = clean_outcome(capsys, ["train", "vae_conv", "--data", folder / "x.csv",
                                      "--time-column", "t", "--window", "4", *extra, "--out",
                                      folder / "o", *FAST, "--batch-size", "2"], folder)
    if code == 0:
        assert np.isfinite(load(folder / "o").sample(2)).all()
