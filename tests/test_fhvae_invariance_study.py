"""benchmarks/fhvae_invariance.py over the harness: its CLI cells train and score as the earlier
script's ``fit``/``evaluate`` calls did, the validation rule picks the weight from the kept
validation cells, the probes are recorded, and the table reads the kept files only."""
from __future__ import annotations

import json
import re
import shlex
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
import fhvae_invariance as fi  # noqa: E402
import harness  # noqa: E402

import factorseq.checkpoint  # noqa: E402
import factorseq.train  # noqa: E402
from factorseq.cli import main as cli  # noqa: E402
from factorseq.data import DataConfig  # noqa: E402
from factorseq.metrics.scoring import SCORING_VERSION  # noqa: E402

# --- the reference: the earlier script's calls (git history at cad6eba), copied as they were ---
VAL_SET = "fsdd-strings-validation"
SETTINGS = {"hidden": 128, "layers": 1, "z1_dim": 32, "z2_dim": 32, "alpha": 10.0}
TRAIN = {"epochs": 30, "batch_size": 128, "seed": 0, "threads": 1, "tensorboard": False,
         "progress": False}


def old_fit(stage: str, weight: float, minutes: float, seed: int = 0) -> tuple:
    """``run_cell``'s ``fit(...)`` arguments: (model, data config, train, model settings)."""
    source = VAL_SET if stage == "validate" else "fsdd-strings"
    train = {**TRAIN, "seed": seed, "max_minutes": minutes}
    return "fhvae", DataConfig(source=source), train, {**SETTINGS, "z1_adversary_weight": weight}


# run.evaluate(evaluator="disentanglement", seed=0, metrics=["eer"]) and, for the probes,
# fs.load(run).evaluate(evaluator="fhvae", seed=0): Run.evaluate's defaults filled in
OLD_EVAL = {"evaluator": "disentanglement", "repeats": 5, "samples": None, "seed": 0,
            "metrics": ["eer"]}
OLD_PROBES = {"evaluator": "fhvae", "repeats": 5, "samples": None, "seed": 0}
# --- end of the reference ---
VALIDATION = {"validation_strings": 8, "validation_seed": 12345}  # = VAL_SET's strings


@pytest.fixture
def fit_calls(monkeypatch):
    calls = []
    monkeypatch.setattr(factorseq.train, "fit", lambda *a, **k: calls.append((a, k)))
    return calls


@pytest.mark.parametrize("stage, weight, seed, minutes", [
    ("val", 10.0, 0, 12), ("val", 0.0, 0, 12), ("test", 0.0, 1, 5), ("test", 10.0, 0, 5)])
def test_a_cell_trains_as_the_earlier_fit_call(stage, weight, seed, minutes, fit_calls):
    c = fi.cell(stage, weight, seed)
    assert c.name == f"{stage}_w{weight:g}" and c.seed == seed and c.study == "fhvae_invariance"
    assert cli(c.commands()[0]) == 0
    (model, data, train, settings, out), kw = fit_calls[0]
    old_model, old_data, old_train, old_settings = old_fit(
        "validate" if stage == "val" else "test", weight, minutes, seed)
    assert (model, train, settings) == (old_model, old_train, old_settings)
    assert kw == {"force": True, "resume": False} and out == c.folder / "run"
    # the data: the same strings whatever the training seed (data.seed stays 0)
    if stage == "val":
        assert data == DataConfig(source="fsdd-strings", options=VALIDATION)
    else:
        assert data == old_data


