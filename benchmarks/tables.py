"""Sections 1, 4 and 5 of BENCHMARKS.md as studies over the benchmark harness (``harness.py``,
issue #22): each cell is one ``factorseq train`` and one ``factorseq evaluate`` command, its
result is copied to ``benchmarks/results/<study>/<cell>_s<seed>.json`` and the tables are
rendered from those files only.

Studies:
- ``timevae_paper`` (section 1): ``timevae`` and ``vae_conv`` on ``stockv``, ``sines`` and
  ``energy`` at 10 % and 100 % of the windows, the TimeVAE paper's table; TimeGAN's
  discriminative and predictive scores (5 metric repeats). The 10 % cells use the reference's
  batch 16, the 100 % cells batch 64; energy at 100 % is capped at 40 epochs.
- ``family_dann`` (section 4): ``dann`` on FSDD digits, six leave-one-speaker-out tasks
  (``SPEAKER``: the adapted run) and their source-only twins (``SPEAKER:source_only``: the same
  training with ``lambda_max=0``, trained first; the adapted cell's evaluation scores both).
- ``timegan_family`` (sections 4, 5 and 7): ae, vae, gan, aae, vaegan, timegan, vae_conv,
  timevae, iwgan and aavae on ``sines``, ``stocks`` and ``energy``, the same budget of about
  2,000 batches of 128 for every model, scored with every score of the generative evaluator
  (TimeGAN's two,
  Context-FID, correlational, DCR and membership AUC against the run's held-out block).

    python benchmarks/tables.py run timevae_paper --cells timevae:stockv:100 --seeds 0 1 2
    python benchmarks/tables.py run timegan_family --cells gan:stocks --seeds 0
    python benchmarks/tables.py table timevae_paper [--cells REGEX]
    python benchmarks/render.py fill < SECTION.md   # its <!-- table: STUDY [REGEX] --> marks
"""
from __future__ import annotations

import argparse
import re
import sys

import harness
import numpy as np

# ~2,000 batches of 128: sines 9,000 / stocks 3,296 / energy 17,740 training windows
FAMILY_EPOCHS = {"sines": 28, "stocks": 78, "energy": 14}
FAMILY_MODELS = ("ae", "vae", "gan", "aae", "vaegan", "timegan", "vae_conv", "timevae")
UNIFIED = ("iwgan", "aavae")  # section 7: Hu et al.'s techniques beside gan and vae
SINES_N = 10_000  # TimeGAN's sine set; 10 % keeps 1,000 windows
BATCH = {10: 16, 100: 64}  # the reference's batch for the small sets, ours for the full ones
NOISES = ("vae_conv+diagonal", "vae_conv+full", "timevae+diagonal", "timevae+full")
BUDGET_CHECK = ("gan", "timegan")  # adversarial rows: budget-limited? (5x the batches, stocks)
DIFFUSION_MINUTES = 25  # of one core; the paper trains 10,000-25,000 steps on a GPU


def _timevae_cell(name: str, seed: int) -> harness.Cell:
    model, data, percent = name.split(":")
    p = int(percent)
    opts = (f"data.options={{n: {SINES_N * p // 100}}}" if data == "sines"
            else f"data.options={{percent: {p}}}")
    train = (model, "--data", data, "--set", opts, "--batch-size", str(BATCH[p]),
             "--set", "train.threads=1", "--set", "train.tensorboard=false")
    if data == "energy" and p == 100:
        train += ("--epochs", "40")  # CPU time: 11,000 updates of batch 64
    evaluate = ("--repeats", "5", "--set", "fidelity=false", "--set", "privacy=false")
    return harness.Cell("timevae_paper", name.replace(":", "_"), seed, train, evaluate)


def _family_cell(name: str, seed: int) -> harness.Cell:
    """``MODEL:DATA``; ``MODEL+NOISE:DATA`` is the same training (same seed, same weights: the
    noise is fitted after training) with ``observation_noise=NOISE``; ``MODEL*K:DATA`` trains
    K times the budget (the budget check of section 4); ``diffusion_ts:DATA`` trains with its
    own defaults for ``DIFFUSION_MINUTES``."""
    model, data = name.split(":")
    model, _, noise = model.partition("+")
    model, _, times = model.partition("*")
    if model == "diffusion_ts":
        train = (model, "--data", data, "--set", f"train.max_minutes={DIFFUSION_MINUTES}")
    else:
        train = (model, "--data", data, "--epochs", str(FAMILY_EPOCHS[data] * int(times or 1)),
                 "--batch-size", "128")
    train += ("--set", "train.threads=1", "--set", "train.tensorboard=false")
    if noise:
        train += ("--set", f"observation_noise={noise}")
    cell_name = name.replace(":", "_").replace("+", "_").replace("*", "_x")
    return harness.Cell("timegan_family", cell_name, seed, train, ("--repeats", "5"))


SPEAKERS = ("george", "jackson", "lucas", "nicolas", "theo", "yweweler")


def _dann_cell(name: str, seed: int) -> harness.Cell:
    speaker, _, twin = name.partition(":")
    train = ("dann", "--data", "fsdd-digits", "--target-speaker", speaker, "--epochs", "10",
             "--set", "train.threads=1", "--set", "train.tensorboard=false")
    if twin:
        return harness.Cell("family_dann", f"{speaker}_source_only", seed,
                            (*train, "--set", "lambda_max=0"))
    base = _dann_cell(f"{speaker}:source_only", seed).folder / "run"
    return harness.Cell("family_dann", speaker, seed, train, ("--set", f"baseline={base}"))


