"""Section 6 of BENCHMARKS.md (issue #12) as a study over the benchmark harness (``harness.py``,
issue #22): disentanglement scores of FHVAE, a plain VAE, DSVAE and InfoGAN on the known-factors
corpus, and the speaker EER on FSDD speakers never seen in training (issue #25's cells too).

Each cell is one ``factorseq train`` and one ``factorseq evaluate --evaluator disentanglement``
command, run by ``harness.run_cell`` into benchmarks/out/disentanglement/<cell>/s<seed>/; its
result is copied to benchmarks/results/disentanglement/<cell>_s<seed>.json and the tables are
rendered from those files only (mean ± sample std over the seeds kept).

    nice -n 10 python benchmarks/disentanglement_table.py run --cells fhvae vae --seeds 0 1 2
    python benchmarks/disentanglement_table.py table [--cells fhvae vae]
    python benchmarks/disentanglement_table.py json OUT.json [--cells ...]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import harness

STUDY = "disentanglement"
OUT = harness.REPO / harness.OUT / STUDY  # the cells' run folders (contrastive_dsvae.py reads them)
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
        "sym_seq_zlatent", "sym_seg_zlatent", "category_accuracy_best",
        *(f"category_{f}" for f in ("regime", "mixing", "shape", "amplitude", "frequency",
                                    "phase"))]


def cell(name: str, seed: int) -> harness.Cell:
    """The harness cell of ``CELLS[name]``: the commands the study has always run."""
    model, data, epochs, train_opts, eval_opts = CELLS[name]
    train = (model, "--data", data, "--epochs", str(epochs), *COMMON, *train_opts)
    return harness.Cell(STUDY, name, seed, train, ("--evaluator", "disentanglement", *eval_opts))


def run(names: list[str], seeds: list[int], train_only: bool = False) -> None:
    """Train and score each cell (seeds outer: one seed of every cell first) and keep it."""
    for seed in seeds:
        for name in names:
            c = cell(name, seed)
            result = harness.run_cell(c, train_only=train_only)
            if result is not None:
                harness.keep(result, c)
                print(json.dumps({"cell": name, "seed": seed, **flat(result["metrics"])}),
                      flush=True)


def flat(m: dict) -> dict[str, float]:
    """The table's numbers of one metrics.json."""
    out = {k: m[k] for k in KEYS if isinstance(m.get(k), (int, float))}
    sym = m.get("symmetry") or {}
    for kind, short in (("sequence_action", "seq"), ("segment_action", "seg")):
        s = sym.get(kind) or {}
        for k in ("ratio", "z_seq", "z_seg", "z_latent"):
            if isinstance(s.get(k), (int, float)):
                out[f"sym_{short}_{k.replace('_', '')}"] = s[k]
    # the categorical code's matched accuracy against each factor (the best is a row above)
    for factor, acc in ((m.get("category_accuracy") or {}).get("c_cat") or {}).items():
        out[f"category_{factor}"] = acc
    return out


def _mean_std(v: list[float]) -> str:
    """Mean ± sample std over seeds; one seed says so (a bare number is not a seed mean)."""
    return harness.pm(v) + (" (one seed)" if v and harness.over_seeds(v)["n"] == 1 else "")


def _kept(cells: list[str]) -> dict[str, list[dict]]:
    """The kept results (seed order) of the cells that have any."""
    found = {name: harness.kept(STUDY, name) for name in cells}
    return {name: [runs[s] for s in sorted(runs)] for name, runs in found.items() if runs}


def table(cells: list[str]) -> str:
    """Markdown from the kept results: one column per cell (mean ± sample std over its seeds),
    one row per metric, each seed's epochs and training minutes; then wall and CPU seconds per
    metric (mean over seeds)."""
    done = _kept(cells)
    lines = ["| metric | " + " | ".join(f"{k} (n={len(v)})" for k, v in done.items()) + " |",
             "|---" * (len(done) + 1) + "|"]
    for key in KEYS:
        row = [_mean_std([f[key] for f in (flat(r["metrics"]) for r in rs) if key in f])
               for rs in done.values()]
        if any(row):
            lines.append(f"| {key} | " + " | ".join(row) + " |")
    for label, fn in (("epochs run (best)", lambda r: f"{r['training'].get('epochs_run')} "
                                                      f"({r['training'].get('best_epoch')})"),
                      ("train wall min", lambda r: f"{r['train_wall_s'] / 60:.1f}")):
        lines.append(f"| {label} | " + " | ".join(", ".join(fn(r) for r in rs)
                                                  for rs in done.values()) + " |")
    for what in ("seconds_per_metric", "cpu_seconds_per_metric"):
        lines += ["", f"{what} (mean over seeds)", "",
                  "| metric | " + " | ".join(done) + " |", "|---" * (len(done) + 1) + "|"]
        names = sorted({k for rs in done.values() for r in rs for k in r["metrics"].get(what, {})})
        for k in names:
            row = [f"{harness.over_seeds(v)['mean']:.1f}"
                   if (v := [r["metrics"][what][k] for r in rs if k in r["metrics"].get(what, {})])
                   else "" for rs in done.values()]
            lines.append(f"| {k} | " + " | ".join(row) + " |")
    from factorseq.metrics.scoring import stale_note  # results of older scoring rules

    files = [p for name in done for p in (harness.RESULTS / STUDY).glob(f"{name}_s*.json")
             if p.stem[len(name) + 2:].isdigit()]
    return "\n".join(lines) + "\n" + stale_note(files)


def dump(cells: list[str], path: str) -> None:
    """Every kept seed's result of ``cells`` and, per cell, mean / std / n of the table's
    numbers, into one JSON file."""
    runs = _kept(cells)
    summary = {}
    for name, rs in runs.items():
        flats = [flat(r["metrics"]) for r in rs]
        summary[name] = {k: harness.over_seeds(v) for k in KEYS
                         if (v := [f[k] for f in flats if k in f])}
    from factorseq.metrics.scoring import version_of  # the file's: its oldest run's
    version = min((version_of(r) for rs in runs.values() for r in rs), default=0)
    Path(path).write_text(json.dumps({"scoring_version": version, "summary": summary,
                                      "runs": runs}, indent=1))


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="verb", required=True)
    r = sub.add_parser("run", help="train and score cells, keep their results")
    r.add_argument("--seeds", nargs="+", type=int, default=[0])
    r.add_argument("--train-only", action="store_true", help="train the cells, score later")
    sub.add_parser("table", help="the markdown table of the kept results")
    j = sub.add_parser("json", help="the cells' kept results (every seed) into one file")
    j.add_argument("path")
    for p in sub.choices.values():
        p.add_argument("--cells", nargs="+", default=list(CELLS), choices=list(CELLS))
    a = ap.parse_args(argv)
    if a.verb == "table":
        sys.stdout.write(table(a.cells))
    elif a.verb == "json":
        dump(a.cells, a.path)
    else:
        run(a.cells, a.seeds, a.train_only)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
