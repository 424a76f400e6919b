"""Synthetic windows per second of a trained run (prior sampling, decode, batched, no grad).

    python benchmarks/sampling_speed.py RUN [--n 100000] [--threads 1 2]
"""
from __future__ import annotations

import argparse
import time

import torch

from factorseq import load


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("run")
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--batch-size", type=int, default=8192)
    a = ap.parse_args()
    run = load(a.run)
    t = run.schema["seq_len"]
    run.sample(1000)  # warm-up
    for threads in a.threads:
        torch.set_num_threads(threads)
        best = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            run.sample(a.n, batch_size=a.batch_size)
            best = min(best, time.perf_counter() - t0)
        print(f"{run.config['model']} threads={threads} n={a.n}: {a.n / best:,.0f} windows/s, "
              f"{a.n * t / best:,.0f} time steps/s (best of 3, {best:.2f}s)")


if __name__ == "__main__":
    main()
