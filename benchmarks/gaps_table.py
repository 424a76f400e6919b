"""Training on data with gaps (issue #14): drop, linear, mean and mask against the model trained
on the complete data, on stocks and energy with values removed at random (mcar) or in runs of
6-30 steps of one channel (the way sensors fail).

Every cell is real CLI calls into benchmarks/out/gaps/<model>_<data>_<pattern><rate>_<method>/:

    factorseq train MODEL --data DATA --set data.remove_rate=R --set data.remove_pattern=P
        --impute METHOD --out RUN            (+ --epochs 40 on energy, as BENCHMARKS.md section 1)
    factorseq evaluate RUN --data DATA --repeats 5

``--data DATA`` makes evaluate read the bundled set as it is (removal belongs to the training
data), so every method is scored against the same complete real windows. The reference cell
``<model>_<data>_complete`` trains on the complete set. A training the data layer refuses
(``drop``: no complete window left; ``linear``: a channel with no value in a window) is
recorded as ``refused`` with its error line: that is a result too. Cells already done are
skipped (stop and re-run at will); several lanes may run side by side (a cell in progress
is locked by ``.lock``). Scores: every key of metrics.json that is a {mean, std}
(discriminative, predictive, predictive_real, and Context-FID when the evaluator has it).

    python benchmarks/gaps_table.py [--models timevae diffusion_ts]
        [--data stocks energy stocks-table]
        [--patterns mcar:0.1 mcar:0.3 mcar:0.5 runs:0.3] [--methods drop linear mean mask]
        [--repeats 5] [--tag NAME] [-- extra train args]
    python benchmarks/gaps_table.py --table

``--tag NAME`` names a variant of the same cells (its extra train args differ, e.g.
``--tag zero-fill -- --set missing_fill=zero``): the cells are ``<cell>_NAME`` and the table
shows the method as ``mask [NAME]``.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

OUT = Path(__file__).resolve().parent / "out" / "gaps"
REPO = Path(__file__).resolve().parents[1]
# "stocks-table": the same GOOG table read as one long series (not TimeGAN's reversed and
# shuffled windows): values are removed along the series, linear/ffill fill along the whole
# series and drop drops rows before windowing, so a gap is never confined to one window
SOURCES = {"stocks-table": str(REPO / "data" / "timegan" / "stock_data.csv"),
           "energy10": "energy"}
EXE = str(Path(sys.executable).with_name("factorseq"))
# energy: CPU time cap, as in BENCHMARKS.md section 1; energy10: TimeVAE's 10 % subset of the
# energy windows (1,971), the same cap, when the machine is too loaded for the full set
DATA_ARGS = {"energy": ["--epochs", "40"],
             "energy10": ["--epochs", "40", "--set", "data.options={percent: 10}"]}
PATTERNS = ["mcar:0.1", "mcar:0.3", "mcar:0.5", "runs:0.3"]
# the table's scores only: the privacy group (DCR, membership AUC) is left out to save time
EVAL_ARGS = ["--set", "privacy=false"]
# a cell finished before the evaluator had Context-FID gets it (and correlational) from a
# fidelity-only evaluation of the same run: its other scores ran the unchanged code
FIDELITY_ONLY = ["--set", "disc_iterations=0", "--set", "pred_iterations=0", *EVAL_ARGS]
METHODS = ["drop", "linear", "mean", "mask"]


def cell_name(model: str, data: str, pattern: str | None, method: str | None,
              seed: int = 0, tag: str = "") -> str:
    tail = (f"_s{seed}" if seed else "") + (f"_{tag}" if tag else "")  # seed 0: original names
    if pattern is None:
        return f"{model}_{data}_complete{tail}"
    kind, rate = pattern.split(":")
    return f"{model}_{data}_{kind}{rate}_{method}{tail}"


def train_args(model: str, data: str, pattern: str | None, method: str | None,
               run: Path) -> list[str]:
    args = [EXE, "train", model, "--data", SOURCES.get(data, data), "--out", str(run), "--force",
            *DATA_ARGS.get(data, [])]
    if pattern is not None:
        kind, rate = pattern.split(":")
        args += ["--set", f"data.remove_rate={rate}", "--set", f"data.remove_pattern={kind}",
                 "--impute", str(method)]
    return args


def run_cell(model: str, data: str, pattern: str | None, method: str | None, repeats: int,
             extra: list[str], seed: int = 0, tag: str = "") -> dict | None:
    """The cell's result; None when another lane holds it (``cell/.lock``; a lane killed
    mid-cell leaves its lock behind: delete it to redo the cell)."""
    cell = OUT / cell_name(model, data, pattern, method, seed, tag)
    result = cell / "result.json"
    if result.is_file():
        return _add_fidelity(cell, data, repeats, json.loads(result.read_text()))
    cell.mkdir(parents=True, exist_ok=True)
    try:
        os.close(os.open(cell / ".lock", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return None
    try:
        return _run_cell(cell, model, data, pattern, method, repeats, extra, seed, tag)
    finally:
        (cell / ".lock").unlink(missing_ok=True)


def _run_cell(cell: Path, model: str, data: str, pattern: str | None, method: str | None,
              repeats: int, extra: list[str], seed: int, tag: str = "") -> dict:
    result = cell / "result.json"
    run, timing = cell / "run", cell / "train_wall.json"
    kind, rate = pattern.split(":") if pattern else ("complete", "0")
    res = {"model": model, "data": data, "pattern": kind, "rate": float(rate),
           "method": method or "complete", "seed": seed, "tag": tag,
           "extra_args": extra}
    if timing.is_file() and (run / "model.safetensors").is_file():  # trained: evaluate only
        train_wall = json.loads(timing.read_text())["train_wall_s"]
    else:
        cmd = train_args(model, data, pattern, method, run) + ["--seed", str(seed)] + extra
        t0 = time.perf_counter()
        p = subprocess.run(cmd, stderr=subprocess.PIPE, text=True)
        train_wall = time.perf_counter() - t0
        if p.returncode == 2:  # a user error: the data layer refused this method
            lines = [s for s in p.stderr.splitlines() if s.startswith("error: ")]
            res.update(status="refused", message=lines[-1] if lines else p.stderr[-300:],
                       command=" ".join(cmd[1:]))
            result.write_text(json.dumps(res, indent=2))
            return res
        if p.returncode != 0:
            sys.stderr.write(p.stderr[-3000:])
            raise SystemExit(f"training failed: {' '.join(cmd)}")
        timing.write_text(json.dumps({"train_wall_s": train_wall}))
    metrics = cell / "metrics.json"
    _evaluate(run, data, metrics, repeats, EVAL_ARGS)
    cfg = json.loads((run / "config.json").read_text())
    training = cfg["training"]
    res.update(status="ok", train_wall_s=round(train_wall, 1), training=training,
               windows_kept=training["n_train"] + training["n_val"],
               missing_rate=cfg["data_schema"].get("missing_rate"),
               metrics=json.loads(metrics.read_text()))
    result.write_text(json.dumps(res, indent=2))
    return res


def _evaluate(run: Path, data: str, out: Path, repeats: int, args: list[str]) -> None:
    subprocess.run([EXE, "evaluate", str(run), "--data", SOURCES.get(data, data), "--out",
                    str(out), "--repeats", str(repeats), "--force", *args], check=True,
                   stdout=subprocess.DEVNULL)


def _add_fidelity(cell: Path, data: str, repeats: int, res: dict) -> dict:
    """``res`` with Context-FID and correlational, from ``cell/fidelity.json`` (evaluated once,
    fidelity only) when its metrics were computed before the evaluator had them."""
    if res["status"] != "ok" or "context_fid" in res["metrics"]:
        return res
    fid = cell / "fidelity.json"
    if not fid.is_file():
        _evaluate(cell / "run", data, fid, repeats, FIDELITY_ONLY)
    extra = json.loads(fid.read_text())
    res["metrics"].update({k: extra[k] for k in ("context_fid", "correlational")},
                          fidelity_from="fidelity.json (fidelity-only evaluation, same run)")
    (cell / "result.json").write_text(json.dumps(res, indent=2))
    return res


def scores(metrics: dict) -> dict[str, dict]:
    """Every {mean, std} entry of metrics.json (whatever the evaluator computes)."""
    return {k: v for k, v in metrics.items() if isinstance(v, dict) and {"mean", "std"} <= set(v)}


def table() -> str:
    results = [json.loads(f.read_text()) for f in OUT.glob("*/result.json")]
    if not results:
        return "(no results yet)"
    keys = ["discriminative", "predictive"]
    extra = sorted({k for r in results if r["status"] == "ok" for k in scores(r["metrics"])}
                   - {*keys, "predictive_real"})
    keys += extra  # e.g. context_fid once the evaluator has it
    ref = {(r["model"], r["data"], r.get("seed", 0)): r for r in results
           if r["method"] == "complete" and not r.get("tag")}
    head = (["model", "data", "pattern", "method", "seed", "windows kept"] + keys
            + ["disc − complete", "epochs", "train s"])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    order = {"complete": 0, "drop": 1, "linear": 2, "mean": 3, "mask": 4}
    results.sort(key=lambda r: (r["model"], r["data"], r["pattern"] != "complete",
                                r["pattern"], r["rate"], order.get(r["method"], 9),
                                r.get("tag", ""), r.get("seed", 0)))
    for r in results:
        pat = "complete" if r["pattern"] == "complete" else f"{r['pattern']} {r['rate']:g}"
        method = r["method"] + (f" [{r['tag']}]" if r.get("tag") else "")
        row = [r["model"], r["data"], pat, method, str(r.get("seed", 0))]
        if r["status"] != "ok":
            msg = r["message"].removeprefix("error: ")
            msg = msg if len(msg) < 90 else msg[:87] + "..."
            lines.append("| " + " | ".join(row + ["refused: " + msg.replace("|", "/")]
                                           + [""] * (len(head) - 6)) + " |")
            continue
        # the complete-data model of the same training seed (else seed 0's)
        base = ref.get((r["model"], r["data"], r.get("seed", 0))) or ref.get(
            (r["model"], r["data"], 0))
        total = base["windows_kept"] if base and base["status"] == "ok" else None
        kept = f"{r['windows_kept']:,}" + (f" / {total:,}" if total else "")
        s = scores(r["metrics"])
        cells = [f"{s[k]['mean']:.3f} ± {s[k]['std']:.3f}" if k in s else "—" for k in keys]
        delta = "—"
        if base and base["status"] == "ok" and r["method"] != "complete":
            d = s["discriminative"]["mean"] - scores(base["metrics"])["discriminative"]["mean"]
            delta = f"{d:+.3f}"
        t = r["training"]
        lines.append("| " + " | ".join(row + [kept] + cells + [
            delta, str(t.get("epochs_run", "?")), f"{t.get('train_seconds', 0):.0f}"]) + " |")
    real: dict[str, list[str]] = {}  # each evaluation trains its own real-data predictor
    for r in results:
        v = scores(r["metrics"]).get("predictive_real") if r["status"] == "ok" else None
        if v:
            real.setdefault(r["data"], []).append(f"{v['mean']:.3f} ± {v['std']:.3f}")
    notes = [f"{d}: {', '.join(sorted(set(v)))}" for d, v in sorted(real.items())]
    from factorseq.metrics.scoring import stale_note  # results of older scoring rules

    return "\n".join(lines) + ("\n\nPredictive score of a predictor trained on the real data "
                               f"(reference line): {'; '.join(notes)}." if notes else "") \
        + stale_note(OUT.glob("*/result.json"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", nargs="+", default=["timevae"])
    ap.add_argument("--data", nargs="+", default=["stocks", "energy"])
    ap.add_argument("--patterns", nargs="+", default=PATTERNS)
    ap.add_argument("--methods", nargs="+", default=METHODS)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0, help="training seed (and removal seed)")
    ap.add_argument("--tag", default="", help="name of a variant (its extra train args)")
    ap.add_argument("--complete", action=argparse.BooleanOptionalAction, default=True,
                    help="also the complete-data reference cell (default)")
    ap.add_argument("--table", action="store_true")
    ap.add_argument("extra", nargs="*", help="extra train args after --")
    a = ap.parse_args()
    if a.table:
        print(table())
        return
    for model in a.models:
        for data in a.data:
            cells = ([(None, None)] if a.complete else []) + [
                (p, m) for p in a.patterns for m in a.methods]
            for pattern, method in cells:
                tag = a.tag if pattern else ""  # the reference is the untagged complete cell
                name = cell_name(model, data, pattern, method, a.seed, tag)
                r = run_cell(model, data, pattern, method, a.repeats, a.extra, a.seed, tag)
                if r is None:
                    print(name, "busy", flush=True)
                    continue
                d = r.get("metrics", {}).get("discriminative", {}).get("mean")
                print(name, r["status"], d, flush=True)
    print(table())


if __name__ == "__main__":
    main()
