"""Hu et al.'s transferred techniques on sequences: ``iwgan`` against ``gan`` and ``aavae``
against ``vae`` on sines, stocks and energy, 3 training seeds, the family table's budget and
scores (TimeGAN's discriminative and predictive, 5 metric repeats; any further scores the
generative evaluator writes are kept in each cell's metrics.json).

Every cell is ``factorseq train`` -> ``factorseq evaluate`` (family_table.run_cell) into
benchmarks/out/unified/<data>_<model>_s<seed>/; finished cells are skipped, so an interrupted
run continues where it stopped, and a cell being worked on holds a lock file (with its pid), so
two processes can share the list. ``--table`` prints the markdown tables.

Cells scored before the generative evaluator computed the fidelity and privacy scores
(Context-FID, correlational, DCR, membership AUC) get them with ``--fidelity``: the same
evaluator code on the same run, real and synthetic windows and metric seeds (the synthetic
windows are drawn again with the evaluator's seed, so they are the windows the earlier scores
saw); the discriminative and predictive scores are left as they were.

    nice -n 15 python benchmarks/unified_table.py [--seeds 0 1 2] [--models ...] [--data ...]
    nice -n 15 python benchmarks/unified_table.py --fidelity
    python benchmarks/unified_table.py --table
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
from pathlib import Path

from family_table import DATA, EPOCHS, run_cell

ROOT = Path(__file__).resolve().parent
OUT = ROOT / "out" / "unified"
PAIRS = [("gan", "iwgan"), ("vae", "aavae")]  # (baseline, weighted)
MODELS = [m for p in PAIRS for m in p]
# (metrics key, column head): lower is better for the first four; membership AUC is 0.5 and
# DCR's share of synthetic windows closer to the training set than 95 % of held-out windows
# is 0.05 when nothing is copied
SCORES = [("discriminative", "discriminative ↓"), ("predictive", "predictive ↓"),
          ("context_fid", "Context-FID ↓"), ("correlational", "correlational ↓"),
          ("membership_auc", "membership AUC (0.5)"), ("dcr", "DCR share < p5 (0.05)")]
FIDELITY = ["context_fid", "correlational", "dcr", "membership_auc"]


def cell_dir(data: str, model: str, seed: int) -> Path:
    return OUT / f"{data}_{model}_s{seed}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def claim(cell: Path) -> bool:
    """Take the cell's lock (a file holding our pid); a lock whose process is gone is stale."""
    cell.mkdir(parents=True, exist_ok=True)
    lock = cell / "lock"
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            try:
                pid = int(lock.read_text() or 0)
            except (OSError, ValueError):
                pid = 0
            if pid and _alive(pid):
                return False
            lock.unlink(missing_ok=True)
            continue
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
        return True
    return False


def results() -> dict[tuple[str, str, int], dict]:
    """Every trained cell by (data, model, seed): its result.json, or for a cell trained but
    not yet scored its run's training record with empty ``metrics``."""
    out = {}
    for f in sorted(OUT.glob("*/train.json")):
        cell = f.parent
        if (cell / "result.json").is_file():
            r = json.loads((cell / "result.json").read_text())
        else:
            cfg = json.loads((cell / "run" / "config.json").read_text())
            data, model, seed = cell.name.rsplit("_", 2)
            r = {"data": data, "model": model, "seed": int(seed.removeprefix("s")),
                 "training": cfg["training"], "metrics": {}}
        out[(r["data"], r["model"], r["seed"])] = r
    return out


def epoch_means(run: Path, key: str) -> list[float]:
    """Training-log epoch means of ``key`` (e.g. train_iw_ess), first epoch first."""
    return [float(r[key]) for r in csv.DictReader((run / "logs" / "metrics.csv").open())
            if r.get(key)]


def value(r: dict, score: str) -> float | None:
    """A cell's mean over metric repeats of ``score`` (DCR: its share below the held-out 5th
    percentile); ``val``: its best validation loss."""
    if score == "val":
        return r["training"]["best_score"]
    m = r["metrics"].get(score) or {}
    return m.get("share_below_holdout_p5") if score == "dcr" else m.get("mean")


def _ms(vals: list[float], digits: int = 3) -> str:
    """mean ± std over seeds; one seed: its value alone."""
    if not vals:
        return "—"
    if len(vals) == 1:
        return f"{vals[0]:.{digits}f}"
    return f"{statistics.mean(vals):.{digits}f} ± {statistics.stdev(vals):.{digits}f}"


