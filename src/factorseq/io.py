"""Writing and reading synthetic windows: ``.npz``, ``.npy``, ``.csv``, ``.parquet``.

Tables are long: one row per (sample, step) with the feature columns, so a user can open them
in any tool; reading turns them back into (samples, time, features).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .errors import FactorseqError, check_shape

FORMATS = (".npz", ".npy", ".csv", ".parquet")


def check_output(path: str | Path, force: bool) -> Path:
    """Refuse to overwrite an existing output unless ``force``; create the parent folder."""
    p = Path(path)
    if p.exists() and not force:
        raise FactorseqError(f"output {p} exists; use --force to overwrite")
    if p.exists() and p.is_dir():
        raise FactorseqError(f"output {p} is a directory")
    p.parent.mkdir(parents=True, exist_ok=True)
    return p


def write_windows(path: str | Path, x: np.ndarray, feature_names: list[str] | None = None,
                  extra: dict[str, np.ndarray] | None = None) -> Path:
    """Save windows ``x`` (samples, time, features) in the format named by the suffix."""
    p = Path(path)
    check_shape("samples", x, 3)
    n, t, d = x.shape
    names = list(feature_names or [f"f{i}" for i in range(d)])
    suffix = p.suffix.lower()
    if suffix == ".npz":
        np.savez_compressed(p, data=x, feature_names=np.array(names), **(extra or {}))
    elif suffix == ".npy":
        np.save(p, x)
    elif suffix in (".csv", ".parquet"):
        df = pd.DataFrame(x.reshape(n * t, d), columns=names)
        df.insert(0, "step", np.tile(np.arange(t), n))
        df.insert(0, "sample", np.repeat(np.arange(n), t))
        for k, v in (extra or {}).items():
            df[k] = np.repeat(np.asarray(v), t)
        if suffix == ".csv":
            df.to_csv(p, index=False)
        else:
            df.to_parquet(p, index=False)
    else:
        raise FactorseqError(f"unknown output format {p.suffix!r}; use {', '.join(FORMATS)}")
    return p


def read_windows(path: str | Path) -> np.ndarray:
    """Read windows written by :func:`write_windows` (or any (N, T, D) npz/npy)."""
    p = Path(path)
    if not p.is_file():
        raise FactorseqError(f"samples file not found: {p}")
    suffix = p.suffix.lower()
    try:
        if suffix == ".npz":
            with np.load(p, allow_pickle=False) as z:
                keys = [k for k in z.files if k != "feature_names"]
                key = "data" if "data" in z.files else (keys[0] if len(keys) == 1 else None)
                if key is None:
                    raise FactorseqError(f"{p} has several arrays and none named 'data'")
                x = z[key]
        elif suffix == ".npy":
            x = np.load(p, allow_pickle=False)
        elif suffix in (".csv", ".parquet"):
            df = pd.read_csv(p) if suffix == ".csv" else pd.read_parquet(p)
            if not {"sample", "step"} <= set(df.columns):
                raise FactorseqError(f"{p} needs 'sample' and 'step' columns")
            df = df.sort_values(["sample", "step"])
            feats = [c for c in df.columns if c not in ("sample", "step", "label")]
            n, t = df["sample"].nunique(), df["step"].nunique()
            if n * t != len(df):
                raise FactorseqError(f"{p}: samples do not all have {t} steps")
            x = df[feats].to_numpy(np.float32).reshape(n, t, len(feats))
        else:
            raise FactorseqError(f"unknown samples format {p.suffix!r}; use {', '.join(FORMATS)}")
    except (ValueError, OSError, KeyError) as e:
        raise FactorseqError(f"cannot read {p}: {str(e).splitlines()[0][:200]}") from None
    check_shape("samples", x, 3)
    if not np.isfinite(x).all():
        raise FactorseqError(f"{p} contains NaN/inf values")
    return x.astype(np.float32)