def test_the_cells_score_and_the_probes_as_the_earlier_evaluate_calls(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    asked = []

    class Run:
        def evaluator(self, data, **kw):
            asked.append((data, kw))
            return type("E", (), {"scores": lambda self: {"eer_static": 0.0}})()

    monkeypatch.setattr(factorseq.checkpoint, "load", lambda run: asked.append(run) or Run())
    c = fi.cell("test", 10.0, 1)
    assert cli(c.commands()[1]) == 0
    assert cli(fi.probe_command(c)) == 0
    run = c.folder / "run"
    assert asked == [run, (None, OLD_EVAL), run, (None, OLD_PROBES)]


def _val(weight, static, dynamic, seed=0):
    harness.keep({"metrics": {"eer_static": static, "eer_dynamic": dynamic,
                              "scoring_version": SCORING_VERSION},
                  "training": {"epochs_run": 30}, "train_wall_s": 200.0},
                 fi.cell("val", weight, seed))


def test_the_rule_highest_dynamic_eer_within_the_static_bound():
    m = lambda s, d: {"eer_static": s, "eer_dynamic": d}  # noqa: E731
    assert fi.choose({0.0: m(0, .244), 1.0: m(0, .327), 10.0: m(0, .412)}) == 10.0
    # a higher dynamic EER does not count past the static bound (1 %; 1 % itself is in)
    assert fi.choose({0.0: m(0, .244), 1.0: m(.01, .327), 10.0: m(.011, .5)}) == 1.0
    assert fi.choose({1.0: m(.02, .3), 10.0: m(.05, .4)}) == 0.0  # none qualifies: 0
    assert fi.choose({30.0: m(0, .3), 3.0: m(0, .3), 10.0: m(0, .2)}) == 3.0  # tie: smaller


def test_the_test_stage_uses_the_weight_chosen_from_the_kept_validation_cells(
        tmp_path, monkeypatch):
    monkeypatch.setattr(harness, "RESULTS", tmp_path)
    with pytest.raises(SystemExit, match="validate"):
        fi.stage_test_cells([0])  # nothing kept: nothing to choose from
    _val(0.0, 0.0, 0.244)
    _val(1.0, 0.0, 0.327)
    _val(10.0, 0.0, 0.412)
    _val(100.0, 0.02, 0.5)  # past the static bound
    assert fi.validated().keys() == {0.0, 1.0, 10.0, 100.0}
    assert [(c.name, c.seed) for c in fi.stage_test_cells([0, 1])] == [
        ("test_w0", 0), ("test_w10", 0), ("test_w0", 1), ("test_w10", 1)]
    for w in (1.0, 10.0):
        _val(w, 0.02, 0.5)  # now only weight 0 qualifies, and then none: weight 0 alone
    assert [c.name for c in fi.stage_test_cells([0])] == ["test_w0"]
    _val(0.0, 0.03, 0.1)
    assert fi.chosen() == 0.0 and [c.name for c in fi.stage_test_cells([2])] == ["test_w0"]


def _test(weight, seed, static, dynamic):
    harness.keep({"metrics": {"eer_static": static, "eer_dynamic": dynamic},
                  "training": {"epochs_run": 30}, "train_wall_s": 180.0 + 60 * seed,
                  "train_command": f"factorseq train ... w{weight:g} s{seed}"},
                 fi.cell("test", weight, seed))


def test_the_probes_are_recorded_once_per_training(tmp_path, monkeypatch):
    monkeypatch.setattr(harness, "RESULTS", tmp_path / "results")
    monkeypatch.setattr(harness, "REPO", tmp_path)
    ran = []

    def fake_run(argv, check, cwd):  # the CLI: writes the evaluator's scores to --out
        ran.append(argv[1:])
        out = cwd / argv[argv.index("--out") + 1]
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"speaker_acc_z1": 0.628, "content_acc_z1": 0.697,
                                   "evaluator": "fhvae", "scoring_version": SCORING_VERSION}))

    monkeypatch.setattr(fi.subprocess, "run", fake_run)
    c = fi.cell("test", 10.0, 0)
    with pytest.raises(SystemExit, match="test"):
        fi.probes(c)  # no kept test result yet
    _test(10.0, 0, 0.0, 0.295)
    rec = fi.probes(c)
    assert ran == [fi.probe_command(c)]
    assert rec["metrics"] == {"speaker_acc_z1": 0.628, "content_acc_z1": 0.697,
                              "scoring_version": SCORING_VERSION}
    assert rec["eval_command"] == harness.shown(fi.probe_command(c))
    assert rec["train_command"] == "factorseq train ... w10 s0"
    path = tmp_path / "results" / "fhvae_invariance" / "probes_test_w10_s0.json"
    assert json.loads(path.read_text()) == rec
    assert fi.probes(c) == rec and len(ran) == 1  # recorded: not run again
    kept = json.loads((tmp_path / "results/fhvae_invariance/test_w10_s0.json").read_text())
    kept["train_command"] += " --epochs 31"  # the test cell trained again: scored again
    harness.keep(kept, c)
    fi.probes(c)
    assert len(ran) == 2


