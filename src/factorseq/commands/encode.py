"""``factorseq encode``: the codes of every window of a data set, as a table, for any model that
encodes. One row per window: where it came from (split, sequence and its source file or series
name, window index within the sequence), then one column per code number, named by the code's
part (``z_0``, ``z1_3``, ``probs_7``; per-step codes ``h_t05_2``), and for sequence-level codes
also the value of the whole sequence (``z2_seq_0``: FHVAE's mu2, else the sequence mean).
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np
import pandas as pd
import typer

from ..cli import Flag, app

Opt = typer.Option
TABLES = (".parquet", ".csv")


def code_columns(codes) -> dict[str, np.ndarray]:
    """Flat columns of a Codes (numpy): one per number, named after the part."""
    cols: dict[str, np.ndarray] = {}
    for name, v in codes.items():
        v = np.asarray(v)
        if v.ndim == 1:
            cols[name] = v
        elif v.ndim == 2:
            cols.update({f"{name}_{j}": v[:, j] for j in range(v.shape[1])})
        else:  # per-step codes (windows, time, dim)
            cols.update({f"{name}_t{t:02d}_{j}": v[:, t, j] for t in range(v.shape[1])
                         for j in range(v.shape[2])})
    return cols


def sequence_names(data) -> list[str] | None:
    """Names of the sequences (source files, series ids) by seq_id, where the data knows them."""
    meta = data.meta or {}
    names = meta.get("sequence_names") or meta.get("files")
    return [str(n) for n in names] if names else None


def encode_table(run, data) -> pd.DataFrame:
    """The codes of every window of ``data`` and of its held-out split, one row each."""
    frames = []
    for split, d in (("train", data), ("test", data.test)):
        if d is None:
            continue
        codes = run.encode(d.x)
        cols: dict[str, np.ndarray] = {"split": np.full(d.n_windows, split)}
        if d.seq_id is not None:
            cols["seq_id"] = np.asarray(d.seq_id)
            names = sequence_names(d)
            if names is not None and int(cols["seq_id"].max()) < len(names):
                cols["source"] = np.asarray(names, dtype=object)[cols["seq_id"]]
        seg = d.extras.get("segment_index")
        cols["window"] = np.asarray(seg) if seg is not None else np.arange(d.n_windows)
        cols.update({k: np.asarray(v) for k, v in d.extras.items()
                     if k != "segment_index" and np.ndim(v) == 1})
        cols.update(code_columns(codes))
        if d.seq_id is not None:
            ids, seq = run.model.sequence_codes(codes, d.seq_id)
            pos = np.searchsorted(np.asarray(ids), np.asarray(d.seq_id))
            for name, v in seq.items():
                v = np.asarray(v)
                cols.update({f"{name}_seq_{j}": v[pos, j] for j in range(v.shape[1])})
        frames.append(pd.DataFrame(cols))
    return pd.concat(frames, ignore_index=True)


@app.command("encode")
def encode(
    run: Annotated[Path, typer.Argument(help="run directory")],
    out: Annotated[Path, Opt("--out", help="table to write: .parquet or .csv")],
    data: Annotated[str | None, Opt(help="bundled name, file, WAV folder or table (default: "
                                         "the training data)")] = None,
    force: Annotated[bool, Flag("--force", help="replace an existing output file")] = False,
) -> None:
    """Write the codes of every window of DATA (one row each, with its source)."""
    from ..checkpoint import load
    from ..io import check_output

    out = check_output(out, force, formats=TABLES)
    r = load(run)
    r.model.require("encodes")
    d = r.load_data(data)
    table = encode_table(r, d)
    write_table(table, out)
    skipped = (d.meta or {}).get("skipped_files") or []
    n_seq = table.groupby(["split", "seq_id"]).ngroups if "seq_id" in table else None
    print(f"wrote the codes of {len(table)} windows" + (f" of {n_seq} sequences" if n_seq else "")
          + f" to {out}" + (f"; skipped {len(skipped)} files too short for one window: "
                            + ", ".join(skipped) if skipped else ""))


def write_table(table: pd.DataFrame, out: Path) -> None:
    """Write ``table`` to ``out`` (.csv or .parquet), all or nothing."""
    from ..io import atomic_output

    with atomic_output(out) as tmp:
        if out.suffix.lower() == ".csv":
            table.to_csv(tmp, index=False)
        else:
            table.to_parquet(tmp, index=False)
