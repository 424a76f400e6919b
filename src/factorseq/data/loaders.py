"""Load any supported source into :class:`SequenceData` windows of shape (N, time, features).

``load_data(cfg)`` reads a file when ``cfg.source`` is an existing path (``.npz``/``.npy``
window arrays, ``.csv``/``.parquet`` long tables, see :mod:`.tables`) and otherwise looks the
name up among the bundled data sets. The generic helpers live here too: ``sliding_windows``
(table (T, D) -> windows (N, L, D)), ``handle_missing`` (NaN / sentinel policy) and
``keep_labels`` (exactly n class-balanced labels for semi-supervised runs).
"""
from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..errors import FactorseqError, ShapeError
from .config import DataConfig
from .container import SequenceData
from .registry import get_dataset, is_bundled, list_datasets
from .store import load_stored

IMPUTE_MODES = ("ffill", "linear", "drop")

# suffix (".npz", or "dir" for folders) -> loader(path, cfg) -> SequenceData; other data
# modules (e.g. speech front ends) add theirs with @file_loader.
_FILE_LOADERS: dict[str, Callable[[Path, DataConfig], SequenceData]] = {}


def file_loader(*suffixes: str) -> Callable:
    """Decorator: ``@file_loader(".wav", "dir")`` reads those paths in :func:`load_data`."""

    def deco(fn: Callable[[Path, DataConfig], SequenceData]) -> Callable:
        for s in suffixes:
            _FILE_LOADERS[s.lower()] = fn
        return fn

    return deco


def load_data(cfg: DataConfig) -> SequenceData:
    """Load ``cfg.source`` (an existing path, else a bundled name) as windows (N, T, D).

    Raw (unscaled) units; scaling is the trainer's job. When ``cfg.labels`` is set, exactly
    that many labels are kept (class-balanced, seeded by ``cfg.label_seed``) and the rest are
    masked out in ``y_mask``.
    """
    if cfg.store:  # windows on disk, read on demand (written by the plain path below once)
        plain = dataclasses.replace(cfg, store=None, labels=None)
        from .. import __version__  # a new release may cut or scale bundled sets differently
        key = {**dataclasses.asdict(plain), "source_files": _fingerprint(plain.source),
               "factorseq": __version__}
        data = load_stored(cfg.store, key, lambda: load_data(plain))
        return _mask_labels(data, cfg)
    source = str(cfg.source)
    path = Path(source).expanduser()
    if path.exists():
        data = load_file(path, cfg)
    elif is_bundled(source):
        info = get_dataset(source)
        data = info.loader(cfg)
        data.name = source
        data.meta.setdefault("scaler", info.scaler)
    else:
        names = ", ".join(d.name for d in list_datasets())
        raise FactorseqError(f"data source {source!r} is neither an existing file nor a bundled "
                             f"data set name (bundled: {names})")
    return _mask_labels(data, cfg)


