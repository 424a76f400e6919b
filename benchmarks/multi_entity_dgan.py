"""gretel-synthetics' DGAN (DoppelGANger) on the multi-entity table (issue #24), run by its
own virtual environment (never a factorseq dependency): train within a wall-clock budget,
then one sequence per row of the attributes file, written as a long table.

The budget is a true wall-clock cap: DGAN calls a progress callback after every batch, and
the callback ends training once the time is up (the weights as they are then are used).

DGAN generates attributes and features together and has no call to generate *for given*
attributes, so conditioning is done by matching: a pool of ``POOL`` x n sequences is drawn
and each wanted row takes an unused pooled sequence with the same categorical attributes
(kind, region) and the nearest log(area) (any unused one when none has the same categories;
``unmatched`` counts those), and its attributes are then set to the wanted ones.

    python multi_entity_dgan.py --train train.csv --attributes attrs.csv --out synth.csv \
        --minutes 10 --seed 0 --info info.json
"""
from __future__ import annotations

import json
import time

import numpy as np
import pandas as pd
import torch
from multi_entity_data import ATTRS, competitor_args  # beside this script

POOL = 20
# settings fixed beforehand, not tuned: a batch that fits the ~300 training entities many
# times per epoch, sample_len 4 (DoppelGANger's batched generation; divides 48)
BATCH, SAMPLE_LEN = 32, 4


class TimeUp(Exception):
    """Raised by the progress callback when the budget is spent."""


def train(frame: pd.DataFrame, minutes: float, seed: int, length: int):
    from gretel_synthetics.timeseries_dgan.config import DfStyle, DGANConfig
    from gretel_synthetics.timeseries_dgan.dgan import DGAN

    torch.manual_seed(seed)
    np.random.seed(seed)
    config = DGANConfig(max_sequence_len=length, sample_len=SAMPLE_LEN, batch_size=BATCH,
                        epochs=100_000, cuda=False)
    model, deadline, seen = DGAN(config), time.perf_counter() + minutes * 60, {"epoch": 0}

    def stop(info) -> None:
        seen["epoch"] = info.epoch
        if time.perf_counter() > deadline:
            raise TimeUp

    try:
        model.train_dataframe(frame, attribute_columns=ATTRS, feature_columns=["load", "state"],
                              example_id_column="entity", time_column="t",
                              discrete_columns=["kind", "region", "state"],
                              df_style=DfStyle.LONG, progress_callback=stop)
    except TimeUp:
        pass
    return model, seen["epoch"]


def match(pool: pd.DataFrame, wanted: pd.DataFrame) -> tuple[list, int]:
    """For each wanted row, the pool entity to use (see the module doc) and how many had no
    pooled sequence with its categories."""
    first = pool.groupby("entity")[ATTRS].first()
    free = set(first.index)
    chosen, unmatched = [], 0
    for _, row in wanted.iterrows():
        cand = [e for e in free if first.at[e, "kind"] == row.kind
                and first.at[e, "region"] == row.region]
        if not cand:
            cand, unmatched = list(free), unmatched + 1
        gap = [abs(np.log(max(first.at[e, "area"], 1e-3)) - np.log(row.area)) for e in cand]
        e = cand[int(np.argmin(gap))]
        free.discard(e)
        chosen.append(e)
    return chosen, unmatched


def main() -> None:
    a = competitor_args()
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    model, epochs = train(pd.read_csv(a.train), a.minutes, a.seed, a.length)
    train_seconds = time.perf_counter() - t0
    wanted = pd.read_csv(a.attributes)
    t1 = time.perf_counter()
    pool = model.generate_dataframe(POOL * len(wanted))
    chosen, unmatched = match(pool, wanted)
    parts = []
    for (_, row), e in zip(wanted.iterrows(), chosen, strict=True):
        seq = pool[pool["entity"] == e].sort_values("t").copy()
        seq["entity"] = row.entity
        for col in ATTRS:
            seq[col] = row[col]
        parts.append(seq)
    out = pd.concat(parts, ignore_index=True)
    sample_seconds = time.perf_counter() - t1
    out[["entity", "t", *ATTRS, "load", "state"]].to_csv(a.out, index=False)
    info = {"model": "gretel_dgan", "epochs": epochs + 1, "train_seconds": round(train_seconds, 2),
            "sample_seconds": round(sample_seconds, 2), "pool": POOL, "unmatched": unmatched,
            "batch_size": BATCH, "sample_len": SAMPLE_LEN, "threads": torch.get_num_threads()}
    with open(a.info, "w") as f:
        json.dump(info, f, indent=2)


if __name__ == "__main__":
    main()
