"""Long tables (``.csv`` / ``.parquet``, one row a time step) -> windows (N, window, features).

Columns: one per feature, plus optional ``id_column`` (which series a row belongs to; windows
never cross series), ``time_column`` (rows are sorted by it within each series, then it is
dropped) and ``label_column`` (a window's label is the label of its last row; empty/NaN
means unlabelled).
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import FactorseqError
from .config import DataConfig
from .container import SequenceData
from .loaders import file_loader, handle_missing, missing_mask, sliding_windows


@file_loader(".csv", ".parquet", ".pq")
def load_table(path: Path, cfg: DataConfig) -> SequenceData:
    """Read a long table file and cut it into windows as ``cfg`` says (see module doc)."""
    path = Path(path)
    return table_windows(read_table(path), cfg, name=path.stem)


def read_table(path: str | Path) -> pd.DataFrame:
    """A ``.csv`` (header row) or ``.parquet`` file as a DataFrame; unreadable -> FactorseqError."""
    path = Path(path)
    try:
        if path.suffix.lower() == ".csv":
            return pd.read_csv(path)
        return pd.read_parquet(path)
    except Exception as e:  # pandas/pyarrow raise many types; all mean "bad file" here
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise FactorseqError(f"cannot read table {path}: {msg}") from None


def _check_columns(df: pd.DataFrame, cfg: DataConfig, name: str) -> list[str]:
    """The feature columns; every named column must exist and features must be numeric."""
    cols = [str(c) for c in df.columns]
    df.columns = cols
    special = {"id_column": cfg.id_column, "time_column": cfg.time_column,
               "label_column": cfg.label_column}
    for key, col in special.items():
        if col is not None and col not in cols:
            raise FactorseqError(f"{key} {col!r} is not a column of {name}; "
                                 f"columns: {', '.join(cols)}")
    roles = {c for c in special.values() if c is not None}
    if cfg.feature_columns is not None:
        unknown = [c for c in cfg.feature_columns if c not in cols]
        if unknown:
            raise FactorseqError(f"feature column(s) {', '.join(map(repr, unknown))} not in "
                                 f"{name}; columns: {', '.join(cols)}")
        clash = [c for c in cfg.feature_columns if c in roles]
        if clash:
            raise FactorseqError(f"column {clash[0]!r} cannot be both a feature and the "
                                 "id/time/label column")
        features = list(cfg.feature_columns)
    else:
        features = [c for c in cols if c not in roles]
    if not features:
        raise FactorseqError(f"{name} has no feature columns")
    for c in features:
        col = df[c]
        if pd.api.types.is_numeric_dtype(col):  # includes bool (0/1)
            continue
        coerced = pd.to_numeric(col, errors="coerce")
        bad = np.flatnonzero(coerced.isna().to_numpy() & col.notna().to_numpy())
        if len(bad) == 0:  # numbers stored as text (e.g. a string parquet column)
            df[c] = coerced
            continue
        raise FactorseqError(f"feature column {c!r} is not numeric (row {int(bad[0])}: "
                             f"{col.iloc[bad[0]]!r}); choose numeric columns with "
                             "feature_columns")
    return features


def _encode_labels(col: pd.Series) -> tuple[np.ndarray, list | None]:
    """Row labels -> float codes (NaN = unlabelled) and the class names (None: codes as is).

    Non-negative integer labels are used as class indices; anything else (strings, negative
    or fractional values) is mapped to 0..K-1 in sorted order of the distinct values.
    Empty cells, NaN and -1 mean unlabelled.
    """
    if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
        vals = col.to_numpy(dtype=np.float64)
        known = np.isfinite(vals) & (vals != -1)
        kv = vals[known]
        if (kv >= 0).all() and (kv == np.round(kv)).all():
            return np.where(known, vals, np.nan), None
        classes = np.unique(kv)
        codes = np.full(len(vals), np.nan)
        codes[known] = np.searchsorted(classes, kv)
        return codes, classes.tolist()
    text = col.astype("string").str.strip()
    known = (text.notna() & (text != "")).to_numpy(dtype=bool)
    kv = text.to_numpy(dtype=object)[known].astype(str)
    classes = np.unique(kv)
    codes = np.full(len(col), np.nan)
    codes[known] = np.searchsorted(classes, kv)
    return codes, classes.tolist()


def _time_order(col: pd.Series) -> np.ndarray:
    """Stable sort order of a time column: numbers as numbers, text parsed as dates if it can."""
    values = col
    if not pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_datetime64_any_dtype(col):
        try:
            with warnings.catch_warnings():  # pandas warns when it has to guess the format
                warnings.simplefilter("ignore")
                values = pd.to_datetime(col)
        except (ValueError, TypeError):
            values = col.astype(str)
    return np.argsort(values.to_numpy(), kind="stable")


def table_windows(df: pd.DataFrame, cfg: DataConfig, name: str = "data") -> SequenceData:
    """Cut a long table into windows (N, cfg.window, features), per series, every cfg.stride.

    Missing values (NaN or ``cfg.missing``) follow ``cfg.impute`` within each series.
    With ``id_column`` the windows carry ``seq_id`` (series index, in order of appearance) and
    ``meta["n_sequences"]``; with ``label_column`` they carry ``y``/``y_mask`` and
    ``meta["n_classes"]`` (and ``meta["class_names"]`` when labels were names).
    """
    if len(df) == 0:
        raise FactorseqError(f"table {name} has no rows")
    df = df.reset_index(drop=True)
    features = _check_columns(df, cfg, name)
    values = df[features].to_numpy(dtype=np.float64)
    if cfg.impute is None and missing_mask(values, cfg.missing).any():
        handle_missing(values, cfg.missing, None, what=name)  # raises, counting every value
    codes, classes = (None, None) if cfg.label_column is None \
        else _encode_labels(df[cfg.label_column])
    if cfg.id_column is not None:
        ids = df[cfg.id_column]
        if ids.isna().any():
            raise FactorseqError(f"id_column {cfg.id_column!r} has empty values "
                                 f"(row {int(np.flatnonzero(ids.isna().to_numpy())[0])})")
        groups = list(df.groupby(cfg.id_column, sort=False).indices.items())
    else:
        groups = [(None, np.arange(len(df)))]

    xs, ys, sids = [], [], []
    for k, (sid, rows) in enumerate(groups):
        rows = np.asarray(rows)
        if cfg.time_column is not None:
            rows = rows[_time_order(df[cfg.time_column].iloc[rows])]
        table = values[rows]
        label = None if codes is None else codes[rows]
        series = "the series" if sid is None else f"series {sid!r}"
        if cfg.impute == "drop":  # drop rows (and their labels) before windowing
            keep = ~missing_mask(table, cfg.missing).any(axis=1)
            table, label = table[keep], (None if label is None else label[keep])
        else:
            table = handle_missing(table, cfg.missing, cfg.impute, what=f"{name} {series}")
        if len(table) < cfg.window:
            raise FactorseqError(f"window of {cfg.window} steps is longer than {series} "
                                 f"({len(table)} rows)")
        w = sliding_windows(table, cfg.window, cfg.stride)
        xs.append(w)
        if label is not None:
            # the label of a window is the label of its last row
            ys.append(label[np.arange(len(w)) * cfg.stride + cfg.window - 1])
        sids.append(np.full(len(w), k, dtype=np.int64))

    x = np.concatenate(xs)
    meta: dict = {}
    y = y_mask = seq_id = None
    if codes is not None:
        yf = np.concatenate(ys)
        y_mask = np.isfinite(yf)
        y = np.where(y_mask, yf, 0).astype(np.int64)
        if classes is not None:
            meta["class_names"] = [str(c) for c in classes]
            meta["n_classes"] = len(classes)
        elif np.isfinite(codes).any():
            meta["n_classes"] = int(np.nanmax(codes)) + 1
    if cfg.id_column is not None:
        seq_id = np.concatenate(sids)
        meta["n_sequences"] = len(groups)
    return SequenceData(x=x, feature_names=features, y=y, y_mask=y_mask, seq_id=seq_id,
                        meta=meta, name=name)