def table() -> str:
    """Per (data, model): mean ± std over seeds of each seed's 5-repeat mean (n seeds); per
    pair: the paired difference weighted - baseline over the seeds both have."""
    res = results()
    keys = [k for k, _ in SCORES]
    head = " | ".join(h for _, h in SCORES)
    lines = [f"| data | model | seeds | {head} | mean repeat std (disc) | best val loss | "
             "epochs run | train s |", "|---|---|---|" + "---|" * (len(keys) + 4)]
    for data in DATA:
        for base, new in PAIRS:
            for model in (base, new):
                rs = [r for (d, m, _), r in sorted(res.items()) if d == data and m == model]
                if not rs:
                    continue
                cols = [_ms([v for r in rs if (v := value(r, k)) is not None]) for k in keys]
                stds = [r["metrics"]["discriminative"]["std"] for r in rs if r["metrics"]]
                rep = f"{statistics.mean(stds):.3f}" if stds else "not scored"
                # the vae's validation loss is its negative ELBO (nats up to a constant shared
                # by vae and aavae: the fixed decoder variance); adversarial runs keep none
                val = _ms([r["training"]["best_score"] for r in rs
                           if r["training"]["best_score"] is not None])
                ep = "/".join(str(r["training"]["epochs_run"]) for r in rs)
                secs = statistics.mean(r["training"]["train_seconds"] for r in rs)
                lines.append(f"| {data} | {model} | {len(rs)} | {' | '.join(cols)} | "
                             f"{rep} | {val} | {ep} | {secs:.0f} |")
            seeds = [k for (d, m, k) in res if d == data and m == new and (data, base, k) in res]
            if not seeds:
                continue
            diffs = []
            for s in [*keys, "val"]:
                pairs = [(value(res[(data, new, k)], s), value(res[(data, base, k)], s))
                         for k in seeds]
                diffs.append(_ms([a - b for a, b in pairs if a is not None and b is not None]))
            lines.append(f"| {data} | *{new} − {base} (paired by seed)* | {len(seeds)} | "
                         f"{' | '.join(diffs[:-1])} | | {diffs[-1]} | | |")
    from factorseq.metrics.scoring import stale_note  # results of older scoring rules

    return "\n".join(lines + ["", weights_table(res)]) + stale_note(OUT.glob("*/result.json"))


def add_fidelity(cell: Path) -> bool:
    """Give a cell scored before the fidelity/privacy scores existed those scores (the
    generative evaluator's own code, same run, windows and seeds); True if it changed."""
    from factorseq.checkpoint import load

    r = json.loads((cell / "result.json").read_text())
    if all(k in r["metrics"] for k in FIDELITY):
        return False
    m = r["metrics"]
    run = load(cell / "run")
    ev = run.evaluator(evaluator="generative", repeats=m["repeats"], seed=m["seed"])
    real, synthetic = ev.real_and_synthetic()
    extra = ev.fidelity_privacy(real, synthetic, list(range(m["seed"], m["seed"] + m["repeats"])))
    r["metrics"] = {**m, **extra, "fidelity_added_later": True}
    tmp = cell / "result.json.tmp"
    tmp.write_text(json.dumps(r, indent=2))
    tmp.replace(cell / "result.json")
    return True


WEIGHT_LOGS = {"iwgan": ["train_iw_ess"], "aavae": ["train_w_real", "train_w_fake"]}


def weights_table(res: dict[tuple[str, str, int], dict]) -> str:
    """How far the weights were from the ablation's: iwgan's effective sample size / batch
    (1 = uniform = gan), aavae's mean D on real and generated windows (1 and 0 = the perfect
    discriminator = vae); in the last training epoch and in the epoch furthest from uniform
    weights (iwgan: the smallest ESS; aavae: the largest gap w_real - w_fake)."""
    lines = ["| data | model | seeds | last epoch | furthest from the ablation (over epochs) |",
             "|---|---|---|---|---|"]
    for data in DATA:
        for model, keys in WEIGHT_LOGS.items():
            runs = [OUT / f"{d}_{m}_s{k}" / "run" for (d, m, k) in sorted(res)
                    if d == data and m == model]
            logs = [{k: epoch_means(r, k) for k in keys} for r in runs]
            logs = [g for g in logs if all(g.values())]
            if not logs:
                continue
            digits = 6 if model == "iwgan" else 4  # iwgan's ESS stays within 1e-3 of 1
            last = ", ".join(f"{k.removeprefix('train_')} "
                             f"{_ms([g[k][-1] for g in logs], digits)}" for k in keys)
            if model == "iwgan":
                far = f"min iw_ess {_ms([min(g[keys[0]]) for g in logs], digits)}"
            else:
                far = "max w_real − w_fake " + _ms(
                    [max(a - b for a, b in zip(g[keys[0]], g[keys[1]], strict=True))
                     for g in logs], 4)
            lines.append(f"| {data} | {model} | {len(logs)} | {last} | {far} |")
    return "\n".join(lines)


