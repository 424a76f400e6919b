"""Long tables (``.csv`` / ``.parquet``, one row a time step) -> windows (N, window, features).

Columns: one per feature, plus optional ``id_column`` (which series a row belongs to; windows
never cross series), ``time_column`` (rows are sorted by it within each series, then it is
dropped) and ``label_column`` (a window's label is the label of its last row; empty/NaN
means unlabelled), ``attribute_columns`` (one value per entity, carried by each window);
categorical features are coded (:mod:`.tabular`). ``drop_columns`` leaves features out by
name (or index among the features). ``max_length`` makes each entity one sequence of that
many steps instead, padded and masked after its length (:mod:`.lengths`).
Missing values are filled along each whole series before it is cut into windows (see
:mod:`.missing`), so a gap longer than a window is bridged from both sides.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import FactorseqError
from .config import DataConfig
from .container import SequenceData
from .formats import file_loader
from .lengths import pad_entity, within
from .missing import check_missing, fill_along_series, missing_mask, observed_mean, remove_values
from .tabular import categorical_features, entity_attributes
from .windows import kept_features, sliding_windows


@file_loader(".csv", ".parquet", ".pq", handles_missing=True)
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
    """The feature columns; every named column must exist (features are checked numeric or
    categorical by :func:`.tabular.categorical_features`)."""
    cols = [str(c) for c in df.columns]
    df.columns = cols
    special = {"id_column": cfg.id_column, "time_column": cfg.time_column,
               "label_column": cfg.label_column}
    for key, col in special.items():
        if col is not None and col not in cols:
            raise FactorseqError(f"{key} {col!r} is not a column of {name}; "
                                 f"columns: {', '.join(cols)}")
    attrs = list(cfg.attribute_columns or [])
    absent = [c for c in attrs if c not in cols]
    if absent:
        raise FactorseqError(f"attribute column {absent[0]!r} is not a column of {name}; "
                             f"columns: {', '.join(cols)}")
    roles = {c for c in special.values() if c is not None}
    clash = [c for c in attrs if c in roles]
    if clash:
        raise FactorseqError(f"column {clash[0]!r} cannot be both an attribute and the "
                             "id/time/label column")
    roles |= set(attrs)
    if cfg.feature_columns is not None:
        unknown = [c for c in cfg.feature_columns if c not in cols]
        if unknown:
            raise FactorseqError(f"feature column(s) {', '.join(map(repr, unknown))} not in "
                                 f"{name}; columns: {', '.join(cols)}")
        clash = [c for c in cfg.feature_columns if c in roles]
        if clash:
            raise FactorseqError(f"column {clash[0]!r} cannot be both a feature and the "
                                 "id/time/label or an attribute column")
        features = list(cfg.feature_columns)
    else:
        features = [c for c in cols if c not in roles]
    if not features:
        raise FactorseqError(f"{name} has no feature columns")
    if cfg.drop_columns:
        clash = [c for c in cfg.drop_columns if c in roles]
        if clash:
            raise FactorseqError(f"cannot drop column {clash[0]!r}: it is the id/time/label "
                                 "column")
        features = [features[j] for j in kept_features(features, cfg.drop_columns, name)]
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


def _time_rank(col: pd.Series) -> np.ndarray:
    """Rank (int) of each time value: numbers as numbers (also when written as text: "10"
    after "9"), text parsed as dates; anything else is an error (ordering it as strings would
    scramble the series without a word)."""
    values = col
    if not pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_datetime64_any_dtype(col):
        numbers = pd.to_numeric(col, errors="coerce")
        if numbers.notna().all():
            values = numbers
        else:
            try:
                with warnings.catch_warnings():  # pandas warns when it guesses the format
                    warnings.simplefilter("ignore")
                    values = pd.to_datetime(col)
            except (ValueError, TypeError, OverflowError):
                bad = col[numbers.isna()].iloc[0]
                raise FactorseqError(f"time column {col.name!r} holds {bad!r}, neither a number "
                                     "nor a date: its rows cannot be put in time order") from None
    return pd.factorize(values, sort=True)[0]


def _check_range(values: np.ndarray, features: list[str], name: str) -> None:
    """Finite values beyond float32 (training's precision) would become inf there and be
    taken for missing values: say so instead."""
    big = np.isfinite(values) & (np.abs(values) > np.finfo(np.float32).max)
    if big.any():
        row, col = (int(i[0]) for i in np.nonzero(big))
        raise FactorseqError(f"column {features[col]!r} of {name} holds {values[row, col]:g}, "
                             f"beyond float32's range (+-3.4e38) that training uses; rescale it")


def _series(df: pd.DataFrame, cfg: DataConfig) -> tuple[np.ndarray, np.ndarray, list]:
    """Row order putting each series' rows together in time order (series in order of
    appearance), the first row of each series in that order, and the series' ids."""
    if cfg.id_column is None:
        gid, ids = np.zeros(len(df), dtype=np.int64), [None]
    else:
        col = df[cfg.id_column]
        if col.isna().any():
            raise FactorseqError(f"id_column {cfg.id_column!r} has empty values "
                                 f"(row {int(np.flatnonzero(col.isna().to_numpy())[0])})")
        gid, uniq = pd.factorize(col, sort=False)
        ids = list(uniq)
    keys = [gid] if cfg.time_column is None else [_time_rank(df[cfg.time_column]), gid]
    order = np.lexsort(keys)  # stable: the last key (series) first, then time, then file order
    sizes = np.bincount(gid, minlength=len(ids))
    return order, np.concatenate([[0], np.cumsum(sizes)[:-1]]), ids


