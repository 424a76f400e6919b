"""Training on data with gaps (issue #14, section 8 of BENCHMARKS.md) as a study over the
benchmark harness (``harness.py``): drop, linear, mean and mask against the model trained on
the complete data, on stocks and energy with values removed at random (mcar) or in runs of
6-30 steps of one channel (the way sensors fail).

A cell is one training and one evaluation, run into ``benchmarks/out/gaps/<cell>/s<seed>/``:

    factorseq train MODEL --data DATA --set data.remove_rate=R --set data.remove_pattern=P
        --impute METHOD [extra train args]   (+ --epochs 40 on energy, as BENCHMARKS.md section 1)
    factorseq evaluate RUN --data DATA --repeats 5 --set privacy=false

``--data DATA`` makes evaluate read the bundled set as it is (removal belongs to the training
data), so every method is scored against the same complete real windows. The reference cell
``<model>_<data>_complete`` trains on the complete set. A training the data layer refuses
(``drop``: no complete window left; ``linear``: a channel with no value in a window) exits 2
and is kept as ``refused`` with its error line: that is a result too. Each result is copied to
``benchmarks/results/gaps/<cell>_s<seed>.json``; the table is rendered from those copies only
(mean ± sample std over training seeds of each seed's mean over the metric repeats). Scores:
every {mean, std} of metrics.json (discriminative, predictive, Context-FID, correlational...).

    python benchmarks/gaps_table.py run [--models timevae diffusion_ts]
        [--data stocks energy stocks-table energy10]
        [--patterns mcar:0.1 mcar:0.3 mcar:0.5 runs:0.3] [--methods drop linear mean mask]
        [--seeds 0 1] [--repeats 5] [--tag NAME] [--no-complete] [-- extra train args]
    python benchmarks/gaps_table.py table

``--tag NAME`` names a variant of the same cells (its extra train args differ, e.g.
``--tag zero-fill -- --set missing_fill=zero``): the cells are ``<cell>_NAME`` and the table
shows the method as ``mask [NAME]``.
"""
from __future__ import annotations

import argparse
import re
import sys

import harness

from factorseq.metrics.scoring import stale_note

STUDY = "gaps"
# "stocks-table": the same GOOG table read as one long series (not TimeGAN's reversed and
# shuffled windows): values are removed along the series, linear/ffill fill along the whole
# series and drop drops rows before windowing, so a gap is never confined to one window.
# The path is relative to the repository, where the harness runs the CLI.
SOURCES = {"stocks-table": "data/timegan/stock_data.csv", "energy10": "energy"}
# energy: CPU time cap, as in BENCHMARKS.md section 1; energy10: TimeVAE's 10 % subset of the
# energy windows (1,971), the same cap, when the machine is too loaded for the full set
DATA_ARGS = {"energy": ["--epochs", "40"],
             "energy10": ["--epochs", "40", "--set", "data.options={percent: 10}"]}
PATTERNS = ["mcar:0.1", "mcar:0.3", "mcar:0.5", "runs:0.3"]
# the table's scores only: the privacy group (DCR, membership AUC) is left out to save time
EVAL_ARGS = ["--set", "privacy=false"]
METHODS = ["drop", "linear", "mean", "mask"]
ORDER = {"complete": 0, "drop": 1, "linear": 2, "mean": 3, "mask": 4}
# a cell's name, read back by the table: data names hold no "_" (model names may)
NAME = re.compile(r"(?P<model>\w+?)_(?P<data>[^_]+)_(?:complete|(?P<kind>[a-z]+)(?P<rate>[\d.]+)"
                  r"_(?P<method>[a-z]+))(?:_(?P<tag>.+))?")


def cell(model: str, data: str, pattern: str | None, method: str | None, seed: int = 0,
         tag: str = "", extra: tuple[str, ...] = (), repeats: int = 5) -> harness.Cell:
    """``pattern`` None: the complete-data reference (no removal, no imputation)."""
    source = SOURCES.get(data, data)
    train = [model, "--data", source, *DATA_ARGS.get(data, [])]
    name = f"{model}_{data}_complete"
    if pattern is not None:
        kind, rate = pattern.split(":")
        train += ["--set", f"data.remove_rate={rate}", "--set", f"data.remove_pattern={kind}",
                  "--impute", str(method)]
        name = f"{model}_{data}_{kind}{rate}_{method}"
    evaluate = ("--data", source, "--repeats", str(repeats), *EVAL_ARGS)
    # only a method may be refused: a refused complete-data reference is a broken command
    return harness.Cell(STUDY, name + (f"_{tag}" if tag else ""), seed, (*train, *extra),
                        evaluate, refusal_ok=pattern is not None)


def cells(a: argparse.Namespace) -> list[harness.Cell]:
    """A ``run``'s cells; each model and data's complete reference first (never tagged)."""
    todo = ([(None, None)] if a.complete else []) + [(p, m) for p in a.patterns
                                                      for m in a.methods]
    return [cell(model, data, p, m, seed, a.tag if p else "", tuple(a.extra), a.repeats)
            for seed in a.seeds for model in a.models for data in a.data for p, m in todo]


def scores(metrics: dict) -> dict[str, dict]:
    """Every {mean, std} entry of metrics.json (whatever the evaluator computes)."""
    return {k: v for k, v in metrics.items() if isinstance(v, dict) and {"mean", "std"} <= set(v)}


