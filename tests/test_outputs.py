"""Nothing a user has may be lost, and messages lead somewhere (issue #11, parts 1 and 2):
``--force`` replaces only a factorseq run and only after the new one trained; every output is
written all or nothing; output paths are checked before any work; user errors are one line."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from clihelp import cli, sine_windows_npz, user_error
from factorseq.errors import FactorseqError
from factorseq.io import atomic_output, check_output, read_windows, write_windows

FAST = ["--epochs", "1", "--batch-size", "32", "--set", "train.tensorboard=false",
        "--set", "train.progress=false"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return sine_windows_npz(tmp_path_factory.mktemp("outputs"), 160)


@pytest.fixture(scope="module")
def run(data):
    out = data.parent / "run"
    assert cli("train", "vae_conv", "--data", data, "--out", out, *FAST) == 0
    return out


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def leftovers(folder: Path) -> list[str]:
    """Hidden staging folders or temporary files factorseq may have left in ``folder``."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


# --- train --force ----------------------------------------------------------------------------

def test_force_refuses_a_folder_that_is_not_a_run(data, tmp_path, capsys):
    thesis = tmp_path / "thesis"
    thesis.mkdir()
    (thesis / "chapter1.tex").write_text("years of work")
    before = snapshot(thesis)
    for bad in (["--data", data], ["--data", "nope.csv"]):  # good data or bad: nothing goes
        msg = user_error(capsys, "train", "timevae", *bad, "--out", thesis, "--force", *FAST)
        assert "not one" in msg or "neither an existing file" in msg, msg
        assert snapshot(thesis) == before
    msg = user_error(capsys, "train", "timevae", "--data", data, "--out", thesis, "--force")
    assert "only a factorseq run" in msg and str(thesis) in msg


def test_a_foreign_folder_at_the_staging_place_is_never_removed(data, run, capsys):
    """A user's folder where --force would stage the new run: refused, and left intact (the
    failed attempt removes only a staging folder it created itself)."""
    staging = run.parent / f".{run.name}.factorseq-new"
    staging.mkdir()
    (staging / "config.json").write_text('{"mine": true}')  # a config, but not a run's
    before, old = snapshot(staging), snapshot(run)
    msg = user_error(capsys, "train", "timevae", "--data", data, "--out", run, "--force", *FAST)
    assert "not factorseq's" in msg, msg
    assert snapshot(staging) == before and snapshot(run) == old
    shutil.rmtree(staging)  # the test's own folder: the shared run fixture stays clean


def test_force_with_bad_data_or_settings_keeps_the_old_run(data, run, capsys):
    before = snapshot(run)
    assert "neither an existing file" in user_error(
        capsys, "train", "vae_conv", "--data", "nope.csv", "--out", run, "--force", *FAST)
    msg = user_error(capsys, "train", "vae_conv", "--data", data, "--out", run, "--force",
                     *FAST, "--set", "latent_dim=abc")
    assert msg == "error: vae_conv config key latent_dim must be an integer, got 'abc'"
    assert "patience" in user_error(capsys, "train", "vae_conv", "--data", data, "--out", run,
                                      "--force", *FAST, "--set", "train.patience=x")
    assert snapshot(run) == before and leftovers(run.parent) == []


def test_force_replaces_only_the_run_once_it_has_trained(data, tmp_path):
    parent = tmp_path / "p"
    out = parent / "run"
    assert cli("train", "vae_conv", "--data", data, "--out", out, *FAST) == 0
    (parent / "notes.txt").write_text("mine")
    old_weights = (out / "model.safetensors").read_bytes()
    assert cli("train", "vae_conv", "--data", data, "--out", out, *FAST, "--epochs", 2,
               "--force") == 0
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["status"] == "trained" and cfg["training"]["epochs_run"] == 2
    assert (out / "model.safetensors").read_bytes() != old_weights
    assert (parent / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in parent.iterdir()) == ["notes.txt", "run"]
    assert not (out / ".factorseq-staging").exists()  # the mark never reaches the run


