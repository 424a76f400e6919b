"""Issue #24's benchmark: factorseq vs SDV's PARSynthesizer vs gretel's DGAN on a multi-entity
table with per-entity attributes (the generated buildings of ``multi_entity_data.py``).

Every generator trains on the same training entities within the same wall-clock budget (one
torch thread), then generates one sequence for each *test* entity's attributes; all are
scored here, by one function, against the same real test entities (disjoint from training):

- ``fidelity.<attr>``: train on synthetic, test on real (``factorseq.metrics.tabular.
  attribute_fidelity``): a classifier (kind, region: accuracy; majority baseline beside) or
  a ridge regression (area: R^2) learns the attribute from the generated sequences and
  predicts it for the real test sequences;
- ``state_tv``: TV distance of the state frequencies (``category_distance``), and
  ``state_tv_by_kind``: the same within each kind, weighted by the kind's real entities;
- ``profile_rmse``: RMSE (kW) between the real and generated mean load at each hour, per
  kind, weighted as above;
- ``discriminative`` (TimeGAN, post-hoc GRU, 2000 it., 3 scoring seeds), ``predictive``
  (GRU trained on the generated sequences to predict the load from the states, MAE on the
  real ones, 2000 it., 3 scoring seeds) and ``correlational`` (Diffusion-TS), on the
  sequences as (state one-hot, load) in [0, 1] (MinMax of the real test loads).

``real_train`` scores real training entities of the same attributes in place of generated
ones (the floor/ceiling of every score). Commands (the venvs are outside the repository):

    python benchmarks/multi_entity.py data --dir /work/runs/multi_entity
    python benchmarks/multi_entity.py run --dir /work/runs/multi_entity --minutes 3 --seeds 0,1,2
    python benchmarks/multi_entity.py table
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import pm  # noqa: E402  (mean ± sample std over seeds, written once)
from multi_entity_data import ATTRS, KINDS, REGIONS, STATES, buildings, split  # noqa: E402

HERE = Path(__file__).resolve().parent
# overridable for a smoke run (tiny table, few score iterations, results elsewhere)
RESULTS = Path(os.environ.get("ME_RESULTS", HERE / "results" / "multi_entity"))
PY = sys.executable
VENVS = {"sdv_par": Path(os.environ.get("SDV_PYTHON", "/work/sdv/venv/bin/python")),
         "gretel_dgan": Path(os.environ.get("DGAN_PYTHON", "/work/dgan/venv/bin/python"))}
SPECS = [{"name": "kind", "kind": "categorical"}, {"name": "region", "kind": "categorical"},
         {"name": "area", "kind": "numeric"}]
MODELS = ("factorseq_diffusion_ts", "sdv_par", "gretel_dgan", "factorseq_vae_conv")
N_ENTITIES = int(os.environ.get("ME_ENTITIES", 480))
ITERATIONS = int(os.environ.get("ME_ITERATIONS", 2000))
STEPS, SCORE_SEEDS = 48, [0, 1, 2]


def prepare(d: Path) -> None:
    """train.csv, test.csv and test_attributes.csv (one row per test entity) in ``d``."""
    d.mkdir(parents=True, exist_ok=True)
    train, test = split(buildings(N_ENTITIES, STEPS, seed=0), seed=0)
    train.to_csv(d / "train.csv", index=False)
    test.to_csv(d / "test.csv", index=False)
    test.groupby("entity", sort=True)[ATTRS].first().reset_index().to_csv(
        d / "test_attributes.csv", index=False)


# --- scoring ------------------------------------------------------------------------------

def arrays(table: pd.DataFrame, order: list) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(loads (N, T), state codes (N, T), attribute rows (N, 3): kind, region codes, area) of
    the entities ``order``, each sorted by time."""
    t = table.sort_values(["entity", "t"]).set_index("entity")
    load = np.stack([t.loc[[e], "load"].to_numpy(np.float64) for e in order])
    state = np.stack([t.loc[[e], "state"].map(STATES.index).to_numpy() for e in order])
    first = t.groupby(level=0)[ATTRS].first().loc[order]
    attr = np.column_stack([first.kind.map(KINDS.index), first.region.map(REGIONS.index),
                            first.area]).astype(np.float64)
    return load, state, attr


