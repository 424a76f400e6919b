"""Issue #10's table: every generative model on TimeGAN's benchmark (sines, stocks, energy) with
the field's fidelity and privacy scores, beside the published rows.

Cells of the classic family (ae, vae, gan, aae, vaegan, timegan, vae_conv, timevae) are the
family table's (``benchmarks/family_table.py``: ~2,000 batches of 128, seed 0, real CLI calls);
this script adds
- the observation-noise variants ``vae_conv+diagonal``, ``vae_conv+full``, ``timevae+diagonal``,
  ``timevae+full``: the same trained weights as the family cell (so the difference is only the
  noise), with the Gaussian of the training residuals fitted as ``on_fit_end`` does
  (``observation_noise`` in ``models/vae_base.py``), saved as their own run and scored;
- ``diffusion_ts`` with its defaults (``factorseq train diffusion_ts --data DATA``), timed,
  and its sampling speed (windows per second of ``factorseq sample``);
and scores every cell with ``factorseq evaluate RUN --repeats 5`` (discriminative, predictive,
Context-FID, correlational, DCR, membership AUC). Cells already done are skipped.

    nice -n 10 python benchmarks/generation_table.py [--cells vae_conv+full ...] [--data ...]
    python benchmarks/generation_table.py --table
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import family_table as fam  # noqa: E402

OUT = fam.ROOT / "out" / "generation"
EXE = fam.EXE
NOISE = ["vae_conv+diagonal", "vae_conv+full", "timevae+diagonal", "timevae+full"]
CELLS = [*fam.MODELS, *NOISE, "diffusion_ts"]
# Diffusion-TS (ICLR 2024) Table 1 and ImagenTime (NeurIPS 2024), as published:
# (row, data) -> (disc, pred, context-FID, correlational)
PAPER = {
    ("Diffusion-TS", "sines"): (".006 ± .007", ".093", ".006", ".015"),
    ("Diffusion-TS", "stocks"): (".067 ± .015", ".036", ".147", ".004"),
    ("Diffusion-TS", "energy"): (".122 ± .003", ".250", ".089", ".856"),
    ("ImagenTime", "stocks"): (".037", ".036", "", ""),
    ("ImagenTime", "energy"): (".040", ".250", "", ""),
    ("TimeGAN (in Diffusion-TS's table)", "sines"): (".011", "", "", ""),
    ("TimeGAN (in Diffusion-TS's table)", "stocks"): (".102", "", "", ""),
    ("TimeGAN (in Diffusion-TS's table)", "energy"): (".236", "", "", ""),
    ("TimeVAE (in Diffusion-TS's table)", "sines"): (".041", "", "", ""),
    ("TimeVAE (in Diffusion-TS's table)", "stocks"): (".145", "", "", ""),
    ("TimeVAE (in Diffusion-TS's table)", "energy"): (".499", "", "", ""),
}


def _noise_variant(base_run: Path, kind: str, out: Path) -> None:
    """The base run's weights with ``observation_noise=kind`` fitted on its training split."""
    from factorseq.checkpoint import load, save_run
    from factorseq.config import build
    from factorseq.registry import get_model_class
    from factorseq.train.config import TrainConfig
    from factorseq.train.data import make_loader, scaled

    run = load(base_run)
    cls = get_model_class(run.config["model"])
    model = cls(build(cls.Config, {**run.config["model_config"], "observation_noise": kind}))
    missing, unexpected = model.load_state_dict(run.model.state_dict(), strict=False)
    assert not unexpected and set(missing) == {"noise_mean", "noise_chol"}, missing
    tc = build(TrainConfig, run.config["train_config"], what="train config")
    train_raw = run.splits().train  # the base run's saved split (legacy runs: re-derived)
    model.eval()
    model.on_fit_end(make_loader(scaled(train_raw, run.scaler), 1024, shuffle=False, seed=0))
    save_run(out, model, run.scaler, run.config["data_schema"], run.data_config, tc,
             {"status": "trained", "training": {**run.config["training"],
                                                "noise_from": str(base_run)}}, run.split)


def _sampling_speed(run: Path, n: int, cell: Path) -> float:
    t0 = time.perf_counter()
    subprocess.run([EXE, "sample", str(run), "--n", str(n), "--out", str(cell / "s.npz"),
                    "--force"], check=True)
    (cell / "s.npz").unlink(missing_ok=True)
    return round(n / (time.perf_counter() - t0), 1)


