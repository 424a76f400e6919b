"""The TimeVAE paper's table, our side: vae_conv and timevae on sines, stockv and energy at
10% and 100% of the training windows, scored with TimeGAN's protocol.

Every cell is real CLI calls (train -> evaluate) into benchmarks/out/<model>_<data>_<p>/; the
script skips cells already done, so it can be stopped and re-run. Then
`python benchmarks/timevae_table.py --table` prints the markdown table for BENCHMARKS.md.

    python benchmarks/timevae_table.py [--models vae_conv timevae] [--data sines stockv energy]
        [--percent 10 100] [--repeats 5]
"""
from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
OUT = ROOT / "out"
EXE = str(Path(sys.executable).with_name("factorseq"))
PAPER = Path(__file__).resolve().parents[2] / "shared" / "reference" / "timevae_paper_scores.csv"
SINES_N = 10000  # TimeGAN's sine set size; "10%" keeps 1000 windows
# batch size per training fraction: the reference's 16 for the small sets (with ~400 windows a
# batch of 64 gives too few updates before early stopping), our default 64 for the full sets
BATCH = {10: 16, 100: 64}


def data_args(data: str, percent: int) -> list[str]:
    if data == "sines":
        return ["--data", "sines", "--set", f"data.options={{n: {SINES_N * percent // 100}}}"]
    return ["--data", data, "--set", f"data.options={{percent: {percent}}}"]


def run_cell(model: str, data: str, percent: int, repeats: int, extra: list[str]) -> dict:
    cell = OUT / f"{model}_{data}_{percent}"
    result = cell / "result.json"
    if result.is_file():
        return json.loads(result.read_text())
    run = cell / "run"
    batch = BATCH.get(percent, 64)
    timing = cell / "train_wall.json"
    if timing.is_file() and (run / "model.safetensors").is_file():  # trained: re-evaluate only
        train_wall = json.loads(timing.read_text())["train_wall_s"]
    else:
        t0 = time.perf_counter()
        subprocess.run([EXE, "train", model, *data_args(data, percent), "--out", str(run),
                        "--batch-size", str(batch), "--force", *extra], check=True)
        train_wall = time.perf_counter() - t0
        timing.write_text(json.dumps({"train_wall_s": train_wall}))
    metrics = cell / "metrics.json"
    subprocess.run([EXE, "evaluate", str(run), "--out", str(metrics), "--repeats",
                    str(repeats), "--force"], check=True)
    cfg = json.loads((run / "config.json").read_text())
    res = {"model": model, "data": data, "percent": percent, "batch_size": batch,
           "train_wall_s": round(train_wall, 1),
           "training": cfg["training"], "metrics": json.loads(metrics.read_text())}
    result.write_text(json.dumps(res, indent=2))
    return res


def paper_scores() -> dict:
    """TimeVAE authors' table (their protocol): (metric, model, perc) -> {data: text}."""
    if not PAPER.is_file():
        return {}
    out = {}
    with PAPER.open() as f:
        for row in csv.DictReader(f):
            out[(row["metric"], row["model"], row["train_perc"])] = row
    return out


def table() -> str:
    paper = paper_scores()
    col = {"sines": "sine", "stockv": "stocks2", "energy": "energy"}
    lines = ["| data | % | model | disc (ours) | disc (TimeVAE paper) | pred (ours) | "
             "pred (paper) | pred, real data (ours / paper) | batch | epochs | train s |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    results = [json.loads(f.read_text()) for f in OUT.glob("*/result.json")]
    order = {"stockv": 0, "sines": 1, "energy": 2}
    results.sort(key=lambda r: (order.get(r["data"], 9), -r["percent"], r["model"]))
    for r in results:
        m, pm = r["metrics"], "vae_conv_I" if r["model"] == "timevae" else None
        fmt = lambda d: f"{d['mean']:.3f} ± {d['std']:.3f}"  # noqa: E731
        p = str(r["percent"])
        pd = paper.get(("disc_score", pm, p), {}).get(col[r["data"]], "—") if pm else "—"
        pp = paper.get(("pred_score", pm, p), {}).get(col[r["data"]], "—") if pm else "—"
        po = paper.get(("pred_score", "orig", p), {}).get(col[r["data"]], "—")
        lines.append(f"| {r['data']} | {p} | {r['model']} | {fmt(m['discriminative'])} | {pd} | "
                     f"{fmt(m['predictive'])} | {pp} | {fmt(m['predictive_real'])} / {po} | "
                     f"{r.get('batch_size', 64)} | {r['training']['epochs_run']} | "
                     f"{r['training']['train_seconds']:.0f} |")
    from factorseq.metrics.scoring import stale_note  # results of older scoring rules

    return "\n".join(lines) + stale_note(OUT.glob("*/result.json"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", nargs="+", default=["vae_conv", "timevae"])
    ap.add_argument("--data", nargs="+", default=["stockv", "sines", "energy"])
    ap.add_argument("--percent", nargs="+", type=int, default=[100, 10])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--table", action="store_true")
    ap.add_argument("extra", nargs="*", help="extra train args after --")
    a = ap.parse_args()
    if a.table:
        print(table())
        return
    for data in a.data:
        for p in a.percent:
            for model in a.models:
                r = run_cell(model, data, p, a.repeats, a.extra)
                print(model, data, p, r["metrics"]["discriminative"]["mean"],
                      r["metrics"]["predictive"]["mean"], flush=True)
    print(table())


if __name__ == "__main__":
    main()
