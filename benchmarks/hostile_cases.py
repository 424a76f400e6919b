"""The case table of ``benchmarks/hostile.py`` (issue #21): one dict per hostile input.

Keys: ``name``; ``argv`` (a ``factorseq`` command, run in the case's own folder, which always
holds ``w.npz``: 48 windows of 12 steps, 2 sine channels) or ``py`` (Python API code);
``files`` (name -> text/bytes, ``@fixture`` copy, or a builder ``f(path, fixtures)``);
``expect``: ``error`` (must be a one-line refusal), ``ok`` (must succeed with a valid result)
or ``any`` (either, cleanly); ``valid``: what a valid result is (``run:o``, ``windows:s.npz``,
``json:m.json``, ``table:c.csv``, ``html:r.html``, ``stdout:TEXT``, ``absent:GLOB``);
optional ``prep`` (set-up steps, e.g. a command killed at a rename: ``kill_at``), ``parallel``
(a concurrent second command), ``fail_class``, ``never_say``, ``memory_gb``, ``fsize``,
``timeout``, ``may_change``.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

FAST = ["--epochs", "1", "--batch-size", "8", "--set", "train.tensorboard=false",
        "--set", "train.progress=false"]
TRAIN = ["train", "timevae", "--data", "w.npz", "--out", "o", *FAST]
QUIET = ["--set", "train.tensorboard=false", "--set", "train.progress=false"]
CHEAP_EVAL = ["--repeats", "1", "--set", "disc_iterations=20", "--set", "pred_iterations=20"]
USER_NOTE = b"years of work"


def _sines(n: int = 48, t: int = 12, d: int = 2) -> np.ndarray:
    rng = np.random.default_rng(0)
    x = np.sin(np.arange(t)[None, :, None] * rng.uniform(0.2, 0.6, (n, 1, d))
               + rng.uniform(0, 3, (n, 1, d)))
    return x.astype(np.float32)


def npz(arr=None, **arrays):
    """A builder: an .npz holding ``arr`` as ``data`` (and/or other named arrays)."""
    def build(path: Path, fixtures: Path) -> None:
        kw = dict(arrays) if arr is None else {"data": arr, **arrays}
        np.savez(path, **kw)
    return build


def npy(arr):
    return lambda path, fixtures: np.save(path, arr, allow_pickle=True)


def long_csv(n: int = 80, edit=None) -> bytes:
    """A long table: time t, features a, b (sines); ``edit(lines)`` changes its text lines."""
    lines = ["t,a,b"] + [f"{i},{np.sin(i / 3):.4f},{np.cos(i / 5):.4f}" for i in range(n)]
    if edit:
        lines = edit(lines)
    return ("\n".join(lines) + "\n").encode()


def run_copy(edit=None, weights=None, extra=None, remove=()):
    """A builder: a copy of the trained fixture run, its config edited by ``edit(cfg, path)``,
    its weights by ``weights(dict) -> dict`` (or bytes), user files ``extra`` added, files
    ``remove`` removed."""
    def build(path: Path, fixtures: Path) -> None:
        shutil.copytree(fixtures / "run", path)
        for name in remove:
            (path / name).unlink()
        if edit:
            cfg = json.loads((path / "config.json").read_text())
            cfg = edit(cfg, path) or cfg
            (path / "config.json").write_text(json.dumps(cfg))
        if isinstance(weights, bytes):
            (path / "model.safetensors").write_bytes(weights)
        elif weights:
            from safetensors.numpy import load_file, save_file
            save_file(weights(load_file(path / "model.safetensors")), path / "model.safetensors")
        for name, content in (extra or {}).items():
            (path / name).parent.mkdir(parents=True, exist_ok=True)
            (path / name).write_bytes(content)
    return build


def _nan_first(t: dict) -> dict:
    k = next(iter(t))
    return {**t, k: t[k] * np.nan}


def _first_half(path: Path) -> bytes:
    return path.read_bytes()[: path.stat().st_size // 2]


def truncated(fixture: str):
    def build(path: Path, fixtures: Path) -> None:
        path.write_bytes(_first_half(fixtures / fixture))
    return build


def case(name, argv=None, expect="error", **kw) -> dict:
    return {"name": name, "argv": argv, "expect": expect, **kw}


def api(name, code, expect="error", **kw) -> dict:
    head = "import numpy as np\nimport factorseq as fs\n"
    return {"name": name, "py": head + code, "expect": expect, **kw}


FIXTURE_FILES = {"w.npz": npz(_sines()), "long.csv": long_csv()}
FIXTURE_RUNS = {"run": ["train", "timevae", "--data", "w.npz", *FAST]}
RUN = {"run": run_copy()}
NOTES = {"my_notes.txt": USER_NOTE, "samples.csv": b"sample,step,f0\n0,0,1\n",
         "metrics.json": b'{"discriminative": 0.1}', "report.html": b"<html></html>"}

# ---------------------------------------------------------------- the command line itself
CLI = [
    case("no_args_prints_help", [], "ok", valid=["stdout:Usage"]),
    case("version", ["--version"], "ok", valid=["stdout:factorseq"]),
    case("unknown_verb", ["bogus"]),
    case("datasets_lists", ["datasets"], "ok", valid=["stdout:stockv"]),
    case("datasets_extra_argument", ["datasets", "extra"]),
    case("models_lists", ["models"], "ok", valid=["stdout:timevae"]),
    case("train_no_arguments", ["train"]),
    case("train_no_out", ["train", "timevae", "--data", "w.npz"]),
    case("sample_no_arguments", ["sample"]),
    case("unknown_option", [*TRAIN, "--bogus"]),
]

# ---------------------------------------------------------------- train: options and --set
T_OPTS = [
    ("epochs_zero", ["--epochs", "0"]), ("epochs_negative", ["--epochs", "-1"]),
    ("epochs_text", ["--epochs", "abc"]), ("batch_zero", ["--batch-size", "0"]),
    ("batch_negative", ["--batch-size", "-4"]), ("seed_negative", ["--seed", "-1"]),
    ("seed_2_64", ["--seed", str(2**64)]), ("seed_10_30", ["--seed", str(10**30)]),
    ("devices_zero", ["--devices", "0"]), ("devices_negative", ["--devices", "-1"]),
    ("strategy_bogus", ["--strategy", "bogus"]), ("window_zero", ["--window", "0"]),
    ("window_negative", ["--window", "-3"]), ("stride_zero", ["--stride", "0"]),
    ("impute_bogus", ["--impute", "bogus"]), ("labels_negative", ["--labels", "-1"]),
    ("drop_column_out_of_range", ["--drop-columns", "99"]),
    ("drop_every_column", ["--drop-columns", "0,1"]),
    ("resume_nothing", ["--resume"]), ("resume_and_force", ["--resume", "--force"]),
    ("target_speaker_on_windows", ["--target-speaker", "nobody"]),
]
T_SETS = [
    ("lr_zero", "train.lr=0"), ("lr_negative", "train.lr=-1"), ("lr_nan", "train.lr=nan"),
    ("lr_inf", "train.lr=inf"), ("lr_text", "train.lr=abc"), ("lr_list", "train.lr=[1,2]"),
    ("weight_decay_negative", "train.weight_decay=-1"), ("weight_decay_nan",
                                                         "train.weight_decay=nan"),
    ("grad_clip_negative", "train.grad_clip=-1"), ("grad_clip_zero", "train.grad_clip=0"),
    ("grad_clip_nan", "train.grad_clip=nan"), ("min_lr_negative", "train.min_lr=-1"),
    ("min_lr_nan", "train.min_lr=nan"), ("patience_negative", "train.patience=-1"),
    ("max_steps_negative", "train.max_steps=-5"), ("max_steps_zero", "train.max_steps=0"),
    ("val_fraction_one", "train.val_fraction=1"), ("val_fraction_big", "train.val_fraction=1.5"),
    ("val_fraction_negative", "train.val_fraction=-0.1"),
    ("val_fraction_nan", "train.val_fraction=nan"), ("lr_schedule_bogus",
                                                     "train.lr_schedule=bogus"),
    ("warmup_negative", "train.warmup_steps=-1"), ("accelerator_gpu", "train.accelerator=gpu"),
    ("accelerator_bogus", "train.accelerator=tpu9"), ("num_nodes_zero", "train.num_nodes=0"),
    ("num_workers_negative", "train.num_workers=-1"), ("threads_zero", "train.threads=0"),
    ("threads_negative", "train.threads=-2"), ("scaler_bogus", "train.scaler=bogus"),
    ("log_every_zero", "train.log_every_n_steps=0"), ("max_minutes_negative",
                                                      "train.max_minutes=-1"),
    ("max_minutes_nan", "train.max_minutes=nan"), ("lr_factor_zero", "train.lr_factor=0"),
    ("lr_factor_two", "train.lr_factor=2"), ("min_delta_negative", "train.min_delta=-1"),
    ("lr_patience_negative", "train.lr_patience=-1"), ("unknown_train_key", "train.bogus=1"),
    ("unknown_model_key", "bogus=1"), ("unknown_data_key", "data.bogus=1"),
    ("latent_zero", "latent_dim=0"), ("latent_negative", "latent_dim=-3"),
    ("latent_10_9", "latent_dim=1000000000"), ("latent_text", "latent_dim=abc"),
    ("latent_fraction", "latent_dim=2.5"), ("trend_poly_negative", "trend_poly=-1"),
    ("hidden_empty", "hidden_layer_sizes=[]"), ("hidden_zero", "hidden_layer_sizes=[0]"),
    ("reconstruction_nan", "reconstruction_wt=nan"), ("reconstruction_negative",
                                                      "reconstruction_wt=-1"),
    ("data_window_text", "data.window=abc"), ("data_stride_zero", "data.stride=0"),
    ("holdout_one", "data.holdout_fraction=1"), ("split_bogus", "data.split=bogus"),
    ("remove_rate_two", "data.remove_rate=2"), ("remove_pattern_bogus",
                                                "data.remove_pattern=bogus"),
    ("data_options_list", "data.options=[1]"), ("set_without_equals", "train.lr"),
    ("set_empty_key", "=3"), ("set_section_only", "train=3"),
]
TRAIN_SETTINGS = (
    [case(f"train_{n}", [*TRAIN, *a]) for n, a in T_OPTS]
    + [case(f"train_set_{n}", [*TRAIN, "--set", s]) for n, s in T_SETS]
    + [case("train_unknown_model", ["train", "nope", "--data", "w.npz", "--out", "o", *FAST]),
       case("train_ok", TRAIN, "ok", valid=["run:o"]),
       case("train_set_epochs_fraction", [*TRAIN[:6], *QUIET, "--set", "train.epochs=1.5"]),
       case("train_set_batch_size_10_12", [*TRAIN[:6], *QUIET, "--set", "train.max_steps=3",
                                           "--set", "train.batch_size=1000000000000"], "any",
            valid=["run:o"]),
       case("train_grad_clip_one", [*TRAIN, "--set", "train.grad_clip=1"], "ok",
            valid=["run:o"]),
       case("train_val_fraction_zero", [*TRAIN, "--set", "train.val_fraction=0"], "any",
            valid=["run:o"]),
       case("train_out_deep_new_folder", [*TRAIN[:-len(FAST) - 2], "--out", "a/b/c/o", *FAST],
            "ok", valid=["run:a/b/c/o"])]
)

# ---------------------------------------------------------------- train: max_steps, every model
LABELLED = ("dann", "ssvae", "fhvae")  # need labels or sequences: a clean refusal is fine
MODELS = ("aae", "aavae", "ae", "dann", "diffusion_ts", "dsvae", "fhvae", "gan", "infogan",
          "iwgan", "ssvae", "timegan", "timevae", "vae", "vae_conv", "vae_dense", "vaegan")
MAX_STEPS = [case(f"max_steps_2_{m}", ["train", m, "--data", "w.npz", "--out", "o", *QUIET,
                                       "--batch-size", "8", "--set", "train.max_steps=2"],
                  "any" if m in LABELLED else "ok", valid=["run:o"]) for m in MODELS]

# ---------------------------------------------------------------- train: --config files
CONFIGS = [
    case("config_missing", [*TRAIN, "--config", "nope.yaml"]),
    case("config_binary", [*TRAIN, "--config", "c.yaml"], files={"c.yaml": bytes(range(256))}),
    case("config_list", [*TRAIN, "--config", "c.yaml"], files={"c.yaml": "- 1\n- 2\n"}),
    case("config_bad_yaml", [*TRAIN, "--config", "c.yaml"], files={"c.yaml": "a: [1,\n"}),
    case("config_unknown_key", [*TRAIN, "--config", "c.yaml"], files={"c.yaml": "bogus: 1\n"}),
    case("config_train_section_list", [*TRAIN, "--config", "c.yaml"],
         files={"c.yaml": "train: [1, 2]\n"}),
    case("config_python_tag", [*TRAIN, "--config", "c.yaml"],
         files={"c.yaml": "a: !!python/object/apply:os.system ['touch pwned']\n"}),
    case("config_is_folder", [*TRAIN, "--config", "."]),
    case("config_empty_file", [*TRAIN, "--config", "c.yaml"], "ok", files={"c.yaml": ""},
         valid=["run:o"]),
    case("config_negative_lr", [*TRAIN, "--config", "c.yaml"],
         files={"c.yaml": "train:\n  lr: -1\n"}),
]

# ---------------------------------------------------------------- train: --out places
OUTS = [
    case("out_is_a_file", [*TRAIN[:4], "--out", "f.txt", *FAST], files={"f.txt": USER_NOTE}),
    case("out_users_folder", [*TRAIN], files={"o/mine.txt": USER_NOTE}),
    case("out_users_folder_force", [*TRAIN, "--force"], files={"o/mine.txt": USER_NOTE}),
    case("out_run_without_force", TRAIN, files={"o": run_copy()}),
    case("out_run_force", [*TRAIN, "--force"], "ok", files={"o": run_copy()}, valid=["run:o"]),
    case("out_run_force_keeps_user_files", [*TRAIN, "--force"], "ok",
         files={"o": run_copy(extra=NOTES)},
         valid=["run:o", "text:o/my_notes.txt=" + USER_NOTE.decode()]),
    case("out_inside_a_file", [*TRAIN[:4], "--out", "w.npz/o", *FAST]),
    case("out_current_folder", [*TRAIN[:4], "--out", ".", *FAST]),
    case("out_empty_string", [*TRAIN[:4], "--out", "", *FAST]),
    case("out_failed_start_left", TRAIN, "ok", valid=["run:o"],
         files={"o/config.json": '{"format": "factorseq-run", "status": "training"}'}),
]

# ---------------------------------------------------------------- train: data files
D = ["train", "timevae", "--out", "o", *FAST, "--data"]
DATA = [
    case("npz_zero_windows", [*D, "x.npz"], files={"x.npz": npz(np.zeros((0, 12, 2)))}),
    case("npz_zero_time", [*D, "x.npz"], files={"x.npz": npz(np.zeros((10, 0, 2)))}),
    case("npz_zero_features", [*D, "x.npz"], files={"x.npz": npz(np.zeros((10, 12, 0)))}),
    case("npz_1d", [*D, "x.npz"], "any", files={"x.npz": npz(np.arange(100.0))},
         valid=["run:o"]),
    case("npz_4d", [*D, "x.npz"], files={"x.npz": npz(np.zeros((10, 12, 2, 2)))}),
    case("npz_complex", [*D, "x.npz"], files={"x.npz": npz(_sines() * (1 + 1j))}),
    case("npz_strings", [*D, "x.npz"], files={"x.npz": npz(np.full((10, 12, 2), "ab"))}),
    case("npz_object_pickle", [*D, "x.npz"],
         files={"x.npz": npz(np.array([{"a": 1}] * 4, dtype=object))}),
    case("npz_bool", [*D, "x.npz"], "any", files={"x.npz": npz(_sines() > 0)},
         valid=["run:o"]),
    case("npz_int64", [*D, "x.npz"], "ok", files={"x.npz": npz((_sines() * 100).astype(int))},
         valid=["run:o"]),
    case("npz_float16", [*D, "x.npz"], "ok", files={"x.npz": npz(_sines().astype(np.float16))},
         valid=["run:o"]),
    case("npz_all_nan", [*D, "x.npz"], files={"x.npz": npz(np.full((20, 12, 2), np.nan))}),
    case("npz_constant", [*D, "x.npz"], "any", files={"x.npz": npz(np.ones((20, 12, 2)))},
         valid=["run:o"]),
    case("npz_beyond_float32", [*D, "x.npz"],
         files={"x.npz": npz(_sines().astype(np.float64) * 1e308)}),
    case("npz_one_window", [*D, "x.npz"], "any", files={"x.npz": npz(_sines(1))},
         valid=["run:o"]),
    case("npz_no_arrays", [*D, "x.npz"], files={"x.npz": npz()}),
    case("npz_two_arrays_no_data", [*D, "x.npz"], "any",
         files={"x.npz": npz(a=_sines(), b=_sines())}, valid=["run:o"]),
    case("npz_truncated", [*D, "x.npz"], files={"x.npz": truncated("w.npz")}),
    case("npz_zero_bytes", [*D, "x.npz"], files={"x.npz": b""}),
    case("npz_random_bytes", [*D, "x.npz"], files={"x.npz": bytes(range(256)) * 4}),
    case("npy_ok", [*D, "x.npy"], "ok", files={"x.npy": npy(_sines())}, valid=["run:o"]),
    case("npy_pickled", [*D, "x.npy"],
         files={"x.npy": npy(np.array([[1, "a"]] * 3, dtype=object))}),
    case("unknown_extension", [*D, "x.xyz"], files={"x.xyz": b"1,2,3\n"}),
    case("data_missing_file", [*D, "nope.npz"]),
    case("data_unknown_name", [*D, "nosuchset"]),
    case("data_empty_folder", [*D, "empty"], files={"empty/.keep": b""}),
    case("data_dev_null", [*D, "/dev/null"]),
    case("csv_ok", [*D, "x.csv", "--window", "12"], "ok", files={"x.csv": long_csv()},
         valid=["run:o"]),
    case("csv_empty", [*D, "x.csv"], files={"x.csv": b""}),
    case("csv_header_only", [*D, "x.csv"], files={"x.csv": b"a,b\n"}),
    case("csv_one_row", [*D, "x.csv", "--window", "12"], files={"x.csv": b"a,b\n1,2\n"}),
    case("csv_text_column", [*D, "x.csv", "--window", "12"], "any", valid=["run:o"],
         files={"x.csv": long_csv(edit=lambda ls: [ls[0] + ",c"] + [x + ",z" for x in ls[1:]])}),
    case("csv_empty_cells", [*D, "x.csv", "--window", "12"], "any", valid=["run:o"],
         files={"x.csv": long_csv(edit=lambda ls: ls[:5] + ["5,,"] + ls[6:])}),
    case("csv_1e308", [*D, "x.csv", "--window", "12"],
         files={"x.csv": long_csv(edit=lambda ls: ls[:5] + ["5,1e308,1"] + ls[6:])}),
    case("csv_inf_text", [*D, "x.csv", "--window", "12"], "any", valid=["run:o"],
         files={"x.csv": long_csv(edit=lambda ls: ls[:5] + ["5,inf,1"] + ls[6:])}),
    case("csv_duplicate_columns", [*D, "x.csv", "--window", "12"], "any", valid=["run:o"],
         files={"x.csv": long_csv(edit=lambda ls: ["t,a,a"] + ls[1:])}),
    case("csv_bom", [*D, "x.csv", "--window", "12"], "ok", valid=["run:o"],
         files={"x.csv": b"\xef\xbb\xbf" + long_csv()}),
    case("csv_latin1_bytes", [*D, "x.csv", "--window", "12"],
         files={"x.csv": long_csv().replace(b"t,a,b", b"t,\xe9\xff,b")}),
    case("csv_binary", [*D, "x.csv"], files={"x.csv": bytes(range(256)) * 8}),
    case("csv_window_longer_than_table", [*D, "x.csv", "--window", "500"],
         files={"x.csv": long_csv()}),
    case("csv_stride_beyond_table", [*D, "x.csv", "--window", "12", "--stride", "1000"], "any",
         files={"x.csv": long_csv()}, valid=["run:o"]),
    case("csv_time_column_missing", [*D, "x.csv", "--window", "12", "--time-column", "zz"],
         files={"x.csv": long_csv()}),
    case("csv_time_column_unparseable", [*D, "x.csv", "--window", "12", "--time-column", "t"],
         files={"x.csv": long_csv(edit=lambda ls: ls[:4] + ["soon,1,2"] + ls[5:])}),
    case("csv_time_column_numbers", [*D, "x.csv", "--window", "12", "--time-column", "t"],
         "ok", files={"x.csv": long_csv()}, valid=["run:o"]),
    case("csv_id_column_missing", [*D, "x.csv", "--window", "12", "--id-column", "zz"],
         files={"x.csv": long_csv()}),
    case("csv_label_column_missing", [*D, "x.csv", "--window", "12", "--label-column", "zz"],
         files={"x.csv": long_csv()}),
    case("csv_drop_unknown_name", [*D, "x.csv", "--window", "12", "--drop-columns", "zz"],
         files={"x.csv": long_csv()}),
    case("csv_missing_sentinel_everywhere", [*D, "x.csv", "--window", "12", "--missing", "1"],
         files={"x.csv": long_csv(edit=lambda ls: [ls[0]] + ["1,1,1"] * (len(ls) - 1))}),
    case("parquet_corrupt", [*D, "x.parquet"], files={"x.parquet": b"PAR1garbagePAR1"}),
    case("data_is_run_folder", [*D, "run"], files=RUN),
]

# ---------------------------------------------------------------- sample
S = ["sample", "run", "--n", "4", "--out"]


def _cfg(fn):
    return {"run": run_copy(edit=fn)}


def _drop_scale(c, p):
    c["scaler"].pop("scale")


def _names_wrong(c, p):
    c["data_schema"]["feature_names"] = ["only"]


def _scale(v):
    def edit(c, p):
        c["scaler"]["scale"] = [v, v]
    return edit


SAMPLE = [
    case("sample_npz", [*S, "s.npz"], "ok", files=RUN, valid=["windows:s.npz"]),
    case("sample_npy", [*S, "s.npy"], "ok", files=RUN, valid=["windows:s.npy"]),
    case("sample_csv", [*S, "s.csv"], "ok", files=RUN, valid=["windows:s.csv"]),
    case("sample_parquet", [*S, "s.parquet"], "ok", files=RUN, valid=["windows:s.parquet"]),
    case("sample_n_zero", ["sample", "run", "--n", "0", "--out", "s.npz"], "any", files=RUN,
         valid=["windows:s.npz"]),
    case("sample_n_negative", ["sample", "run", "--n", "-1", "--out", "s.npz"], files=RUN),
    case("sample_n_text", ["sample", "run", "--n", "abc", "--out", "s.npz"], files=RUN),
    case("sample_n_10_11", ["sample", "run", "--n", "100000000000", "--out", "s.npz"],
         files=RUN, timeout=60),
    case("sample_n_2_63", ["sample", "run", "--n", str(2**63), "--out", "s.npz"], files=RUN),
    case("sample_out_txt", [*S, "s.txt"], files=RUN),
    case("sample_out_no_suffix", [*S, "s"], files=RUN),
    case("sample_out_exists", [*S, "s.npz"], files={**RUN, "s.npz": USER_NOTE}),
    case("sample_out_exists_force", [*S, "s.npz", "--force"], "ok",
         files={**RUN, "s.npz": USER_NOTE}, valid=["windows:s.npz"]),
    case("sample_out_is_folder", [*S, "d.npz"], files={**RUN, "d.npz/x": USER_NOTE}),
    case("sample_out_inside_a_file", [*S, "w.npz/s.npz"], files=RUN),
    case("sample_out_onto_run_config", [*S, "run/config.json", "--force"], files=RUN),
    case("sample_label_unconditional", [*S, "s.npz", "--label", "3"], files=RUN),
    case("sample_seed_negative", [*S, "s.npz", "--seed", "-1"], "any", files=RUN,
         valid=["windows:s.npz"]),
    case("sample_seed_2_70", [*S, "s.npz", "--seed", str(2**70)], "any", files=RUN,
         valid=["windows:s.npz"]),
    case("sample_run_missing", ["sample", "nope", "--n", "4", "--out", "s.npz"]),
    case("sample_run_is_file", ["sample", "w.npz", "--n", "4", "--out", "s.npz"]),
    case("sample_run_empty_folder", ["sample", "e", "--n", "4", "--out", "s.npz"],
         files={"e/.keep": b""}),
    case("sample_disk_full", ["sample", "run", "--n", "20000", "--out", "s.npy"], files=RUN,
         fsize=64 * 1024),
]
DAMAGED = [
    ("config_garbage", {"run": run_copy(), "run/config.json": b"{not json"}),
    ("config_binary", {"run": run_copy(), "run/config.json": bytes(range(256))}),
    ("config_list", {"run": run_copy(), "run/config.json": b"[1, 2]"}),
    ("config_empty", {"run": run_copy(), "run/config.json": b""}),
    ("config_missing", {"run": run_copy(remove=["config.json"])}),
    ("scale_missing", _cfg(_drop_scale)),
    ("scale_nan", _cfg(_scale(float("nan")))),
    ("scale_text", _cfg(_scale("abc"))),
    ("scaler_kind_bogus", _cfg(lambda c, p: c["scaler"].update(kind="bogus"))),
    ("feature_names_wrong_length", _cfg(_names_wrong)),
    ("model_unknown", _cfg(lambda c, p: c.update(model="nope"))),
    ("format_missing", _cfg(lambda c, p: c.pop("format"))),
    ("model_config_latent_changed", _cfg(lambda c, p: c["model_config"].update(latent_dim=3))),
    ("model_config_bad_value", _cfg(lambda c, p: c["model_config"].update(latent_dim=-1))),
    ("seq_len_text", _cfg(lambda c, p: c["data_schema"].update(seq_len="x"))),
    ("class_path_elsewhere", _cfg(lambda c, p: c.update({"class": "os.system"}))),
    ("weights_missing", {"run": run_copy(remove=["model.safetensors"])}),
    ("weights_zero_bytes", {"run": run_copy(weights=b"")}),
    ("weights_garbage", {"run": run_copy(weights=bytes(range(256)) * 10)}),
    ("weights_nan", {"run": run_copy(weights=_nan_first)}),
    ("weights_key_missing", {"run": run_copy(weights=lambda t: dict(list(t.items())[1:]))}),
    ("weights_wrong_shape", {"run": run_copy(
        weights=lambda t: {k: (v[..., :1] if v.ndim else v) for k, v in t.items()})}),
]
SAMPLE += [case(f"sample_run_{n}", [*S, "s.npz"], files=f) for n, f in DAMAGED]
SAMPLE += [  # a constant feature's scale is 0; a run killed after its weights were written
    case("sample_run_scale_zero", [*S, "s.npz"], "any", files=_cfg(_scale(0.0)),
         valid=["windows:s.npz"]),
    case("sample_run_status_training", [*S, "s.npz"], "any", valid=["windows:s.npz"],
         files=_cfg(lambda c, p: c.update(status="training")))]

# ---------------------------------------------------------------- evaluate, report, encode
E = ["evaluate", "run", "--out", "m.json", *CHEAP_EVAL]


def _source(where):
    def edit(c, p):
        c["data_config"]["source"] = where(p)
    return edit


EVALUATE = [
    case("evaluate_ok", E, "ok", files=RUN, valid=["json:m.json"], timeout=240),
    case("evaluate_repeats_zero", [*E, "--repeats", "0"], files=RUN),
    case("evaluate_repeats_negative", [*E, "--repeats", "-1"], files=RUN),
    case("evaluate_samples_missing", [*E, "--samples", "nope.npz"], files=RUN),
    case("evaluate_samples_nan", [*E, "--samples", "s.npz"],
         files={**RUN, "s.npz": npz(np.full((8, 12, 2), np.nan))}),
    case("evaluate_samples_wrong_features", [*E, "--samples", "s.npz"],
         files={**RUN, "s.npz": npz(_sines(8, 12, 3))}),
    case("evaluate_samples_wrong_length", [*E, "--samples", "s.npz"],
         files={**RUN, "s.npz": npz(_sines(8, 5, 2))}),
    case("evaluate_samples_text_csv", [*E, "--samples", "s.csv"],
         files={**RUN, "s.csv": b"sample,step,f0,f1\n0,0,a,b\n"}),
    case("evaluate_data_missing", [*E, "--data", "nope.npz"], files=RUN),
    case("evaluate_data_wrong_features", [*E, "--data", "x.npz"],
         files={**RUN, "x.npz": npz(_sines(20, 12, 3))}),
    case("evaluate_evaluator_bogus", [*E, "--evaluator", "bogus"], files=RUN),
    case("evaluate_option_unknown", [*E, "--set", "bogus=1"], files=RUN),
    case("evaluate_option_negative", [*E, "--set", "disc_iterations=-1"], files=RUN),
    case("evaluate_option_space_bogus", [*E, "--set", "space=bogus"], files=RUN),
    case("evaluate_out_exists", E, files={**RUN, "m.json": USER_NOTE}),
    case("evaluate_source_absolute_elsewhere", E, files={
        "far/w.npz": "@w.npz", "run": run_copy(edit=_source(
            lambda p: str((p.parent / "far" / "w.npz").resolve())))}, timeout=240),
    case("evaluate_source_etc_passwd", E, files=_cfg(_source(lambda p: "/etc/passwd"))),
    case("evaluate_store_elsewhere", E, "any", timeout=240, valid=["absent:elsewhere"],
         files=_cfg(lambda c, p: c["data_config"].update(store="elsewhere"))),
]
R = ["report", "run", "--out", "r.html"]
REPORT = [
    case("report_ok", [*R, "--metrics", "m.json"], "ok", timeout=240, valid=["html:r.html"],
         files={**RUN, "m.json": b'{"discriminative": {"mean": 0.2, "std": 0.01}}'}),
    case("report_metrics_list", [*R, "--metrics", "m.json"], files={**RUN, "m.json": b"[1,2]"}),
    case("report_metrics_text_mean", [*R, "--metrics", "m.json"],
         files={**RUN, "m.json": b'{"d": {"mean": "high", "std": 1}}'}),
    case("report_metrics_missing", [*R, "--metrics", "nope.json"], files=RUN),
    case("report_metrics_binary", [*R, "--metrics", "m.json"],
         files={**RUN, "m.json": bytes(range(256))}),
    case("report_metrics_nan_mean", [*R, "--metrics", "m.json"], "any", timeout=240,
         files={**RUN, "m.json": b'{"d": {"mean": NaN, "std": 1}}'}, valid=["html:r.html"]),
    case("report_out_exists", R, files={**RUN, "r.html": USER_NOTE}),
    case("report_run_missing", ["report", "nope", "--out", "r.html"]),
    case("report_samples_nan", [*R, "--samples", "s.npz"],
         files={**RUN, "s.npz": npz(np.full((8, 12, 2), np.nan))}),
]
C = ["encode", "run", "--out"]
ENCODE = [
    case("encode_csv", [*C, "c.csv"], "ok", files=RUN, valid=["table:c.csv"]),
    case("encode_parquet", [*C, "c.parquet"], "ok", files=RUN, valid=["table:c.parquet"]),
    case("encode_out_npz", [*C, "c.npz"], files=RUN),
    case("encode_out_exists", [*C, "c.csv"], files={**RUN, "c.csv": USER_NOTE}),
    case("encode_data_missing", [*C, "c.csv", "--data", "nope.npz"], files=RUN),
    case("encode_data_wrong_features", [*C, "c.csv", "--data", "x.npz"],
         files={**RUN, "x.npz": npz(_sines(20, 12, 3))}),
    case("encode_data_nan", [*C, "c.csv", "--data", "x.npz"], "any", valid=["table:c.csv"],
         files={**RUN, "x.npz": npz(np.where(_sines() > 0.9, np.nan, _sines()))}),
]

# ---------------------------------------------------------------- generate and convert
G = ["generate", "run", "--n", "3", "--out", "g.npz"]
GENERATE = [
    case("generate_list", ["generate", "run", "--list"], "ok", files=RUN,
         valid=["stdout:seasonal"]),
    case("generate_scale_two", [*G, "--scale", "seasonal=2"], "ok", files=RUN,
         valid=["windows:g.npz"]),
    case("generate_value_text", [*G, "--value", "y=abc"], files=RUN),
    case("generate_scale_nan", [*G, "--scale", "seasonal=nan"], files=RUN),
    case("generate_scale_inf", [*G, "--scale", "seasonal=inf"], files=RUN),
    case("generate_scale_text", [*G, "--scale", "seasonal=abc"], files=RUN),
    case("generate_scale_unknown_factor", [*G, "--scale", "bogus=2"], files=RUN),
    case("generate_scale_no_equals", [*G, "--scale", "seasonal"], files=RUN),
    case("generate_keep_without_reference", [*G, "--keep", "trend"], files=RUN),
    case("generate_keep_unknown", [*G, "--reference", "w.npz", "--keep", "bogus"], files=RUN),
    case("generate_reference_index_out_of_range",
         [*G, "--reference", "w.npz", "--reference-index", "999", "--keep", "trend"], files=RUN),
    case("generate_reference_seq_alone", [*G, "--reference-seq", "x"], files=RUN),
    case("generate_reference_missing", [*G, "--reference", "nope.npz", "--keep", "trend"],
         files=RUN),
    case("generate_n_negative", ["generate", "run", "--n", "-3", "--out", "g.npz"], files=RUN),
    case("generate_no_out", ["generate", "run", "--n", "3"], files=RUN),
    case("convert_not_fhvae", ["convert", "run", "--source", "a.wav", "--target", "b.wav",
                               "--out", "c.wav"], files={**RUN, "a.wav": b"RIFF", "b.wav": b""}),
]

# ---------------------------------------------------------------- the Python API
LOAD = "run = fs.load('run')\n"
API = [
    api("api_fit_ok", "fs.fit('timevae', fs.DataConfig(source='w.npz'), "
        "{'epochs': 1, 'batch_size': 8, 'tensorboard': False, 'progress': False}, out='o')",
        "ok", valid=["run:o"]),
    api("api_datacfg_ndarray_source", "fs.fit('timevae', fs.DataConfig(source=np.zeros("
        "(20, 12, 2))), {'epochs': 1}, out='o')"),
    api("api_fit_unknown_model", "fs.fit('nope', 'w.npz', out='o')"),
    api("api_fit_out_is_file", "fs.fit('timevae', 'w.npz', {'epochs': 1}, out='w.npz')"),
    api("api_fit_train_cfg_text", "fs.fit('timevae', 'w.npz', 'fast', out='o')"),
    api("api_traincfg_negative_lr", "fs.TrainConfig(lr=-1)"),
    api("api_traincfg_negative_clip", "fs.TrainConfig(grad_clip=-1)"),
    api("api_load_missing", "fs.load('nope')"),
    api("api_encode_strings", LOAD + "run.encode(np.full((2, 12, 2), 'a'))", files=RUN),
    api("api_encode_nan", LOAD + "run.encode(np.full((2, 12, 2), np.nan))", files=RUN),
    api("api_encode_inf", LOAD + "run.encode(np.full((2, 12, 2), np.inf))", files=RUN),
    api("api_encode_wrong_features", LOAD + "run.encode(np.zeros((2, 12, 3)))", files=RUN),
    api("api_encode_none", LOAD + "run.encode(None)", files=RUN),
    api("api_sample_negative", LOAD + "run.sample(-1)", files=RUN),
    api("api_sample_10_12", LOAD + "run.sample(10**12)", files=RUN, timeout=60),
    api("api_sample_text", LOAD + "run.sample('many')", files=RUN),
    api("api_generate_scale_nan", LOAD + "run.generate(2, scale={'seasonal': float('nan')})",
        files=RUN),
    api("api_generate_unknown_keep", LOAD + "run.generate(2, keep=['bogus'])", files=RUN),
]

# ---------------------------------------------------------------- data loss, hidden state
SWAP_NAMES = ["r", ".r.factorseq-new"]
FORCE_R = ["train", "timevae", "--data", "w.npz", "--out", "r", "--force", "--seed", "3", *FAST]
NOTE_KEPT = "text:r/my_notes.txt=" + USER_NOTE.decode()
RECOVERED = [".r.factorseq-*", ".r.factorseq-*/*", "r", "r/*"]  # the swap's folders
TRAIN_3 = [*TRAIN, "--epochs", "3"]
LOSS = [
    case("two_new_trainings_one_out", TRAIN, "any", one_writer=True, parallel=[{
        "argv": TRAIN}], valid=["run:o"]),
    case("two_force_trainings_one_run", [*TRAIN, "--force"], "any", files={"o": run_copy()},
         parallel=[{"argv": [*TRAIN, "--force", "--seed", "2"]}], valid=["run:o"]),
    case("sample_after_swap_killed_at_old_aside", ["sample", "r", "--n", "2", "--out",
                                                   "s.npz"], "ok", fail_class="lost",
         files={"r": run_copy(extra=NOTES)},
         prep=[{"argv": FORCE_R, "kill_at": [SWAP_NAMES, 1]}], may_change=RECOVERED,
         valid=["windows:s.npz", NOTE_KEPT]),
    case("sample_after_swap_killed_between_renames", ["sample", "r", "--n", "2", "--out",
                                                      "s.npz"], "ok", fail_class="lost",
         files={"r": run_copy(extra=NOTES)},
         prep=[{"argv": FORCE_R, "kill_at": [SWAP_NAMES, 2]}], may_change=RECOVERED,
         valid=["windows:s.npz", NOTE_KEPT]),
    case("force_after_swap_killed_at_old_aside", FORCE_R, "ok", fail_class="lost",
         files={"r": run_copy(extra=NOTES)},
         prep=[{"argv": FORCE_R, "kill_at": [SWAP_NAMES, 1]}], valid=["run:r", NOTE_KEPT]),
    case("force_after_swap_killed_between_renames", FORCE_R, "ok", fail_class="lost",
         files={"r": run_copy(extra=NOTES)},
         prep=[{"argv": FORCE_R, "kill_at": [SWAP_NAMES, 2]}], valid=["run:r", NOTE_KEPT]),
    case("sample_after_killed_sample", ["sample", "run", "--n", "2", "--out", "s.npz"], "ok",
         files=RUN, prep=[{"argv": ["sample", "run", "--n", "2", "--out", "s.npz"],
                           "kill_at": [[".s.npz.*"], 1]}],
         valid=["windows:s.npz", "absent:.s.npz.*"]),
    case("train_after_refused_start", TRAIN, "ok", valid=["run:o"],
         prep=[{"argv": [*TRAIN, "--strategy", "bogus"]}]),
    case("resume_tampered_checkpoint", [*TRAIN, "--resume"], never_say=["weights_only=False"],
         files={"o": run_copy(extra={"checkpoints/last.ckpt": b"\x80\x04garbage."})}),
    case("train_disk_full", TRAIN, fsize=64 * 1024),
    # training killed (kill -9) while writing a checkpoint: each epoch writes best.ckpt, then
    # last.ckpt; the 2nd write is epoch 1's last.ckpt, the 4th epoch 2's
    *[case(f"{name}_after_training_killed_at_save_{k}", argv, expect, valid=valid,
           prep=[{"argv": TRAIN_3, "kill_at_save": k}])
      for k in (2, 4) for name, argv, expect, valid in (
          ("resume", [*TRAIN_3, "--resume"], "ok", ["run:o"]),
          ("force", [*TRAIN_3, "--force"], "ok", ["run:o"]),
          ("train", TRAIN_3, "error", None),
          ("sample", ["sample", "o", "--n", "2", "--out", "s.npz"], "error", None))],
]

def link(target: str):
    return lambda path, fixtures: path.symlink_to(target)


MORE = [
    case("train_lr_10_may_diverge", [*TRAIN, "--set", "train.lr=10"], "any", valid=["run:o"]),
    case("train_lr_10_diverges_vae", ["train", "vae_dense", "--data", "w.npz", "--out", "o",
                                      *QUIET, "--epochs", "3", "--set", "train.lr=10"], "any",
         valid=["run:o"]),
    case("train_data_symlink_loop", [*D, "loop.npz"], files={"loop.npz": link("loop.npz")}),
    case("train_data_dangling_symlink", [*D, "gone.npz"], files={"gone.npz": link("nope.npz")}),
    case("train_out_dangling_symlink", [*TRAIN[:4], "--out", "ln", *FAST],
         files={"ln": link("nowhere/o")}),
    case("csv_window_10_12", [*D, "x.csv", "--window", str(10**12)],
         files={"x.csv": long_csv()}),
    case("sample_n_2_31", ["sample", "run", "--n", str(2**31), "--out", "s.npz"], files=RUN,
         timeout=60),
    case("sample_out_symlink_force", [*S, "ln.npz", "--force"], "ok", valid=["windows:ln.npz"],
         files={**RUN, "victim.npz": USER_NOTE, "ln.npz": link("victim.npz")}),
    case("report_metrics_bool_mean", [*R, "--metrics", "m.json"],
         files={**RUN, "m.json": b'{"d": {"mean": true, "std": 1}}'}),
    api("api_fit_ndarray", "fs.fit('timevae', np.load('w.npz')['data'], {'epochs': 1, "
        "'batch_size': 8, 'tensorboard': False, 'progress': False}, out='o')", "any",
        valid=["run:o"]),
    api("api_fit_nan_ndarray", "fs.fit('timevae', np.full((20, 12, 2), np.nan), "
        "{'epochs': 1}, out='o')"),
]

CASES = [*CLI, *TRAIN_SETTINGS, *MAX_STEPS, *CONFIGS, *OUTS, *DATA, *SAMPLE, *EVALUATE,
         *REPORT, *ENCODE, *GENERATE, *API, *LOSS, *MORE]
assert len({c["name"] for c in CASES}) == len(CASES), "case names must be unique"
