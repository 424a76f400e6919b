"""Speed and quality study of ``diffusion_ts`` on 2 CPU cores (issue #10).

Subcommands (run from the repository root with ``PYTHONPATH=src``):

- ``speed``: milliseconds per training step (forward + backward + Adam) and denoiser calls
  per second while sampling, for denoiser sizes on (T=24, D) windows; wall and CPU time, with
  the machine's load average (the cores are shared).
- ``score RUN``: draw as many windows as the run's *validation split* holds with a chosen
  sampler, and score them against those held-out real windows with the TimeGAN
  discriminative score (several seeds). This is how settings are chosen: never on the
  all-window test numbers that ``factorseq evaluate`` reports.

Examples::

    python benchmarks/diffusion_study.py speed --threads 1 --features 28
    python benchmarks/diffusion_study.py score RUN --sampler ddim --steps 50 --eta 0 \\
        --seeds 3 --out benchmarks/out/diffusion/score.jsonl
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from factorseq.checkpoint import Run, load, read_config, read_split
from factorseq.config import build
from factorseq.data.scaler import Scaler
from factorseq.errors import FactorseqError
from factorseq.metrics.evaluators import protocol_scaler
from factorseq.metrics.timegan import discriminative_scores
from factorseq.models.diffusion_ts import DiffusionTS, DiffusionTSConfig
from factorseq.registry import get_model_class

SIZES = {  # name: denoiser overrides
    "paper-energy": {"preset": "energy"},
    "d96-2+2": {"d_model": 96, "enc_layers": 2, "dec_layers": 2},
    "d64-2+2": {"d_model": 64, "enc_layers": 2, "dec_layers": 2},
    "d64-1+2": {"d_model": 64, "enc_layers": 1, "dec_layers": 2},
    "d48-1+1": {"d_model": 48, "enc_layers": 1, "dec_layers": 1},
}


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def load_avg() -> float:
    return round(os.getloadavg()[0], 2)


def speed(args: argparse.Namespace) -> list[dict]:
    torch.set_num_threads(args.threads)
    rows = []
    for name in args.sizes:
        torch.manual_seed(0)
        model = DiffusionTS(DiffusionTSConfig(seq_len=24, n_features=args.features,
                                              **SIZES[name]))
        opt = torch.optim.Adam(model.denoiser.parameters(), 1e-3)
        x = torch.rand(args.batch, 24, args.features)
        for i in range(args.repeats + 3):
            if i == 3:
                w0, c0 = time.perf_counter(), cpu_seconds()
            loss = model.loss({"x": x})["loss"]
            opt.zero_grad()
            loss.backward()
            opt.step()
        wall, cpu = time.perf_counter() - w0, cpu_seconds() - c0
        xb, t = torch.randn(args.sample_batch, 24, args.features), None
        t = torch.zeros(args.sample_batch, dtype=torch.long)
        with torch.inference_mode():
            model.denoiser(xb, t)
            w1, c1 = time.perf_counter(), cpu_seconds()
            for _ in range(3):
                model.denoiser(xb, t)
            swall, scpu = (time.perf_counter() - w1) / 3, (cpu_seconds() - c1) / 3
        rows.append({"size": name, "params": sum(p.numel() for p in model.denoiser.parameters()),
                     "threads": args.threads, "batch": args.batch,
                     "train_ms_per_step": round(1000 * wall / args.repeats, 1),
                     "train_cpu_ms_per_step": round(1000 * cpu / args.repeats, 1),
                     "sample_window_calls_per_s": round(args.sample_batch / swall),
                     "sample_window_calls_per_cpu_s": round(args.sample_batch / scpu),
                     "load": load_avg()})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def validation_windows(run, raw: bool = False, complete: bool = False) -> np.ndarray:
    """The run's validation windows (its saved split), in the run's scaled space, or in the
    data's units with ``raw``. ``complete``: for a run trained with values hidden on purpose
    (``data.remove_rate``), the same windows with nothing hidden."""
    data = run.load_data(run.data_config.source) if complete else None
    try:
        val = run.splits(data).val  # the same windows read without the removal: same split
    except FactorseqError as e:
        raise SystemExit(str(e)) from None
    if val is None:
        raise SystemExit("the run has no validation split (val_fraction 0)")
    return np.asarray(val.x if raw else run.scaler.transform(val.x), dtype=np.float32)


def protocol_space(run, real: np.ndarray, synth: np.ndarray, complete: bool = False
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Scaled validation windows and samples in the space ``factorseq evaluate`` scores in:
    the MinMax space of all the run's windows (``complete``: read without the values hidden on
    purpose; ``protocol_scaler``: the run's own when it is that one); raw units when the data
    set declares it (TimeGAN's sines)."""
    if run.config["data_schema"].get("meta", {}).get("eval_space") == "raw":
        return run.scaler.inverse_transform(real), run.scaler.inverse_transform(synth)
    mm = protocol_scaler(run.scaler, run.load_data(
        run.data_config.source if complete else None).x)
    if mm is run.scaler:
        return real, synth
    return (mm.transform(run.scaler.inverse_transform(a)) for a in (real, synth))


