"""Disentanglement scores (issue #12) of FHVAE and a plain VAE on the known-factors corpus, and
FHVAE's speaker EER on FSDD speakers never seen in training.

Every cell is real CLI calls (``factorseq train`` -> ``factorseq evaluate --evaluator
disentanglement``) into benchmarks/out/disentanglement/<cell>/s<seed>/; cells already done are
skipped, so the script can be stopped and re-run. ``--table`` prints mean ± sample std
(n - 1) over the seeds present.

    nice -n 10 python benchmarks/disentanglement_table.py --cells fhvae vae --seeds 0 1 2
    python benchmarks/disentanglement_table.py --table
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
from harness import over_seeds, pm  # mean ± sample std over seeds, written once

ROOT = Path(__file__).resolve().parent
OUT = ROOT / "out" / "disentanglement"
EXE = str(Path(sys.executable).with_name("factorseq"))
COMMON = ["--batch-size", "128", "--set", "train.tensorboard=false", "--set", "train.threads=1"]
# known-factors: patience 30 (the re-weighted FHVAE sits on a plateau of the validation loss for
# >10 epochs before z1 is used); fsdd-strings: 10, as in BENCHMARKS.md section 2
KF = ["--set", "train.patience=30"]
INFOGAN = ["--set", "hidden=64", "--set", "n_categories=4", "--set", "n_continuous=3"]
FH_SMALL = ["--set", "hidden=64", "--set", "layers=1", "--set", "z1_dim=8", "--set", "z2_dim=8"]
# name: (model, data, epochs, train options, evaluator options)
CELLS = {
    "fhvae": ("fhvae", "known-factors", 300, [*KF, *FH_SMALL, "--set", "alpha=10"], []),
    "fhvae_rw": ("fhvae", "known-factors", 300,
                 [*KF, *FH_SMALL, "--set", "alpha=10", "--set", "z1_kl_weight=3",
                  "--set", "z2_mean_weight=50"], []),
    "vae": ("vae", "known-factors", 300, [*KF, "--set", "hidden=64", "--set", "layers=1",
                                         "--set", "latent_dim=16"], []),
    "fhvae_fsdd_unseen": ("fhvae", "fsdd-strings", 100,
                          ["--set", "train.patience=10", "--set", "hidden=128",
                           "--set", "layers=1", "--set",
                           "data.options={heldout_speakers: [jackson, theo]}",
                           "--set", "z1_kl_weight=3", "--set", "z2_mean_weight=50"],
                          ["--set", "metrics=[eer]"]),
    # the sequence peers (issue #12): time-bound runs (train.max_minutes) on the shared CPU
    "dsvae": ("dsvae", "known-factors", 300, [*KF, "--set", "hidden=64", "--set", "f_dim=8",
                                             "--set", "z_dim=8", "--set", "train.max_minutes=25"],
              []),
    "infogan": ("infogan", "known-factors", 300, [*INFOGAN, "--set", "train.max_minutes=25"],
                []),
    # issue #25: InfoGAN's category target, 4-minute runs (short lane); the "_val" cells score
    # 30 validation speakers (test_seed=1), the others the reported test speakers
    **{f"{name}{split}": ("infogan", "known-factors", 300,
                          [*INFOGAN, *opts, "--set", "train.max_minutes=4", *data],
                          ["--set", "metrics=[category]"])
       for name, opts in (("infogan_short", []), ("infogan_wn", ["--set", "window_noise=16"]),
                          ("infogan_wn_l3", ["--set", "window_noise=16", "--set",
                                             "lambda_cat=3"]))
       for split, data in (("_val", ["--set", "data.options={test_seed: 1}"]), ("", []))},
    # issue #25: six unseen voices (two held-out speakers x three vocal-tract warps), FHVAE
    # with fhvae_fsdd_unseen's settings (nothing tuned), 4-minute runs (short lane)
    "fhvae_voices": ("fhvae", "fsdd-strings", 100,
                     ["--set", "train.patience=10", "--set", "hidden=128", "--set", "layers=1",
                      "--set", "data.options={heldout_speakers: [jackson, theo], "
                      "voice_warps: [0.85, 1.0, 1.15]}", "--set", "z1_kl_weight=3",
                      "--set", "z2_mean_weight=50", "--set", "train.max_minutes=4"],
                     ["--set", "metrics=[eer]"]),
    "dsvae_fsdd_unseen": ("dsvae", "fsdd-strings", 50,
                          ["--set", "train.patience=10", "--set", "hidden=128", "--set",
                           "f_dim=32", "--set", "z_dim=16", "--set",
                           "data.options={heldout_speakers: [jackson, theo]}",
                           "--set", "train.max_minutes=35"], ["--set", "metrics=[eer]"]),
    "vae_fsdd": ("vae", "fsdd-strings", 50,
                 ["--set", "train.patience=10", "--set", "hidden=128", "--set", "layers=1",
                  "--set", "latent_dim=32", "--set", "train.max_minutes=20"],
                 ["--set", "metrics=[eer,mig,modularity]"]),
}
KEYS = ["mig", "dci_disentanglement", "dci_completeness", "dci_informativeness", "sap",
        "modularity", "eer_static", "eer_dynamic", "eer_latent", "sym_seq_ratio",
        "sym_seg_ratio", "sym_seq_zseq", "sym_seq_zseg", "sym_seg_zseg", "sym_seg_zseq",
        "sym_seq_zlatent", "sym_seg_zlatent", "category_accuracy_best"]


def run_cell(name: str, seed: int, train_only: bool = False) -> dict | None:
    """Train (unless the run is there) and evaluate one cell; None with ``train_only``."""
    model, data, epochs, train_opts, eval_opts = CELLS[name]
    cell = OUT / name / f"s{seed}"
    result = cell / "result.json"
    if result.is_file():
        return json.loads(result.read_text())
    run, metrics = cell / "run", cell / "metrics.json"
    train = [EXE, "train", model, "--data", data, "--out", str(run), "--force", "--epochs",
             str(epochs), "--seed", str(seed), *COMMON, *train_opts]
    wall_file = cell / "train_wall_s"
    if not wall_file.is_file():
        t0 = time.perf_counter()
        subprocess.run(train, check=True)
        wall_file.write_text(f"{time.perf_counter() - t0:.1f}")
    if train_only:
        return None
    train_wall = float(wall_file.read_text())
    evaluate = [EXE, "evaluate", str(run), "--out", str(metrics), "--force", "--evaluator",
                "disentanglement", *eval_opts]
    t0 = time.perf_counter()
    subprocess.run(evaluate, check=True)
    eval_wall = time.perf_counter() - t0
    cfg = json.loads((run / "config.json").read_text())
    res = {"cell": name, "seed": seed, "train_command": " ".join(["factorseq", *train[1:]]),
           "eval_command": " ".join(["factorseq", *evaluate[1:]]),
           "train_wall_s": round(train_wall, 1), "eval_wall_s": round(eval_wall, 1),
           "loadavg_after_eval": [round(v, 2) for v in os.getloadavg()],
           "training": cfg.get("training", {}), "metrics": json.loads(metrics.read_text())}
    result.write_text(json.dumps(res, indent=2))
    return res


def flat(m: dict) -> dict[str, float]:
    """The table's numbers of one metrics.json."""
    out = {k: m[k] for k in KEYS if isinstance(m.get(k), (int, float))}
    sym = m.get("symmetry") or {}
    for kind, short in (("sequence_action", "seq"), ("segment_action", "seg")):
        s = sym.get(kind) or {}
        for k in ("ratio", "z_seq", "z_seg", "z_latent"):
            if isinstance(s.get(k), (int, float)):
                out[f"sym_{short}_{k.replace('_', '')}"] = s[k]
    return out


