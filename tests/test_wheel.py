"""The built wheel works on its own (issue #24): installed into a fresh virtual environment and
run from another folder, ``factorseq datasets``, ``train`` on a bundled set and ``sample``
work, and the wheel carries the licence files. Built offline from a copy of the sources."""
from __future__ import annotations

import shutil
import site
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def run(cmd: list, cwd: Path) -> str:
    done = subprocess.run([str(c) for c in cmd], cwd=cwd, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, (cmd, done.stderr[-2000:])
    return done.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "setup.py", "README.md", "LICENSE", "src"):
        copy = shutil.copytree if (REPO / name).is_dir() else shutil.copy2
        copy(REPO / name, src / name)
    shutil.copytree(REPO / "data", src / "data", ignore=shutil.ignore_patterns("fsdd"))
    dist = tmp_path_factory.mktemp("dist")
    run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
         "-w", dist, src], cwd=src)
    (whl,) = dist.glob("factorseq-*.whl")
    return whl


def test_the_wheel_carries_data_and_licences(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert any(n.endswith("dist-info/licenses/LICENSE") for n in names)
    for needed in ("factorseq/_bundled/timegan/", "factorseq/_bundled/timevae/",
                   "factorseq/_bundled/sprites/CC-BY-SA-3.0-LICENSE",
                   "factorseq/_bundled/sprites/GNU-GPL-3.0-LICENSE"):
        assert any(n.startswith(needed) for n in names), needed
    assert not any("/fsdd/" in n for n in names)


def test_the_installed_wheel_trains_and_samples_from_another_folder(wheel, tmp_path):
    env = tmp_path / "env"
    venv.create(env, with_pip=False)
    py = env / "bin" / "python"
    purelib = Path(run([py, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                       cwd=tmp_path).strip())
    # the wheel itself, unpacked like pip does; its dependencies from this environment (a
    # plain path entry: the editable factorseq of this checkout is not picked up)
    with zipfile.ZipFile(wheel) as z:
        z.extractall(purelib)
    deps = [p for p in site.getsitepackages() if Path(p).is_dir()]
    (purelib / "deps.pth").write_text("\n".join(deps) + "\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    cli = [py, "-m", "factorseq.cli"]
    where = run([py, "-c", "import factorseq; print(factorseq.__file__)"], cwd=elsewhere)
    assert where.startswith(str(purelib)), where
    assert "stocks" in run([*cli, "datasets"], cwd=elsewhere)
    run([*cli, "train", "timevae", "--data", "stocks", "--epochs", "1", "--out", "r",
         "--set", "train.progress=false", "--set", "train.tensorboard=false"], cwd=elsewhere)
    run([*cli, "sample", "r", "--n", "4", "--out", "s.csv"], cwd=elsewhere)
    assert (elsewhere / "s.csv").read_text().startswith("sample,step")
