"""`flow_ts` against `diffusion_ts` on energy at an equal 10-minute budget, over training seeds
(issue #23): collect each run's ``metrics.json`` into ``benchmarks/results/energy_10min/``
and print the table (mean ± std over training seeds of each seed's mean over 5 metric
repeats).

    factorseq train MODEL --data energy --out RUN --seed S --set train.max_minutes=10 \\
        --set train.threads=1
    factorseq evaluate RUN --out RUN/metrics.json
    python benchmarks/energy_seeds.py collect RUN MODEL S     # copies RUN/metrics.json + epochs
    python benchmarks/energy_seeds.py table
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent / "results" / "energy_10min"
COLUMNS = (("discriminative", "discriminative"), ("predictive", "predictive"),
           ("context_fid", "Context-FID"), ("correlational", "correlational"),
           ("membership_auc", "membership AUC"))


def collect(run: Path, model: str, seed: int) -> Path:
    """The run's scores plus its training summary (epochs run, seconds), as ``MODEL_sSEED.json``."""
    result = json.loads((run / "metrics.json").read_text())
    config = json.loads((run / "config.json").read_text())
    result["training"] = config.get("training")  # epochs run, stopped by time
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"{model}_s{seed}.json"
    path.write_text(json.dumps(result, indent=1) + "\n")
    return path


def _mean(value) -> float:
    return float(value["mean"]) if isinstance(value, dict) else float(value)


def table(folder: Path = OUT) -> str:
    """One row per model: mean ± std over its seeds (the number of seeds beside it)."""
    cells: dict[str, dict[int, dict]] = {}
    for path in sorted(folder.glob("*_s*.json")):
        m = re.fullmatch(r"(.+)_s(\d+)", path.stem)
        cells.setdefault(m[1], {})[int(m[2])] = json.loads(path.read_text())
    head = "| model (10 min, energy) | seeds | " + " | ".join(c[1] for c in COLUMNS) + " |"
    lines = [head, "|" + "---|" * (2 + len(COLUMNS))]
    for model, seeds in cells.items():
        row = [f"`{model}`", ", ".join(map(str, sorted(seeds)))]
        for key, _ in COLUMNS:
            vals = np.array([_mean(r[key]) for r in seeds.values() if key in r])
            row.append(f"{vals.mean():.3f} ± {vals.std(ddof=1):.3f}" if len(vals) > 1
                       else (f"{vals[0]:.3f}" if len(vals) else ""))
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    if argv[:1] == ["collect"] and len(argv) == 4:
        print(collect(Path(argv[1]), argv[2], int(argv[3])))
    elif argv == ["table"]:
        sys.stdout.write(table())
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
