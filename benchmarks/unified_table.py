"""Section 7 of BENCHMARKS.md as a study over the benchmark harness (``harness.py``, issue #22):
Hu et al.'s transferred techniques on sequences, ``iwgan`` against ``gan`` and ``aavae``
against ``vae`` on sines, stocks and energy over training seeds.

Its cells are ``tables.py``'s ``timegan_family`` cells of those four models (the family budget,
every score of the generative evaluator, 5 metric repeats): ``run`` trains and scores them
through the harness (a cell whose commands and scoring version are current is skipped, a stale
one re-scored) and keeps them in ``benchmarks/results/timegan_family/``; for ``iwgan`` and
``aavae`` it also keeps the epoch means of the training log's weights
(``benchmarks/results/unified/weights_<cell>_s<seed>.json``). ``table`` renders the pairs
table and the weights table from those committed files only. ``gradients`` and ``spread``
load the cells' trained runs and keep what they compute in ``benchmarks/results/unified/``.

    nice -n 15 python benchmarks/unified_table.py run [--seeds 0 1 2] [--models ...] [--data ...]
    python benchmarks/unified_table.py table
    nice -n 15 python benchmarks/unified_table.py gradients [--seeds 0] [--data ...]
    nice -n 15 python benchmarks/unified_table.py spread [--seeds 0] [--models ...] [--data ...]
"""
from __future__ import annotations

import argparse
import csv
import statistics
import sys
from pathlib import Path

import harness
import tables

STUDY = "timegan_family"
DATA = tuple(tables.FAMILY_EPOCHS)  # sines, stocks, energy
PAIRS = [("gan", "iwgan"), ("vae", "aavae")]  # (baseline, weighted)
MODELS = [m for p in PAIRS for m in p]
# (metrics key, column head): lower is better for the first four; membership AUC is 0.5 and
# DCR's share of synthetic windows closer to the training set than 95 % of held-out windows
# is 0.05 when nothing is copied
SCORES = [("discriminative", "discriminative ↓"), ("predictive", "predictive ↓"),
          ("context_fid", "Context-FID ↓"), ("correlational", "correlational ↓"),
          ("membership_auc", "membership AUC (0.5)"), ("dcr", "DCR share < p5 (0.05)")]
WEIGHT_LOGS = {"iwgan": ["train_iw_ess"], "aavae": ["train_w_real", "train_w_fake"]}
DIGITS = {"cosine": 6, "relative_difference": 4}  # the printed rows; spread's: 3


def cell(model: str, data: str, seed: int) -> harness.Cell:
    """The study's cell: timegan_family's, never one of its own."""
    return tables.cell(STUDY, f"{model}:{data}", seed)


def _unified() -> Path:
    return harness.RESULTS / "unified"  # read at call time: tests point RESULTS elsewhere


def value(r: dict, score: str) -> float | None:
    """A cell's mean over metric repeats of ``score`` (DCR: its share below the held-out 5th
    percentile); ``val``: its best validation loss."""
    if score == "val":
        return r["training"].get("best_score")
    m = r["metrics"].get(score) or {}
    return m.get("share_below_holdout_p5") if score == "dcr" else m.get("mean")


def _pm(vals: list[float], digits: int = 3) -> str:
    return harness.pm(vals, digits) or "—"


