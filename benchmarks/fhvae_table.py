"""Section 2 of BENCHMARKS.md (issue #3; text in benchmarks/FHVAE_RESULTS.md) as a study over
the benchmark harness (``harness.py``, issue #22): FHVAE on fsdd-strings against the issue's
seven targets, the paper's bound and the re-weighted bound (``z2_mean_weight=50
z1_kl_weight=3``), each at alpha 10 and at alpha 0 (the paper's ablation of the
discriminative term).

A cell is one ``factorseq train fhvae --data fsdd-strings`` (1 LSTM layer of 128, batch 128,
early-stopping patience 10, one thread) and one ``factorseq evaluate RUN --repeats 3`` (the
model's own ``fhvae`` evaluator), run by ``harness.run_cell`` into
benchmarks/out/fhvae/<cell>/s<seed>/ with the training process's peak RSS; its result is
copied to benchmarks/results/fhvae/<cell>_s<seed>.json and the table is rendered from those
files only (mean ± sample std over the seeds kept, ✓/✗ of that mean against the target).

Every cell trains 200 epochs in one go. The earlier script (git history at cad6eba) trained
100 epochs and continued a copy of the run to 200 with ``factorseq train ... --resume``: two
trainings of one run are not a harness cell, so the re-run trains 200 epochs straight. The
earlier script's ``factorseq report`` HTML is not made (no number comes from it).
Seeds: ``reweighted_a10`` (the headline) over 0-3, the other cells seed 0.

    nice -n 10 python benchmarks/fhvae_table.py run [--cells reweighted_a10] [--seeds 1 2 3]
    python benchmarks/fhvae_table.py table [--cells ...]
"""
from __future__ import annotations

import argparse
import json
import sys

import harness

STUDY = "fhvae"
EPOCHS = 200
REWEIGHTED = ("--set", "z2_mean_weight=50", "--set", "z1_kl_weight=3")
# name: (column title, alpha, model options), in the table's order
CELLS = {
    "reweighted_a10": ("re-weighted, alpha 10", 10, REWEIGHTED),
    "reweighted_a0": ("re-weighted, alpha 0 (ablation)", 0, REWEIGHTED),
    "paper_a10": ("paper's bound, alpha 10", 10, ()),
    "paper_a0": ("paper's bound, alpha 0 (ablation)", 0, ()),
}
SEEDS = {"reweighted_a10": (0, 1, 2, 3)}  # the others: (0,)
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


def cell(name: str, seed: int) -> harness.Cell:
    """The harness cell of ``CELLS[name]``: the earlier script's commands at 200 epochs."""
    _, alpha, options = CELLS[name]
    train = ("fhvae", "--data", "fsdd-strings", "--epochs", str(EPOCHS), "--batch-size", "128",
             "--set", f"alpha={alpha:g}", "--set", "hidden=128", "--set", "layers=1",
             "--set", "train.patience=10", "--set", "train.tensorboard=false",
             "--set", "train.threads=1", *options)
    return harness.Cell(STUDY, name, seed, train, ("--repeats", "3"))


def run(names: list[str], seeds: list[int] | None, train_only: bool = False) -> None:
    """Train and score each cell at ``seeds`` (default: its own, ``SEEDS``; seeds outer) and
    keep its result."""
    todo = sorted((s, i, n) for i, n in enumerate(names) for s in (seeds or SEEDS.get(n, (0,))))
    for seed, _, name in todo:
        c = cell(name, seed)
        result = harness.run_cell(c, train_only=train_only)
        if result is not None:
            harness.keep(result, c)
            print(json.dumps({"cell": name, "seed": seed, **{
                k: result["metrics"].get(k) for k, _, _ in TARGETS}}), flush=True)


def _kept(names: list[str]) -> dict[str, list[dict]]:
    """The kept results (seed order) of the cells that have any."""
    found = {name: harness.kept(STUDY, name) for name in names}
    return {name: [runs[s] for s in sorted(runs)] for name, runs in found.items() if runs}


def _values(results: list[dict], key: str) -> list[float]:
    return [r["metrics"][key] for r in results if isinstance(r["metrics"].get(key), int | float)]


