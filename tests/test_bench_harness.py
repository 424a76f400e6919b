"""benchmarks/harness.py: skip-if-done keyed by the commands and the scoring version. A fake
`factorseq` (a script that records its calls) stands in for the CLI."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import harness  # noqa: E402

from factorseq.metrics.scoring import SCORING_VERSION  # noqa: E402

FAKE = '''#!{python}
import json, sys
from pathlib import Path
argv = sys.argv[1:]
out = Path(argv[argv.index("--out") + 1])
with open("calls.txt", "a") as f:
    f.write(argv[0] + "\\n")
if argv[0] == "train":
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps({{"training": {{"epochs_run": 3}}}}))
else:
    version = int(Path("version.txt").read_text()) if Path("version.txt").exists() else {v}
    out.write_text(json.dumps({{"discriminative": {{"mean": 0.2}}, "scoring_version": version}}))
'''


@pytest.fixture
def fake(tmp_path):
    exe = tmp_path / "factorseq"
    exe.write_text(FAKE.format(python=sys.executable, v=SCORING_VERSION))
    exe.chmod(0o755)
    return str(exe)


def calls(root: Path) -> list[str]:
    return (root / "calls.txt").read_text().split()


def test_a_cell_trains_and_scores_once_then_is_read_back(tmp_path, fake):
    cell = harness.Cell("study", "a", 1, ("timevae", "--data", "sines"), ("--repeats", "2"))
    res = harness.run_cell(cell, fake, root=tmp_path)
    assert calls(tmp_path) == ["train", "evaluate"]
    assert res["train_command"] == ("factorseq train timevae --data sines --out "
                                    "benchmarks/out/study/a/s1/run --force --seed 1")
    assert res["eval_command"].endswith("metrics.json --force --repeats 2")
    assert res["training"] == {"epochs_run": 3} and res["metrics"]["discriminative"]
    assert harness.run_cell(cell, fake, root=tmp_path) == res
    assert calls(tmp_path) == ["train", "evaluate"]  # nothing ran again
    assert list(harness.results("study", "a", tmp_path)) == [1]


def test_a_changed_or_stale_score_is_rescored_without_training(tmp_path, fake):
    cell = harness.Cell("study", "a", 0, ("timevae",))
    (tmp_path / "version.txt").write_text(str(SCORING_VERSION - 1))  # scored under older rules
    harness.run_cell(cell, fake, root=tmp_path)
    (tmp_path / "version.txt").unlink()
    harness.run_cell(cell, fake, root=tmp_path)
    assert calls(tmp_path) == ["train", "evaluate", "evaluate"]
    harness.run_cell(harness.Cell("study", "a", 0, ("timevae",), ("--repeats", "3")), fake,
                     root=tmp_path)
    assert calls(tmp_path) == ["train", "evaluate", "evaluate", "evaluate"]
    harness.run_cell(harness.Cell("study", "a", 0, ("timevae", "--epochs", "5")), fake,
                     root=tmp_path)  # another training command: trained again
    assert calls(tmp_path)[-2:] == ["train", "evaluate"]


def test_mean_and_sample_std_over_seeds():
    s = harness.over_seeds([0.20, 0.26, 0.23])
    assert s["n"] == 3 and s["mean"] == pytest.approx(0.23)
    assert s["std"] == pytest.approx(0.03)  # sqrt((.03² + .03² + 0) / (3 - 1))
    assert harness.pm([0.20, 0.26, 0.23]) == "0.230 ± 0.030"
    assert harness.pm([0.5]) == "0.500" and harness.pm([]) == ""
