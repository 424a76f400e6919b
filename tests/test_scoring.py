"""The scoring version: recorded by every evaluator run, read back from result files, and
results of older rules flagged (tables, the benchmark listing, the report)."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np

from factorseq.metrics import scoring
from factorseq.metrics.evaluators import Evaluator, build_evaluator, evaluator
from factorseq.metrics.scoring import SCORING_VERSION, stale_files, stale_note, version_of

NOW = SCORING_VERSION


def _write(path: Path, obj) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj) if not isinstance(obj, str) else obj)
    return path


def test_version_of_reads_each_layout():
    assert version_of({"scoring_version": 3, "metrics": {"scoring_version": 1}}) == 3
    assert version_of({"model": "vae", "training": {"epochs": 2},
                       "metrics": {"scoring_version": NOW, "disc": {"mean": 0.1}}}) == NOW
    assert version_of({"model": "vae", "metrics": {"disc": {"mean": 0.1}}}) == 0  # unversioned
    # a file of named cells counts as its oldest cell
    cells = {"a": scoring.stamp({"mean": 1.0}), "b": {"mean": 2.0}}
    assert version_of(cells) == 0
    assert version_of({"a": scoring.stamp({"mean": 1.0})}) == NOW
    assert version_of([1, 2]) == 0 and version_of({}) == 0


def test_stamp_records_version_and_evaluator_without_touching_the_input():
    scores = {"x": 1.0}
    out = scoring.stamp(scores, "generative")
    assert out == {"x": 1.0, "evaluator": "generative", "scoring_version": NOW}
    assert scores == {"x": 1.0}


def test_stale_files_and_note(tmp_path):
    new = _write(tmp_path / "new" / "result.json", {"metrics": {"scoring_version": NOW}})
    old = _write(tmp_path / "old" / "result.json", {"metrics": {"disc": 0.1}})
    rows = _write(tmp_path / "rows.jsonl", json.dumps({"metrics": {"scoring_version": NOW}})
                  + "\n" + json.dumps({"metrics": {}}) + "\n")
    broken = _write(tmp_path / "broken" / "result.json", "{not json")
    assert stale_files([new, old, rows, broken]) == sorted([(old, 0), (rows, 0), (broken, 0)])
    assert stale_note([new]) == ""
    note = stale_note([new, old])
    assert "1 of 2 result files" in note and "old/result.json" in note and f"v{NOW}" in note


class _Run:
    def load_data(self, source=None):
        return None


def test_every_evaluator_run_records_the_version():
    @evaluator("test-scoring-dummy")
    class Dummy(Evaluator):
        def evaluate(self):
            return {"seed": self.seed}

    ev = build_evaluator(_Run(), None, "test-scoring-dummy", seed=3)
    assert ev.evaluate() == {"seed": 3}  # the scores themselves
    assert ev.scores() == {"seed": 3, "evaluator": "test-scoring-dummy",
                           "scoring_version": NOW}


def _stale_results():
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "stale_results.py"
    spec = importlib.util.spec_from_file_location("stale_results", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_the_benchmark_listing_flags_old_results(tmp_path, capsys):
    mod = _stale_results()
    out = tmp_path / "out"
    _write(out / "cell_a" / "result.json", {"metrics": {"scoring_version": NOW}})
    _write(out / "cell_b" / "result.json", {"metrics": {"disc": 0.2}})
    _write(out / "cell_b" / "train.json", {"epochs": 3})  # not a result file
    assert mod.main([str(out)]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert listed == [f"stale (v0 < v{NOW}): {out / 'cell_b' / 'result.json'}"]
    assert mod.main([str(out), "--check"]) == 1
    (out / "cell_b" / "result.json").unlink()
    assert mod.main([str(out), "--check"]) == 0


def test_report_warns_about_old_scores():
    from factorseq.report import _stale

    assert _stale({"scoring_version": NOW, "x": 1.0}) == []
    assert "older scoring version (v0" in _stale({"x": np.float64(1.0)})[0]
