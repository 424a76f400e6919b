"""``factorseq generate``: generation by factor, for every model whose factors a user can hold.

    factorseq generate RUN --list                                 # the model's factors
    factorseq generate RUN --n 16 --value y=7 --out sevens.npz    # a label (ssvae)
    factorseq generate RUN --reference voice.wav --keep z2 --n 40 --out new.npz   # fhvae: new
                                                                  # content in that voice
    factorseq generate RUN --reference mine.csv --reference-index 10 --keep level --keep trend \
        --scale seasonal=2 --n 8 --out mix.csv                    # timevae's parts

The reference is read with the run's own data options (a file, a WAV, a folder or a bundled
name); ``--reference-seq`` picks the windows of one sequence (by name or id),
``--reference-index`` single windows. Sequence-level factors come from all the chosen windows;
per-window factors need one chosen window or ``--n`` of them.
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from ..cli import Flag, app
from ..errors import FactorseqError
from .encode import sequence_names

Opt = typer.Option


def _pairs(items: list[str] | None, what: str) -> dict[str, object]:
    from ..config import parse_value

    out: dict[str, object] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise FactorseqError(f"{what} expects NAME=VALUE, got {item!r}")
        out[key.strip()] = parse_value(value.strip())
    return out


def reference_windows(run, source: str, seq: str | None, index: list[int] | None
                      ) -> np.ndarray:
    """The chosen reference windows (raw units) of ``source``."""
    d = run.load_data(source)
    rows = np.arange(d.n_windows)
    if seq is not None:
        if d.seq_id is None:
            raise FactorseqError(f"{source} has no sequences to pick from (no sequence id)")
        names = sequence_names(d) or []
        sid = names.index(seq) if seq in names else (int(seq) if seq.isdigit() else None)
        if sid is None or not (d.seq_id == sid).any():
            raise FactorseqError(f"no sequence {seq!r} in {source}"
                                 + (f"; sequences: {', '.join(names[:10])}" if names else ""))
        rows = np.flatnonzero(d.seq_id == sid)
    if index:
        bad = [i for i in index if not 0 <= i < len(rows)]
        if bad:
            raise FactorseqError(f"--reference-index {bad[0]} is out of range 0..{len(rows) - 1}")
        rows = rows[index]
    return np.asarray(d.x[rows], dtype=np.float32)


def _list_factors(r) -> None:
    fs = r.factors()
    print(f"{r.model.name} factors (kind, role):")
    for f in fs:
        print(f"  {f.name:10s} {f.kind:6s} {f.role:9s} {f.description}")


@app.command("generate")
def generate(
    run: Annotated[Path, typer.Argument(help="run directory")],
    out: Annotated[Path | None, Opt("--out", help=".npz, .npy, .csv or .parquet")] = None,
    n: Annotated[int, Opt("--n", help="number of windows")] = 16,
    reference: Annotated[str | None, Opt(help="windows to take kept factors from")] = None,
    reference_seq: Annotated[str | None, Opt("--reference-seq",
                                             help="one sequence of the reference")] = None,
    reference_index: Annotated[list[int] | None, Opt("--reference-index",
                                                     help="window(s) of the reference")] = None,
    keep: Annotated[list[str] | None, Opt("--keep", help="factor taken from the reference")]
    = None,
    value: Annotated[list[str] | None, Opt("--value", help="NAME=VALUE, e.g. y=7")] = None,
    scale: Annotated[list[str] | None, Opt("--scale", help="NAME=FACTOR, e.g. seasonal=2")]
    = None,
    seed: Annotated[int, Opt()] = 0,
    list_factors: Annotated[bool, Flag("--list", help="list the model's factors and exit")]
    = False,
    force: Annotated[bool, Flag("--force", help="replace an existing output file")] = False,
) -> None:
    """Generate N windows with chosen factors held, set or scaled (see --list)."""
    from ..checkpoint import load
    from ..io import FORMATS, check_output, write_windows

    if not list_factors:
        if out is None:
            raise FactorseqError("--out is required (or --list to see the factors)")
        out = check_output(out, force, formats=FORMATS)
    values, scales = _pairs(value, "--value"), _pairs(scale, "--scale")
    r = load(run)
    r.model.require("factors")
    if list_factors:
        _list_factors(r)
        return
    ref = None
    if reference is not None:
        ref = reference_windows(r, reference, reference_seq, reference_index)
    elif reference_seq is not None or reference_index:
        raise FactorseqError("--reference-seq/--reference-index need --reference")
    bad = [k for k, v in scales.items() if not isinstance(v, (int, float))]
    if bad:
        raise FactorseqError(f"--scale {bad[0]} must be a number, got {scales[bad[0]]!r}")
    x = r.generate(n, reference=ref, keep=keep or [], values=values,
                   scale={k: float(v) for k, v in scales.items()}, seed=seed)
    kinds = {f.name: f.kind for f in r.factors()}
    label = next((v for k, v in values.items() if kinds.get(k) == "label"), None)
    extra = {} if label is None else {"label": np.broadcast_to(np.asarray(label), (n,))}
    write_windows(out, x, r.schema.get("feature_names"), extra)
    print(f"wrote {n} windows {tuple(x.shape)} to {out}")
