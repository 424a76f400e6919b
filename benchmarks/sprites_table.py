"""Table of Sprites runs scored by ``factorseq evaluate`` (the ``sprites`` evaluator): mean ±
std over the runs of each row (training seeds), from their metrics.json files. It also keeps
a compact copy of every file's numbers in ``benchmarks/results/sprites.json``.

    python benchmarks/sprites_table.py --row "label=RUN RUN RUN" [--row ...] [--save]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results" / "sprites.json"
ATTRS = ("skin", "top", "pants", "hair")


def numbers(metrics: dict) -> dict[str, float]:
    """The protocol's numbers of one run (fractions as percentages)."""
    s, d = metrics["static_redrawn"], metrics["dynamic_redrawn"]
    out = {"motion": 100 * s["motion"]["accuracy"], "IS": s["motion"]["inception_score"],
           "H(y|x)": s["motion"]["h_y_given_x"], "H(y)": s["motion"]["h_y"]}
    out.update({a: 100 * d["attribute_accuracy"][a] for a in ATTRS})
    out["mean attr."] = 100 * d["mean_attribute_accuracy"]
    out["motion kept in f"] = 100 * d["dynamic_accuracy"]["motion"]
    out["judge min"] = 100 * min(metrics["judge_test_accuracy"].values())
    return out


def cell(values: list[float], digits: int) -> str:
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{np.mean(values):.{digits}f} ± {np.std(values, ddof=1):.{digits}f}"


def table(rows: dict[str, list[Path]]) -> tuple[str, dict]:
    keys = list(numbers(json.loads(next(iter(rows.values()))[0].read_text())))
    head = " | ".join(k.replace("|", "\\|") for k in keys)
    lines = [f"| run | n | {head} |", "|---" * (len(keys) + 2) + "|"]
    saved = {}
    for label, paths in rows.items():
        metrics = [json.loads(p.read_text()) for p in paths]
        per = [numbers(m) for m in metrics]
        # the oldest rules any of its files was scored under (none recorded = 0)
        saved[label] = {"files": [str(p) for p in paths], "runs": per, "scoring_version": min(
            int(m.get("scoring_version", 0)) for m in metrics)}
        lines.append(f"| {label} | {len(per)} | " + " | ".join(
            cell([r[k] for r in per], 3 if k.startswith(("IS", "H(")) else 1) for k in keys)
            + " |")
    return "\n".join(lines), saved


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--row", action="append", required=True,
                    help='"label=RUN [RUN ...]" (run folders holding metrics.json)')
    ap.add_argument("--save", action="store_true", help=f"merge into {RESULTS.name}")
    args = ap.parse_args()
    rows = {}
    for spec in args.row:
        label, runs = spec.split("=", 1)
        rows[label] = [Path(r) / "metrics.json" for r in runs.split()]
    text, saved = table(rows)
    print(text)
    if args.save:
        old = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
        RESULTS.write_text(json.dumps({**old, **saved}, indent=1) + "\n")


if __name__ == "__main__":
    main()
