"""Files that belong to someone else (issue #21): the real command line, run without the
administrator's right to override file permissions (``setpriv`` drops CAP_DAC_OVERRIDE,
CAP_DAC_READ_SEARCH and CAP_FOWNER), meets a folder it may not write, another user's file in a
shared (sticky) folder, and a run whose weights it may not read. Each is one ``error:`` line,
exit 2, nothing created, changed or lost. Skipped (saying why) where capabilities cannot be
dropped."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from clihelp import cli, sine_windows_npz

NOBODY = 65534
FACTORSEQ = Path(sys.executable).with_name("factorseq")
SETPRIV = shutil.which("setpriv")
DROP = [str(SETPRIV), "--bounding-set=-dac_override,-dac_read_search,-fowner", "--"]
FAST = ["--epochs", "1", "--batch-size", "8", "--set", "train.tensorboard=false",
        "--set", "train.progress=false"]


def _can_drop() -> bool:
    if os.geteuid() != 0 or SETPRIV is None or not FACTORSEQ.exists():
        return False
    return subprocess.run([*DROP, "true"], capture_output=True).returncode == 0


pytestmark = pytest.mark.skipif(not _can_drop(), reason="needs root and setpriv to run the "
                                "command line without its right to override permissions")


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    root = tmp_path_factory.mktemp("perm")
    data = sine_windows_npz(root, 48)
    assert cli("train", "timevae", "--data", data, "--out", root / "run", *FAST) == 0
    return root


def theirs(path: Path, mode: int) -> Path:
    """``path`` owned by another user (nobody) with ``mode``."""
    os.chown(path, NOBODY, NOBODY)
    path.chmod(mode)
    return path


def as_plain_user(*args) -> subprocess.CompletedProcess:
    return subprocess.run([*DROP, str(FACTORSEQ), *map(str, args)], capture_output=True,
                          text=True, timeout=300)


def snapshot(folder: Path) -> dict:
    return {str(p): (p.stat().st_mode, p.read_bytes() if p.is_file() else "dir")
            for p in sorted(folder.rglob("*"))}


def refused(done: subprocess.CompletedProcess) -> None:
    err = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(err) == 1, (done.returncode, err[-3:])
    assert err[0].startswith("error: ") and ("permission denied" in err[0].lower()
                                            or "not permitted" in err[0]), err[0]


def test_writing_into_another_users_folder_is_one_line(work, tmp_path):
    (tmp_path / "theirs").mkdir()
    folder = theirs(tmp_path / "theirs", 0o755)
    before = snapshot(tmp_path)
    refused(as_plain_user("sample", work / "run", "--n", "2", "--out", folder / "s.npz"))
    refused(as_plain_user("train", "timevae", "--data", work / "w.npz", "--out", folder / "o",
                          *FAST))
    assert snapshot(tmp_path) == before


def test_force_onto_another_users_file_in_a_sticky_folder_keeps_it(work, tmp_path):
    box = tmp_path / "box"
    box.mkdir()
    theirs(box, 0o1777)  # like /tmp: anyone may create, only the owner may replace
    (box / "s.npz").write_bytes(b"years of work")
    theirs(box / "s.npz", 0o644)
    before = snapshot(tmp_path)
    refused(as_plain_user("sample", work / "run", "--n", "2", "--out", box / "s.npz",
                          "--force"))
    assert snapshot(tmp_path) == before  # their file kept, no temporary file left


def test_a_run_whose_weights_cannot_be_read_says_so(work, tmp_path):
    run = tmp_path / "private"
    shutil.copytree(work / "run", run)
    theirs(run / "model.safetensors", 0o600)
    before = snapshot(tmp_path)
    refused(as_plain_user("sample", run, "--n", "2", "--out", tmp_path / "s.npz"))
    assert snapshot(tmp_path) == before