def test_a_failing_replacement_leaves_the_old_run(data, run, monkeypatch):
    import lightning as L

    def crash(self, *a, **kw):
        raise RuntimeError("power cut")

    before = snapshot(run)
    monkeypatch.setattr(L.Trainer, "fit", crash)
    from factorseq.cli import main
    with pytest.raises(RuntimeError, match="power cut"):
        main(["train", "vae_conv", "--data", str(data), "--out", str(run), "--force", *FAST])
    assert snapshot(run) == before and leftovers(run.parent) == []


def test_a_run_replaced_by_a_users_folder_during_training_is_never_moved(run, tmp_path):
    """--force checked ``out`` was a run when training started; if the user put their own
    folder there meanwhile, the swap refuses, their files stay, and the new run is kept."""
    from factorseq.train.outputs import plan_target

    out = tmp_path / "r"
    shutil.copytree(run, out)
    target = plan_target(out, force=True, resume=False)
    assert target.replaces
    work = target.prepare()
    (work / "model.safetensors").write_bytes(b"new run")
    shutil.rmtree(out)
    out.mkdir()
    (out / "thesis.txt").write_text("mine")  # the user's folder, in the run's place
    with pytest.raises(FactorseqError, match="no longer a factorseq run"):
        target.commit()
    target.abandon()  # what fit() does after a failure: it must keep the new run
    target.release()
    assert (out / "thesis.txt").read_text() == "mine" and os.listdir(out) == ["thesis.txt"]
    assert (work / "model.safetensors").read_bytes() == b"new run"


def test_a_run_kept_at_the_staging_place_is_never_cleared(run, tmp_path, capsys):
    """The new run a refused swap kept in the staging folder is the user's now: a later
    --force is refused before work and removes nothing, so is a leftover old-run folder."""
    from factorseq.train.outputs import STAGING_MARK, plan_target

    out = tmp_path / "r"
    shutil.copytree(run, out)
    target = plan_target(out, force=True, resume=False)
    work = target.prepare()
    assert (work / STAGING_MARK).is_file()  # an attempt's staging folder, while it is one
    shutil.copytree(run, work, dirs_exist_ok=True)  # "trained"
    shutil.rmtree(out)
    out.mkdir()
    (out / "thesis.txt").write_text("mine")
    with pytest.raises(FactorseqError, match="no longer a factorseq run"):
        target.commit()
    target.release()
    kept = snapshot(work)
    assert STAGING_MARK not in kept
    shutil.rmtree(out)
    shutil.copytree(run, out)  # a run at --out again: --force would replace it ...
    with pytest.raises(FactorseqError, match="not factorseq's"):
        plan_target(out, force=True, resume=False)  # ... but the kept run is in the way
    assert snapshot(work) == kept
    shutil.move(work, tmp_path / "kept")
    old = out.parent / f".{out.name}.factorseq-old"
    shutil.copytree(run, old)  # e.g. the only copy of a run a killed swap moved aside
    with pytest.raises(FactorseqError, match="not factorseq's"):
        plan_target(out, force=True, resume=False)
    assert snapshot(old) == snapshot(run)


def test_an_interrupted_attempts_staging_folder_is_cleared(run, tmp_path):
    from factorseq.train.outputs import STAGING_MARK, plan_target

    out = tmp_path / "r"
    shutil.copytree(run, out)
    first = plan_target(out, force=True, resume=False)
    work = first.prepare()
    (work / "partial.ckpt").write_bytes(b"half")  # then the process was killed ...
    first.release()  # ... which releases its lock
    target = plan_target(out, force=True, resume=False)
    assert target.prepare() == work and sorted(os.listdir(work)) == [STAGING_MARK]


def test_a_failed_swap_puts_the_old_run_back(run, tmp_path, monkeypatch):
    from factorseq.train import outputs

    out = tmp_path / "r"
    shutil.copytree(run, out)
    target = outputs.plan_target(out, force=True, resume=False)
    target.prepare()
    real = os.rename

    def rename(src, dst):
        if Path(src) == target.work:
            raise OSError("disk full")
        real(src, dst)

    monkeypatch.setattr(outputs.os, "rename", rename)
    with pytest.raises(FactorseqError, match="disk full.*unchanged; the new run is in"):
        target.commit()
    target.release()
    assert snapshot(out) == snapshot(run) and leftovers(tmp_path) == [target.work.name]


