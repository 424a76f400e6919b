"""Semi-supervised VAE (Siddharth et al. 2017) on ``digits`` and ``fsdd-digits`` as a study over
the benchmark harness (``harness.py``; issue #22, part 4).

A cell is (data, labels, alpha, objective); its seeds are the label draws. Seed S trains with
``--seed S --set data.label_seed=S`` (the labels kept, the split and the initialisation all
follow the draw) and is scored by the ``ssvae`` evaluator, which scores that run only, into
``benchmarks/out/ssvae/<cell>/s<S>/``:

    factorseq train ssvae --data D --labels N --set data.label_seed=S [--set alpha=A]
        SETTINGS[D] --set train.tensorboard=false --set train.threads=1   (+ --seed S)
    factorseq evaluate RUN --seed S    (accuracy of q(y|x) on the test split, style probe)

The baseline is the cell of objective ``classifier``: the same model and settings trained as a
plain classifier, q(y|x) by cross-entropy on the N labelled windows only, with
``--set objective=classifier``. No label beyond the N may select it, so it has no validation
split and no early stopping (``train.val_fraction=0``, 300 epochs, patience 300; the learning
rate still decays on training-loss plateaus): the baseline the evaluator trained itself before.

    python benchmarks/ssvae_bench.py run [--data digits fsdd-digits] [--labels N ...]
        [--alphas default 0.1 3 ...] [--objectives semi classifier] [--seeds 0 1 2 3 4]
        [--tag NAME] [-- extra train args of the semi-supervised cells]
    python benchmarks/ssvae_bench.py table

Each result is copied to ``benchmarks/results/ssvae/<cell>_s<S>.json``; ``table`` renders from
those copies only: accuracy mean ± sample std over the draws, the baseline, the paired gain
(each draw against the classifier of the same draw), the style probe against its chance.
The accuracy-vs-labels curve is ``run --labels 20 50 100 300 1000 --alphas 0 0.1``.
``--labels`` defaults to each set's target (digits 50, fsdd-digits 100). ``--tag NAME`` names
a variant of the semi-supervised cells (its extra train args, e.g. ``--tag adv3 -- --set
style_adversary_weight=3``); the classifier cells take no extra args and no tag.

Not here: choosing alpha (or the style adversary's weight) on folds of the N labels (issue
#12). A fold is not a cell of this scheme (the data layer cannot hold out a fold of the
labelled training windows, and the rule reads label-free leakage probes that are not the
evaluator's scores); the earlier script's ``validate`` verb did it in process (git history:
``git show cad6eba:benchmarks/ssvae_bench.py``), never touching the test split.
"""
from __future__ import annotations

import argparse
import re
import sys

import harness

from factorseq.metrics.scoring import stale_note

STUDY = "ssvae"
TARGET_LABELS = {"digits": 50, "fsdd-digits": 100}
# model/train settings per data set (the commands in SSVAE_RESULTS.md)
CONFIGS: dict[str, list[str]] = {
    "digits": ["backbone=mlp", "z_dim=4", "supervision_rate=0.25"],
    "fsdd-digits": ["backbone=conv", "hidden=64", "z_dim=4", "supervision_rate=0.25",
                    "y_estimator=relaxed", "train.epochs=40"],
}
COMMON = ["train.tensorboard=false", "train.threads=1"]
# the plain classifier: labelled windows only, no validation split to stop it (see above)
CLASSIFIER = ["objective=classifier", "train.val_fraction=0", "train.epochs=300",
              "train.patience=300"]
OBJECTIVES = ("semi", "classifier")
# a cell's name, read back by the table: data names hold no "_"
NAME = re.compile(r"(?P<data>[^_]+)_n(?P<labels>\d+)_(?:alpha(?P<alpha>[^_]+)|"
                  r"(?P<classifier>classifier))(?:_(?P<tag>.+))?")


def _sets(pairs: list[str]) -> list[str]:
    return [a for kv in pairs for a in ("--set", kv)]


def cell(data: str, labels: int, alpha: float | None, objective: str = "semi", seed: int = 0,
         tag: str = "", extra: tuple[str, ...] = ()) -> harness.Cell:
    """``alpha`` None: the library's default; the classifier cell has no alpha, tag or extra
    (it is every alpha's baseline)."""
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {OBJECTIVES}, got {objective!r}")
    train = ["ssvae", "--data", data, "--labels", str(labels), "--set", f"data.label_seed={seed}"]
    if objective == "classifier":  # the data set's model settings, the classifier's training
        model = [kv for kv in CONFIGS[data] if not kv.startswith("train.")]
        train += _sets(model + CLASSIFIER + COMMON)
        name = f"{data}_n{labels}_classifier"
    else:
        train += _sets(CONFIGS[data] + ([] if alpha is None else [f"alpha={alpha:g}"]) + COMMON)
        train += list(extra)
        name = f"{data}_n{labels}_alpha{'default' if alpha is None else f'{alpha:g}'}"
        name += f"_{tag}" if tag else ""
    return harness.Cell(STUDY, name, seed, tuple(train), ("--seed", str(seed)))


def cells(a: argparse.Namespace) -> list[harness.Cell]:
    """A ``run``'s cells, draw-major (an interrupted run still has whole draws); per data set
    and label count the classifier first."""
    out = []
    for seed in a.seeds:
        for data in a.data:
            for n in a.labels or [TARGET_LABELS[data]]:
                if "classifier" in a.objectives:
                    out.append(cell(data, n, None, "classifier", seed))
                if "semi" in a.objectives:
                    out += [cell(data, n, alpha, "semi", seed, a.tag, tuple(a.extra))
                            for alpha in a.alphas]
    return out


