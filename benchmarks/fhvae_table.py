"""FHVAE on fsdd-strings: the issue's target table, alpha = 10 beside alpha = 0 (the paper's
ablation of the discriminative term), with training time and peak memory.

Every cell is real CLI calls (``factorseq train fhvae --data fsdd-strings`` -> ``factorseq
evaluate`` -> ``factorseq report``) into benchmarks/out/fhvae/<tag>/alpha<A>/; cells already
done are skipped, so the script can be stopped and re-run. ``--table`` prints the markdown
table of benchmarks/FHVAE_RESULTS.md for one tag. Peak RSS of the training process is
``ru_maxrss`` of that child (``os.wait4``). Extra model keys go through ``--set key=value``.

    nice -n 10 python benchmarks/fhvae_table.py --tag small [--alphas 10 0] [--hidden 128]
    python benchmarks/fhvae_table.py --tag small --table
    python benchmarks/fhvae_table.py --cells small/alpha10 z2mean30/alpha10 --rows
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent
OUT = ROOT / "out" / "fhvae"
EXE = str(Path(sys.executable).with_name("factorseq"))

# (key, target text, check) in the order
TARGETS = [
    ("speaker_eer", "<= 0.02", lambda v: v <= 0.02),
    ("speaker_acc_z2", ">= 0.95", lambda v: v >= 0.95),
    ("speaker_acc_z1", "<= 0.5", lambda v: v <= 0.5),
    ("content_acc_z1", ">= 0.7", lambda v: v >= 0.7),
    ("content_acc_z2", "<= 0.3", lambda v: v <= 0.3),
    ("conversion_speaker_acc", ">= 0.8", lambda v: v >= 0.8),
    ("conversion_content_acc", ">= 0.7", lambda v: v >= 0.7),
]
REFERENCE = ["speaker_chance", "content_chance", "feature_speaker_acc", "feature_content_acc",
             "reconstruction_speaker_acc", "reconstruction_content_acc", "reconstruction_mse"]


def run_and_measure(cmd: list[str]) -> tuple[float, float]:
    """Run ``cmd``; (wall seconds, peak RSS in MB of that process tree)."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd)
    _, status, usage = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode:
        raise subprocess.CalledProcessError(p.returncode, cmd)
    return time.perf_counter() - t0, usage.ru_maxrss / 1024


def train_args(args: argparse.Namespace, alpha: float) -> list[str]:
    extra = [a for kv in args.set for a in ("--set", kv)]
    return ["--epochs", str(args.epochs), "--batch-size", str(args.batch_size),
            "--seed", str(args.seed),
            "--set", f"alpha={alpha:g}", "--set", f"hidden={args.hidden}",
            "--set", f"layers={args.layers}", "--set", f"train.patience={args.patience}",
            "--set", "train.tensorboard=false", "--set", "train.threads=1", *extra]


def run_cell(alpha: float, args: argparse.Namespace) -> dict:
    cell = OUT / args.tag / f"alpha{alpha:g}"
    result = cell / "result.json"
    if result.is_file():
        return json.loads(result.read_text())
    run, metrics = cell / "run", cell / "metrics.json"
    cmd = [EXE, "train", "fhvae", "--data", "fsdd-strings", "--out", str(run), "--force",
           *train_args(args, alpha)]
    wall, rss = run_and_measure(cmd)
    t0 = time.perf_counter()
    subprocess.run([EXE, "evaluate", str(run), "--out", str(metrics), "--force",
                    "--repeats", str(args.repeats)], check=True)
    eval_wall = time.perf_counter() - t0
    subprocess.run([EXE, "report", str(run), "--out", str(cell / "report.html"), "--force",
                    "--metrics", str(metrics)], check=True)
    cfg = json.loads((run / "config.json").read_text())
    res = {"alpha": alpha, "command": " ".join(["factorseq", *cmd[1:]]),
           "train_wall_s": round(wall, 1), "train_peak_rss_mb": round(rss, 1),
           "eval_wall_s": round(eval_wall, 1), "training": cfg["training"],
           "model_config": cfg["model_config"], "metrics": json.loads(metrics.read_text())}
    result.write_text(json.dumps(res, indent=2))
    return res


def table(tag: str) -> str:
    cells = {r["alpha"]: r for r in (json.loads(f.read_text())
                                     for f in sorted((OUT / tag).glob("alpha*/result.json")))}
    alphas = sorted(cells, reverse=True)
    from factorseq.metrics.scoring import stale_note  # results of older scoring rules

    return cell_table({f"alpha = {a:g}": cells[a] for a in alphas}) + stale_note(
        (OUT / tag).glob("alpha*/result.json"))


def load_cell(cell: Path) -> dict:
    """A cell's result.json, or the same facts from a run continued by hand (``factorseq train
    ... --resume --epochs N`` then ``factorseq evaluate``: run/config.json + metrics.json)."""
    cfg = json.loads((cell / "run" / "config.json").read_text())
    seed = cfg["train_config"]["seed"]
    if (cell / "result.json").is_file():
        return {**json.loads((cell / "result.json").read_text()), "seed": seed}
    return {"alpha": cfg["model_config"]["alpha"], "seed": seed, "training": cfg["training"],
            "model_config": cfg["model_config"], "command": "(resumed run, see the text)",
            "train_wall_s": cfg["training"]["wall_seconds"], "train_peak_rss_mb": float("nan"),
            "eval_wall_s": json.loads((cell / "metrics.json").read_text()).get("seconds", 0),
            "metrics": json.loads((cell / "metrics.json").read_text())}