def _fingerprint(source: str) -> str | None:
    """Names, sizes and modification times of a source file or folder (None for a bundled
    set): a stored copy is reused only while they are unchanged."""
    path = Path(source).expanduser()
    if not path.exists():
        return None
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    h = hashlib.sha256()
    for p in files:
        st = p.stat()
        h.update(f"{p.relative_to(path.parent)}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def _mask_labels(data: SequenceData, cfg: DataConfig) -> SequenceData:
    if cfg.labels is not None:
        if data.y is None:
            raise FactorseqError(f"--labels {cfg.labels} needs labelled data, but "
                                 f"{data.name!r} has no labels")
        data.y_mask = keep_labels(data.y, data.y_mask, cfg.labels, cfg.label_seed)
    return data


def load_file(path: str | Path, cfg: DataConfig) -> SequenceData:
    """Read one file (or a folder a registered loader understands) by its suffix."""
    path = Path(path)
    key = "dir" if path.is_dir() else path.suffix.lower()
    loader = _FILE_LOADERS.get(key)
    if loader is None:
        what = "a folder" if key == "dir" else f"a {key or 'suffix-less'} file"
        known = ", ".join(sorted(s for s in _FILE_LOADERS if s != "dir"))
        raise FactorseqError(f"cannot read {path}: it is {what}; factorseq reads {known} files")
    return loader(path, cfg)


# --------------------------------------------------------------------------- generic helpers

def sliding_windows(table: np.ndarray, length: int, stride: int = 1) -> np.ndarray:
    """Cut a table (T, D) into windows (N, length, D), N = floor((T - length) / stride) + 1.

    Window ``i`` is ``table[i * stride : i * stride + length]``. Built with a strided view
    (no Python loop) and copied so the windows do not alias the table.
    """
    table = np.asarray(table)
    if table.ndim != 2:
        raise ShapeError(f"table must have 2 dimensions (time, features), got shape "
                         f"{table.shape}")
    if length < 1 or stride < 1:
        raise FactorseqError(f"window length and stride must be >= 1, got {length}, {stride}")
    if length > table.shape[0]:
        raise FactorseqError(f"window of {length} steps is longer than the series "
                             f"({table.shape[0]} rows)")
    # view (T - length + 1, D, length) -> (N, length, D) after the stride and a transpose
    view = np.lib.stride_tricks.sliding_window_view(table, length, axis=0)[::stride]
    return view.transpose(0, 2, 1).copy()


def missing_mask(table: np.ndarray, missing: float | None = None) -> np.ndarray:
    """Boolean mask of missing entries: NaN, and ``missing`` (a declared sentinel) if given."""
    table = np.asarray(table, dtype=np.float64)
    mask = np.isnan(table)
    if missing is not None and not np.isnan(missing):
        mask |= table == missing
    return mask


def handle_missing(table: np.ndarray, missing: float | None = None,
                   impute: str | None = None, *, what: str = "data") -> np.ndarray:
    """Apply the missing-value policy to one series ``table`` (T, D); returns float64 (T', D).

    Missing = NaN or the sentinel ``missing`` (e.g. -200 in UCI Air Quality). Without
    ``impute`` any missing value is an error. ``ffill`` carries the last observation forward
    (a leading gap takes the first observation); ``linear`` interpolates each column linearly
    in time, holding the edge values; ``drop`` removes rows with any missing value (T' <= T).
    """
    table = np.array(table, dtype=np.float64)  # copy: the caller's array is not modified
    if table.ndim != 2:
        raise ShapeError(f"{what} table must have 2 dimensions (time, features), got shape "
                         f"{table.shape}")
    mask = missing_mask(table, missing)
    n_missing = int(mask.sum())
    if n_missing == 0:
        return table
    if impute is None:
        sentinel = "" if missing is None else f" or {missing:g}"
        raise FactorseqError(f"{what} has {n_missing} missing values (NaN{sentinel}); "
                             "use --impute ffill|linear|drop")
    if impute not in IMPUTE_MODES:
        raise FactorseqError(f"impute must be one of {', '.join(IMPUTE_MODES)}, got {impute!r}")
    if impute == "drop":
        return table[~mask.any(axis=1)]
    empty = np.flatnonzero(mask.all(axis=0))
    if len(empty):
        raise FactorseqError(f"{what}: feature {int(empty[0])} has no observed value to impute "
                             "from; use --impute drop or remove the column")
    table[mask] = np.nan
    steps = np.arange(table.shape[0])
    for j in np.flatnonzero(mask.any(axis=0)):
        col, ok = table[:, j], ~mask[:, j]
        if impute == "linear":
            # np.interp holds the first/last observation beyond the observed range
            col[~ok] = np.interp(steps[~ok], steps[ok], col[ok])
        else:
            # index of the last observed step at or before t; before the first one use it
            last = np.maximum.accumulate(np.where(ok, steps, -1))
            last[last < 0] = np.flatnonzero(ok)[0]
            table[:, j] = col[last]
    return table


def keep_labels(y: np.ndarray, y_mask: np.ndarray | None, n: int, seed: int = 0) -> np.ndarray:
    """New ``y_mask`` (N,) keeping exactly ``n`` of the known labels, class-balanced.

    The quota is spread as evenly as possible over the classes present among the known labels:
    a class with fewer labels than its share keeps all of them and the rest is shared among the
    others (water filling); leftover single labels go to classes picked by the seeded
    generator. Which windows keep their label is seeded too (``seed``), so the result is
    deterministic.
    """
    y = np.asarray(y)
    known = np.ones(len(y), dtype=bool) if y_mask is None else np.asarray(y_mask, dtype=bool)
    if len(known) != len(y):
        raise ShapeError(f"y_mask has length {len(known)} but y has {len(y)}")
    available = int(known.sum())
    if n < 0 or n > available:
        raise FactorseqError(f"cannot keep {n} labels: only {available} windows are labelled")
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(y[known], return_counts=True)
    quota = np.zeros(len(classes), dtype=np.int64)
    left = n
    while left > 0:
        open_ = np.flatnonzero(quota < counts)
        share = left // len(open_)
        if share == 0:  # fewer labels left than open classes: one more each for a seeded few
            quota[rng.permutation(open_)[:left]] += 1
            break
        add = np.minimum(share, counts[open_] - quota[open_])
        quota[open_] += add
        left -= int(add.sum())
    out = np.zeros(len(y), dtype=bool)
    for c, q in zip(classes, quota, strict=True):
        if q:
            idx = np.flatnonzero(known & (y == c))
            out[rng.choice(idx, size=int(q), replace=False)] = True
    return out


# --------------------------------------------------------------------------- window arrays

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


def _impute_windows(x: np.ndarray, cfg: DataConfig, what: str) -> np.ndarray:
    """Missing values in windows (N, T, D): imputed along time within each window."""
    mask = missing_mask(x, cfg.missing)
    if not mask.any():
        return x
    if cfg.impute is None:
        handle_missing(x.reshape(-1, x.shape[-1]), cfg.missing, None, what=what)  # raises
    bad = np.flatnonzero(mask.any(axis=(1, 2)))
    if cfg.impute == "drop":  # a window is the unit: drop those with any missing value
        keep = np.ones(len(x), dtype=bool)
        keep[bad] = False
        if not keep.any():
            raise FactorseqError(f"{what}: every window has missing values; nothing left")
        return x[keep]
    x = x.astype(np.float64)
    for i in bad:
        x[i] = handle_missing(x[i], cfg.missing, cfg.impute, what=f"{what} window {i}")
    return x


@file_loader(".npz", ".npy")
def load_array(path: Path, cfg: DataConfig) -> SequenceData:
    """Windows (N, T, D) from ``.npy`` or ``.npz`` (array ``data`` or the file's only array).

    ``.npz`` may add ``y`` (N,) class indices (NaN/-1 = unlabelled), ``seq_id`` (N,) and
    ``feature_names`` (D,). The windows' own length is used (``cfg.window`` is for tables).
    """
    path = Path(path)
    y = seq_id = names = None
    try:
        if path.suffix.lower() == ".npy":
            x = np.load(path, allow_pickle=False)
        else:
            with np.load(path, allow_pickle=False) as z:
                keys = list(z.files)
                if "data" in keys:
                    x = z["data"]
                elif len(keys) == 1:
                    x = z[keys[0]]
                else:
                    raise FactorseqError(f"{path.name} holds arrays {', '.join(keys)} but none "
                                         "named 'data'; name the windows (N, T, D) 'data'")
                y = z["y"] if "y" in keys else None
                seq_id = z["seq_id"] if "seq_id" in keys else None
                names = [str(s) for s in z["feature_names"]] if "feature_names" in keys \
                    else None
    except (OSError, ValueError) as e:
        raise FactorseqError(f"cannot read {path}: {str(e).splitlines()[0]}") from None
    if x.ndim != 3:
        raise ShapeError(f"array in {path.name} must have 3 dimensions (windows, time, "
                         f"features), got shape {x.shape}; save long tables as .csv or .parquet")
    if not np.issubdtype(x.dtype, np.number):
        raise FactorseqError(f"array in {path.name} must be numeric, got dtype {x.dtype}")
    n = len(x)
    y_mask = None
    if y is not None:
        y, y_mask = _labels_from_array(y, n, path)
    if seq_id is not None and np.shape(seq_id) != (n,):
        raise ShapeError(f"seq_id in {path.name} must have shape ({n},), "
                         f"got {np.shape(seq_id)}")
    mask = missing_mask(x, cfg.missing)
    if mask.any():
        if cfg.impute == "drop":
            keep = ~mask.any(axis=(1, 2))
            y, y_mask, seq_id = (None if v is None else v[keep] for v in (y, y_mask, seq_id))
        x = _impute_windows(x, cfg, path.name)
    meta = {}
    if y is not None and y_mask.any():
        meta["n_classes"] = int(y[y_mask].max()) + 1
    if seq_id is not None:
        meta["n_sequences"] = int(len(np.unique(seq_id)))
    return SequenceData(x=x, feature_names=names, y=y, y_mask=y_mask, seq_id=seq_id,
                        meta=meta, name=path.stem)


from . import speech as _speech  # noqa: E402,F401  (registers .wav/.flac and audio folders)
from . import tables as _tables  # noqa: E402,F401  (registers the .csv / .parquet loaders)
