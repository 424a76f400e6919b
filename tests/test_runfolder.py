"""A run folder keeps the user's files and has one writer; a swap killed half-way is finished
or rolled back by the next command (issue #21, data loss and hidden state)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import lightning as L
import pytest

from clihelp import cli, sine_windows_npz, user_error
from factorseq import runfolder
from factorseq.checkpoint import load
from factorseq.runfolder import OLD_MARK, STAGING_MARK, RunLock, sibling
from factorseq.train import outputs

FAST = ["--epochs", "1", "--batch-size", "32", "--set", "train.tensorboard=false",
        "--set", "train.progress=false"]
USER_FILES = {"my_notes.txt": b"years of work", "samples.csv": b"sample,step,f0\n0,0,1\n",
              "metrics.json": b'{"discriminative": 0.1}', "report.html": b"<html></html>",
              "figs/a.png": b"\x89PNG...", "logs/my_notes.txt": b"inside training's folder",
              "checkpoints/README": b"which epoch to use"}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return sine_windows_npz(tmp_path_factory.mktemp("runfolder"), 96)


@pytest.fixture(scope="module")
def runs(data):
    """Two trained runs (different seeds): the old one and a new one."""
    a, b = data.parent / "a", data.parent / "b"
    assert cli("train", "vae_conv", "--data", data, "--out", a, *FAST) == 0
    assert cli("train", "vae_conv", "--data", data, "--out", b, "--seed", "1", *FAST) == 0
    return a, b


def put_user_files(folder: Path) -> None:
    for name, content in USER_FILES.items():
        (folder / name).parent.mkdir(exist_ok=True)
        (folder / name).write_bytes(content)


def assert_user_files(folder: Path) -> None:
    for name, content in USER_FILES.items():
        assert (folder / name).read_bytes() == content, name


def weights(folder: Path) -> bytes:
    return (folder / "model.safetensors").read_bytes()


def hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.parent.iterdir() if p.name.startswith("."))


def test_force_keeps_the_users_files_in_the_run_folder(data, runs, tmp_path, capsys):
    out = tmp_path / "r"
    shutil.copytree(runs[0], out)
    put_user_files(out)
    before = weights(out)
    capsys.readouterr()
    assert cli("train", "vae_conv", "--data", data, "--out", out, "--force", "--seed", "3",
               *FAST) == 0
    assert "kept your files from the old run" in capsys.readouterr().err
    assert weights(out) != before  # the new run is in place ...
    assert_user_files(out)  # ... with every file training did not write
    assert hidden(out) == []  # no staging, old-run or lock folder left
    load(out)


def test_everything_training_writes_is_known_as_training_s(data, tmp_path):
    """Else --force would carry an old run's own file into the new run as the user's."""
    out = tmp_path / "r"
    assert cli("train", "vae_conv", "--data", data, "--out", out, "--epochs", "1",
               "--set", "train.progress=false") == 0  # tensorboard on: every writer
    assert runfolder.user_entries(out) == [], runfolder.user_entries(out)


def test_a_second_writer_is_refused_before_any_work(data, tmp_path, capsys):
    out = tmp_path / "new"
    with RunLock(out):  # another process is training into it
        msg = user_error(capsys, "train", "vae_conv", "--data", data, "--out", out, *FAST)
    assert f"being written by process {os.getpid()}" in msg, msg
    assert not out.exists()
    assert cli("train", "vae_conv", "--data", data, "--out", out, *FAST) == 0  # released


def test_the_lock_is_one_writer_across_processes(tmp_path):
    """A lock held by a live process refuses; the kernel frees it when the holder dies."""
    out = tmp_path / "r"
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from pathlib import Path; from factorseq.runfolder import RunLock;"
        f"RunLock(Path({str(out)!r})).acquire(); print('held', flush=True); time.sleep(60)")],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(Exception, match=f"process {holder.pid}"):
            RunLock(out).acquire()
    finally:
        holder.kill()  # kill -9: no clean-up ran
        holder.wait()
    with RunLock(out):
        pass


class Killed(BaseException):
    """The process dies here: no except clause, no clean-up of ours runs."""


@pytest.mark.parametrize("point", ["mark-new", "old-aside", "new-in", "carry"])
def test_a_swap_killed_at_each_step_is_recovered_by_the_next_command(
        point, data, runs, tmp_path, monkeypatch):
    out = tmp_path / "r"
    shutil.copytree(runs[0], out)
    put_user_files(out)
    old_weights = weights(out)
    real_rename = os.rename
    renames = []

    def rename(src, dst):
        if Path(src) in (out, sibling(out, "new")):  # the swap's renames, not the trainer's
            renames.append(src)
        if (point, len(renames)) in (("old-aside", 1), ("new-in", 2)):
            raise Killed
        real_rename(src, dst)

    def finish(new, old):
        raise Killed

    monkeypatch.setattr(runfolder.os, "rename", rename)
    if point == "carry":
        monkeypatch.setattr(runfolder, "_finish_old", finish)
    if point == "mark-new":  # killed once the new run is marked, before anything moved
        monkeypatch.setattr(outputs, "swap_in", lambda out, new: (_ for _ in ()).throw(Killed))
    monkeypatch.setattr(outputs.Target, "abandon", lambda self: None)  # killed: none runs
    with pytest.raises(Killed):
        cli("train", "vae_conv", "--data", data, "--out", out, "--force", "--seed", "3", *FAST)
    monkeypatch.undo()
    run = load(out)  # the next command finishes the swap: the new run, the user's files
    assert run.path == out and weights(out) != old_weights
    assert_user_files(out)
    assert hidden(out) == [] and not any((out / m).exists() for m in runfolder.MARKS)


def test_a_swap_killed_before_the_new_run_was_ready_rolls_back(runs, tmp_path):
    """The old run moved aside (marked) while the new one is still a staging folder: the next
    command puts the old run back."""
    out = tmp_path / "r"
    old, new = sibling(out, "old"), sibling(out, "new")
    shutil.copytree(runs[0], old)
    (old / OLD_MARK).touch()
    put_user_files(old)
    shutil.copytree(runs[1], new)
    (new / STAGING_MARK).touch()
    assert load(out).path == out and weights(out) == weights(runs[0])
    assert_user_files(out)
    assert not old.exists() and not (out / OLD_MARK).exists()


def test_a_missing_run_names_its_hidden_copies(runs, tmp_path, capsys):
    out = tmp_path / "r"
    new = sibling(out, "new")
    shutil.copytree(runs[1], new)  # a replacement under way (no swap mark yet)
    msg = user_error(capsys, "sample", out, "--n", "2", "--out", tmp_path / "s.npz")
    assert "run directory not found" in msg and str(new) in msg, msg


def test_a_failed_start_leaves_nothing_and_is_not_a_run(data, tmp_path, monkeypatch, capsys):
    """A new training that failed before its first checkpoint removes what it wrote (and the
    folders it made); a folder such a training left earlier is replaced without --force."""
    def crash(*a, **k):
        raise RuntimeError("boom")

    out = tmp_path / "deep" / "er" / "r"
    monkeypatch.setattr(L.Trainer, "fit", crash)
    with pytest.raises(RuntimeError):
        cli("train", "vae_conv", "--data", data, "--out", out, *FAST)
    assert not (tmp_path / "deep").exists()
    monkeypatch.undo()
    mine = tmp_path / "mine"  # the user made the (empty) folder: it stays
    mine.mkdir()
    with pytest.raises(RuntimeError):
        monkeypatch.setattr(L.Trainer, "fit", crash)
        cli("train", "vae_conv", "--data", data, "--out", mine, *FAST)
    monkeypatch.undo()
    assert mine.is_dir() and os.listdir(mine) == []
    left = tmp_path / "left"  # what a killed start leaves: a config, status training
    left.mkdir()
    (left / "config.json").write_text('{"format": "factorseq-run", "status": "training"}')
    (left / "checkpoints").mkdir()
    assert cli("train", "vae_conv", "--data", data, "--out", left, *FAST) == 0
    load(left)
    left_with_ckpt = tmp_path / "resumable"
    shutil.copytree(left, left_with_ckpt)  # has a checkpoint: a run to resume, not replaced
    (left_with_ckpt / "config.json").write_text('{"format": "factorseq-run", '
                                                '"status": "training"}')
    assert "exists" in user_error(capsys, "train", "vae_conv", "--data", data, "--out",
                                  left_with_ckpt, *FAST)


def test_a_killed_writers_temporary_files_are_removed_by_the_next_write(runs, tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    out = tmp_path / "s.csv"
    stale = tmp_path / f".s.csv.{dead.pid}-0123abcd.tmp.csv"
    live = tmp_path / f".s.csv.{os.getppid()}-0123abcd.tmp.csv"  # a live writer's
    stale.write_bytes(b"half")
    live.write_bytes(b"busy")
    assert cli("sample", runs[0], "--n", "3", "--out", out) == 0
    assert out.is_file() and not stale.exists() and live.exists()



@pytest.mark.parametrize("args, says", [
    (["--strategy", "bogus"], "strategy must be a Lightning strategy name"),
    (["--set", "train.weight_decay=-1"], "weight_decay must be >= 0"),
    (["--set", "train.accelerator=gpu"], "not available on this machine"),
    (["--seed", "-1"], "seed must be in"),
    (["--seed", "99999999999999999999999"], "seed must be in"),
    (["--set", "train.grad_clip=-1"], "grad_clip must be > 0"),
    (["--set", "train.min_lr=-1"], "min_lr must be >= 0"),
])
def test_bad_training_settings_are_refused_before_anything_is_created(args, says, data,
                                                                      tmp_path, capsys):
    out = tmp_path / "r"
    msg = user_error(capsys, "train", "vae_conv", "--data", data, "--out", out, *FAST, *args)
    assert says in msg, msg
    assert os.listdir(tmp_path) == []


def test_max_steps_shorter_than_an_epoch_trains(data, tmp_path):
    """Training ends before the first validation: the run is saved from its last weights."""
    out = tmp_path / "r"
    assert cli("train", "vae_conv", "--data", data, "--out", out, *FAST, "--batch-size", "8",
               "--set", "train.max_steps=2") == 0
    assert load(out).config["training"]["best_epoch"] is None


def test_run_files_share_one_mode_and_unreadable_weights_say_so(runs, tmp_path, capsys):
    out = tmp_path / "r"
    shutil.copytree(runs[0], out)
    modes = {p.name: p.stat().st_mode & 0o777 for p in (runs[0] / "config.json",
                                                      runs[0] / "model.safetensors")}
    assert len(set(modes.values())) == 1, modes
    if os.geteuid() == 0:
        pytest.skip("root reads any file")
    (out / "model.safetensors").chmod(0)
    msg = user_error(capsys, "sample", out, "--n", "2", "--out", tmp_path / "s.npz")
    assert "permission denied" in msg


def test_a_tampered_checkpoint_is_refused_without_suggesting_unsafe_loading(runs, data, tmp_path,
                                                                            capsys):
    import torch

    out = tmp_path / "r"
    shutil.copytree(runs[0], out)
    source = json.loads((out / "config.json").read_text())["data_config"]["source"]
    (out / source).resolve().parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(runs[0] / source, out / source)  # the data moves with the run
    torch.save({"epoch": 0, "hook": Killed}, out / "checkpoints" / "last.ckpt")
    msg = user_error(capsys, "train", "vae_conv", "--data", data, "--out", out, "--resume",
                     "--epochs", "2")
    assert "never loaded" in msg and "weights_only" not in msg, msg


def test_a_failed_start_with_a_users_file_inside_is_left_alone(data, tmp_path, capsys):
    left = tmp_path / "left"
    (left / "logs").mkdir(parents=True)
    (left / "config.json").write_text('{"format": "factorseq-run", "status": "training"}')
    (left / "logs" / "my_analysis.ipynb").write_text("mine")  # inside a training-named folder
    assert "exists" in user_error(capsys, "train", "vae_conv", "--data", data, "--out", left,
                                  *FAST)
    assert (left / "logs" / "my_analysis.ipynb").read_text() == "mine"
    with pytest.raises(Exception, match="left alone"):
        runfolder.remove_training_entries(left)
    assert (left / "logs" / "my_analysis.ipynb").read_text() == "mine"


def test_recovery_never_touches_a_users_folder_put_at_the_run_place(runs, tmp_path):
    """A finished replacement waits to be swapped in, and the user has put their own folder
    at --out: nothing is moved or removed; the message names where the runs are."""
    out = tmp_path / "r"
    out.mkdir()
    (out / "logs").mkdir()
    (out / "logs" / "thesis.tex").write_text("mine")
    new = sibling(out, "new")
    shutil.copytree(runs[1], new)
    (new / runfolder.SWAP_MARK).touch()
    said = runfolder.recover(out)
    assert "not a factorseq run" in said[0] and str(new) in said[0]
    assert (out / "logs" / "thesis.tex").read_text() == "mine" and os.listdir(out) == ["logs"]
    assert weights(new) == weights(runs[1])


def test_a_run_names_its_data_relative_to_itself_and_refuses_absolute_paths(tmp_path, capsys):
    """The stored source is relative to the run folder (the pair moves together and still
    evaluates); a config edited to name a file by absolute path is refused, one line."""
    import json

    (tmp_path / "project").mkdir()
    data = sine_windows_npz(tmp_path / "project", 120)
    run = tmp_path / "project" / "runs" / "r"
    assert cli("train", "vae", "--data", data, "--out", run, "--epochs", "1") == 0
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["data_config"]["source"] == os.path.join("..", "..", "w.npz")
    moved = tmp_path / "elsewhere"
    shutil.move(tmp_path / "project", moved)
    assert cli("evaluate", moved / "runs" / "r", "--out", tmp_path / "m1.json", "--repeats",
               "1", "--set", "fidelity=false", "--set", "privacy=false") == 0
    cfg["data_config"]["source"] = str(moved / "w.npz")
    (moved / "runs" / "r" / "config.json").write_text(json.dumps(cfg))
    err = user_error(capsys, "evaluate", moved / "runs" / "r", "--out", tmp_path / "m2.json",
                     "--repeats", "1")
    assert "is an absolute path" in err and "--data" in err
    # naming the data yourself still works
    assert cli("evaluate", moved / "runs" / "r", "--data", moved / "w.npz", "--out",
               tmp_path / "m3.json", "--repeats", "1", "--set", "fidelity=false", "--set",
               "privacy=false") == 0
    assert not (tmp_path / "m2.json").exists()
    assert runfolder.source_for_run("sines", run) == "sines"  # a bundled name stays


def test_a_users_link_named_like_a_training_entry_is_carried_not_removed(data, runs,
                                                                           tmp_path, capsys):
    """Training never writes a link: `logs` pointing at the user's own folder is theirs."""
    mine = tmp_path / "my_logs"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    out = tmp_path / "r"
    shutil.copytree(runs[0], out)
    shutil.rmtree(out / "logs")
    (out / "logs").symlink_to(mine, target_is_directory=True)
    assert runfolder.user_entries(out) == [out / "logs"]
    capsys.readouterr()
    assert cli("train", "vae_conv", "--data", data, "--out", out, "--force", *FAST) == 0
    assert "logs.previous" in capsys.readouterr().err
    assert (out / "logs.previous").is_symlink() and (out / "logs.previous").resolve() == mine
    assert (mine / "notes.txt").read_text() == "mine"


def test_a_failed_start_holding_a_link_is_left_alone(tmp_path):
    left = tmp_path / "left"
    left.mkdir()
    (left / "config.json").write_text('{"format": "factorseq-run", "status": "training"}')
    (left / "split.npz").symlink_to(tmp_path / "users_own.npz")  # a link, even dangling
    assert not runfolder.never_trained(left)
    with pytest.raises(Exception, match="left alone"):
        runfolder.remove_training_entries(left)
    assert (left / "split.npz").is_symlink()
