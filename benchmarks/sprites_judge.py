"""Train (or find in the cache) the Sprites protocol's judge for a data set and print its
accuracy on the real test split, before any model is scored: the judge depends on the data
only, so every ``factorseq evaluate RUN`` of the ``sprites`` evaluator with the same options
reuses it (``<cache>/judges/<key>.safetensors`` + ``.json``).

    python benchmarks/sprites_judge.py --size 32
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np

from factorseq.data import DataConfig, load_data
from factorseq.metrics.judge import accuracies, judge_probs, load_or_train
from factorseq.metrics.swap import SwapOptions


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0, help="the evaluator's --seed")
    args = ap.parse_args()
    t0 = time.perf_counter()
    data = load_data(DataConfig(source="sprites", options={"size": args.size}))
    t1 = time.perf_counter()
    roles = data.meta["factors"]
    names = [*roles["static"], *roles["dynamic"]]
    opts = SwapOptions()
    judge, info = load_or_train(data.x, {k: data.extras[k] for k in names},
                                data.meta["frame_shape"], data.meta["factor_classes"],
                                opts.judge(args.seed), name=data.name, folder=opts.cache())
    t2 = time.perf_counter()
    test = data.test
    acc = accuracies(judge_probs(judge, test.x), {k: np.asarray(test.extras[k]) for k in names})
    print(json.dumps({"size": args.size, "judge_test_accuracy": acc, "judge": info,
                      "seconds": {"data": round(t1 - t0, 1), "judge": round(t2 - t1, 1)}},
                     indent=2))


if __name__ == "__main__":
    main()