STUDIES = {
    "family_dann": (_dann_cell, list(SPEAKERS)),
    "timevae_paper": (_timevae_cell, [f"{m}:{d}:{p}" for d in ("stockv", "sines", "energy")
                                      for p in (100, 10) for m in ("timevae", "vae_conv")]),
    "timegan_family": (_family_cell, [f"{m}:{d}" for d in ("sines", "stocks", "energy")
                                      for m in (*FAMILY_MODELS, *UNIFIED, *NOISES,
                                                "diffusion_ts")]
                                   + [f"{m}*5:stocks" for m in BUDGET_CHECK]),
}
MEAN_ROW = {"family_dann"}  # studies whose cells are tasks of one experiment: their mean too
# (study, column) -> (title, metrics key, digits); the table's columns in order
COLUMNS = {
    "timevae_paper": [("disc", "discriminative", 3), ("pred", "predictive", 3),
                      ("pred, real data", "predictive_real", 3)],
    "family_dann": [("target acc. (DANN)", "target_accuracy", 3),
                    ("target acc. (source-only)", "baseline_target_accuracy", 3),
                    ("gain", "adaptation_gain", 3),
                    ("source test acc. (DANN)", "source_test_accuracy", 3),
                    ("source test acc. (source-only)", "baseline_source_test_accuracy", 3)],
    "timegan_family": [("disc ↓", "discriminative", 3), ("pred ↓", "predictive", 3),
                       ("Context-FID ↓", "context_fid", 3),
                       ("correlational ↓", "correlational", 3), ("DCR share", "dcr_share", 3),
                       ("membership AUC", "membership_auc", 3)],
}


def cell(study: str, name: str, seed: int) -> harness.Cell:
    make, names = STUDIES[study]
    twin = study == "family_dann" and name.removesuffix(":source_only") in names
    if name not in names and not twin:
        raise SystemExit(f"error: {study} has no cell {name!r}; cells: {', '.join(names)}")
    return make(name, seed)


def _score(metrics: dict, key: str) -> float | None:
    """A score's mean over the evaluator's repeats (``dcr_share``: the share of synthetic
    windows nearer a training window than the held-out block's 5th percentile)."""
    if key == "dcr_share":
        dcr = metrics.get("dcr") or {}
        value = dcr.get("share_below_holdout_p5", dcr.get("share"))
    else:
        value = metrics.get(key)
    if isinstance(value, dict):
        value = value.get("mean")
    return None if value is None else float(value)


def _repeats_pm(metrics: dict, key: str, digits: int) -> str:
    """One training seed: the mean ±ᵣ the std over the evaluator's metric repeats (the ᵣ
    says it is not a spread over training seeds)."""
    value = metrics.get(key)
    mean = _score(metrics, key)
    if isinstance(value, dict) and value.get("std") is not None and value.get("values"):
        return f"{mean:.{digits}f} ±ᵣ {value['std']:.{digits}f}"
    return f"{mean:.{digits}f}"


def table(study: str, pattern: str = "") -> str:
    """One row per cell with a result file: its seeds, then mean ± sample std over seeds of
    each score (each seed's value is its mean over the metric repeats; for one seed, ±ᵣ is the
    std over those repeats), epochs and minutes;
    ``pattern``: only the cells whose name it matches (a regular expression)."""
    cols = COLUMNS[study]
    lines = ["| cell | seeds | " + " | ".join(c[0] for c in cols) + " | epochs | train min |",
             "|" + "---|" * (len(cols) + 4)]
    means: list[list[float | None]] = []
    for name in STUDIES[study][1]:
        if pattern and not re.search(pattern, name):
            continue
        found = harness.kept(study, cell(study, name, 0).name)
        if not found:
            continue
        res = list(found.values())
        row, seed_means = [f"`{name}`", ", ".join(map(str, sorted(found)))], []
        for _, key, digits in cols:
            vals = [v for r in res if (v := _score(r["metrics"], key)) is not None]
            row.append(_repeats_pm(res[0]["metrics"], key, digits) if len(vals) == 1
                       else harness.pm(vals, digits) or "—")
            seed_means.append(float(np.mean(vals)) if vals else None)
        row.append(harness.pm([r["training"].get("epochs_run", 0) for r in res], 0))
        row.append(harness.pm([r["train_wall_s"] / 60 for r in res], 1))
        lines.append("| " + " | ".join(row) + " |")
        means.append(seed_means)
    if study in MEAN_ROW and means:  # the mean over cells (tasks) of each cell's seed mean
        row = [f"**mean of {len(means)}**", ""]
        row += [f"{np.mean([m[i] for m in means if m[i] is not None]):.{d}f}"
                if any(m[i] is not None for m in means) else "—"
                for i, (_, _, d) in enumerate(cols)]
        lines.append("| " + " | ".join(row + ["", ""]) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="verb", required=True)
    r = sub.add_parser("run")
    r.add_argument("study", choices=sorted(STUDIES))
    r.add_argument("--cells", nargs="+")
    r.add_argument("--seeds", nargs="+", type=int, default=[0])
    t = sub.add_parser("table")
    t.add_argument("study", choices=sorted(STUDIES))
    t.add_argument("--cells", default="", help="a regular expression on the cell names")
    args = ap.parse_args(argv)
    if args.verb == "table":
        sys.stdout.write(table(args.study, args.cells))
        return 0
    for seed in args.seeds:
        for name in args.cells or STUDIES[args.study][1]:
            if args.study == "family_dann":  # the twin the adapted run is scored against
                harness.run_cell(cell(args.study, f"{name}:source_only", seed), train_only=True)
            c = cell(args.study, name, seed)
            print(harness.keep(harness.run_cell(c), c), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
