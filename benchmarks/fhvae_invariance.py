"""FHVAE with z1 made sequence-invariant (issue #25; a subsection of section 6, in
benchmarks/DISENTANGLEMENT_RESULTS.md) as a study over the benchmark harness (``harness.py``):
speaker EER of the static code (mu2 of z2) and of the dynamic code (z1 averaged over a string)
on fsdd-strings, by ``z1_adversary_weight``.

The weight is chosen on VALIDATION strings: 8 strings per speaker (48) taken out of the
training split (takes 5-49, seeded) and never trained on; the test split (takes 0-4) is not
loaded for the choice. Rule, fixed before any result: the highest validation eer_dynamic
among the weights whose validation eer_static <= 1 % (the target's static bound); none: weight
0; ties: the smaller weight. Test cells train on the whole training split and score the test
split, with weight 0 (the default) and the chosen weight.

Stages (cells: one ``factorseq train fhvae`` and one ``factorseq evaluate --evaluator
disentanglement --set metrics=[eer]``, in benchmarks/out/fhvae_invariance/<cell>/s<seed>/, kept
as benchmarks/results/fhvae_invariance/<cell>_s<seed>.json):
- ``validate``: cells ``val_w<W>``, seed 0, on ``fsdd-strings`` with ``data.options=
  {validation_strings: 8, validation_seed: 12345}`` (the strings the earlier script's
  ``fsdd-strings-validation`` set held out; tests/test_fsdd_validation.py), 12-minute cap;
- ``test``: cells ``test_w<W>`` for W in {0, the weight the rule picks from the kept
  validation cells}, seeds 0 1, 5-minute cap; the data's strings stay seed 0's
  (``--set data.seed=0``: the training seed alone changes);
- ``probes``: the ``fhvae`` evaluator's scores (speaker and digit read from z1 and z2,
  reconstruction) of each test cell's run. Not a cell: it is a second evaluation of a cell's
  training, and a harness cell is one training and one evaluation (a cell of its own would
  train the same run again). It runs ``factorseq evaluate RUN --evaluator fhvae`` on the test
  cell's run and keeps the scores with ``harness.record`` as
  benchmarks/results/fhvae_invariance/probes_<cell>_s<seed>.json.
Settings of the 30-epoch row of DISENTANGLEMENT_RESULTS.md: hidden 128, 1 layer, z1 and z2
32-d, alpha 10, batch 128, 30 epochs (the caps were never reached), one thread. The earlier
script (git history at cad6eba) called ``factorseq.train.fit`` in its own process with these
settings; tests/test_fhvae_invariance_study.py checks the CLI commands give the same.

    nice -n 10 python benchmarks/fhvae_invariance.py validate [--weights 0 1 10]
    nice -n 10 python benchmarks/fhvae_invariance.py test [--seeds 0 1]
    nice -n 10 python benchmarks/fhvae_invariance.py probes [--seeds 0 1]
    python benchmarks/fhvae_invariance.py table
"""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time

import harness

STUDY = "fhvae_invariance"
VALIDATION = ("--set", "data.options={validation_strings: 8, validation_seed: 12345}")
MINUTES = {"val": 12, "test": 5}
STATIC_BOUND = 0.01  # the target's eer_static bound
PROBES = ("speaker_acc_z1", "content_acc_z1", "speaker_acc_z2", "content_acc_z2",
          "reconstruction_mse")
TABLE_PROBES = ("speaker_acc_z1", "content_acc_z1", "reconstruction_mse")


def cell(stage: str, weight: float, seed: int = 0) -> harness.Cell:
    """``stage`` "val" (validation strings) or "test"."""
    train = ("fhvae", "--data", "fsdd-strings", "--epochs", "30", "--batch-size", "128",
             "--set", "hidden=128", "--set", "layers=1", "--set", "z1_dim=32",
             "--set", "z2_dim=32", "--set", "alpha=10",
             "--set", f"z1_adversary_weight={weight:g}", "--set", "train.threads=1",
             "--set", "train.tensorboard=false", "--set", "train.progress=false",
             "--set", f"train.max_minutes={MINUTES[stage]}", "--set", "data.seed=0",
             *(VALIDATION if stage == "val" else ()))
    return harness.Cell(STUDY, f"{stage}_w{weight:g}", seed, train,
                        ("--evaluator", "disentanglement", "--set", "metrics=[eer]"))


def choose(validation: dict[float, dict]) -> float:
    """The rule on validation scores (weight -> metrics): the highest eer_dynamic among the
    weights with eer_static <= 1 %; none: 0; ties: the smaller weight."""
    ok = [(w, m) for w, m in validation.items() if m["eer_static"] <= STATIC_BOUND]
    if not ok:
        return 0.0
    return min(ok, key=lambda wm: (-wm[1]["eer_dynamic"], wm[0]))[0]


def validated() -> dict[float, dict]:
    """Weight -> metrics of every kept validation cell (seed 0)."""
    found = {}
    for path in sorted((harness.RESULTS / STUDY).glob("val_w*_s0.json")):
        m = re.fullmatch(r"val_w([\d.e+-]+)_s0", path.stem)
        if m:
            found[float(m[1])] = json.loads(path.read_text())["metrics"]
    return found


def chosen() -> float:
    found = validated()
    if not found:
        raise SystemExit(f"error: no kept validation cell in {harness.RESULTS / STUDY}: run "
                         "`fhvae_invariance.py validate` first")
    return choose(found)