def table() -> str:
    """Per (data, model): mean ± sample std over seeds of each seed's 5-repeat mean (n seeds);
    per pair: the paired difference weighted - baseline over the seeds both have."""
    keys = [k for k, _ in SCORES]
    head = " | ".join(h for _, h in SCORES)
    lines = [f"| data | model | seeds | {head} | mean repeat std (disc) | best val loss | "
             "epochs run | train s |", "|---|---|---|" + "---|" * (len(keys) + 4)]
    for data in DATA:
        for base, new in PAIRS:
            kept = {m: harness.kept(STUDY, cell(m, data, 0).name) for m in (base, new)}
            for model in (base, new):
                rs = [kept[model][s] for s in sorted(kept[model])]
                if not rs:
                    continue
                cols = [_pm([v for r in rs if (v := value(r, k)) is not None]) for k in keys]
                stds = [r["metrics"]["discriminative"]["std"] for r in rs]
                rep = f"{statistics.mean(stds):.3f}"  # the metric repeats' std: not a seed spread
                # the vae's validation loss is its negative ELBO (nats up to a constant shared
                # by vae and aavae: the fixed decoder variance); adversarial runs keep none
                val = _pm([v for r in rs if (v := value(r, "val")) is not None])
                ep = "/".join(str(r["training"]["epochs_run"]) for r in rs)
                secs = statistics.mean(r["training"]["train_seconds"] for r in rs)
                lines.append(f"| {data} | {model} | {len(rs)} | {' | '.join(cols)} | "
                             f"{rep} | {val} | {ep} | {secs:.0f} |")
            seeds = sorted(set(kept[base]) & set(kept[new]))
            if not seeds:
                continue
            diffs = []
            for s in [*keys, "val"]:
                pairs = [(value(kept[new][k], s), value(kept[base][k], s)) for k in seeds]
                diffs.append(_pm([a - b for a, b in pairs if a is not None and b is not None]))
            lines.append(f"| {data} | *{new} − {base} (paired by seed)* | {len(seeds)} | "
                         f"{' | '.join(diffs[:-1])} | | {diffs[-1]} | | |")
    return "\n".join(lines) + "\n"


def epoch_means(run: Path, key: str) -> list[float]:
    """Training-log epoch means of ``key`` (e.g. train_iw_ess), first epoch first."""
    with (run / "logs" / "metrics.csv").open() as f:
        return [float(r[key]) for r in csv.DictReader(f) if r.get(key)]


def keep_weights(c: harness.Cell, model: str, result: dict) -> Path | None:
    """The cell's weight logs (epoch means) as a result file in ``results/unified/``: the run
    folder is not committed, so the weights table reads this copy."""
    run = harness.REPO / c.folder / "run"
    if model not in WEIGHT_LOGS or not (run / "logs" / "metrics.csv").is_file():
        return None
    logs = {k: epoch_means(run, k) for k in WEIGHT_LOGS[model]}
    return harness.record(_unified() / f"weights_{c.name}_s{c.seed}.json",
                          {"cell": c.name, "seed": c.seed, "run": str(c.folder / "run"),
                           "train_command": result["train_command"], "epoch_means": logs})


def weights_table() -> str:
    """How far the weights were from the ablation's: iwgan's effective sample size / batch
    (1 = uniform = gan), aavae's mean D on real and generated windows (1 and 0 = the perfect
    discriminator = vae); in the last training epoch and in the epoch furthest from uniform
    weights (iwgan: the smallest ESS; aavae: the largest gap w_real - w_fake)."""
    lines = ["| data | model | seeds | last epoch | furthest from the ablation (over epochs) |",
             "|---|---|---|---|---|"]
    for data in DATA:
        for model, keys in WEIGHT_LOGS.items():
            found = harness.kept("unified", f"weights_{cell(model, data, 0).name}", _unified())
            logs = [g for s in sorted(found) if all((g := found[s]["epoch_means"]).values())]
            if not logs:
                continue
            digits = 6 if model == "iwgan" else 4  # iwgan's ESS stays within 1e-3 of 1
            last = ", ".join(f"{k.removeprefix('train_')} "
                             f"{_pm([g[k][-1] for g in logs], digits)}" for k in keys)
            if model == "iwgan":
                far = f"min iw_ess {_pm([min(g[keys[0]]) for g in logs], digits)}"
            else:
                far = "max w_real − w_fake " + _pm(
                    [max(a - b for a, b in zip(g[keys[0]], g[keys[1]], strict=True))
                     for g in logs], 4)
            lines.append(f"| {data} | {model} | {len(logs)} | {last} | {far} |")
    return "\n".join(lines) + "\n"


