"""SDV's PARSynthesizer on the multi-entity table (issue #24), run by SDV's own virtual
environment (never a factorseq dependency): train within a wall-clock budget, sample one
sequence per row of the attributes file, write them as a long table.

PAR trains full-batch (one optimiser step per epoch) and has no time limit or callback, so
the budget is met by calibration: fits of ``CAL_EPOCHS`` = (10, 40) epochs are timed, giving
the seconds per epoch (their difference / 30) and the fixed cost of a fit (preprocessing, the
context model); the final fit gets the epochs the rest of the budget holds. All three fits
count in ``train_seconds``.

    python multi_entity_sdv.py --train train.csv --attributes attrs.csv --out synth.csv \
        --minutes 10 --seed 0 --info info.json
"""
from __future__ import annotations

import json
import time

import numpy as np
import pandas as pd
import torch
from multi_entity_data import ATTRS, competitor_args  # beside this script

CAL_EPOCHS = (10, 40)


def metadata(frame: pd.DataFrame):
    """One table: entity the sequence key, t the sequence index, the rest typed."""
    from sdv.metadata import Metadata

    types = {"entity": "id", "t": "numerical", "kind": "categorical",
             "region": "categorical", "area": "numerical", "load": "numerical",
             "state": "categorical"}
    return Metadata.load_from_dict(
        {"columns": {c: {"sdtype": types[c]} for c in frame.columns},
         "sequence_key": "entity", "sequence_index": "t"}, single_table_name="buildings")


def fit(frame: pd.DataFrame, epochs: int, seed: int):
    from sdv.sequential import PARSynthesizer

    torch.manual_seed(seed)
    np.random.seed(seed)
    synth = PARSynthesizer(metadata(frame), context_columns=ATTRS, epochs=epochs, cuda=False,
                           verbose=False)
    synth.fit({"buildings": frame})  # SDV 2: data is {table name: frame}
    return synth


def main() -> None:
    a = competitor_args()
    torch.set_num_threads(1)
    train = pd.read_csv(a.train)
    t0 = time.perf_counter()
    took = []
    for e in CAL_EPOCHS:
        t = time.perf_counter()
        fit(train, e, a.seed)
        took.append(time.perf_counter() - t)
    cal = time.perf_counter() - t0
    per_epoch = max((took[1] - took[0]) / (CAL_EPOCHS[1] - CAL_EPOCHS[0]), 1e-3)
    fixed = max(took[0] - CAL_EPOCHS[0] * per_epoch, 0.0)
    epochs = max(1, int((a.minutes * 60 - cal - fixed) / per_epoch))
    synth = fit(train, epochs, a.seed)
    train_seconds = time.perf_counter() - t0
    attrs = pd.read_csv(a.attributes)
    t1 = time.perf_counter()
    out = synth.sample_sequential_columns(attrs[["entity", *ATTRS]], sequence_length=a.length)
    out = out["buildings"] if isinstance(out, dict) else out
    sample_seconds = time.perf_counter() - t1
    out[["entity", "t", *ATTRS, "load", "state"]].to_csv(a.out, index=False)
    info = {"model": "sdv_par", "epochs": epochs, "calibration_epochs": CAL_EPOCHS,
            "calibration_seconds": round(cal, 2),
            "seconds_per_epoch": round(per_epoch, 4), "fixed_seconds": round(fixed, 2),
            "train_seconds": round(train_seconds, 2),
            "sample_seconds": round(sample_seconds, 2), "threads": torch.get_num_threads()}
    with open(a.info, "w") as f:
        json.dump(info, f, indent=2)


if __name__ == "__main__":
    main()