def post_process(run, raw: np.ndarray, snap: bool) -> np.ndarray:
    """Samples (data units) clipped to each feature's training range and, with ``snap``,
    rounded onto the feature's lattice when all its training values lie on one (a + k * step,
    step the smallest gap between distinct values, at most 10,000 levels): what tabular
    synthesizers do for integer columns, learnt from the data, no column named."""
    x = np.asarray(run.load_data().x, dtype=np.float64)
    flat = x.reshape(-1, x.shape[-1])
    lo, hi = np.nanmin(flat, 0), np.nanmax(flat, 0)
    out = np.clip(np.asarray(raw, dtype=np.float64), lo, hi)
    for j in range(flat.shape[1]) if snap else ():
        u = np.unique(flat[:, j][np.isfinite(flat[:, j])])
        step = np.diff(u).min() if len(u) > 1 else 0.0
        if step <= 0 or (u[-1] - u[0]) / step > 1e4:
            continue
        k = (u - u[0]) / step
        if np.abs(k - np.round(k)).max() < 1e-3:
            out[..., j] = u[0] + np.round((out[..., j] - u[0]) / step) * step
    return out.astype(np.float32)


def load_run(path: Path, ckpt: Path | None):
    """The run at ``path``; with ``ckpt`` (a Lightning checkpoint of a run still training) its
    weights replace the saved ones, so that a run can be scored along the way."""
    if ckpt is None:
        return load(path)
    cfg = read_config(path)
    cls = get_model_class(cfg["model"])
    model = cls(build(cls.Config, cfg["model_config"]))
    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    model.load_state_dict({k.removeprefix("model."): v for k, v in state["state_dict"].items()})
    model.eval()
    return Run(path=path, model=model, scaler=Scaler.from_dict(cfg["scaler"]), config=cfg,
               split=read_split(path, cfg))


def score(args: argparse.Namespace) -> dict:
    torch.set_num_threads(args.threads)
    run = load_run(args.run, args.ckpt)
    real = validation_windows(run, complete=args.complete_real)
    n = args.n or len(real)
    g = torch.Generator().manual_seed(args.sample_seed)
    w0, c0 = time.perf_counter(), cpu_seconds()
    with torch.inference_mode():
        chunks = [run.model.draw(min(4096, n - i), g, sampler=args.sampler, steps=args.steps,
                                   eta=args.eta, spacing=args.spacing).numpy()
                  for i in range(0, n, 4096)]
    wall, cpu = time.perf_counter() - w0, cpu_seconds() - c0
    synth = np.concatenate(chunks).astype(np.float32)
    if args.post != "none":
        synth = run.scaler.transform(post_process(run, run.scaler.inverse_transform(synth),
                                                  snap=args.post == "snap"))
    real, synth = protocol_space(run, real, synth, complete=args.complete_real)
    disc = discriminative_scores(real, synth, seeds=list(range(args.seeds)),
                                 iterations=args.iterations)
    row = {"run": str(args.run), "ckpt": str(args.ckpt) if args.ckpt else None,
           "step": int(run.model.ema_updates) * run.model.config.ema_every,
           "sampler": args.sampler, "steps": args.steps, "eta": args.eta,
           "spacing": args.spacing, "post": args.post, "complete_real": args.complete_real,
           "n": n, "disc_mean": round(float(np.mean(disc)), 4),
           "disc_std": round(float(np.std(disc)), 4), "disc": [round(d, 4) for d in disc],
           "sample_wall_s": round(wall, 1), "sample_cpu_s": round(cpu, 1),
           "windows_per_s": round(n / wall, 1), "threads": args.threads, "load": load_avg(),
           "train": run.config.get("training", {}).get("train_seconds")}
    print(json.dumps(row), flush=True)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        with open(args.out, "a") as f:
            f.write(json.dumps(row) + "\n")
    return row


