"""Which post-hoc GRU the TimeGAN protocol's published numbers were made with (issue #22,
part 6): the predictive score of the REAL data ("original data" in TimeGAN's Table 2), with
the TF1 GRUCell (TimeGAN's code) and the Keras/PyTorch cell, on sines, stocks and energy,
beside the published value. No model is involved: the real windows train and test. And
the discriminative score of one fixed stand-in "generator" (the real windows plus Gaussian
noise of std 0.05 in the [0, 1] space, other windows than the real half) under both cells,
to see whether the cell changes how well the post-hoc classifier separates.

    python benchmarks/gru_cells.py --out benchmarks/results/gru_cells.json [--seeds 0 1 2]
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from factorseq.data import DataConfig, load_data
from factorseq.metrics.evaluators import protocol_minmax
from factorseq.metrics.scoring import SCORING_VERSION, stamp, version_of
from factorseq.metrics.timegan import GRU_CELLS, discriminative_scores, predictive_table

# TimeGAN (Yoon et al. 2019) Table 2, "Original" row: predictive score of the real data
PUBLISHED = {"sines": 0.094, "stocks": 0.036, "energy": 0.250}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--sets", nargs="+", default=list(PUBLISHED))
    args = ap.parse_args()
    results = json.loads(args.out.read_text()) if args.out.is_file() else {}
    for name in args.sets:
        data = load_data(DataConfig(source=name))
        x = data.x if (data.meta or {}).get("eval_space") == "raw" else \
            protocol_minmax(data.x).transform(data.x)
        x = np.asarray(x, dtype=np.float32)
        for cell in GRU_CELLS:
            key = f"{name}/{cell}"
            if version_of(results.get(key)) == SCORING_VERSION:  # done under today's rules
                continue
            t0 = time.perf_counter()
            values = predictive_table({"real": x}, x, seeds=args.seeds, cell=cell)["real"]
            results[key] = stamp({"values": values, "mean": float(np.mean(values)),
                                  "std": float(np.std(values)), "published": PUBLISHED[name],
                                  "seconds": round(time.perf_counter() - t0, 1),
                                  "load": open("/proc/loadavg").read().split()[:3]})
            print(key, results[key], flush=True)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(results, indent=1))
        rng = np.random.default_rng(0)
        order = rng.permutation(len(x))
        half = len(x) // 2
        real = x[order[:half]]
        noisy = np.clip(x[order[half:2 * half]] + rng.normal(0, 0.05, real.shape), 0, 1)
        for cell in GRU_CELLS:
            key = f"{name}/{cell}/disc_noise0.05"
            if version_of(results.get(key)) == SCORING_VERSION:
                continue
            t0 = time.perf_counter()
            values = discriminative_scores(real, noisy.astype(np.float32), seeds=args.seeds,
                                           cell=cell)
            results[key] = stamp({"values": values, "mean": float(np.mean(values)),
                                  "std": float(np.std(values)),
                                  "seconds": round(time.perf_counter() - t0, 1),
                                  "load": open("/proc/loadavg").read().split()[:3]})
            print(key, results[key], flush=True)
            args.out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