def windows(load: np.ndarray, state: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """(N, T, 4): state one-hot (3) then load MinMax-scaled by the real test range."""
    onehot = np.eye(len(STATES))[state]
    scaled = (load - lo) / (hi - lo)
    return np.concatenate([onehot, scaled[..., None]], axis=2).astype(np.float32)


def by_kind(real_attr: np.ndarray, fn) -> float:
    """Mean over kinds of ``fn(mask)``, weighted by the kind's real entities."""
    kinds = real_attr[:, 0]
    vals = [(fn(kinds == k), int((kinds == k).sum())) for k in np.unique(kinds)]
    return float(sum(v * w for v, w in vals) / sum(w for _, w in vals))


def score(real: pd.DataFrame, synth: pd.DataFrame, synth_order: list | None = None) -> dict:
    """All the scores of ``synth`` against ``real`` (see the module doc)."""
    from factorseq.metrics.fidelity import correlational_score
    from factorseq.metrics.tabular import attribute_fidelity, category_distance
    from factorseq.metrics.timegan import discriminative_scores, predictive_table, summarize

    # test entities the generator returned (SDV PAR has dropped some): the count is reported
    order = sorted(set(real.entity) & set(synth.entity)) if synth_order is None else \
        sorted(real.entity.unique())
    rl, rs, ra = arrays(real, order)
    sl, ss, sa = arrays(synth, synth_order or order)
    lo, hi = float(rl.min()), float(rl.max())
    xr, xs = windows(rl, rs, lo, hi), windows(sl, ss, lo, hi)
    out = {"n_scored": len(order), "n_missing": int(real.entity.nunique() - len(order)),
           "fidelity": attribute_fidelity(xr, ra, xs, sa, SPECS)}
    out["state_tv"] = category_distance(rs, ss, len(STATES))
    out["state_tv_by_kind"] = by_kind(ra, lambda m: category_distance(rs[m], ss[m], 3))
    out["profile_rmse"] = by_kind(ra, lambda m: float(np.sqrt(np.mean(
        (rl[m].mean(0) - sl[m].mean(0)) ** 2))))
    seeds = SCORE_SEEDS
    out["discriminative"] = summarize(discriminative_scores(xr, xs, seeds=seeds,
                                                            iterations=ITERATIONS))
    out["predictive"] = summarize(predictive_table({"s": xs}, xr, seeds=seeds,
                                                   iterations=ITERATIONS)["s"])
    out["correlational"] = summarize([correlational_score(xr, xs, seed=s, size=len(xr) // 5)
                                      for s in seeds])
    out["synthetic_load_range"] = [float(sl.min()), float(sl.max())]
    out["synthetic_states"] = sorted(synth.state.astype(str).unique().tolist())
    return out


# --- generating ---------------------------------------------------------------------------

def call(cmd: list[str], log: Path) -> float:
    """Run ``cmd`` (its output to ``log``); its wall-clock seconds; an error if it fails."""
    t0 = time.perf_counter()
    with open(log, "a") as f:
        f.write(f"$ {' '.join(cmd)}\n")
        f.flush()
        rc = subprocess.call(cmd, stdout=f, stderr=subprocess.STDOUT)
    if rc != 0:
        raise RuntimeError(f"{cmd[0]} ... failed (rc {rc}); see {log}")
    return time.perf_counter() - t0


def factorseq(model: str, d: Path, cell: Path, minutes: float, seed: int, log: Path) -> dict:
    """Train factorseq ``model`` with the attributes, then sample for the test attributes."""
    cli = [PY, "-m", "factorseq.cli"]
    run = cell / "run"
    train = call([*cli, "train", model, "--data", str(d / "train.csv"), "--out", str(run),
                  "--id-column", "entity", "--time-column", "t", "--attribute-columns",
                  ",".join(ATTRS), "--window", str(STEPS), "--stride", str(STEPS), "--seed",
                  str(seed), "--set", "train.threads=1", "--set",
                  f"train.max_minutes={minutes}", "--force"], log)
    sample = call([*cli, "sample", str(run), "--attributes-from",
                   str(d / "test_attributes.csv"), "--out", str(cell / "synth.csv"),
                   "--seed", str(seed), "--force"], log)
    summary = json.loads((run / "config.json").read_text()).get("training", {}) \
        if (run / "config.json").is_file() else {}
    return {"train_seconds": round(train, 2), "sample_seconds": round(sample, 2),
            "epochs": summary.get("epochs_run"), "threads": 1}


def competitor(model: str, d: Path, cell: Path, minutes: float, seed: int, log: Path) -> dict:
    """SDV PAR or gretel DGAN through its own venv and script (they write info.json)."""
    script = HERE / ("multi_entity_sdv.py" if model == "sdv_par" else "multi_entity_dgan.py")
    call([str(VENVS[model]), str(script), "--train", str(d / "train.csv"), "--attributes",
          str(d / "test_attributes.csv"), "--out", str(cell / "synth.csv"), "--minutes",
          str(minutes), "--seed", str(seed), "--info", str(cell / "info.json")], log)
    return json.loads((cell / "info.json").read_text())


def run_cell(model: str, seed: int, d: Path, minutes: float) -> None:
    out = RESULTS / f"{model}_s{seed}.json"
    if out.is_file():
        return
    cell = d / f"{model}_s{seed}"
    cell.mkdir(parents=True, exist_ok=True)
    load_before = Path("/proc/loadavg").read_text().split()[:3]
    real = pd.read_csv(d / "test.csv")
    if model == "real_train":  # real training entities drawn for the test attributes
        info, synth, order = {}, pd.read_csv(d / "train.csv"), None
        order = matched_real(real, synth, seed)
    else:
        gen = factorseq if model.startswith("factorseq_") else competitor
        done = cell / "info.json"  # generated before, only the scoring failed: score it
        info = json.loads(done.read_text()) if done.is_file() and (cell / "synth.csv").is_file() \
            else gen(model.removeprefix("factorseq_"), d, cell, minutes, seed, cell / "log.txt")
        synth = pd.read_csv(cell / "synth.csv")
        order = None
    t0 = time.perf_counter()
    scores = score(real, synth, order)
    result = {"model": model, "seed": seed, "budget_minutes": minutes, **info, **scores,
              "score_seconds": round(time.perf_counter() - t0, 1),
              "load_before": load_before,
              "load_after": Path("/proc/loadavg").read_text().split()[:3]}
    RESULTS.mkdir(parents=True, exist_ok=True)
    from factorseq.metrics.scoring import SCORING_VERSION
    result["scoring_version"] = SCORING_VERSION
    out.write_text(json.dumps(result, indent=2))
    print(f"{model} seed {seed}: {json.dumps(result)[:300]}", flush=True)


def matched_real(real: pd.DataFrame, train: pd.DataFrame, seed: int) -> list:
    """For each test entity (sorted), a distinct training entity of the same kind and region
    (nearest log area first, random ties): real sequences "generated" for those attributes."""
    want = real.groupby("entity")[ATTRS].first().sort_index()
    have = train.groupby("entity")[ATTRS].first()
    free, chosen = set(have.index), []
    for _, row in want.iterrows():
        cand = sorted(e for e in free if have.at[e, "kind"] == row.kind
                      and have.at[e, "region"] == row.region) or sorted(free)
        gap = np.abs(np.log(have.loc[cand, "area"].to_numpy()) - np.log(row.area))
        e = cand[int(np.argmin(gap))]
        free.discard(e)
        chosen.append(e)
    return chosen


# --- the table ----------------------------------------------------------------------------

def table() -> str:
    """The markdown table of every model: mean ± sample std (n - 1) over its seeds."""
    rows = []
    header = ("| generator | seeds | train s | kind acc | region acc | area R^2 | state TV | "
              "state TV by kind | profile RMSE kW | discriminative | predictive | "
              "correlational | load avg at start |")
    rows += [header, header_rule(header)]
    for model in ("real_train", *MODELS):
        res = [json.loads(p.read_text()) for p in sorted(RESULTS.glob(f"{model}_s*.json"))]
        if not res:
            continue
        get = {"train s": lambda r: r.get("train_seconds", 0.0),
               "kind": lambda r: r["fidelity"]["kind"]["accuracy"],
               "region": lambda r: r["fidelity"]["region"]["accuracy"],
               "area": lambda r: r["fidelity"]["area"]["r2"],
               "tv": lambda r: r["state_tv"], "tvk": lambda r: r["state_tv_by_kind"],
               "prof": lambda r: r["profile_rmse"],
               "disc": lambda r: r["discriminative"]["mean"],
               "pred": lambda r: r["predictive"]["mean"],
               "corr": lambda r: r["correlational"]["mean"]}
        cells = [pm([f(r) for r in res]) for f in get.values()]
        loads = "; ".join(" ".join(r["load_before"]) for r in res)
        rows.append(f"| {model} | {len(res)} | " + " | ".join(cells) + f" | {loads} |")
    return "\n".join(rows)


def header_rule(header: str) -> str:
    return "|" + "---|" * (header.count("|") - 1)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("what", choices=["data", "run", "table"])
    p.add_argument("--dir", type=Path, default=Path("/work/runs/multi_entity"))
    p.add_argument("--minutes", type=float, default=3.0)
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--models", default=",".join(("real_train", *MODELS)))
    a = p.parse_args()
    if a.what == "data":
        prepare(a.dir)
    elif a.what == "table":
        print(table())
    else:
        if not (a.dir / "train.csv").is_file():
            prepare(a.dir)
        for seed in (int(s) for s in a.seeds.split(",")):  # seed-major: seed 0 complete first
            for model in a.models.split(","):
                run_cell(model, seed, a.dir, a.minutes)


if __name__ == "__main__":
    main()