def factorseq(*args: object) -> tuple[float, str]:
    """Run the ``factorseq`` CLI of this checkout; (wall seconds, stdout)."""
    cmd = [sys.executable, "-m", "factorseq.cli", *map(str, args)]
    t0 = time.perf_counter()
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return time.perf_counter() - t0, out.stdout


def table(args: argparse.Namespace) -> dict:
    """Train with the defaults, evaluate (TimeGAN protocol, all windows), time sampling of
    as many windows as the data holds, and score the fast sampler against the full one on the
    validation split: one JSON row per data set in ``--out``."""
    run = Path(args.root) / args.data
    row: dict = {"data": args.data, "load_before": load_avg()}
    if not (run / "model.safetensors").is_file():
        row["train_wall_s"], _ = factorseq("train", "diffusion_ts", "--data", args.data,
                                           "--out", run, "--force", *args.extra)
    cfg = json.loads((run / "config.json").read_text())
    row["training"] = cfg["training"]
    row["model_config"] = cfg["model_config"]
    n = load(run).load_data().n_windows  # as many windows as the data holds
    w, out = factorseq("sample", run, "--n", n, "--out", run / "samples.npz", "--force")
    row.update(sample_n=n, sample_wall_s=round(w, 1), sample_stdout=out.strip(),
               load_sample=load_avg())
    w, _ = factorseq("evaluate", run, "--out", run / "metrics.json", "--repeats", 5,
                     "--force")
    row["metrics"] = json.loads((run / "metrics.json").read_text())
    row["evaluate_wall_s"] = round(w, 1)
    for sampler in args.compare:
        name, _, steps = sampler.partition(":")
        ns = argparse.Namespace(run=run, ckpt=None, sampler=name, steps=int(steps) if steps
                                else None, eta=None, spacing=None, n=args.compare_n,
                                seeds=3, iterations=2000, sample_seed=0, threads=1, out=None)
        row.setdefault("samplers", []).append(score(ns))
    print(json.dumps(row), flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "a") as f:
        f.write(json.dumps(row) + "\n")
    return row


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    sp = sub.add_parser("speed")
    sp.add_argument("--threads", type=int, default=1)
    sp.add_argument("--features", type=int, default=28)
    sp.add_argument("--batch", type=int, default=64)
    sp.add_argument("--sample-batch", type=int, default=4096)
    sp.add_argument("--repeats", type=int, default=20)
    sp.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    sc = sub.add_parser("score")
    sc.add_argument("run", type=Path)
    sc.add_argument("--ckpt", type=Path, default=None, help="Lightning checkpoint to score")
    sc.add_argument("--sampler", default=None, choices=["ddim", "ancestral"])
    sc.add_argument("--steps", type=int, default=None)
    sc.add_argument("--eta", type=float, default=None)
    sc.add_argument("--spacing", default=None, choices=["linear", "quadratic"])
    sc.add_argument("--n", type=int, default=None, help="windows (default: validation size)")
    sc.add_argument("--complete-real", action="store_true",
                    help="score against the validation windows without the values a "
                         "gappy run hid on purpose (data.remove_rate)")
    sc.add_argument("--seeds", type=int, default=3)
    sc.add_argument("--post", default="none", choices=["none", "clip", "snap"],
                    help="clip samples to the training range / also snap them to its lattice")
    sc.add_argument("--iterations", type=int, default=2000)
    sc.add_argument("--sample-seed", type=int, default=0)
    sc.add_argument("--threads", type=int, default=1)
    sc.add_argument("--out", default=None, help="append the JSON row to this file")
    tb = sub.add_parser("table")
    tb.add_argument("data")
    tb.add_argument("--root", default="benchmarks/out/diffusion")
    tb.add_argument("--out", default="benchmarks/out/diffusion/table.jsonl")
    tb.add_argument("--compare", nargs="*", default=["ddim", "ancestral"],
                    help="samplers scored on the validation split, e.g. ddim:20 ancestral")
    tb.add_argument("--compare-n", type=int, default=None)
    tb.add_argument("extra", nargs="*", help="more train options after --")
    args = p.parse_args(argv)
    {"speed": speed, "score": score, "table": table}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
