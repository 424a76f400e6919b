"""Where InfoGAN's categorical code is lost (issue #25), for a run trained on known-factors.

Three readings, all through the public contract (``Run.generate`` / ``Run.encode``):

- ``q_on_fakes``: Q's argmax on windows generated with each category held (the variational
  bound's own accuracy: low = L_I is not being maximised, the code does not reach Q);
- ``g_category_<factor>``: probes of each known factor (logistic regression on real training
  windows) read the generated windows; matched accuracy of the held category against the
  probe's class (high = the generator ties the category to that factor);
- ``q_on_reals_<factor>``: Q's argmax on the real test windows against the true factor (the
  reported ``category_accuracy``; high G-side but low here = Q does not transfer to reals).

    python benchmarks/infogan_diagnose.py RUN [RUN ...] [--n 400]      # JSON lines
    python benchmarks/infogan_diagnose.py record CELL [CELL ...] [--seed 0] [--n 400]
    python benchmarks/infogan_diagnose.py table

``record`` reads the run of a kept cell of the disentanglement study (``benchmarks/out/
disentanglement/CELL/sSEED/run``, the training its committed result names) and keeps the
readings with ``harness.record`` as benchmarks/results/infogan_diagnose/CELL_sSEED.json; a
reading is not a cell (it evaluates a cell's training a second time, as fhvae_invariance's
probes). ``table`` renders those files only (BENCHMARKS.md section 12).
"""
from __future__ import annotations

import argparse
import json
import sys

import harness
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


STUDY = "infogan_diagnose"
CELLS = "disentanglement"  # the study whose cells' runs are read


def record(cell: str, seed: int, n: int) -> dict:
    """The readings of the kept cell's run, kept with the training command they read."""
    kept = harness.kept(CELLS, cell).get(seed)
    if kept is None:
        raise SystemExit(f"error: {cell} seed {seed} has no kept result in {CELLS}: run "
                         f"`disentanglement_table.py run --cells {cell} --seeds {seed}` first")
    run = harness.REPO / harness.OUT / CELLS / cell / f"s{seed}" / "run"
    stored = harness.results(CELLS, cell, root=harness.REPO).get(seed, {})
    if stored.get("train_command") != kept["train_command"]:  # the run is not that training
        raise SystemExit(f"error: {run} is not the training {cell} seed {seed}'s result names")
    out = diagnose(str(run), n)
    harness.record(harness.RESULTS / STUDY / f"{cell}_s{seed}.json",
                   {"cell": cell, "seed": seed, "train_command": kept["train_command"],
                    "n_per_category": n, "metrics": out})
    return out


def _row(label: str, readings: list[dict], text) -> str:
    return f"| {label} | " + " | ".join(text(r) for r in readings) + " |"


def table(pattern: str = "", seed: int = 0) -> str:
    """Markdown from the kept readings of the cells whose name ``pattern`` finds: one column
    per cell (its seed ``seed``), one row per reading; the real-test probe of each factor
    beside (the first column's: the probe is fitted on the corpus, not on the run)."""
    found = {c: r[seed]["metrics"] for c in harness.cell_names(STUDY, pattern)
             if seed in (r := harness.kept(STUDY, c))}
    if not found:
        return "(no readings kept yet)\n"
    rs = list(found.values())
    shown = ("regime", "mixing", "shape", "amplitude", "frequency", "phase")

    def best(r: dict) -> str:
        f = max(FACTORS, key=lambda f: r[f"q_on_reals_{f}"])
        return f"{r[f'q_on_reals_{f}']:.3f} ({f})"

    lines = ["| reading | " + " | ".join(f"`{c}` s{seed}" for c in found) + " | probe on real "
             "test windows |", "|---|" + "---|" * (len(found) + 1),
             _row("Q's argmax on generated windows = held category", rs,
                  lambda r: f"{r['q_on_fakes']:.3f}") + " |"]
    for f in shown:
        lines.append(_row(f"generated category -> {f} (matched acc.)", rs,
                          lambda r, f=f: f"{r[f'g_category_{f}']:.3f}")
                     + f" {rs[0][f'probe_real_test_{f}']:.3f} |")
    lines.append(_row("Q's argmax on real test windows -> best factor", rs, best) + " |")
    lines.append(_row("categories used on real test windows", rs,
                      lambda r: "/".join(map(str, r["q_real_category_counts"]))) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    if argv[:1] == ["table"]:
        sys.stdout.write(table(*argv[1:2]))
        return 0
    if argv[:1] == ["record"]:
        ap = argparse.ArgumentParser(prog="infogan_diagnose.py record")
        ap.add_argument("cells", nargs="+")
        ap.add_argument("--seed", type=int, default=0)
        ap.add_argument("--n", type=int, default=400, help="generated windows per category")
        a = ap.parse_args(argv[1:])
        for c in a.cells:
            print(json.dumps(record(c, a.seed, a.n)), flush=True)
        return 0
    ap = argparse.ArgumentParser()
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--n", type=int, default=400, help="generated windows per category")
    a = ap.parse_args(argv)
    for r in a.runs:
        print(json.dumps(diagnose(r, a.n)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
