"""Disentanglement scores (issue #12) of FHVAE and a plain VAE on the known-factors corpus, and
FHVAE's speaker EER on FSDD speakers never seen in training.

Every cell is real CLI calls (``factorseq train`` -> ``factorseq evaluate --evaluator
disentanglement``) into benchmarks/out/disentanglement/<cell>/s<seed>/; cells already done are
skipped, so the script can be stopped and re-run. ``--table`` prints mean ± std over the seeds
present.

    nice -n 10 python benchmarks/disentanglement_table.py --cells fhvae vae --seeds 0 1 2
    python benchmarks/disentanglement_table.py --table
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent
OUT = ROOT / "out" / "disentanglement"
EXE = str(Path(sys.executable).with_name("factorseq"))
COMMON = ["--batch-size", "128", "--set", "train.tensorboard=false", "--set", "train.threads=1"]
# known-factors: patience 30 (the re-weighted FHVAE sits on a plateau of the validation loss for
# >10 epochs before z1 is used); fsdd-strings: 10, as in BENCHMARKS.md section 2
KF = ["--set", "train.patience=30"]
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
}
KEYS = ["mig", "dci_disentanglement", "dci_completeness", "dci_informativeness", "sap",
        "modularity", "eer_static", "eer_dynamic", "eer_latent", "sym_seq_ratio",
        "sym_seg_ratio", "sym_seq_zseq", "sym_seq_zseg", "sym_seg_zseg", "sym_seg_zseq"]


def run_cell(name: str, seed: int) -> dict:
    model, data, epochs, train_opts, eval_opts = CELLS[name]
    cell = OUT / name / f"s{seed}"
    result = cell / "result.json"
    if result.is_file():
        return json.loads(result.read_text())
    run, metrics = cell / "run", cell / "metrics.json"
    train = [EXE, "train", model, "--data", data, "--out", str(run), "--force", "--epochs",
             str(epochs), "--seed", str(seed), *COMMON, *train_opts]
    t0 = time.perf_counter()
    subprocess.run(train, check=True)
    train_wall = time.perf_counter() - t0
    evaluate = [EXE, "evaluate", str(run), "--out", str(metrics), "--force", "--evaluator",
                "disentanglement", *eval_opts]
    t0 = time.perf_counter()
    subprocess.run(evaluate, check=True)
    eval_wall = time.perf_counter() - t0
    cfg = json.loads((run / "config.json").read_text())
    res = {"cell": name, "seed": seed, "train_command": " ".join(["factorseq", *train[1:]]),
           "eval_command": " ".join(["factorseq", *evaluate[1:]]),
           "train_wall_s": round(train_wall, 1), "eval_wall_s": round(eval_wall, 1),
           "training": cfg.get("training", {}), "metrics": json.loads(metrics.read_text())}
    result.write_text(json.dumps(res, indent=2))
    return res


def flat(m: dict) -> dict[str, float]:
    """The table's numbers of one metrics.json."""
    out = {k: m[k] for k in KEYS if isinstance(m.get(k), (int, float))}
    sym = m.get("symmetry") or {}
    for kind, short in (("sequence_action", "seq"), ("segment_action", "seg")):
        s = sym.get(kind) or {}
        for k in ("ratio", "z_seq", "z_seg"):
            if isinstance(s.get(k), (int, float)):
                out[f"sym_{short}_{k.replace('_', '')}" if k != "ratio" else f"sym_{short}_ratio"] \
                    = s[k]
    return out


def table() -> None:
    rows = []
    for name in CELLS:
        results = [json.loads(p.read_text()) for p in sorted((OUT / name).glob("s*/result.json"))]
        if not results:
            continue
        vals = [flat(r["metrics"]) for r in results]
        cells = []
        for k in KEYS:
            v = [x[k] for x in vals if k in x]
            cells.append(f"{np.mean(v):.3f} ± {np.std(v):.3f}" if v else "")
        epochs = "/".join(str(r["training"].get("epochs_run")) for r in results)
        wall = np.mean([r["train_wall_s"] for r in results]) / 60
        rows.append([f"{name} (n={len(results)})", *cells, epochs, f"{wall:.1f}"])
    print("| cell | " + " | ".join(KEYS) + " | epochs | train min |")
    print("|---" * (len(KEYS) + 3) + "|")
    for r in rows:
        print("| " + " | ".join(r) + " |")
    secs = {}
    for p in OUT.glob("*/s*/result.json"):
        for k, v in json.loads(p.read_text())["metrics"].get("seconds_per_metric", {}).items():
            secs.setdefault((p.parent.parent.name, k), []).append(v)
    print("\nseconds per metric (mean over seeds):")
    for (cell, k), v in sorted(secs.items()):
        print(f"  {cell:20s} {k:12s} {np.mean(v):7.2f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cells", nargs="*", default=list(CELLS), choices=list(CELLS))
    ap.add_argument("--seeds", nargs="*", type=int, default=[0])
    ap.add_argument("--table", action="store_true")
    a = ap.parse_args()
    if a.table:
        table()
        return
    for seed in a.seeds:
        for name in a.cells:
            res = run_cell(name, seed)
            print(json.dumps({"cell": name, "seed": seed, **flat(res["metrics"])}), flush=True)


if __name__ == "__main__":
    main()