def stage_test_cells(seeds: list[int]) -> list[harness.Cell]:
    return [cell("test", w, s) for s in seeds for w in sorted({0.0, chosen()})]


def run(cells: list[harness.Cell]) -> None:
    for c in cells:
        result = harness.run_cell(c)
        harness.keep(result, c)
        m = result["metrics"]
        print(f"{c.name} seed {c.seed}: eer_static {m['eer_static']:.4f} eer_dynamic "
              f"{m['eer_dynamic']:.4f}", flush=True)


def probe_command(c: harness.Cell) -> list[str]:
    """The ``factorseq`` arguments scoring test cell ``c``'s run with the fhvae evaluator."""
    return ["evaluate", str(c.folder / "run"), "--out", str(c.folder / "probes.json"),
            "--force", "--evaluator", "fhvae"]


def probes(c: harness.Cell) -> dict:
    """The fhvae evaluator's scores of the kept test cell ``c``'s run, recorded (again only
    when the cell's training or the evaluation command changed, or the scoring version)."""
    from factorseq.metrics.scoring import SCORING_VERSION

    kept = harness.kept(STUDY, c.name).get(c.seed)
    if kept is None:
        raise SystemExit(f"error: {c.name} seed {c.seed} has no kept result: run `test` first")
    argv = probe_command(c)
    path = harness.RESULTS / STUDY / f"probes_{c.name}_s{c.seed}.json"
    old = json.loads(path.read_text()) if path.is_file() else {}
    if (old.get("eval_command") == harness.shown(argv) and old.get("scoring_version", 0)
            >= SCORING_VERSION and old.get("train_command") == kept["train_command"]):
        return old
    t0 = time.perf_counter()
    subprocess.run([harness.EXE, *argv], check=True, cwd=harness.REPO)
    seconds = round(time.perf_counter() - t0, 1)
    scores = json.loads((harness.REPO / c.folder / "probes.json").read_text())
    harness.record(path, {"cell": c.name, "seed": c.seed, "train_command": kept["train_command"],
                          "eval_command": harness.shown(argv), "eval_wall_s": seconds,
                          "metrics": {k: v for k, v in scores.items()
                                      if isinstance(v, int | float)}})
    return json.loads(path.read_text())


def _row(stage: str, weight: float, mark: str) -> str | None:
    """One table row: a stage's weight over its kept seeds (mean ± sample std)."""
    name = f"{stage}_w{weight:g}"
    rs = harness.kept(STUDY, name)
    if not rs:
        return None
    runs = [rs[s] for s in sorted(rs)]
    eer = [harness.pm([100 * r["metrics"][k] for r in runs], p) + " %"
           for k, p in (("eer_static", 2), ("eer_dynamic", 1))]
    recorded = harness.kept(STUDY, f"probes_{name}")  # read through kept: the table's sources
    scores = [recorded[s]["metrics"] for s in sorted(rs) if s in recorded]
    probe = [harness.pm([m[k] for m in scores if k in m]) for k in TABLE_PROBES]
    epochs = ", ".join(str(r["training"].get("epochs_run")) for r in runs)
    minutes = harness.pm([r["train_wall_s"] / 60 for r in runs], 1)
    return (f"| {stage} | {weight:g}{mark} | {', '.join(map(str, sorted(rs)))} | "
            + " | ".join(eer + probe) + f" | {epochs} | {minutes} |")


def table() -> str:
    """Markdown from the kept files only: validation and test rows, the probes where recorded
    and the weight the rule chooses."""
    lines = ["| stage | z1_adversary_weight | seeds | eer_static | eer_dynamic | speaker_acc_z1 |"
             " content_acc_z1 | reconstruction_mse | epochs run | train min |",
             "|---" * 10 + "|"]
    val = validated()
    pick = choose(val) if val else None
    for w in sorted(val):
        lines.append(_row("val", w, " **(chosen)**" if w == pick else ""))
    tested = sorted({float(m[1]) for p in (harness.RESULTS / STUDY).glob("test_w*_s*.json")
                     if (m := re.fullmatch(r"test_w([\d.e+-]+)_s\d+", p.stem))})
    lines += [_row("test", w, "") for w in tested]
    note = "" if pick is None else f"\nchosen on validation: {pick:g}\n"
    return "\n".join(line for line in lines if line) + "\n" + note


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="stage", required=True)
    v = sub.add_parser("validate", help="train and score the validation cells (seed 0)")
    v.add_argument("--weights", nargs="+", type=float, default=[0.0, 1.0, 10.0])
    for stage in ("test", "probes"):
        p = sub.add_parser(stage, help="weight 0 and the chosen weight on the test split"
                           if stage == "test" else "the fhvae evaluator on the test cells")
        p.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    sub.add_parser("table", help="the markdown table of the kept results")
    a = ap.parse_args(argv)
    if a.stage == "table":
        sys.stdout.write(table())
    elif a.stage == "validate":
        run([cell("val", w) for w in a.weights])
    elif a.stage == "test":
        run(stage_test_cells(a.seeds))
    else:
        for c in stage_test_cells(a.seeds):
            r = probes(c)
            print(f"{c.name} seed {c.seed}: " + ", ".join(
                f"{k} {r['metrics'][k]:.3f}" for k in PROBES if k in r["metrics"]), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
