"""benchmarks/infogan_diagnose.py: readings of a kept cell's run are recorded with the training
they read, refused for a run that is not that training, and rendered from the kept files."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import harness  # noqa: E402
import infogan_diagnose as diag  # noqa: E402
import render  # noqa: E402

TRAIN = "factorseq train infogan --data known-factors --seed 0"


def _reading(regime: float, mixing: float) -> dict:
    out = {"q_on_fakes": 1.0, "q_real_category_counts": [171, 379, 292, 386]}
    for f in diag.FACTORS:
        out[f"g_category_{f}"] = 0.3
        out[f"probe_real_test_{f}"] = 0.5
        out[f"q_on_reals_{f}"] = 0.3
    out.update(g_category_regime=0.532, q_on_reals_regime=regime, q_on_reals_mixing=mixing)
    return out


@pytest.fixture
def repo(tmp_path, monkeypatch):
    monkeypatch.setattr(harness, "RESULTS", tmp_path / "results")
    monkeypatch.setattr(harness, "REPO", tmp_path)
    seen = []
    monkeypatch.setattr(diag, "diagnose", lambda run, n: seen.append(run) or _reading(0.46, 0.52))
    return tmp_path, seen


def _stored(root: Path, cell: str, command: str) -> None:
    folder = root / harness.OUT / diag.CELLS / cell / "s0"
    folder.mkdir(parents=True)
    (folder / "result.json").write_text(json.dumps({"seed": 0, "train_command": command}))


def test_a_reading_needs_the_kept_cell_and_its_own_run(repo):
    root, seen = repo
    with pytest.raises(SystemExit, match="has no kept result"):
        diag.record("infogan_wn_val", 0, 400)
    harness.keep({"train_command": TRAIN, "metrics": {}},
                 harness.Cell(diag.CELLS, "infogan_wn_val", 0, ()))
    _stored(root, "infogan_wn_val", TRAIN + " --set window_noise=16")  # retrained since
    with pytest.raises(SystemExit, match="is not the training"):
        diag.record("infogan_wn_val", 0, 400)
    assert seen == []


def test_the_readings_are_recorded_and_rendered_from_the_kept_files(repo):
    root, seen = repo
    harness.keep({"train_command": TRAIN, "metrics": {}},
                 harness.Cell(diag.CELLS, "infogan_short_val", 0, ()))
    _stored(root, "infogan_short_val", TRAIN)
    diag.record("infogan_short_val", 0, 400)
    assert seen == [str(root / harness.OUT / diag.CELLS / "infogan_short_val" / "s0" / "run")]
    kept = harness.RESULTS / diag.STUDY / "infogan_short_val_s0.json"
    saved = json.loads(kept.read_text())
    assert saved["train_command"] == TRAIN and saved["n_per_category"] == 400
    text, files = render.render("infogan_diagnose", "_val$")
    lines = text.splitlines()
    assert lines[0].startswith("| reading | `infogan_short_val` s0 | probe on real")
    assert "| generated category -> regime (matched acc.) | 0.532 | 0.500 |" in lines
    # the best factor of Q on real windows: mixing 0.52 over regime 0.46
    assert "| Q's argmax on real test windows -> best factor | 0.520 (mixing) | |" in lines
    assert files == {kept.resolve()}
    assert "no readings" in diag.table("^infogan_wn")