def test_the_table_reads_the_kept_files(tmp_path, monkeypatch):
    monkeypatch.setattr(harness, "RESULTS", tmp_path)
    _val(0.0, 0.0, 0.244)
    _val(10.0, 0.0, 0.412)
    _test(0.0, 0, 0.0021, 0.231)
    _test(0.0, 1, 0.0, 0.191)
    _test(10.0, 0, 0.0, 0.295)
    _test(10.0, 1, 0.0, 0.315)
    harness.record(tmp_path / "fhvae_invariance" / "probes_test_w10_s0.json",
                   {"metrics": {"speaker_acc_z1": 0.628, "reconstruction_mse": 0.117}})
    lines = fi.table().splitlines()
    assert lines[2] == "| val | 0 | 0 | 0.00 % | 24.4 % |  |  |  | 30 | 3.3 |"
    assert lines[3].startswith("| val | 10 **(chosen)** | 0 | 0.00 % | 41.2 % |")
    # test, weight 0: static (0.21, 0.00) % -> 0.10(5) ± 0.15; dynamic 21.1 ± 2.8 %
    assert lines[4] == ("| test | 0 | 0, 1 | 0.10 ± 0.15 % | 21.1 ± 2.8 % |  |  |  | 30, 30 | "
                        "3.5 ± 0.7 |")
    assert lines[5] == ("| test | 10 | 0, 1 | 0.00 ± 0.00 % | 30.5 ± 1.4 % | 0.628 |  | 0.117 | "
                        "30, 30 | 3.5 ± 0.7 |")
    assert lines[-1] == "chosen on validation: 10"


def test_the_documented_commands_are_the_new_clis(monkeypatch):
    """Every ``fhvae_invariance.py`` line of the subsection's bash block parses with the new
    stages."""
    calls = []
    monkeypatch.setattr(fi, "run", lambda cells: calls.append(
        ("run", [(c.name, c.seed) for c in cells])))
    monkeypatch.setattr(fi, "table", lambda: calls.append(("table",)) or "")
    monkeypatch.setattr(fi, "chosen", lambda: 10.0)
    monkeypatch.setattr(fi, "probes", lambda c: calls.append(("probes", c.name, c.seed))
                        or {"metrics": {}})
    text = (REPO / "benchmarks" / "DISENTANGLEMENT_RESULTS.md").read_text()
    block = next(b for b in re.findall(r"```bash\n(.*?)```", text, re.S)
                 if "fhvae_invariance.py" in b)
    for line in block.splitlines():
        if "fhvae_invariance.py" in line:
            assert fi.main(shlex.split(re.sub(r"\s#.*", "", line).split(".py", 1)[1])) == 0
    assert calls == [("run", [("val_w0", 0), ("val_w1", 0), ("val_w10", 0)]),
                     ("run", [("test_w0", 0), ("test_w10", 0), ("test_w0", 1),
                              ("test_w10", 1)]),
                     ("probes", "test_w0", 0), ("probes", "test_w10", 0),
                     ("probes", "test_w0", 1), ("probes", "test_w10", 1), ("table",)]
