"""`flow_ts` against `diffusion_ts` on energy at an equal 10-minute budget, over training seeds
(issue #23), as a study over the benchmark harness (``harness.py``). Each cell's result (both
commands, training summary, scores) is copied to ``benchmarks/results/energy_10min/
MODEL_sSEED.json``; the table is mean ± sample std over training seeds of each seed's mean
over the evaluator's 5 metric repeats.

    python benchmarks/energy_seeds.py run --models diffusion_ts flow_ts --seeds 0 1 2
    python benchmarks/energy_seeds.py adopt RUN MODEL SEED --train-command "..." \\
        --eval-command "..."        # a run made outside the harness, with its own commands
    python benchmarks/energy_seeds.py table
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path

import harness

RESULTS = Path(__file__).resolve().parent / "results" / "energy_10min"
COLUMNS = (("discriminative", "discriminative"), ("predictive", "predictive"),
           ("context_fid", "Context-FID"), ("correlational", "correlational"),
           ("membership_auc", "membership AUC"))


def cell(model: str, seed: int) -> harness.Cell:
    return harness.Cell("energy_10min", model, seed,
                        (model, "--data", "energy", "--set", "train.max_minutes=10",
                         "--set", "train.threads=1"))


def keep(result: dict, model: str, seed: int, folder: Path = RESULTS) -> Path:
    return harness.keep(result, cell(model, seed), folder)


def adopt(run: Path, train_command: str, eval_command: str) -> dict:
    """The harness's result of a run trained and scored outside it (its commands as run)."""
    return {"study": "energy_10min", "train_command": train_command,
            "eval_command": eval_command,
            "loadavg_at_adoption": [round(v, 2) for v in os.getloadavg()],
            "training": json.loads((run / "config.json").read_text()).get("training", {}),
            "metrics": json.loads((run / "metrics.json").read_text())}


def _mean(value) -> float:
    return float(value["mean"]) if isinstance(value, dict) else float(value)


def table(folder: Path = RESULTS) -> str:
    """One row per model: its seeds and mean ± std over them of each score."""
    cells: dict[str, dict[int, dict]] = {}
    for path in sorted(folder.glob("*_s*.json")):
        m = re.fullmatch(r"(.+)_s(\d+)", path.stem)
        res = json.loads(path.read_text())
        cells.setdefault(m[1], {})[int(m[2])] = res.get("metrics", res)
    head = "| model (10 min, energy) | seeds | " + " | ".join(c[1] for c in COLUMNS) + " |"
    lines = [head, "|" + "---|" * (2 + len(COLUMNS))]
    for model, seeds in cells.items():
        row = [f"`{model}`", ", ".join(map(str, sorted(seeds)))]
        row += [harness.pm([_mean(r[key]) for r in seeds.values() if key in r])
                for key, _ in COLUMNS]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="verb", required=True)
    r = sub.add_parser("run")
    r.add_argument("--models", nargs="+", default=["diffusion_ts", "flow_ts"])
    r.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    a = sub.add_parser("adopt")
    a.add_argument("run", type=Path)
    a.add_argument("model")
    a.add_argument("seed", type=int)
    a.add_argument("--train-command", required=True)
    a.add_argument("--eval-command", required=True)
    sub.add_parser("table")
    args = ap.parse_args(argv)
    if args.verb == "run":
        for seed in args.seeds:
            for model in args.models:
                print(keep(harness.run_cell(cell(model, seed)), model, seed))
    elif args.verb == "adopt":
        print(keep(adopt(args.run, args.train_command, args.eval_command), args.model,
                   args.seed))
    else:
        sys.stdout.write(table())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