# --- every output all or nothing --------------------------------------------------------------

def test_atomic_output_renames_on_success_and_removes_on_failure(tmp_path):
    target = tmp_path / "x.csv"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_output(target) as tmp:
        assert tmp.parent == tmp_path and tmp.suffix == ".csv" and tmp != target
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert target.read_text() == "old" and sorted(os.listdir(tmp_path)) == ["x.csv"]
    with atomic_output(target) as tmp:
        tmp.write_text("new")
    assert target.read_text() == "new" and sorted(os.listdir(tmp_path)) == ["x.csv"]


@pytest.mark.parametrize("fmt, writer", [("npz", "numpy.savez_compressed"),
                                         ("npy", "numpy.save"),
                                         ("csv", "pandas.DataFrame.to_csv"),
                                         ("parquet", "pandas.DataFrame.to_parquet")])
def test_an_interrupted_write_leaves_no_file(tmp_path, monkeypatch, fmt, writer):
    def partial(*args, **kw):
        path = next(a for a in args if isinstance(a, (str, Path)))
        Path(path).write_bytes(b"\x00half a file")
        raise KeyboardInterrupt

    monkeypatch.setattr(writer, partial)
    out = tmp_path / f"s.{fmt}"
    with pytest.raises(KeyboardInterrupt):
        write_windows(out, np.zeros((2, 3, 1), np.float32))
    assert os.listdir(tmp_path) == []


def test_interrupted_sample_and_run_writes_leave_the_old_files(run, tmp_path, monkeypatch,
                                                                capsys):
    import factorseq.checkpoint as ckpt
    from factorseq.cli import main

    s = tmp_path / "s.npz"
    assert cli("sample", run, "--n", 4, "--out", s) == 0
    before = s.read_bytes()

    def partial(path, *a, **kw):
        Path(path).write_bytes(b"PK\x03\x04 torn")
        raise KeyboardInterrupt

    monkeypatch.setattr("numpy.savez_compressed", partial)
    assert main(["sample", str(run), "--n", "4", "--out", str(s), "--force"]) != 0  # Ctrl-C
    assert capsys.readouterr().err.strip().splitlines()[-1] == "error: interrupted"
    assert s.read_bytes() == before and os.listdir(tmp_path) == ["s.npz"]
    # the weights and the config of a run are written the same way
    r = ckpt.load(run)
    weights = (run / "model.safetensors").read_bytes()
    monkeypatch.setattr(ckpt, "save_model", lambda m, path, **kw: partial(path))
    with pytest.raises(KeyboardInterrupt):
        ckpt.save_run(run, r.model, r.scaler, r.schema, r.data_config, r.config["train_config"])
    assert (run / "model.safetensors").read_bytes() == weights and leftovers(run) == []


# --- outputs checked before any work ----------------------------------------------------------

