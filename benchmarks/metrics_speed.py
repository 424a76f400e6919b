"""Seconds of TimeGAN's scores at the protocol's sizes on stockv (3919, 24, 6).

Measures one discriminative run (2000 iterations), one predictive run (5000 iterations), the
same with ``repeats`` side by side, and the full ``generative`` evaluation's three trainings
(predictive, predictive on real, discriminative) serially and, with ``--processes 2``, in
spawned processes. Synthetic windows are a perturbed copy of the real ones (the timing does
not depend on the model). Usage: ``python benchmarks/metrics_speed.py [--repeats 5]``.
"""
from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

from factorseq.data import DataConfig, load_data
from factorseq.metrics import (
    discriminative_score,
    discriminative_scores,
    predictive_score,
    predictive_scores,
)
from factorseq.metrics.evaluators import build_evaluator, protocol_minmax


class _Run:
    """The part of a checkpoint.Run the evaluator needs, around fixed synthetic windows."""

    def __init__(self, data, synthetic):
        self.scaler = protocol_minmax(data.x)
        self._data, self._syn = data, synthetic

    def load_data(self, source=None):
        return self._data

    def sample(self, n, seed=0):
        return self._syn[:n]


def timed(fn, *args, **kw):
    t = time.perf_counter()
    out = fn(*args, **kw)
    return out, round(time.perf_counter() - t, 2)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--processes", type=int, default=2)
    args = ap.parse_args()
    data = load_data(DataConfig(source="stockv"))
    real = protocol_minmax(data.x).transform(data.x)
    rng = np.random.default_rng(0)
    syn = np.clip(real[rng.permutation(len(real))]
                  + rng.normal(0, 0.05, real.shape).astype(np.float32), 0, 1)
    seeds = list(range(args.repeats))
    res: dict[str, object] = {"shape": list(real.shape), "load_avg": os.getloadavg()[0]}
    res["disc_1_run_s"] = timed(discriminative_score, real, syn)[1]
    res["pred_1_run_s"] = timed(predictive_score, syn, real)[1]
    res[f"disc_{args.repeats}_side_by_side_s"] = timed(discriminative_scores, real, syn,
                                                       seeds=seeds)[1]
    res[f"pred_{args.repeats}_side_by_side_s"] = timed(predictive_scores, syn, real,
                                                       seeds=seeds)[1]
    run = _Run(data, syn)  # sample() returns scaled windows, as checkpoint.Run does
    for p in (1, args.processes):
        ev = build_evaluator(run, data, "generative", repeats=args.repeats, processes=p)
        out, s = timed(ev.evaluate)
        res[f"evaluate_{args.repeats}_repeats_processes_{p}_s"] = s
        res[f"scores_processes_{p}"] = {k: out[k]["mean"] for k in
                                        ("discriminative", "predictive", "predictive_real")}
    res["load_avg_end"] = os.getloadavg()[0]
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
