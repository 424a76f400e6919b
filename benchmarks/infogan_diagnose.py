"""Where InfoGAN's categorical code is lost (issue #25), for a run trained on known-factors.

Three readings, all through the public contract (``Run.generate`` / ``Run.encode``):

- ``q_on_fakes``: Q's argmax on windows generated with each category held (the variational
  bound's own accuracy: low = L_I is not being maximised, the code does not reach Q);
- ``g_category_<factor>``: probes of each known factor (logistic regression on real training
  windows) read the generated windows; matched accuracy of the held category against the
  probe's class (high = the generator ties the category to that factor);
- ``q_on_reals_<factor>``: Q's argmax on the real test windows against the true factor (the
  reported ``category_accuracy``; high G-side but low here = Q does not transfer to reals).

    python benchmarks/infogan_diagnose.py RUN [RUN ...] [--n 400]
"""
from __future__ import annotations

import argparse
import json

import numpy as np
from sklearn.linear_model import LogisticRegression

import factorseq as fs
from factorseq.metrics.disentanglement import matched_accuracy

FACTORS = ("shape", "mixing", "regime", "amplitude", "frequency", "phase")


def diagnose(run_dir: str, n: int) -> dict:
    run = fs.load(run_dir)
    data = run.load_data()
    k = run.model.config.n_categories
    rng = np.random.default_rng(0)
    tr = rng.choice(len(data.x), min(3000, len(data.x)), replace=False)
    x_tr = run.to_model(data.x[tr]).reshape(len(tr), -1)
    fakes = np.concatenate([run.generate(n, values={"c_cat": c}, seed=c, scaled=True)
                            for c in range(k)])
    held = np.repeat(np.arange(k), n)
    out = {"run": run_dir, "q_on_fakes": float(
        (run.encode(fakes, scaled=True)["c_cat"].argmax(1) == held).mean())}
    q_real = run.encode(data.test.x)["c_cat"].argmax(1)
    out["q_real_category_counts"] = np.bincount(q_real, minlength=k).tolist()
    for f in FACTORS:
        probe = LogisticRegression(max_iter=500).fit(x_tr, data.extras[f][tr])
        pred = probe.predict(fakes.reshape(len(fakes), -1))
        out[f"g_category_{f}"] = round(matched_accuracy(held, pred), 3)
        out[f"probe_real_test_{f}"] = round(float(probe.score(
            run.to_model(data.test.x).reshape(len(data.test.x), -1), data.test.extras[f])), 3)
        out[f"q_on_reals_{f}"] = round(matched_accuracy(q_real, data.test.extras[f]), 3)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--n", type=int, default=400, help="generated windows per category")
    a = ap.parse_args()
    for r in a.runs:
        print(json.dumps(diagnose(r, a.n)), flush=True)


if __name__ == "__main__":
    main()