def _kept(pattern: str = "") -> dict[tuple, dict[int, dict]]:
    """(data, labels, alpha, tag) -> {seed: result} of the cells whose name ``pattern`` finds
    (a regular expression) and the baselines of their (data, labels); alpha "classifier" for
    the baseline."""
    wanted = set(harness.cell_names(STUDY, pattern))
    wanted |= {f"{m['data']}_n{m['labels']}_classifier" for n in wanted
               if (m := NAME.fullmatch(n))}
    return {(m["data"], int(m["labels"]), m["alpha"] or "classifier", m["tag"] or ""): res
            for m, res in harness.kept_named(STUDY, NAME, "DATA_nLABELS_alphaA[_TAG] or "
                                             "DATA_nLABELS_classifier",
                                             lambda m: m.string in wanted)}


def _pct(values: list[float]) -> str:
    return harness.pm([100 * v for v in values], 1) or "—"


def _signed(values: list[float]) -> str:
    text = _pct(values)
    return text if text.startswith(("-", "—")) else "+" + text


def _order(key: tuple) -> tuple:
    data, labels, alpha, tag = key
    number = -1.0 if alpha == "classifier" else (-0.5 if alpha == "default" else float(alpha))
    # tags in natural order (adv3 before adv10): re.split alternates text and digit runs
    return data, labels, number, tuple(int(t) if i % 2 else t
                                       for i, t in enumerate(re.split(r"(\d+)", tag)))


def table(pattern: str = "") -> str:
    """The rows of the cells whose name ``pattern`` finds (all by default), each against the
    classifier of its data and labels."""
    found = _kept(pattern)
    if not found:
        return "(no results yet)\n"
    head = ["data", "labels", "alpha", "draws", "accuracy of q(y\\|x) %", "baseline %",
            "paired gain (points)", "label_from_style_acc %", "chance %", "style − chance",
            "epochs", "train s"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for key in sorted(found, key=_order):
        data, labels, alpha, tag = key
        res = found[key]
        acc = {s: r["metrics"]["accuracy"] for s, r in res.items()}
        base = {s: r["metrics"]["accuracy"]
                for s, r in found.get((data, labels, "classifier", ""), {}).items()}
        if alpha == "classifier":
            label, base_text, gain = "— (plain classifier)", "", ""
        else:
            label = alpha + (f" [{tag}]" if tag else "")
            base_text = _pct([base[s] for s in sorted(acc) if s in base])
            gain = _signed([acc[s] - base[s] for s in sorted(acc) if s in base])
        probe = [r["metrics"]["label_from_style_acc"] for r in res.values()
                 if "label_from_style_acc" in r["metrics"]]
        chance = [r["metrics"]["chance"] for r in res.values()]
        excess = [r["metrics"]["label_from_style_acc"] - r["metrics"]["chance"]
                  for r in res.values() if "label_from_style_acc" in r["metrics"]]
        t = [r["training"] for r in res.values()]
        row = [data, str(labels), label, ", ".join(map(str, sorted(res))),
               _pct(list(acc.values())), base_text, gain, _pct(probe) if probe else "",
               _pct(chance), _signed(excess) if excess else "",
               harness.pm([x.get("epochs_run", 0) for x in t], 0),
               harness.pm([x.get("train_seconds", 0) for x in t], 0)]
        lines.append("| " + " | ".join(row) + " |")
    text = "\n".join(lines) + "\n"
    text += ("\nMean ± sample std over the label draws (seeds); baseline and paired gain over "
             "the draws both cells have, each draw against the classifier of the same draw.\n")
    return text + stale_note(sorted((harness.RESULTS / STUDY).glob("*_s*.json")))


def parse(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="verb", required=True)
    r = sub.add_parser("run")
    r.add_argument("--data", nargs="+", default=list(TARGET_LABELS), choices=list(CONFIGS))
    r.add_argument("--labels", nargs="+", type=int, default=None,
                   help="numbers of labels (default: each set's target)")
    r.add_argument("--alphas", nargs="+", default=[None],
                   type=lambda v: None if v == "default" else float(v),
                   help="alphas of the semi-supervised cells (default: the library's)")
    r.add_argument("--objectives", nargs="+", default=list(OBJECTIVES), choices=OBJECTIVES)
    r.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4],
                   help="label draws (each is also the training seed)")
    r.add_argument("--tag", default="", help="name of a variant (its extra train args)")
    r.add_argument("extra", nargs="*", help="extra train args of the semi cells, after --")
    t = sub.add_parser("table")
    t.add_argument("pattern", nargs="?", default="", help="regular expression on cell names")
    a = ap.parse_args(argv)
    if a.verb == "run" and a.extra and not a.tag:
        ap.error("extra train args change the cells: name the variant with --tag")
    return a


def main(argv: list[str]) -> int:
    a = parse(argv)
    if a.verb == "run":
        for c in cells(a):
            r = harness.run_cell(c)
            m = r["metrics"]
            print(harness.keep(r, c), f"accuracy {m['accuracy']:.3f}",
                  f"style {m.get('label_from_style_acc', float('nan')):.3f}"
                  f" (chance {m['chance']:.3f})", flush=True)
    sys.stdout.write(table(getattr(a, "pattern", "")))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
