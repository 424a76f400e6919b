"""DANN on FSDD digits: the six leave-one-speaker-out tasks (source = five speakers, target =
the sixth, whose labels are never used), target accuracy of the adapted classifier against the
source-only baseline (the same model with ``lambda_max=0``, its own run on the same batches),
on the target speaker's held-out takes 0-4.

Every task is real CLI calls: ``factorseq train dann --data fsdd-digits --target-speaker S``
twice (adapted, and ``--set lambda_max=0``), then ``factorseq evaluate ADAPTED --set
baseline=SOURCE_ONLY``, into benchmarks/out/family_dann/<speaker>/; done tasks are skipped.
``--table`` prints the markdown table of benchmarks/FAMILY_RESULTS.md.

    nice -n 10 python benchmarks/family_dann.py [--speakers ...] [--epochs 10]
    python benchmarks/family_dann.py --table
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
OUT = ROOT / "out" / "family_dann"
EXE = str(Path(sys.executable).with_name("factorseq"))
SPEAKERS = ["george", "jackson", "lucas", "nicolas", "theo", "yweweler"]


def run_task(speaker: str, epochs: int) -> dict:
    cell = OUT / speaker
    result = cell / "result.json"
    if result.is_file():
        return json.loads(result.read_text())
    run, base, metrics = cell / "run", cell / "source_only", cell / "metrics.json"
    common = ["--data", "fsdd-digits", "--target-speaker", speaker, "--force", "--epochs",
              str(epochs), "--seed", "0", "--set", "train.tensorboard=false", "--set",
              "train.threads=1"]
    t0 = time.perf_counter()
    subprocess.run([EXE, "train", "dann", "--out", str(run), *common], check=True)
    wall = time.perf_counter() - t0
    subprocess.run([EXE, "train", "dann", "--out", str(base), *common, "--set", "lambda_max=0"],
                   check=True)
    subprocess.run([EXE, "evaluate", str(run), "--out", str(metrics), "--force", "--set",
                    f"baseline={base}"], check=True)
    cfg = json.loads((run / "config.json").read_text())
    res = {"speaker": speaker, "epochs": epochs, "train_wall_s": round(wall, 1),
           "training": cfg["training"], "metrics": json.loads(metrics.read_text())}
    result.write_text(json.dumps(res, indent=2))
    return res


def table() -> str:
    lines = ["| target speaker | target acc. (DANN) | target acc. (source-only) | gain | "
             "source test acc. (DANN / source-only) | train s |", "|---|---|---|---|---|---|"]
    rows = [json.loads(f.read_text()) for f in sorted(OUT.glob("*/result.json"))]
    for r in rows:
        m = r["metrics"]
        lines.append(f"| {r['speaker']} | {m['target_accuracy']:.3f} | "
                     f"{m['baseline_target_accuracy']:.3f} | {m['adaptation_gain']:+.3f} | "
                     f"{m['source_test_accuracy']:.3f} / "
                     f"{m['baseline_source_test_accuracy']:.3f} | "
                     f"{r['training']['train_seconds']:.0f} |")
    if rows:
        mean = lambda k: sum(r["metrics"][k] for r in rows) / len(rows)  # noqa: E731
        lines.append(f"| **mean of {len(rows)}** | **{mean('target_accuracy'):.3f}** | "
                     f"**{mean('baseline_target_accuracy'):.3f}** | "
                     f"**{mean('adaptation_gain'):+.3f}** | "
                     f"{mean('source_test_accuracy'):.3f} / "
                     f"{mean('baseline_source_test_accuracy'):.3f} | |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--speakers", nargs="+", default=SPEAKERS)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--table", action="store_true", help="print the markdown table and exit")
    args = ap.parse_args()
    if args.table:
        print(table())
        return
    OUT.mkdir(parents=True, exist_ok=True)
    for s in args.speakers:
        m = run_task(s, args.epochs)["metrics"]
        print(f"{s}: target {m['target_accuracy']:.3f} vs source-only "
              f"{m['baseline_target_accuracy']:.3f}", flush=True)


if __name__ == "__main__":
    main()