def gradient_gap(cell: Path, batches: int = 10, n: int = 128) -> dict[str, float]:
    """How far iwgan's generator step is from gan's for a trained gan or iwgan run: over
    ``batches`` noise batches of ``n`` windows, the cosine between the generator gradients of
    the importance-weighted loss and of the plain mean loss, and the relative norm of their
    difference (mean over batches; the same D and G for both)."""
    import torch

    from factorseq.checkpoint import load
    from factorseq.nn.adversarial import importance_weights, window_generator_loss

    model = load(cell / "run").model
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


def spread(cell: Path, n: int = 1000) -> dict[str, float]:
    """Descriptive, not a score: the mean over features of the std across windows and of the
    std over time within a window, of ``n`` samples (seed 0) and of the real windows, scaled."""
    import numpy as np

    from factorseq.checkpoint import load

    run = load(cell / "run")
    fake = np.asarray(run.sample(n, seed=0, scaled=True))
    real = np.asarray(run.scaler.transform(np.asarray(run.load_data().x)))
    return {f"{name}_{axis}": float(a.std(i).mean()) for name, a in (("fake", fake),
            ("real", real)) for axis, i in (("across", 0), ("within", 1))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=MODELS)
    ap.add_argument("--data", nargs="+", default=DATA)
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--table", action="store_true", help="print the markdown table and exit")
    ap.add_argument("--train-only", action="store_true", help="train the cells, score later")
    ap.add_argument("--gradients", action="store_true",
                    help="iwgan vs gan generator gradients on every trained gan/iwgan cell")
    ap.add_argument("--spread", action="store_true",
                    help="std of samples across and within windows vs real (descriptive)")
    ap.add_argument("--fidelity", action="store_true",
                    help="add the fidelity and privacy scores to cells scored without them")
    args = ap.parse_args()
    if args.table:
        print(table())
        return
    if args.gradients:
        import torch
        torch.set_num_threads(1)
        for f in sorted(OUT.glob("*_*gan_s*/train.json")):
            g = gradient_gap(f.parent)
            print(f"| {f.parent.name} | {g['cosine']:.6f} | {g['relative_difference']:.4f} |")
        return
    if args.spread:
        import torch
        torch.set_num_threads(1)
        for f in sorted(OUT.glob("*_s*/train.json")):
            g = spread(f.parent)
            print(f"| {f.parent.name} | {g['fake_across']:.3f} | {g['real_across']:.3f} | "
                  f"{g['fake_within']:.3f} | {g['real_within']:.3f} |")
        return
    if args.fidelity:
        for f in sorted(OUT.glob("*/result.json")):
            if claim(f.parent):
                try:
                    if add_fidelity(f.parent):
                        print(f"{f.parent.name}: fidelity and privacy scores added", flush=True)
                finally:
                    (f.parent / "lock").unlink(missing_ok=True)
        return
    for seed in args.seeds:  # seed-major: every (data, model) gets seed 0 first
        for data in args.data:
            for model in args.models:
                cell = cell_dir(data, model, seed)
                if (cell / "result.json").is_file() or not claim(cell):
                    continue
                try:
                    r = run_cell(model, data, args.repeats, args.train_only, seed=seed,
                                 cell=cell)
                finally:
                    (cell / "lock").unlink(missing_ok=True)
                if not r:  # trained only
                    continue
                m = r["metrics"]
                print(f"{data} {model} s{seed}: disc {m['discriminative']['mean']:.3f} pred "
                      f"{m['predictive']['mean']:.3f} epochs {r['training']['epochs_run']}/"
                      f"{EPOCHS[data]} train {r['training']['train_seconds']:.0f}s", flush=True)


if __name__ == "__main__":
    main()