def _fill(values: np.ndarray, mask: np.ndarray, starts: np.ndarray, ids: list,
          features: list[str], cfg: DataConfig, name: str) -> tuple[np.ndarray, np.ndarray]:
    """``cfg.impute`` on the table (rows of consecutive series) -> values, rows kept."""
    keep = np.ones(len(values), dtype=bool)
    if cfg.impute == "drop":  # rows (and their labels) go before windowing
        keep = ~mask.any(axis=1)
    elif cfg.impute in ("mean", "mask"):
        values = np.where(mask, observed_mean(values, mask), values)
    else:
        values, empty = fill_along_series(values, mask, starts, cfg.impute)
        if empty.any():  # with ids only: a whole-table gap is caught by check_missing
            j = int(np.flatnonzero(empty.any(axis=0))[0])
            hit = np.flatnonzero(empty[:, j])
            rows = np.diff(np.append(starts, len(values)))[hit[0]]
            more = f" and {len(hit) - 1} more series" if len(hit) > 1 else ""
            raise FactorseqError(
                f"column {features[j]!r} of {name} has no observed value in series "
                f"{ids[hit[0]]!r} ({rows} rows){more}; {cfg.impute} fills along a series: use "
                f"--impute mean (the column's mean over all series) or mask, or "
                f"--drop-columns {features[j]}")
    return values, keep