def gradient_gap(run_dir: Path, batches: int = 10, n: int = 128) -> dict[str, float]:
    """How far iwgan's generator step is from gan's for a trained gan or iwgan run: over
    ``batches`` noise batches of ``n`` windows, the cosine between the generator gradients of
    the importance-weighted loss and of the plain mean loss, and the relative norm of their
    difference (mean over batches; the same D and G for both)."""
    import torch

    import factorseq
    from factorseq.nn.adversarial import importance_weights, window_generator_loss

    model = factorseq.load(run_dir).model
    params = list(model.generator.parameters())
    gen = torch.Generator().manual_seed(0)
    cos, rel = [], []
    for _ in range(batches):
        logits = model.discriminate(model.fake(model.noise(n, gen)))
        per = window_generator_loss(logits)
        grads = [torch.cat([g.flatten() for g in torch.autograd.grad(loss, params,
                                                                     retain_graph=True)])
                 for loss in ((importance_weights(logits) * per).sum(), per.mean())]
        cos.append(float(torch.nn.functional.cosine_similarity(*grads, dim=0)))
        rel.append(float((grads[0] - grads[1]).norm() / grads[1].norm()))
    return {"cosine": statistics.mean(cos), "relative_difference": statistics.mean(rel)}


def spread(run_dir: Path, n: int = 1000) -> dict[str, float]:
    """Descriptive, not a score: the mean over features of the std across windows and of the
    std over time within a window, of ``n`` samples (seed 0) and of the real windows, scaled."""
    import numpy as np

    import factorseq

    run = factorseq.load(run_dir)
    fake = np.asarray(run.sample(n, seed=0, scaled=True))
    real = np.asarray(run.scaler.transform(np.asarray(run.load_data().x)))
    return {f"{name}_{axis}": float(a.std(i).mean()) for name, a in (("fake", fake),
            ("real", real)) for axis, i in (("across", 0), ("within", 1))}


def analyse(what: str, models: list[str], data: list[str], seeds: list[int]) -> Path:
    """``gradients`` or ``spread`` of every trained run among the cells, printed as table rows
    and kept as ``results/unified/<what>.json``."""
    import torch

    torch.set_num_threads(1)
    rows = {}
    for d in data:
        for model in models:
            for seed in seeds:
                c = cell(model, d, seed)
                run = harness.REPO / c.folder / "run"
                if not (run / "config.json").is_file():
                    print(f"{c.name}_s{seed}: not trained, left out", file=sys.stderr)
                    continue
                g = rows[f"{c.name}_s{seed}"] = (gradient_gap if what == "gradients"
                                                 else spread)(run)
                print(f"| {c.name}_s{seed} | " + " | ".join(
                    f"{v:.{DIGITS.get(k, 3)}f}" for k, v in g.items()) + " |", flush=True)
    return harness.record(_unified() / f"{what}.json", {"runs": rows})


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="verb", required=True)
    verbs = {"run": "train and score the cells (skipped when current), keep their results",
             "gradients": "iwgan vs gan generator gradients of the trained gan/iwgan runs",
             "spread": "std of samples across and within windows vs real (descriptive)"}
    for verb, text in verbs.items():
        p = sub.add_parser(verb, help=text)
        models = PAIRS[0] if verb == "gradients" else MODELS  # gradients: GANs only
        p.add_argument("--models", nargs="+", choices=models, default=list(models))
        p.add_argument("--data", nargs="+", choices=DATA, default=list(DATA))
        p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
        if verb == "run":
            p.add_argument("--train-only", action="store_true", help="train now, score later")
    sub.add_parser("table", help="the pairs and weights tables from the committed results")
    args = ap.parse_args(argv)
    if args.verb == "table":
        sys.stdout.write(table() + "\n" + weights_table())
        return 0
    if args.verb in ("gradients", "spread"):
        print(analyse(args.verb, args.models, args.data, args.seeds))
        return 0
    for seed in args.seeds:  # seed-major: every (data, model) gets seed 0 first
        for data in args.data:
            for model in args.models:
                c = cell(model, data, seed)
                result = harness.run_cell(c, train_only=args.train_only)
                if result is None:  # trained only
                    continue
                print(harness.keep(result, c), flush=True)
                if (weights := keep_weights(c, model, result)) is not None:
                    print(weights, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
