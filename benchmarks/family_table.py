"""The classic family on TimeGAN's benchmark: ae, vae, gan, aae, vaegan, timegan, vae_conv and
timevae on sines, stocks and energy (100% of the windows), TimeGAN's discriminative and
predictive scores (mean and std over 5 metric repeats), training wall time.

Every cell is real CLI calls (``factorseq train`` -> ``factorseq evaluate``) into
benchmarks/out/family/<data>_<model>/; cells already done are skipped, so the script can be
stopped and re-run. ``--table`` prints the markdown table of benchmarks/FAMILY_RESULTS.md.

    nice -n 10 python benchmarks/family_table.py [--models ...] [--data ...] [--repeats 5]
    python benchmarks/family_table.py --table

Protocol: one run per (model, data), seed 0, batch 128, MinMax scaling, and the same budget of
about 2000 training batches for every model (epochs per data set below: TimeGAN's reference
runs 50 000 iterations per phase, out of reach on the shared 2-core CPU). Models with a
likelihood stop early on the validation loss (patience 20) within that ceiling; adversarial
models run all their epochs.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
OUT = ROOT / "out" / "family"
EXE = str(Path(sys.executable).with_name("factorseq"))
MODELS = ["ae", "vae", "gan", "aae", "vaegan", "timegan", "vae_conv", "timevae"]
DATA = ["sines", "stocks", "energy"]
BATCH = 128
# ~2000 batches of 128: sines 9000 / stocks 3296 / energy 17740 training windows
EPOCHS = {"sines": 28, "stocks": 78, "energy": 14}

# Yoon et al. (NeurIPS 2019), Table 2, TimeGAN protocol: (model, data) -> (disc, pred)
PAPER = {
    ("TimeGAN", "sines"): (".011 ± .008", ".093 ± .019"),
    ("TimeGAN", "stocks"): (".102 ± .021", ".038 ± .001"),
    ("TimeGAN", "energy"): (".236 ± .012", ".273 ± .004"),
    ("RCGAN", "sines"): (".022", "—"),
    ("RCGAN", "stocks"): (".196", ".040"),
    ("RCGAN", "energy"): (".336", "—"),
    ("C-RNN-GAN", "stocks"): (".399", ".038"),
    ("C-RNN-GAN", "energy"): (".499", "—"),
    ("WaveNet", "stocks"): (".232", ".042"),
    ("WaveNet", "energy"): (".397", "—"),
    ("WaveGAN", "stocks"): (".217", ".041"),
    ("WaveGAN", "energy"): (".363", "—"),
}
PAPER_ROWS = ["TimeGAN", "RCGAN", "C-RNN-GAN", "WaveNet", "WaveGAN"]


def run_cell(model: str, data: str, repeats: int, train_only: bool = False,
             eval_only: bool = False, *, seed: int = 0, cell: Path | None = None) -> dict:
    """Train (seed ``seed``) and score one cell in ``cell`` (default OUT/<data>_<model>)."""
    cell = cell or OUT / f"{data}_{model}"
    result = cell / "result.json"
    if result.is_file():
        return json.loads(result.read_text())
    run, metrics = cell / "run", cell / "metrics.json"
    train = cell / "train.json"
    while eval_only and not train.is_file():  # another process is training this cell
        time.sleep(60)
    if not train.is_file():  # training and scoring are resumable separately
        load0 = os.getloadavg()[0]
        t0 = time.perf_counter()
        subprocess.run([EXE, "train", model, "--data", data, "--out", str(run), "--force",
                        "--epochs", str(EPOCHS[data]), "--batch-size", str(BATCH), "--seed",
                        str(seed), "--set", "train.tensorboard=false", "--set", "train.threads=1"],
                       check=True)
        train.write_text(json.dumps({"train_wall_s": round(time.perf_counter() - t0, 1),
                                     "load_average_at_start": round(load0, 2)}))
    if train_only:
        return {}
    subprocess.run([EXE, "evaluate", str(run), "--out", str(metrics), "--repeats",
                    str(repeats), "--force"], check=True)
    cfg = json.loads((run / "config.json").read_text())
    res = {"model": model, "data": data, "seed": seed, "epochs": EPOCHS[data], "batch_size": BATCH,
           **json.loads(train.read_text()), "training": cfg["training"],
           "metrics": json.loads(metrics.read_text())}
    result.write_text(json.dumps(res, indent=2))
    return res


def fmt(d: dict) -> str:
    return f"{d['mean']:.3f} ± {d['std']:.3f}"


def table() -> str:
    lines = ["| data | model | discriminative ↓ | predictive ↓ | epochs run | train s |",
             "|---|---|---|---|---|---|"]
    for data in DATA:
        real = None
        for model in MODELS:
            f = OUT / f"{data}_{model}" / "result.json"
            if not f.is_file():
                lines.append(f"| {data} | {model} | not run | not run | | |")
                continue
            r = json.loads(f.read_text())
            m = r["metrics"]
            real = real or m.get("predictive_real")
            lines.append(f"| {data} | {model} | {fmt(m['discriminative'])} | "
                         f"{fmt(m['predictive'])} | {r['training']['epochs_run']} | "
                         f"{r['training']['train_seconds']:.0f} |")
        if real:
            lines.append(f"| {data} | *real data (predictor trained on real)* | | {fmt(real)} "
                         "| | |")
        for row in PAPER_ROWS:
            if (row, data) in PAPER:
                d, p = PAPER[(row, data)]
                lines.append(f"| {data} | *{row}, paper Table 2* | {d} | {p} | | |")
    from factorseq.metrics.scoring import stale_note  # results of older scoring rules

    return "\n".join(lines) + stale_note(OUT.glob("*/result.json"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=MODELS)
    ap.add_argument("--data", nargs="+", default=DATA)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--table", action="store_true", help="print the markdown table and exit")
    ap.add_argument("--train-only", action="store_true", help="train the cells, score later")
    ap.add_argument("--eval-only", action="store_true",
                    help="score cells as another process finishes training them")
    args = ap.parse_args()
    if args.table:
        print(table())
        return
    OUT.mkdir(parents=True, exist_ok=True)
    for data in args.data:
        for model in args.models:
            r = run_cell(model, data, args.repeats, args.train_only, args.eval_only)
            if not r:
                continue
            m = r["metrics"]
            print(f"{data} {model}: disc {fmt(m['discriminative'])} "
                  f"pred {fmt(m['predictive'])} train {r['training']['train_seconds']:.0f}s",
                  flush=True)


if __name__ == "__main__":
    main()