def _label(cell: str, r: dict) -> str:
    """Column head: alpha plus the model keys that differ from the defaults used here."""
    mc = r["model_config"]
    options = (("z1_kl_weight", 1.0), ("z2_kl_weight", 1.0), ("z2_mean_weight", 1.0),
               ("z1_kl_warmup", 0))
    extra = [f"{k} {mc[k]:g}" for k, d in options if mc.get(k, d) != d]
    size = f"{mc['layers']}x{mc['hidden']}"
    epochs = f", {r['training']['epochs_run']} ep" + (f", seed {r['seed']}" if r.get("seed")
                                                      else "")
    return f"alpha {r['alpha']:g}, {size}" + "".join(f", {e}" for e in extra) + epochs


def row_table(cells: dict[str, dict], mean: bool = False) -> str:
    """One row per cell, the seven targets as columns (bold = met); ``mean`` adds a row with
    the mean ± std over the cells (e.g. seeds) and how many cells met each target."""
    short = ["EER", "spk z2", "spk z1", "digit z1", "digit z2", "conv spk", "conv digit"]
    head = ("| configuration | " + " | ".join(f"{s} ({t})" for s, (_, t, _) in
                                            zip(short, TARGETS, strict=True))
            + " | met | epochs (best) |")
    lines = [head, "|---|" + "---|" * (len(TARGETS) + 2)]
    for label, r in cells.items():
        m, vals, met = r["metrics"], [], 0
        for key, _, ok in TARGETS:
            v = m.get(key)
            good = v is not None and ok(v)
            met += good
            txt = "n/a" if v is None else f"{v:.3f}"
            vals.append(f"**{txt}**" if good else f"{txt} ✗")
        t = r["training"]
        lines.append(f"| {label} | " + " | ".join(vals) + f" | {met}/7 | "
                     f"{t['epochs_run']} ({t['best_epoch']}) |")
    if mean:
        vals = []
        for key, _, ok in TARGETS:
            v = np.array([r["metrics"][key] for r in cells.values()])
            vals.append(f"{v.mean():.3f} ± {v.std():.3f} ({sum(ok(x) for x in v)}/{len(v)})")
        lines.append(f"| mean ± std over {len(cells)} (runs meeting it) | " + " | ".join(vals)
                     + " | | |")
    return "\n".join(lines)


def cell_table(cells: dict[str, dict]) -> str:
    """The target table with one column per result (label -> result.json contents)."""
    alphas = list(cells)
    head = "| metric | target | " + " | ".join(alphas) + " |"
    lines = [head, "|---|---|" + "---|" * len(alphas)]
    for key, text, ok in TARGETS:
        vals = []
        for a in alphas:
            m = cells[a]["metrics"]
            v = m.get(key)
            if v is None:
                vals.append("n/a")
                continue
            std = m.get(f"{key}_std")
            s = f"{v:.3f}" + (f" ± {std:.3f}" if std is not None else "")
            vals.append(s + (" (met)" if ok(v) else " (not met)"))
        lines.append(f"| `{key}` | {text} | " + " | ".join(vals) + " |")
    for key in REFERENCE:
        vals = [f"{cells[a]['metrics'][key]:.3f}" if key in cells[a]["metrics"] else "n/a"
                for a in alphas]
        lines.append(f"| `{key}` (reference) | | " + " | ".join(vals) + " |")
    rows = [("epochs run (best)", lambda r: f"{r['training']['epochs_run']} "
                                            f"({r['training']['best_epoch']})"),
            ("training wall time", lambda r: f"{r['train_wall_s'] / 60:.1f} min"),
            ("training throughput", lambda r: f"{r['training']['windows_per_second']:.0f} "
                                              "segments/s"),
            ("peak RSS of training", lambda r: f"{r['train_peak_rss_mb']:.0f} MB"),
            ("evaluation wall time", lambda r: f"{r['eval_wall_s'] / 60:.1f} min")]
    for name, fmt in rows:
        lines.append(f"| {name} | | " + " | ".join(fmt(cells[a]) for a in alphas) + " |")
    cmds = "\n".join(f"    {cells[a]['command']}" for a in alphas)
    return "\n".join(lines) + "\n\nCommands:\n\n" + cmds + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--alphas", type=float, nargs="+", default=[10.0, 0.0])
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--layers", type=int, default=1)
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--patience", type=int, default=10)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0, help="training seed (and the training "
                    "strings' draw; the held-out strings stay fixed)")
    ap.add_argument("--set", action="append", default=[], help="extra model key=value")
    ap.add_argument("--tag", default="default", help="results folder of this configuration")
    ap.add_argument("--table", action="store_true")
    ap.add_argument("--cells", nargs="+", metavar="TAG/alphaA",
                    help="print one table with these finished cells side by side")
    ap.add_argument("--rows", action="store_true", help="with --cells: one row per cell")
    ap.add_argument("--mean", action="store_true", help="with --rows: a mean ± std row")
    args = ap.parse_args()
    if args.cells:
        res = {_label(c, r): r for c, r in ((c, load_cell(OUT / c)) for c in args.cells)}
        print(row_table(res, args.mean) if args.rows else cell_table(res))
        return
    if args.table:
        print(table(args.tag))
        return
    (OUT / args.tag).mkdir(parents=True, exist_ok=True)
    for a in args.alphas:
        r = run_cell(a, args)
        print(json.dumps({k: r["metrics"].get(k) for k, _, _ in TARGETS}), flush=True)
    print(table(args.tag))


if __name__ == "__main__":
    main()
