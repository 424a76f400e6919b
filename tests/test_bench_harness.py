"""benchmarks/harness.py: skip-if-done keyed by the commands and the scoring version. A fake
`factorseq` (a script that records its calls) stands in for the CLI."""
from __future__ import annotations

import json
import subprocess
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
held = [b"x" * (int(a[6:]) << 20) for a in argv if a.startswith("alloc=")]  # MB, touched
if "exit=2" in argv:  # the CLI's user error: exit 2, one error line last
    sys.stderr.write("loading\\nerror: nothing is left after --impute drop\\n")
    sys.exit(2)
if "exit=1" in argv:
    sys.exit(1)
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


def test_a_refusal_the_cell_accepts_is_its_result(tmp_path, fake):
    cell = harness.Cell("study", "r", 2, ("timevae", "--set", "exit=2"), ("--repeats", "5"),
                        refusal_ok=True)
    res = harness.run_cell(cell, fake, root=tmp_path)
    assert calls(tmp_path) == ["train"]  # nothing to evaluate
    assert res["status"] == "refused" and res["seed"] == 2
    assert res["scoring_version"] == SCORING_VERSION  # current for stale_results.py
    assert res["error"] == "error: nothing is left after --impute drop"
    train, evaluate = cell.commands()
    assert res["train_command"] == harness.shown(train)
    assert res["eval_command"] == harness.shown(evaluate)
    assert harness.run_cell(cell, fake, root=tmp_path) == res  # a result: not tried again
    assert calls(tmp_path) == ["train"]
    keep = harness.keep(res, cell, tmp_path / "kept")
    assert harness.kept("study", "r", tmp_path / "kept") == {2: res} and keep.name == "r_s2.json"


def test_a_refusal_or_crash_the_cell_does_not_accept_raises(tmp_path, fake):
    refused = harness.Cell("study", "r", 0, ("timevae", "--set", "exit=2"))
    with pytest.raises(subprocess.CalledProcessError):
        harness.run_cell(refused, fake, root=tmp_path)
    crash = harness.Cell("study", "c", 0, ("timevae", "--set", "exit=1"), refusal_ok=True)
    with pytest.raises(subprocess.CalledProcessError):  # only exit 2 is a refusal
        harness.run_cell(crash, fake, root=tmp_path)
    assert not (tmp_path / refused.folder / "result.json").exists()
    assert not (tmp_path / crash.folder / "result.json").exists()


def test_the_training_process_peak_memory_is_kept_not_the_harness_own(tmp_path, fake):
    ballast = b"x" * (300 << 20)  # the harness holding 300 MB must not count for its children
    small = harness.run_cell(harness.Cell("study", "small", 0, ("timevae",)), fake,
                             root=tmp_path)
    big = harness.run_cell(harness.Cell("study", "big", 0, ("timevae", "--set", "alloc=200")),
                           fake, root=tmp_path)
    assert len(ballast) and small["train_peak_rss_mb"] < 100  # a bare Python: ~10 MB
    assert 200 < big["train_peak_rss_mb"] < 300
    kept = json.loads((tmp_path / "benchmarks/out/study/big/s0/train.json").read_text())
    assert kept["peak_rss_mb"] == big["train_peak_rss_mb"]
    refused = harness.run_cell(harness.Cell("study", "r", 0, ("x", "--set", "alloc=120",
                                                              "--set", "exit=2"),
                                            refusal_ok=True), fake, root=tmp_path)
    assert refused["status"] == "refused" and 120 < refused["train_peak_rss_mb"] < 200


def test_a_run_trained_before_peak_memory_was_kept_is_not_trained_again(tmp_path, fake):
    cell = harness.Cell("study", "old", 0, ("timevae",))
    harness.run_cell(cell, fake, root=tmp_path, train_only=True)
    folder = tmp_path / cell.folder
    trained = json.loads((folder / "train.json").read_text())
    del trained["peak_rss_mb"]  # the train.json of an earlier harness
    (folder / "train.json").write_text(json.dumps(trained))
    res = harness.run_cell(cell, fake, root=tmp_path)
    assert calls(tmp_path) == ["train", "evaluate"]  # scored, not trained again
    assert res["train_peak_rss_mb"] is None
    del res["train_peak_rss_mb"]  # a result of an earlier harness is still current
    (folder / "result.json").write_text(json.dumps(res))
    assert harness.run_cell(cell, fake, root=tmp_path) == res
    assert calls(tmp_path) == ["train", "evaluate"]