def test_outputs_are_checked_before_any_work(data, run, tmp_path, capsys):
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    assert "is a file" in user_error(capsys, "train", "vae_conv", "--data", data, "--out",
                                     a_file, *FAST)
    assert "is a file" in user_error(capsys, "train", "vae_conv", "--data", data, "--out",
                                     a_file / "run", *FAST)
    assert "is a file" in user_error(capsys, "sample", run, "--out", a_file / "s.npz")
    assert "is a file" in user_error(capsys, "evaluate", run, "--out", a_file / "m.json")
    assert "is a file" in user_error(capsys, "report", run, "--out", a_file / "r.html")
    # the extension is checked before the run is even read
    msg = user_error(capsys, "sample", tmp_path / "no-run", "--out", tmp_path / "x.foo")
    assert "unknown output format '.foo'" in msg and ".parquet" in msg
    assert a_file.read_text() == "x" and sorted(os.listdir(tmp_path)) == ["file.txt"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_an_unwritable_folder_errors_before_training(data, tmp_path, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        assert "permission denied" in user_error(capsys, "train", "vae_conv", "--data", data,
                                                 "--out", ro / "run", *FAST)
        assert "permission denied" in user_error(capsys, "sample", "no-run", "--out",
                                                 ro / "s.npz")
    finally:
        ro.chmod(0o700)
    assert os.listdir(ro) == []


def test_a_folder_without_write_permission_errors_before_any_work(data, run, tmp_path,
                                                                  monkeypatch, capsys):
    """The same check as root can see it: os.access says the folder is not writable."""
    ro = tmp_path / "ro"
    ro.mkdir()
    access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: Path(p) != ro and access(p, mode))
    assert "permission denied" in user_error(capsys, "train", "vae_conv", "--data", data,
                                             "--out", ro / "run", *FAST)
    assert "permission denied" in user_error(capsys, "sample", run, "--out", ro / "s.npz")
    assert "permission denied" in user_error(capsys, "evaluate", run, "--out", ro / "m.json")
    assert os.listdir(ro) == []


def test_check_output_refuses_folders_and_existing_files(tmp_path):
    (tmp_path / "d").mkdir()
    with pytest.raises(FactorseqError, match="directory"):
        check_output(tmp_path / "d", force=True)
    (tmp_path / "f.npz").write_bytes(b"x")
    with pytest.raises(FactorseqError, match="--force"):
        check_output(tmp_path / "f.npz", force=False)
    assert check_output(tmp_path / "new" / "g.npz", force=False).parent.is_dir()


# --- messages --------------------------------------------------------------------------------

@pytest.mark.parametrize("cut", [0.3, 0.6, 0.95])
def test_a_corrupt_samples_npz_is_a_user_error(run, tmp_path, capsys, cut):
    good = tmp_path / "s.npz"
    write_windows(good, np.random.default_rng(0).random((20, 12, 2)).astype(np.float32))
    raw = good.read_bytes()
    bad = tmp_path / "bad.npz"
    bad.write_bytes(raw[: int(len(raw) * cut)])
    with pytest.raises(FactorseqError, match="cannot read"):
        read_windows(bad)
    assert "cannot read" in user_error(capsys, "evaluate", run, "--samples", bad, "--out",
                                       tmp_path / "m.json")
    assert not (tmp_path / "m.json").exists()


def test_wrong_types_name_the_key_the_value_and_the_type(data, tmp_path, capsys):
    base = ["train", "vae_conv", "--data", data, "--out", tmp_path / "r", *FAST]
    assert user_error(capsys, *base, "--set", "latent_dim=abc") == \
        "error: vae_conv config key latent_dim must be an integer, got 'abc'"
    assert user_error(capsys, *base, "--set", "train.lr=fast") == \
        "error: train config key lr must be a number, got 'fast'"
    assert "window must be an integer, got 'long'" in user_error(capsys, *base, "--set",
                                                                "data.window=long")
    assert "grad_clip must be a number or null" in user_error(capsys, *base, "--set",
                                                             "train.grad_clip=[1]")
    assert not (tmp_path / "r").exists()


def test_resume_says_which_epoch_it_continues_from(data, tmp_path, capsys):
    out = tmp_path / "r"
    assert cli("train", "vae_conv", "--data", data, "--out", out, *FAST) == 0
    capsys.readouterr()
    assert cli("train", "vae_conv", "--data", data, "--out", out, *FAST, "--epochs", 2,
               "--resume") == 0
    err = capsys.readouterr().err
    assert "resuming" in err and "after epoch 1" in err and "continues with epoch 2" in err


def test_evaluate_prints_a_table_of_scores(run, tmp_path, capsys):
    out = tmp_path / "m.json"
    capsys.readouterr()
    assert cli("evaluate", run, "--out", out, "--repeats", 2, "--set", "disc_iterations=20",
               "--set", "pred_iterations=20", "--set", "plot_windows=50") == 0
    printed = capsys.readouterr().out
    m = json.loads(out.read_text())
    d = m["discriminative"]
    assert "mean ± std" in printed and f"{d['mean']:.4f} ± {d['std']:.4f}" in printed
    assert "{" not in printed and '"values"' not in printed  # a table, not the JSON


def test_flags_show_as_flags_in_help(capsys):
    capsys.readouterr()
    cli("train", "--help")
    lines = [ln for ln in capsys.readouterr().out.splitlines() if "--force" in ln
             or "--resume" in ln]
    assert len(lines) == 2 and not any("<bool>" in ln for ln in lines), lines
