"""The hostile-input harness (benchmarks/hostile.py) classifies what it sees correctly: each
class by hand-made outcomes, and a few real cases replayed end to end."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HOSTILE = Path(__file__).resolve().parents[1] / "benchmarks" / "hostile.py"
sys.path.insert(0, str(HOSTILE.parent))
import hostile  # noqa: E402
from hostile_cases import CASES  # noqa: E402

ERR = {"code": 2, "out": "", "err": "error: bad\n", "seconds": 0}


def classify(case, res, before=None, after=None, cwd=Path(".")):
    case = {"name": "c", "expect": "error", **case}
    return hostile.classify(case, res, before or {}, after or {}, cwd)[0]


def test_a_one_line_refusal_that_changes_nothing_is_clean():
    assert classify({}, ERR, {"a": "1"}, {"a": "1"}) == "clean"


def test_a_traceback_or_a_second_line_is_a_traceback():
    assert classify({}, {**ERR, "code": 1, "err": "Traceback (most recent call last):\n"
                         "ValueError: x\n"}) == "traceback"
    assert classify({}, {**ERR, "err": "warning: y\nerror: bad\n"}) == "traceback"
    assert classify({}, {**ERR, "code": "signal 9"}) == "traceback"


def test_a_refusal_that_leaves_a_file_or_an_accepted_bad_input_is_wrong():
    assert classify({}, ERR, {}, {"o/config.json": "1"}) == "wrong"
    assert classify({}, {**ERR, "code": 0, "err": ""}) == "wrong"  # expected a refusal
    assert classify({"expect": "ok"}, ERR) == "wrong"  # refused a valid input


def test_a_changed_or_removed_file_is_lost_unless_it_is_the_forced_output():
    case = {"expect": "ok", "argv": ["sample", "run", "--out", "s.npz", "--force"]}
    ok = {**ERR, "code": 0, "err": ""}
    assert classify(case, ok, {"s.npz": "1"}, {"s.npz": "2"}) == "clean"
    assert classify(case, ok, {"notes": "1"}, {}) == "lost"
    assert classify(case, {**ERR}, {"s.npz": "1"}, {"s.npz": "2"}) == "lost"  # refused


def test_an_invalid_result_is_wrong(tmp_path):
    import numpy as np
    np.savez(tmp_path / "s.npz", data=np.full((2, 3, 1), np.nan))
    case = {"expect": "ok", "valid": ["windows:s.npz"]}
    assert classify(case, {**ERR, "code": 0, "err": ""}, cwd=tmp_path) == "wrong"
    np.savez(tmp_path / "s.npz", data=np.ones((2, 3, 1)))
    assert classify(case, {**ERR, "code": 0, "err": ""}, cwd=tmp_path) == "clean"


def test_the_table_has_the_issues_cases_and_unique_names():
    names = {c["name"] for c in CASES}
    assert len(CASES) >= 150 and len(names) == len(CASES)
    for must in ("train_set_grad_clip_negative", "sample_n_10_11", "npz_complex",
                 "report_metrics_list", "sample_after_swap_killed_between_renames",
                 "two_new_trainings_one_out", "api_encode_strings", "max_steps_2_timevae"):
        assert must in names, must


@pytest.fixture(scope="module")
def harness(tmp_path_factory):
    """The whole table, run once by benchmarks/hostile.py in a fresh interpreter. Not in this
    process: its runner forks, and a fork of a process that has already run torch on several
    OpenMP threads (as earlier tests in this pytest process have) hangs in the child's first
    parallel region (libgomp's thread pool does not survive fork)."""
    out = tmp_path_factory.mktemp("hostile") / "rows.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, str(HOSTILE), "--label", "test", "--json", str(out)],
                          env=env, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {r["name"]: r for r in json.loads(out.read_text())["rows"]}


@pytest.mark.parametrize("name", [c["name"] for c in CASES])
def test_every_hostile_case_is_clean(name, harness):
    """Every case of the table, end to end through the fork runner, on this checkout: exit 0
    with a valid result, or one `error:` line with no file created, changed or lost."""
    assert harness[name]["class"] == "clean", harness[name]

