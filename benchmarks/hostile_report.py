"""The hostile-input harness's results file and its BENCHMARKS.md section (section 13), from
the ``--json`` files of ``hostile.py`` runs on several checkouts:

    python benchmarks/hostile.py --summarize BEFORE.json AFTER.json [--base BASE.json]
"""
from __future__ import annotations

import json
from pathlib import Path


def summarize(before: Path, after: Path, out_json: Path, out_md: Path,
              base: Path | None = None) -> None:
    """The measurements into one results file, and the markdown section with every case
    that is still not clean (``base``: the branch point of this work, between the two)."""
    b, a = json.loads(before.read_text()), json.loads(after.read_text())
    runs = {"before": b, **({"base": json.loads(base.read_text())} if base else {}), "after": a}
    out_json.write_text(json.dumps(runs, indent=1))
    first = {r["name"]: r["class"] for r in b["rows"]}
    fixed = sum(first.get(r["name"]) != "clean" and r["class"] == "clean" for r in a["rows"])
    lines = [
        "## 13. Hostile inputs (issue #21): clean / traceback / wrong / lost", "",
        f"{a['cases']} named bad inputs across every verb and the Python API "
        "(`benchmarks/hostile_cases.py`), replayed by `benchmarks/hostile.py` on the code "
        "before the issue's work and after it. Clean: exit 0 with a valid result (checked "
        "with numpy/pandas/safetensors, not with factorseq), or exit 2 with exactly one "
        "`error:` line and no file created, changed or lost. Traceback: any other exit, or an "
        "exit 2 with more lines. Wrong: exit 0 with an invalid result, a bad input accepted, "
        "a valid one refused, a refusal that left files, or past the time limit. Lost: a file "
        "that was there before changed or removed. Before: commit a03807e (before any of "
        "the issue's work); base: 08d569c (where branch hostile starts, with the run-folder "
        "work of earlier sessions: runfolder.py, the lock, recovery); after: main (the fixes "
        "of the cases this harness found). Every case also runs in `make test` "
        "(`tests/test_hostile_harness.py`, one test per case, asserting clean), beside "
        "hypothesis strategies over window arrays, long CSV tables, `--set` values and damaged "
        "run folders (`tests/test_hostile.py`) and files of another user, run without the "
        "right to override permissions (`tests/test_permissions.py`). Totals and every "
        "case of each run: `benchmarks/results/hostile.json`.", "",
        "| code | clean | traceback | wrong | lost | seconds | load average (start, end) |",
        "|---|---|---|---|---|---|---|"]
    for name, m in runs.items():
        t = m["totals"]
        lines.append(f"| {name} ({m['src']}) | {t['clean']} | {t['traceback']} | {t['wrong']} "
                     f"| {t['lost']} | {m['seconds']} | {' '.join(m['loadavg_start'])}; "
                     f"{' '.join(m['loadavg_end'])} |")
    modes = sum("different modes" in r["why"] for r in b["rows"])
    lines += ["", f"{fixed} cases went from not clean to clean. Before, {modes} of the wrong "
              "cases are trainings that succeeded but wrote model.safetensors 0600 beside a 0644 "
              "config.json (another user then cannot load the run): one finding, counted per "
              f"training. Commands ({a['date']}):", "",
              "```", *COMMANDS, "```", "", "Still not clean after:", ""]
    still = [r for r in a["rows"] if r["class"] != "clean"]
    lines += [f"* `{r['name']}` ({r['class']}): {r['why']}; first line: "
              f"`{r['first_line'][:140]}`" for r in still] or ["* none"]
    out_md.write_text("\n".join(lines) + "\n")


COMMANDS = [
    "git archive a03807e src | tar -x -C /tmp/before",
    "/work/tools/cpu .venv/bin/python benchmarks/hostile.py --src /tmp/before/src "
    "--label before --json /tmp/hostile_before.json",
    "PYTHONPATH=src /work/tools/cpu .venv/bin/python benchmarks/hostile.py --label after "
    "--json /tmp/hostile_after.json",
    "git archive 08d569c src | tar -x -C /tmp/base   # and the same run with --src "
    "/tmp/base/src --label base",
    "python benchmarks/hostile.py --summarize /tmp/hostile_before.json "
    "/tmp/hostile_after.json --base /tmp/hostile_base.json",
]
