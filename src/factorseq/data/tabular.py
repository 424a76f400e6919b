"""Categorical columns and per-entity attributes of long tables (issue #24).

- A feature column holds **categories** when it is declared (``categorical_columns``) or is
  text that is not numbers (a text column of numbers with a few stray words is still an
  error: most likely a numeric column with typos). Its cells become float codes, the index of
  the label among the column's sorted labels (``categories`` fixes the labels: a run reads a
  new file with its own, and a label it never saw is an error). The scaler turns the codes
  into one-hot blocks for training and back (:class:`factorseq.data.scaler.TabularScaler`).
- **Attributes** (``attribute_columns``, with ``id_column``) hold one value per entity,
  numeric or categorical (coded like the features); a value that changes within an entity is
  an error naming it. Every window carries its entity's attribute row.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import FactorseqError
from .config import DataConfig

NUMERIC, CATEGORICAL = "numeric", "categorical"


def categorical_features(df: pd.DataFrame, features: list[str], cfg: DataConfig,
                         name: str) -> dict[str, list[str]]:
    """{column: labels} of the features that hold categories (declared, or detected as text);
    each such column of ``df`` is replaced by its float codes, numbers stored as text by the
    numbers. Any other non-numeric feature is an error naming a bad cell."""
    declared = list(cfg.categorical_columns or [])
    unknown = [c for c in declared if c not in features and c not in
               (cfg.attribute_columns or [])]
    if unknown:
        raise FactorseqError(f"categorical column {unknown[0]!r} is not a feature or attribute "
                             f"column of {name}; features: {', '.join(features)}")
    out: dict[str, list[str]] = {}
    for c in features:
        if c not in declared and not _is_text(df, c, name):
            continue
        labels, codes = encode_column(df[c], c, cfg, name)
        df[c] = codes
        out[c] = labels
    return out


def _is_text(df: pd.DataFrame, c: str, name: str) -> bool:
    """Whether feature ``c`` holds categories (text that is not numbers); numbers stored as
    text are converted in place. Mostly numbers with a few words: an error."""
    col = df[c]
    if pd.api.types.is_numeric_dtype(col):  # includes bool (0/1)
        return False
    coerced = pd.to_numeric(col, errors="coerce")
    bad = np.flatnonzero(coerced.isna().to_numpy() & col.notna().to_numpy())
    if len(bad) == 0:
        df[c] = coerced
        return False
    if len(bad) <= 0.1 * col.notna().sum():  # a numeric column with a few stray words
        raise FactorseqError(f"feature column {c!r} is not numeric (row {int(bad[0])}: "
                             f"{col.iloc[bad[0]]!r}); fix those cells, or declare it with "
                             "--categorical-columns, or choose columns with feature_columns")
    return True


def _labels(col: pd.Series) -> pd.Series:
    """Cells as category labels (text): whole numbers without a decimal point (1, not 1.0)."""
    if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
        v = col.to_numpy(dtype=np.float64)
        whole = np.isfinite(v) & (v == np.round(v))
        text = [str(int(x)) if w else str(x) for x, w in zip(v, whole, strict=True)]
        return pd.Series(text, index=col.index).where(col.notna())
    return col.astype("string").str.strip().where(col.notna())


def encode_column(col: pd.Series, c: str, cfg: DataConfig, name: str
                  ) -> tuple[list[str], np.ndarray]:
    """(labels, float codes) of a categorical column: the labels sorted (numbers in numeric
    order), or the ones ``cfg.categories`` fixes for ``c``."""
    text = _labels(col)
    empty = text.isna() | (text == "")
    if empty.any():
        raise FactorseqError(f"categorical column {c!r} of {name} has an empty cell (row "
                             f"{int(np.flatnonzero(empty.to_numpy())[0])}); fill it (e.g. "
                             "with a category 'unknown') or drop the column")
    given = (cfg.categories or {}).get(c)
    if given is not None:
        labels = [str(v) for v in given]
    else:
        uniq = pd.unique(text.to_numpy(dtype=object))
        numbers = pd.to_numeric(pd.Series(uniq), errors="coerce")
        labels = ([str(u) for u in np.asarray(uniq)[np.argsort(numbers.to_numpy())]]
                  if numbers.notna().all() else sorted(str(u) for u in uniq))
        if len(labels) > cfg.max_categories:
            raise FactorseqError(f"column {c!r} of {name} is not numeric and has {len(labels)} "
                                 f"distinct values, more than max_categories "
                                 f"({cfg.max_categories}) a categorical column may have: is it "
                                 "an id or time column? Name it, drop it (--drop-columns) or "
                                 "raise data.max_categories")
    index = {lab: i for i, lab in enumerate(labels)}
    codes = text.map(index)
    if codes.isna().any():
        row = int(np.flatnonzero(codes.isna().to_numpy())[0])
        raise FactorseqError(f"column {c!r} of {name} holds {text.iloc[row]!r} (row {row}), a "
                             f"category the run never saw; its categories: "
                             f"{', '.join(labels)}")
    return labels, codes.to_numpy(dtype=np.float64)


def entity_attributes(df: pd.DataFrame, cfg: DataConfig, ids: list, name: str
                      ) -> tuple[np.ndarray, list[dict]]:
    """(values (entities, attributes) float, specs): each attribute's value per entity (in
    the order of ``ids``), categorical ones as codes, and ``[{name, kind, categories}]``.
    An attribute that changes within an entity, or is missing, is an error naming it."""
    gid = pd.factorize(df[cfg.id_column], sort=False)[0]
    declared = set(cfg.categorical_columns or [])
    columns, specs = [], []
    for c in cfg.attribute_columns or []:
        col = df[c]
        if c in declared or _attribute_is_text(col):
            labels, values = encode_column(col, c, cfg, name)
            specs.append({"name": c, "kind": CATEGORICAL, "categories": labels})
        else:
            values = pd.to_numeric(col, errors="coerce").to_numpy(dtype=np.float64)
            if not np.isfinite(values).all():
                row = int(np.flatnonzero(~np.isfinite(values))[0])
                raise FactorseqError(f"attribute {c!r} of {name} is missing for entity "
                                     f"{df[cfg.id_column].iloc[row]!r} (row {row})")
            specs.append({"name": c, "kind": NUMERIC})
        columns.append(_per_entity(values, gid, ids, c, col))
    return np.stack(columns, axis=1), specs


def _attribute_is_text(col: pd.Series) -> bool:
    if pd.api.types.is_numeric_dtype(col):
        return False
    coerced = pd.to_numeric(col, errors="coerce")
    return bool((coerced.isna() & col.notna()).any())


def _per_entity(values: np.ndarray, gid: np.ndarray, ids: list, c: str, col: pd.Series
                ) -> np.ndarray:
    """The one value of every entity; two values in one entity is an error naming it."""
    lo = np.full(len(ids), np.inf)
    hi = np.full(len(ids), -np.inf)
    np.minimum.at(lo, gid, values)
    np.maximum.at(hi, gid, values)
    varies = np.flatnonzero(lo != hi)
    if len(varies):
        k = int(varies[0])
        seen = pd.unique(col[gid == k].astype(str))[:3]
        raise FactorseqError(f"attribute {c!r} varies within entity {ids[k]!r} (values "
                             f"{', '.join(map(repr, seen))}); an attribute holds one value per "
                             "entity: make it a feature column instead")
    return lo


def attribute_names(meta: dict) -> list[str]:
    return [a["name"] for a in meta.get("attributes", [])]