def table_windows(df: pd.DataFrame, cfg: DataConfig, name: str = "data") -> SequenceData:
    """Cut a long table into windows (N, cfg.window, features), per series, every cfg.stride.

    Missing values (NaN, +-inf or ``cfg.missing``) follow ``cfg.impute`` along each whole
    series, before windowing. With ``id_column`` the windows carry ``seq_id`` (series index,
    in order of appearance) and ``meta["n_sequences"]``; with ``label_column`` they carry
    ``y``/``y_mask`` and ``meta["n_classes"]`` (and ``meta["class_names"]`` when labels were
    names). Under ``impute="mask"`` they carry ``x_mask`` (True = observed).
    """
    if len(df) == 0:
        raise FactorseqError(f"table {name} has no rows")
    df = df.reset_index(drop=True)
    features = _check_columns(df, cfg, name)
    categories = categorical_features(df, features, cfg, name)
    codes, classes = (None, None) if cfg.label_column is None \
        else _encode_labels(df[cfg.label_column])
    order, starts, ids = _series(df, cfg)
    entity, specs = (None, []) if not cfg.attribute_columns else \
        entity_attributes(df, cfg, ids, name)
    values = df[features].to_numpy(dtype=np.float64)[order]
    _check_range(values, features, name)
    codes_sorted = None if codes is None else codes[order]
    if cfg.remove_rate > 0:  # values hidden on purpose, along the series as they are stored
        values = remove_values(values[None], cfg.remove_rate, cfg.remove_pattern,
                               cfg.removal_seed)[0][0]
    mask = missing_mask(values, cfg.missing)
    check_missing(mask, features, cfg.impute, name, cfg.missing)
    rate = mask.mean(axis=0) if mask.any() else None
    keep = np.ones(len(values), dtype=bool)
    if rate is not None:
        values, keep = _fill(values, mask, starts, ids, features, cfg, name)
    observed = ~mask if cfg.impute == "mask" and rate is not None else None

    bounds = np.append(starts, len(values))
    xs, ms, ys, sids, starts_, attrs, lens = [], [], [], [], [], [], []
    cut = 0
    for k, sid in enumerate(ids):
        rows = np.arange(bounds[k], bounds[k + 1])[keep[bounds[k]:bounds[k + 1]]]
        _check_length(rows, keep[bounds[k]:bounds[k + 1]], sid, cfg)
        w, pos, size = _cut(values[rows], cfg)
        xs.append(w)
        inside = within(size, w.shape[1])[..., None]  # steps that are the series' own
        if observed is not None or cfg.max_length is not None:
            seen = np.ones_like(w, dtype=bool) if observed is None else \
                _cut(observed[rows], cfg)[0]
            ms.append(seen & inside)
        if codes_sorted is not None:
            # the label of a window is the label of its last row (of the entity's own)
            ys.append(codes_sorted[rows][pos + size - 1])
        sids.append(np.full(len(w), k, dtype=np.int64))
        if entity is not None:  # every window carries its entity's attribute row
            attrs.append(np.repeat(entity[k][None], len(w), axis=0))
        # where each window begins among the series' kept rows (time splits read it)
        starts_.append(pos)
        lens.append(size)
        cut += int(cfg.max_length is not None and len(rows) > cfg.max_length)

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
    if categories:
        meta["categories"] = categories
    if specs:
        meta["attributes"] = specs
    if cfg.max_length is not None:
        meta["max_length"] = cfg.max_length
        meta["entities_cut"] = cut  # longer than max_length: their first max_length steps
    if cfg.id_column is not None:
        seq_id = np.concatenate(sids)
        meta["n_sequences"] = len(ids)
        meta["sequence_names"] = [str(i) for i in ids]  # seq_id -> the id column's value
    return SequenceData(
        x=np.concatenate(xs), feature_names=features,
        x_mask=np.concatenate(ms) if ms else None,
        missing_rate=None if rate is None else dict(zip(features, rate.tolist(), strict=True)),
        impute=cfg.impute if rate is not None else None,
        y=y, y_mask=y_mask, seq_id=seq_id, start=np.concatenate(starts_), meta=meta,
        attributes=np.concatenate(attrs) if attrs else None, name=name,
        lengths=np.concatenate(lens) if cfg.max_length is not None else None)


def _check_length(rows: np.ndarray, kept: np.ndarray, sid: object, cfg: DataConfig) -> None:
    """A series must hold a window (or, with ``max_length``, one row) after ``drop``."""
    need = 1 if cfg.max_length is not None else cfg.window
    if len(rows) >= need:
        return
    series = "the series" if sid is None else f"series {sid!r}"
    gone = int((~kept).sum())
    why = f" after --impute drop removed {gone} with missing values" if gone else ""
    if cfg.max_length is not None:
        raise FactorseqError(f"{series} has no rows{why}")
    raise FactorseqError(f"window of {cfg.window} steps is longer than {series} "
                         f"({len(rows)} rows{why})")


def _cut(table: np.ndarray, cfg: DataConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(windows (n, T, D) of one series (rows in time order), where each begins, how many of
    its steps are the series' own): windows of ``cfg.window`` every ``cfg.stride`` steps, or
    with ``max_length`` the one padded sequence of the entity (:mod:`.lengths`)."""
    if cfg.max_length is None:
        w = sliding_windows(table, cfg.window, cfg.stride)
        return w, np.arange(len(w), dtype=np.int64) * cfg.stride, np.full(len(w), cfg.window)
    w, n = pad_entity(table, cfg.max_length)
    return w, np.zeros(1, dtype=np.int64), np.array([n], dtype=np.int64)