def _spread(results: list[dict], key: str, digits: int = 3) -> str:
    """Mean ± sample std over seeds; one seed: its value, ±ᵣ the std over the evaluator's
    repeats when it has one (not a spread over training seeds)."""
    v = _values(results, key)
    if len(v) != 1:
        return harness.pm(v, digits) or "n/a"
    std = results[0]["metrics"].get(f"{key}_std")
    return f"{v[0]:.{digits}f}" + (f" ±ᵣ {std:.{digits}f}" if std is not None else "")


def _target(results: list[dict], key: str, ok) -> tuple[str, bool]:
    """The target row's cell: the spread, ✓/✗ of the mean, and with several seeds how many
    met it; and whether the mean met it."""
    v = _values(results, key)
    if not v:
        return "n/a", False
    met = ok(harness.over_seeds(v)["mean"])
    runs = f" ({sum(map(ok, v))}/{len(v)} seeds)" if len(v) > 1 else ""
    return f"{_spread(results, key)} {'✓' if met else '✗'}{runs}", met


def _target_rows(done: dict[str, list[dict]]) -> list[str]:
    """One row per target, then how many targets each cell's mean meets."""
    lines, met = [], dict.fromkeys(done, 0)
    for key, text, ok in TARGETS:
        row = []
        for name, rs in done.items():
            shown, good = _target(rs, key, ok)
            row.append(shown)
            met[name] += good
        lines.append(f"| `{key}` | {text} | " + " | ".join(row) + " |")
    return lines + ["| targets met (by the mean) | | " + " | ".join(
        f"{met[n]} / {len(TARGETS)}" for n in done) + " |"]


def _minutes(results: list[dict], key: str) -> str:
    return harness.pm([r[key] / 60 for r in results if r.get(key) is not None], 1) or "n/a"


def table(names: list[str]) -> str:
    """Markdown from the kept results: one column per cell, the seven targets (mean ± sample
    std over seeds, ✓/✗ of the mean), the reference scores, epochs, time and memory."""
    done = _kept(names)
    lines = ["| metric (held-out) | target | " + " | ".join(
                f"{CELLS[n][0]} (n={len(rs)})" for n, rs in done.items()) + " |",
             "|---|---|" + "---|" * len(done), *_target_rows(done)]
    for key in REFERENCE:
        lines.append(f"| `{key}` (reference) | | " + " | ".join(
            _spread(rs, key) for rs in done.values()) + " |")
    rows = [("epochs run (best), per seed", lambda rs: ", ".join(
                f"{r['training'].get('epochs_run')} ({r['training'].get('best_epoch')})"
                for r in rs)),
            ("training wall min", lambda rs: _minutes(rs, "train_wall_s")),
            ("peak RSS of training, MB", lambda rs: harness.pm(
                [r["train_peak_rss_mb"] for r in rs if r.get("train_peak_rss_mb")], 0) or "n/a"),
            ("evaluation wall min", lambda rs: _minutes(rs, "eval_wall_s"))]
    for label, fmt in rows:
        lines.append(f"| {label} | | " + " | ".join(fmt(rs) for rs in done.values()) + " |")
    from factorseq.metrics.scoring import stale_note  # results of older scoring rules

    files = [p for name in done for p in (harness.RESULTS / STUDY).glob(f"{name}_s*.json")
             if p.stem[len(name) + 2:].isdigit()]
    return "\n".join(lines) + "\n" + stale_note(files)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="verb", required=True)
    r = sub.add_parser("run", help="train and score cells, keep their results")
    r.add_argument("--seeds", nargs="+", type=int, help="default: each cell's own (SEEDS)")
    r.add_argument("--train-only", action="store_true", help="train the cells, score later")
    sub.add_parser("table", help="the markdown table of the kept results")
    for p in sub.choices.values():
        p.add_argument("--cells", nargs="+", default=list(CELLS), choices=list(CELLS))
    a = ap.parse_args(argv)
    if a.verb == "table":
        sys.stdout.write(table(a.cells))
    else:
        run(a.cells, a.seeds, a.train_only)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