def _mean(result: dict, key: str) -> float:
    return float(scores(result["metrics"])[key]["mean"])


def _windows(result: dict) -> int:
    return result["training"]["n_train"] + result["training"]["n_val"]


def _kept() -> dict[tuple, dict[int, dict]]:
    """(model, data, kind, rate, method, tag) -> {seed: result} of every committed copy."""
    return {(m["model"], m["data"], m["kind"] or "complete", float(m["rate"] or 0),
             m["method"] or "complete", m["tag"] or ""): res
            for m, res in harness.kept_named(STUDY, NAME, "MODEL_DATA_PATTERN_METHOD; data "
                                             "names hold no '_'")}


def _row(res: dict[int, dict], ref: dict[int, dict], keys: list[str], complete: bool
         ) -> list[str]:
    """Seeds, windows kept, each score, disc − complete, epochs and training seconds."""
    kept = [_windows(r) for r in res.values()]
    total = next((_windows(r) for r in ref.values()), None)
    row = [", ".join(map(str, sorted(res))),
           (f"{kept[0]:,}" if len(set(kept)) == 1 else harness.pm(kept, 0))
           + (f" / {total:,}" if total else "")]
    row += [harness.pm([_mean(r, k) for r in res.values() if k in scores(r["metrics"])]) or "—"
            for k in keys]
    # each seed against the complete-data model of the same training seed (else seed 0's)
    deltas = [_mean(r, "discriminative") - _mean(ref.get(s) or ref[0], "discriminative")
              for s, r in res.items() if s in ref or 0 in ref]
    delta = harness.pm(deltas) if deltas and not complete else "—"
    row.append(delta if delta.startswith(("-", "—")) else "+" + delta)
    t = [r["training"] for r in res.values()]
    return row + [harness.pm([x.get("epochs_run", 0) for x in t], 0),
                  harness.pm([x.get("train_seconds", 0) for x in t], 0)]


def table() -> str:
    found = _kept()
    if not found:
        return "(no results yet)\n"
    ok = {k: {s: r for s, r in v.items() if r.get("status") != "refused"}
          for k, v in found.items()}
    keys = ["discriminative", "predictive"]
    keys += sorted({k for v in ok.values() for r in v.values() for k in scores(r["metrics"])}
                   - {*keys, "predictive_real"})  # e.g. context_fid, correlational
    head = (["model", "data", "pattern", "method", "seeds", "windows kept"] + keys
            + ["disc − complete", "epochs", "train s"])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for key in sorted(found, key=lambda k: (*k[:2], k[2] != "complete", *k[2:4],
                                            ORDER.get(k[4], 9), k[5])):
        model, data, kind, rate, method, tag = key
        label = [model, data, "complete" if kind == "complete" else f"{kind} {rate:g}",
                 method + (f" [{tag}]" if tag else "")]
        ref = ok.get((model, data, "complete", 0.0, "complete", ""), {})
        if ok[key]:
            lines.append("| " + " | ".join(label + _row(ok[key], ref, keys,
                                                        kind == "complete")) + " |")
        refused = {s: r for s, r in found[key].items() if s not in ok[key]}
        if refused:  # the first refused seed's error line
            msg = refused[min(refused)]["error"].removeprefix("error: ")
            msg = msg if len(msg) < 90 else msg[:87] + "..."
            row = label + [", ".join(map(str, sorted(refused))),
                           "refused: " + msg.replace("|", "/")]
            lines.append("| " + " | ".join(row + [""] * (len(head) - len(row))) + " |")
    real: dict[str, list[float]] = {}  # each evaluation trains its own real-data predictor
    for key, res in ok.items():
        real.setdefault(key[1], []).extend(
            _mean(r, "predictive_real") for r in res.values()
            if "predictive_real" in scores(r["metrics"]))
    notes = [f"{d}: {harness.pm(v)} ({len(v)})" for d, v in sorted(real.items()) if v]
    text = "\n".join(lines) + "\n"
    if notes:
        text += ("\nPredictive score of a predictor trained on the real data (reference line; "
                 f"mean ± std over the evaluations): {'; '.join(notes)}.\n")
    return text + stale_note(sorted((harness.RESULTS / STUDY).glob("*_s*.json")))


def parse(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="verb", required=True)
    r = sub.add_parser("run")
    r.add_argument("--models", nargs="+", default=["timevae"])
    r.add_argument("--data", nargs="+", default=["stocks", "energy"])
    r.add_argument("--patterns", nargs="+", default=PATTERNS)
    r.add_argument("--methods", nargs="+", default=METHODS)
    r.add_argument("--repeats", type=int, default=5)
    r.add_argument("--seeds", nargs="+", type=int, default=[0],
                   help="training seeds (each is also its removal seed)")
    r.add_argument("--tag", default="", help="name of a variant (its extra train args)")
    r.add_argument("--complete", action=argparse.BooleanOptionalAction, default=True,
                   help="also the complete-data reference cell (default)")
    r.add_argument("extra", nargs="*", help="extra train args after --")
    sub.add_parser("table")
    return ap.parse_args(argv)


def main(argv: list[str]) -> int:
    a = parse(argv)
    if a.verb == "run":
        for c in cells(a):
            r = harness.run_cell(c)
            disc = scores(r.get("metrics", {})).get("discriminative", {}).get("mean")
            print(harness.keep(r, c), r.get("status", "ok"), disc, flush=True)
    sys.stdout.write(table())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
