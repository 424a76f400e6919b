"""Samples of runs trained on long tables with categorical columns or attributes (issue #24).

- :func:`attribute_rows`: the attributes of the entities to generate, from the user's values
  (``{"kind": "shop"}`` for all, or a table with one row per entity), checked against what
  training saw (an unknown name or value is one error line listing the allowed ones);
  attributes not given are drawn from the training entities that match the given ones.
- :func:`tabular_frame`: windows as a long table in the input's layout: its id and time
  column names, the attributes, the feature columns in their order, categories as labels,
  each entity cut to its length (runs trained with ``max_length``).

Attribute rows are "raw": numbers, or codes (indices into the run's ``categories``).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from .data.lengths import within
from .errors import FactorseqError


def specs(run: Any) -> list[dict]:
    """The run's attributes: ``[{name, kind, categories}]`` (empty: trained without)."""
    return list(run.schema.get("meta", {}).get("attributes") or [])


def categories(run: Any) -> dict[str, list[str]]:
    """{column: labels} of the run's categorical features."""
    return dict(run.schema.get("meta", {}).get("categories") or {})


def is_tabular(run: Any) -> bool:
    """Whether samples are written in the input's long-table layout (categories, attributes
    or entity lengths)."""
    return bool(specs(run) or categories(run) or run.schema.get("lengths"))


def attribute_rows(run: Any, n: int | None, given: Any, seed: int = 0
                   ) -> tuple[np.ndarray, list | None]:
    """(rows (n, A) raw, entity ids or None) for sampling ``run``: ``given`` None (all drawn
    from the training entities), a mapping {name: value} (for all n), or a DataFrame / list
    of mappings (one row per entity to generate; ``n`` is then its length; the run's id
    column, when there, names the entities)."""
    run.model.require("attributes")
    sp = specs(run)
    if not sp:
        raise FactorseqError("this run was trained without attributes (train with "
                             "--attribute-columns to sample for given ones)")
    scaler = run.scaler
    rng = np.random.default_rng(seed)
    if given is None or isinstance(given, Mapping):
        if n is None:
            raise FactorseqError("how many windows to sample? (n)")
        table, ids = [dict(given or {})] * int(n), None
    else:
        frame = pd.DataFrame(given)
        id_col = run.data_config.id_column
        ids = frame[id_col].tolist() if id_col in frame.columns else None
        table = frame.drop(columns=[id_col] if ids is not None else []).to_dict("records")
        if not table:
            raise FactorseqError("no rows of attributes to sample for")
    names = [s["name"] for s in sp]
    coded = [dict(_code(sp, scaler, k, v, names) for k, v in row.items()) for row in table]
    rows = np.stack([_complete(scaler, c, rng) for c in coded])
    return rows, ids


def _code(sp: list[dict], scaler: Any, key: str, value: Any, names: list[str]
          ) -> tuple[int, float]:
    """(attribute index, value as the run stores it: a category's code or a number)."""
    if key not in names:
        raise FactorseqError(f"unknown attribute {key!r}; the run's attributes: "
                             f"{', '.join(names)}")
    i = names.index(key)
    s, fitted = sp[i], scaler.attr_[i]
    if s["kind"] == "categorical":
        seen = [s["categories"][int(c)] for c in fitted["levels"]]
        label = _label(value)
        if label not in seen:
            raise FactorseqError(f"attribute {key} has no value {label!r} in training; "
                                 f"allowed: {', '.join(seen)}")
        return i, float(s["categories"].index(label))
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise FactorseqError(f"attribute {key} is numeric, got {value!r}") from None
    if not np.isfinite(v):
        raise FactorseqError(f"attribute {key} must be a finite number, got {value!r}")
    return i, v


def _label(value: Any) -> str:
    """A value as a category label: whole numbers without a decimal point (as the loader)."""
    if isinstance(value, (int, float, np.number)) and not isinstance(value, bool) \
            and float(value).is_integer():
        return str(int(value))
    return str(value).strip()


def _complete(scaler: Any, given: dict[int, float], rng: np.random.Generator) -> np.ndarray:
    """One attribute row: the given values, the rest from a training entity's row drawn in
    proportion to its windows among those matching the given values (any row if none do)."""
    rows, counts = scaler.rows_, scaler.counts_.astype(np.float64)
    match = np.ones(len(rows), dtype=bool)
    for i, v in given.items():
        match &= rows[:, i] == v
    weights = counts * match if match.any() else counts
    row = rows[rng.choice(len(rows), p=weights / weights.sum())].copy()
    for i, v in given.items():
        row[i] = v
    return row


def tabular_frame(run: Any, x: np.ndarray, rows: np.ndarray | None = None,
                  ids: list | None = None, lengths: np.ndarray | None = None) -> pd.DataFrame:
    """Windows (n, time, features) in the user's units (categorical columns as codes) as a
    long table in the input's layout: id column (``ids``, else 0..n-1), time column (step
    0..time-1), the attributes of ``rows`` (n, A), the features with categories as labels;
    entity i keeps its first ``lengths[i]`` steps (default: all)."""
    cfg = run.data_config
    n, t, d = x.shape
    own = (within(np.full(n, t) if lengths is None else lengths, t)).reshape(-1)
    names = list(run.schema.get("feature_names") or [f"f{j}" for j in range(d)])
    cats = categories(run)
    ids = list(range(n)) if ids is None else list(ids)
    out = {cfg.id_column or "sample": np.repeat(np.asarray(ids, dtype=object), t),
           cfg.time_column or "step": np.tile(np.arange(t), n)}
    for j, s in enumerate(specs(run) if rows is not None else []):
        col = rows[:, j]
        if s["kind"] == "categorical":
            col = np.asarray(s["categories"], dtype=object)[col.astype(np.int64)]
        out[s["name"]] = np.repeat(col, t)
    for j, name in enumerate(names):
        col = x[:, :, j].reshape(-1)
        if name in cats:
            col = np.asarray(cats[name], dtype=object)[np.rint(col).astype(np.int64)]
        out[name] = col
    frame = pd.DataFrame(out)[own].reset_index(drop=True)
    if ids and all(isinstance(i, (int, np.integer)) for i in ids):
        frame[cfg.id_column or "sample"] = frame[cfg.id_column or "sample"].astype(np.int64)
    return frame