def run_cell(name: str, data: str, repeats: int, minutes: float | None = None) -> dict:
    cell = OUT / f"{data}_{name.replace('+', '_')}"
    result = cell / "result.json"
    if result.is_file():
        return json.loads(result.read_text())
    cell.mkdir(parents=True, exist_ok=True)
    run, metrics, extra = cell / "run", cell / "metrics.json", {}
    if "+" in name:  # a noise variant of the family cell's weights
        model, kind = name.split("+")
        fam.run_cell(model, data, repeats, train_only=True)
        if not (run / "config.json").is_file():
            _noise_variant(fam.OUT / f"{data}_{model}" / "run", kind, run)
    elif name == "diffusion_ts":
        if not (cell / "train.json").is_file():
            load0, t0 = os.getloadavg()[0], time.perf_counter()
            budget = ["--set", f"train.max_minutes={minutes}"] if minutes else []
            subprocess.run([EXE, "train", name, "--data", data, "--out", str(run), "--force",
                            "--seed", "0", "--set", "train.tensorboard=false", *budget],
                           check=True)
            (cell / "train.json").write_text(json.dumps(
                {"train_wall_s": round(time.perf_counter() - t0, 1),
                 "load_average_at_start": round(load0, 2), "max_minutes_set": minutes}))
        extra = json.loads((cell / "train.json").read_text())
    else:  # the family cell itself, scored with today's evaluator
        fam.run_cell(name, data, repeats, train_only=True)
        run = fam.OUT / f"{data}_{name}" / "run"
    if not metrics.is_file():
        subprocess.run([EXE, "evaluate", str(run), "--out", str(metrics), "--repeats",
                        str(repeats), "--force"], check=True)
    cfg = json.loads((run / "config.json").read_text())
    res = {"cell": name, "data": data, **extra, "training": cfg["training"],
           "sampling_windows_per_s": _sampling_speed(run, 5000, cell),
           "metrics": json.loads(metrics.read_text())}
    result.write_text(json.dumps(res, indent=2))
    return res


def _ms(m: dict, key: str) -> str:
    v = m.get(key)
    return f"{v['mean']:.3f} ± {v['std']:.3f}" if isinstance(v, dict) and "mean" in v else "—"


def table() -> str:
    head = ("| data | model | disc ↓ | pred ↓ | Context-FID ↓ | correlational ↓ | DCR share | "
            "membership AUC | train min | sampling win/s |")
    lines = [head, "|" + "---|" * 10]
    for data in fam.DATA:
        for name in CELLS:
            f = OUT / f"{data}_{name.replace('+', '_')}" / "result.json"
            if not f.is_file():
                lines.append(f"| {data} | {name} | not run | | | | | | | |")
                continue
            r = json.loads(f.read_text())
            m = r["metrics"]
            dcr = m.get("dcr") or {}
            share = dcr.get("share_below_holdout_p5")
            lines.append(
                f"| {data} | {name} | {_ms(m, 'discriminative')} | {_ms(m, 'predictive')} | "
                f"{_ms(m, 'context_fid')} | {_ms(m, 'correlational')} | "
                f"{'—' if share is None else f'{share:.3f}'} | {_ms(m, 'membership_auc')} | "
                f"{r['training']['train_seconds'] / 60:.1f} | "
                f"{r['sampling_windows_per_s']:,.0f} |")
        for (row, d), (disc, pred, fid, corr) in PAPER.items():
            if d == data:
                lines.append(f"| {data} | *{row}, published* | {disc} | {pred} | {fid} | {corr} "
                             "| | | | |")
    from factorseq.metrics.scoring import stale_note  # results of older scoring rules

    return "\n".join(lines) + stale_note(OUT.glob("*/result.json"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cells", nargs="+", default=CELLS)
    ap.add_argument("--data", nargs="+", default=fam.DATA)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--table", action="store_true", help="print the markdown table and exit")
    ap.add_argument("--diffusion-minutes", type=float, default=None,
                    help="train.max_minutes for diffusion_ts cells (default: its own budget)")
    args = ap.parse_args()
    if args.table:
        print(table())
        return
    for data in args.data:
        for name in args.cells:
            m = run_cell(name, data, args.repeats, args.diffusion_minutes)["metrics"]
            print(f"{data} {name}: disc {_ms(m, 'discriminative')} "
                  f"fid {_ms(m, 'context_fid')}", flush=True)


if __name__ == "__main__":
    main()
