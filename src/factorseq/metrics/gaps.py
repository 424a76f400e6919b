"""Which real windows a score compares against when the real data has gaps.

Data loaded with ``--impute mask`` holds placeholders (the feature's mean) where values are
missing; a score against them would reward a model for copying placeholders. So real windows
are the **complete** windows (no missing value) when there are at least ``min_complete`` of
them, else **imputed** windows: filled linearly in time within each window from the observed
values (the feature's mean only where a window never observes that feature). Data filled when
it was loaded (``--impute linear|ffill|mean``) no longer knows its gaps: it is scored as
loaded; data loaded with ``--impute drop`` kept complete windows only. ``real_windows`` returns
what was chosen, for metrics.json (``real_windows``, ``real_counts`` and, when imputed,
``real_imputation``; ``real_note`` says why when the choice was not the one asked for).
The steps padding an entity after its length (``--max-length``) count as observed: samples
are padded the same way. Arrays are (windows, time, features).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..data.lengths import within
from ..data.missing import fill_along_series

CHOICES = ("complete", "imputed")
WITHIN_WINDOW = "linear within each window; the feature's mean where a window never observes it"


def fill_within_windows(x: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """``x`` (N, T, D) with its unobserved entries (``observed`` False) filled linearly between
    the observed neighbours of the same window and channel (edge values held); entries of a
    channel with no observation in its window keep ``x``'s value (the mean placeholder)."""
    n, t, d = x.shape
    gone = ~np.asarray(observed, dtype=bool)
    values = np.where(gone, np.nan, x).reshape(-1, d)
    filled, _ = fill_along_series(values, gone.reshape(-1, d), np.arange(n) * t, "linear")
    filled = filled.reshape(n, t, d)
    return np.where(np.isnan(filled), x, filled).astype(np.float32)


def real_windows(data: Any, choice: str = "complete", min_complete: int = 100
                 ) -> tuple[np.ndarray, dict[str, Any]]:
    """(raw real windows to score against (n, T, D), what they are, for metrics.json)."""
    x = np.asarray(data.x, dtype=np.float32)
    n = len(x)
    mask = getattr(data, "x_mask", None)
    lengths = getattr(data, "lengths", None)
    if mask is not None and lengths is not None:
        # padding after an entity's length is no gap: samples are padded the same way
        mask = np.asarray(mask, bool) | ~within(lengths, x.shape[1])[..., None]
        mask = None if mask.all() else mask
    rate = getattr(data, "missing_rate", None) or {}
    impute = getattr(data, "impute", None)
    if mask is None:
        if not any(v > 0 for v in rate.values()):  # nothing was missing
            return x, _info("complete", n, n, n)
        if impute == "drop":
            return x, _info("complete", n, n, n, note="windows with a missing value were "
                            "dropped when the data was loaded (--impute drop)")
        return x, _info("imputed", n, None, n, imputation=str(impute),
                        note=f"filled when loaded (--impute {impute}); which windows were "
                        "complete is not kept: pass a complete set with --data to score "
                        "against complete windows")
    complete = np.asarray(mask, dtype=bool).all(axis=(1, 2))
    k = int(complete.sum())
    if choice == "complete" and k >= min_complete:
        return x[complete], _info("complete", n, k, k)
    note = None if choice == "imputed" else (
        f"only {k:,} of {n:,} real windows are complete (fewer than min_complete "
        f"{min_complete}): scored against imputed windows; pass a complete set with --data")
    return fill_within_windows(x, mask), _info("imputed", n, k, n, imputation=WITHIN_WINDOW,
                                               note=note)


def _info(kind: str, total: int, complete: int | None, scored: int, *,
          imputation: str | None = None, note: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"real_windows": kind,
                           "real_counts": {"windows": total, "complete": complete,
                                           "scored": scored}}
    if imputation is not None:
        out["real_imputation"] = imputation
    if note is not None:
        out["real_note"] = note
    return out
