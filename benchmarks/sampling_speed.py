"""Synthetic windows per second of a trained run (prior sampling, decode, batched, no grad).

    python benchmarks/sampling_speed.py RUN [--n 100000] [--threads 1 2] [--json OUT]

``--json``: the speeds as a result file (``harness.record``: command, load average).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import harness
import torch

from factorseq import load


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("run")
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    run = load(a.run)
    t = run.schema["seq_len"]
    run.sample(1000)  # warm-up
    speeds = []
    for threads in a.threads:
        torch.set_num_threads(threads)
        best = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            run.sample(a.n)  # the library's own batching, as a user gets it
            best = min(best, time.perf_counter() - t0)
        print(f"{run.config['model']} threads={threads} n={a.n}: {a.n / best:,.0f} windows/s, "
              f"{a.n * t / best:,.0f} time steps/s (best of 3, {best:.2f}s)")
        speeds.append({"threads": threads, "windows_per_s": round(a.n / best, 1),
                       "time_steps_per_s": round(a.n * t / best, 1), "best_s": round(best, 3)})
    if a.json:
        harness.record(a.json, {"run": a.run, "model": run.config["model"], "n": a.n,
                                "seq_len": t, "speeds": speeds})


if __name__ == "__main__":
    main()
