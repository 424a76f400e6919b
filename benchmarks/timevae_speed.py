"""TimeVAE throughput on CPU: training windows/s and sampling time steps/s.

Usage: ``python benchmarks/timevae_speed.py --threads 1`` (run once per thread count; the
numbers go in BENCHMARKS.md). Training step = loss (reparameterised sample, conv encoder,
level/trend/seasonal/residual decoder) + backward + Adam step on (16, 24, 6) windows; sampling
draws n windows z ~ N(0, I) -> decode in one batch.
"""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import harness
import torch

from factorseq.models.timevae import TimeVAE, TimeVAEConfig


def bench(threads: int, steps: int, n_samples: int, custom_seas: list) -> dict:
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    cfg = TimeVAEConfig(seq_len=24, n_features=6, custom_seas=custom_seas)
    model = TimeVAE(cfg)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.rand(16, 24, 6)

    def step() -> None:
        out = model.loss({"x": x})
        opt.zero_grad(set_to_none=True)
        out["loss"].backward()
        opt.step()

    for _ in range(20):  # warm-up
        step()
    runs = []
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        runs.append(16 * steps / (time.perf_counter() - t0))
    model.eval()
    model.sample(100)
    samp = []
    for seed in range(3):
        g = torch.Generator().manual_seed(seed)
        t0 = time.perf_counter()
        model.sample(n_samples, generator=g)
        samp.append(n_samples * 24 / (time.perf_counter() - t0))
    return {"threads": threads, "custom_seas": custom_seas,
            "train_windows_per_s": statistics.median(runs),
            "sample_steps_per_s": statistics.median(samp)}


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--n", type=int, default=10000)
    p.add_argument("--seas", action="store_true", help="add custom_seas [[6, 4]]")
    p.add_argument("--json", type=Path, help="write the result file here (harness.record)")
    a = p.parse_args()
    r = bench(a.threads, a.steps, a.n, [[6, 4]] if a.seas else [])
    if a.json:
        harness.record(a.json, {"steps": a.steps, "n": a.n, **r})
    print(f"threads={r['threads']} custom_seas={r['custom_seas']} "
          f"train={r['train_windows_per_s']:.0f} windows/s "
          f"sample={r['sample_steps_per_s']:.3g} time steps/s")
