"""Window arrays (``.npy`` / ``.npz``) -> :class:`SequenceData` (N, T, D)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import FactorseqError, ShapeError
from .config import DataConfig
from .container import SequenceData
from .formats import file_loader
from .missing import window_policy
from .windows import kept_features, recover_starts, recovered_meta

# how every .npz (a zip) and .npy file begins
_MAGIC = {".npz": b"PK\x03\x04", ".npy": b"\x93NUMPY"}


def _labels_from_array(y: np.ndarray, n: int, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Per-window labels (N,) where NaN or -1 means unlabelled -> (y int64, y_mask bool)."""
    y = np.asarray(y)
    if y.shape != (n,):
        raise ShapeError(f"y in {path.name} must have shape ({n},), got {y.shape}")
    if not np.issubdtype(y.dtype, np.number):
        raise FactorseqError(f"y in {path.name} must be numeric class indices, got {y.dtype}")
    yf = y.astype(np.float64)
    mask = np.isfinite(yf) & (yf != -1)
    if (yf[mask] < 0).any() or (yf[mask] != np.round(yf[mask])).any():
        raise FactorseqError(f"y in {path.name} must hold class indices 0, 1, ... "
                             "(NaN or -1 for unlabelled)")
    return np.where(mask, yf, 0).astype(np.int64), mask


def _read(path: Path) -> dict[str, np.ndarray]:
    """The arrays of a ``.npy`` (as ``data``) or ``.npz`` file, read completely: a damaged
    file (truncated or garbled zip, bad header or CRC) fails here, as one FactorseqError."""
    suffix = path.suffix.lower()
    try:
        with open(path, "rb") as fh:
            head = fh.read(len(_MAGIC[suffix]))
        if head != _MAGIC[suffix]:
            raise FactorseqError(f"cannot read {path}: it is not a {suffix} file (it does not "
                                 "begin like one; empty, truncated at the start or another "
                                 "format)")
        if suffix == ".npy":
            return {"data": np.load(path, allow_pickle=False)}
        with np.load(path, allow_pickle=False) as z:
            keys = list(z.files)
            if "data" not in keys and len(keys) == 1:
                return {"data": z[keys[0]]}
            if "data" not in keys:
                raise FactorseqError(f"{path.name} holds arrays {', '.join(keys)} but none "
                                     "named 'data'; name the windows (N, T, D) 'data'")
            return {k: z[k] for k in ("data", "y", "seq_id", "feature_names") if k in keys}
    except FactorseqError:
        raise
    except Exception as e:  # zipfile, zlib, numpy's header parser: all mean "damaged file"
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise FactorseqError(f"cannot read {path}: {msg[:200]} (damaged or incomplete file)"
                             ) from None


@file_loader(".npz", ".npy", handles_missing=True)
def load_array(path: Path, cfg: DataConfig) -> SequenceData:
    """Windows (N, T, D) from ``.npy`` or ``.npz`` (array ``data`` or the file's only array).

    ``.npz`` may add ``y`` (N,) class indices (NaN/-1 = unlabelled), ``seq_id`` (N,) and
    ``feature_names`` (D,). The windows' own length is used (``cfg.window`` is for tables).
    Missing values are filled within each window (see :mod:`.missing`).
    """
    path = Path(path)
    arrays = _read(path)
    x = arrays["data"]
    if x.ndim != 3:
        raise ShapeError(f"array in {path.name} must have 3 dimensions (windows, time, "
                         f"features), got shape {x.shape}; save long tables as .csv or .parquet")
    if not np.issubdtype(x.dtype, np.number):
        raise FactorseqError(f"array in {path.name} must be numeric, got dtype {x.dtype}")
    n = len(x)
    names = [str(s) for s in arrays["feature_names"]] if "feature_names" in arrays \
        else [f"f{j}" for j in range(x.shape[2])]
    if len(names) != x.shape[2]:
        raise ShapeError(f"{len(names)} feature_names in {path.name} for {x.shape[2]} features")
    y, y_mask, seq_id = arrays.get("y"), None, arrays.get("seq_id")
    if y is not None:
        y, y_mask = _labels_from_array(y, n, path)
    if seq_id is not None and np.shape(seq_id) != (n,):
        raise ShapeError(f"seq_id in {path.name} must have shape ({n},), "
                         f"got {np.shape(seq_id)}")
    if cfg.drop_columns:
        keep = kept_features(names, cfg.drop_columns, path.name)
        x, names = x[:, :, keep], [names[j] for j in keep]
    # positions in time from the windows' overlaps, before any value is hidden or filled
    start = recover_starts(x) if seq_id is None else None
    imp = window_policy(x, cfg, names, path.name)
    if imp.keep is not None:
        y, y_mask, seq_id, start = (None if v is None else v[imp.keep]
                                    for v in (y, y_mask, seq_id, start))
    meta: dict = recovered_meta(start)
    if y is not None and y_mask.any():
        meta["n_classes"] = int(y[y_mask].max()) + 1
    if seq_id is not None:
        meta["n_sequences"] = int(len(np.unique(seq_id)))
    rate = None if imp.rate is None else dict(zip(names, imp.rate.tolist(), strict=True))
    return SequenceData(x=imp.x, feature_names=names, x_mask=imp.x_mask, missing_rate=rate,
                        impute=cfg.impute if rate else None, y=y, y_mask=y_mask,
                        seq_id=seq_id, start=start, meta=meta, name=path.stem)