def _mean_std(v: list[float]) -> str:
    return pm(v) if len(v) > 1 else (f"{v[0]:.3f} (one seed)" if v else "")


def table(cells: list[str]) -> None:
    """Markdown: one column per cell (mean ± std over its seeds), one row per metric; then
    wall and CPU seconds per metric."""
    done = {name: [json.loads(p.read_text()) for p in sorted((OUT / name).glob("s*/result.json"))]
            for name in cells}
    done = {k: v for k, v in done.items() if v}
    print("| metric | " + " | ".join(f"{k} (n={len(v)})" for k, v in done.items()) + " |")
    print("|---" * (len(done) + 1) + "|")
    for key in KEYS:
        cells = [_mean_std([f[key] for f in (flat(r["metrics"]) for r in rs) if key in f])
                 for rs in done.values()]
        if any(cells):
            print(f"| {key} | " + " | ".join(cells) + " |")
    for label, fn in (("epochs run (best)", lambda r: f"{r['training'].get('epochs_run')} "
                                                      f"({r['training'].get('best_epoch')})"),
                      ("train wall min", lambda r: f"{r['train_wall_s'] / 60:.1f}")):
        print(f"| {label} | " + " | ".join(", ".join(fn(r) for r in rs)
                                           for rs in done.values()) + " |")
    for what in ("seconds_per_metric", "cpu_seconds_per_metric"):
        print(f"\n{what} (mean over seeds)\n")
        names = sorted({k for rs in done.values() for r in rs for k in r["metrics"].get(what, {})})
        print("| metric | " + " | ".join(done) + " |")
        print("|---" * (len(done) + 1) + "|")
        for k in names:
            cells = [f"{np.mean(v):.1f}" if (v := [r["metrics"][what][k] for r in rs
                                                   if k in r["metrics"].get(what, {})]) else ""
                     for rs in done.values()]
            print(f"| {k} | " + " | ".join(cells) + " |")
    from factorseq.metrics.scoring import stale_note  # results of older scoring rules

    print(stale_note(p for name in done for p in (OUT / name).glob("s*/result.json")), end="")


def dump(cells: list[str], path: str) -> None:
    """Every seed's result.json of ``cells`` and, per cell, mean / std / n of the table's
    numbers, into one JSON file."""
    runs = {name: [json.loads(p.read_text()) for p in sorted((OUT / name).glob("s*/result.json"))]
            for name in cells}
    summary = {}
    for name, rs in runs.items():
        flats = [flat(r["metrics"]) for r in rs]
        summary[name] = {k: over_seeds(v) for k in KEYS if (v := [f[k] for f in flats if k in f])}
    from factorseq.metrics.scoring import version_of  # the file's: its oldest run's
    version = min((version_of(r) for rs in runs.values() for r in rs), default=0)
    Path(path).write_text(json.dumps({"scoring_version": version, "summary": summary,
                                      "runs": runs}, indent=1))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cells", nargs="*", default=list(CELLS), choices=list(CELLS))
    ap.add_argument("--seeds", nargs="*", type=int, default=[0])
    ap.add_argument("--table", action="store_true")
    ap.add_argument("--json", help="write the cells' results (every seed) to this file")
    ap.add_argument("--train-only", action="store_true", help="train the cells, evaluate later")
    a = ap.parse_args()
    if a.json:
        dump(a.cells, a.json)
    if a.table:
        table(a.cells)
    if a.table or a.json:
        return
    for seed in a.seeds:
        for name in a.cells:
            res = run_cell(name, seed, a.train_only)
            if res is None:
                continue
            print(json.dumps({"cell": name, "seed": seed, **flat(res["metrics"])}), flush=True)


if __name__ == "__main__":
    main()
