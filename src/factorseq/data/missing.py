"""Missing values: finding them, filling them along a series, masking them, and removing values
from complete data on purpose (benchmarks of imputation and of training with gaps).

An entry is missing when it is NaN, +-inf (a reading that overflowed is no reading) or equal to
the declared sentinel (``--missing -200``). The policies (``DataConfig.impute``):

- ``linear``: interpolate in time between the observed neighbours of the same series; before
  the first / after the last observation hold that observation (constant extrapolation).
- ``ffill``: carry the last observation forward; before the first one, take the first one.
- ``mean``: the feature's mean over its observed values (always succeeds unless the feature
  was never observed at all).
- ``mask``: keep the gaps: ``x`` gets the feature's mean as a finite placeholder and
  ``x_mask`` (True = observed) travels with the windows, for models that honour it.
- ``drop``: drop table rows (before windowing) or windows that have a missing value.

Tables are filled along each whole series before they are cut into windows, so a gap longer
than a window is bridged from both sides; arrays of windows are filled within each window.
"""
from __future__ import annotations

import dataclasses
import shlex
from collections.abc import Sequence

import numpy as np

from ..errors import FactorseqError, ShapeError
from .config import IMPUTE_MODES, DataConfig

_ALL_MODES = "|".join(IMPUTE_MODES)


def missing_mask(values: np.ndarray, missing: float | None = None) -> np.ndarray:
    """True where an entry is missing: NaN, +-inf, or the sentinel ``missing`` if given."""
    if np.iscomplexobj(values):  # casting would drop the imaginary part without a word
        raise FactorseqError(f"data is complex-valued ({np.asarray(values).dtype}); give the "
                             "real and imaginary parts as separate features")
    values = np.asarray(values, dtype=np.float64)
    mask = ~np.isfinite(values)
    if missing is not None and np.isfinite(missing):
        mask |= values == missing
    return mask


def _kind(missing: float | None) -> str:
    return "NaN/inf" + ("" if missing is None or not np.isfinite(missing) else f" or {missing:g}")


def _drop_hint(cols: Sequence[str]) -> str:
    return f"--drop-columns {shlex.quote(','.join(cols))}"


def _per_column(mask: np.ndarray, names: Sequence[str], unit: str) -> str:
    """'a 3, b 12 (all) of 12 rows' for the columns with missing entries (first six)."""
    flat = mask.reshape(-1, mask.shape[-1])
    counts, total = flat.sum(0), len(flat)
    cols = [f"{names[j]} {counts[j]:,}" + (" (all)" if counts[j] == total else "")
            for j in np.flatnonzero(counts)]
    more = f" and {len(cols) - 6} more" if len(cols) > 6 else ""
    return f"{', '.join(cols[:6])}{more} of {total:,} {unit}"


def check_missing(mask: np.ndarray, names: Sequence[str], impute: str | None, what: str,
                  missing: float | None, unit: str = "rows") -> None:
    """User errors that do not depend on the policy's details: missing values without
    ``--impute``, and features that were never observed at all (nothing can fill them)."""
    flat = mask.reshape(-1, mask.shape[-1])
    if not flat.any():
        return
    empty = [str(names[j]) for j in np.flatnonzero(flat.all(axis=0))]
    if impute is None:
        hint = f"; {', '.join(empty)} never observed: {_drop_hint(empty)}" if empty else ""
        raise FactorseqError(f"{what} has {int(flat.sum()):,} missing values ({_kind(missing)}) "
                             f"in column(s) {_per_column(mask, names, unit)}; use --impute "
                             f"{_ALL_MODES}{hint}")
    if impute not in IMPUTE_MODES:
        raise FactorseqError(f"impute must be one of {', '.join(IMPUTE_MODES)}, got {impute!r}")
    if empty:
        s = "s" if len(empty) > 1 else ""
        raise FactorseqError(f"column{s} {', '.join(map(repr, empty))} of {what} "
                             f"{'have' if s else 'has'} no observed value ({len(flat):,} "
                             f"{unit}, all missing); leave {'them' if s else 'it'} out with "
                             f"{_drop_hint(empty)}")


def observed_mean(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Per-feature mean (D,) of the observed entries of ``values`` (..., D)."""
    flat, ok = values.reshape(-1, values.shape[-1]), ~mask.reshape(-1, mask.shape[-1])
    return np.where(ok, flat, 0.0).sum(0) / np.maximum(ok.sum(0), 1)


def fill_along_series(values: np.ndarray, mask: np.ndarray, starts: np.ndarray, mode: str
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Fill the missing entries of consecutive series, each on its own.

    ``values`` (M, D) holds series after one another, series ``s`` in rows
    ``starts[s]:starts[s+1]`` (in time order); ``mask`` (M, D) is True where missing.
    ``mode`` ``linear``: v_p + (t - p) / (n - p) * (v_n - v_p) between the previous observed
    row p and the next n of the same series, v_p after the last observation, v_n before the
    first; ``ffill``: v_p, and v_n before the first observation. Returns (filled (M, D)
    float64, empty (S, D) bool: a series' feature with no observation, left NaN). Vectorised
    over rows; one pass per feature bounds the memory to a few (M,) arrays.
    """
    m, d = values.shape
    starts = np.asarray(starts, dtype=np.int64)
    bounds = np.append(starts, m)
    first = np.repeat(starts, np.diff(bounds))  # first row of each row's series
    last = np.repeat(bounds[1:] - 1, np.diff(bounds))
    rows = np.arange(m)
    out = np.array(values, dtype=np.float64)
    for j in np.flatnonzero(mask.any(axis=0)):
        ok = ~mask[:, j]
        col = np.where(ok, out[:, j], 0.0)
        prev = np.maximum.accumulate(np.where(ok, rows, -1))  # last observed row <= t
        nxt = np.minimum.accumulate(np.where(ok, rows, m)[::-1])[::-1]  # first observed >= t
        has_p, has_n = prev >= first, nxt <= last  # ... within the same series
        vp, vn = col[np.clip(prev, 0, m - 1)], col[np.clip(nxt, 0, m - 1)]
        if mode == "linear":
            w = (rows - prev) / np.maximum(nxt - prev, 1)
            fill = np.where(has_p & has_n, vp + w * (vn - vp), np.where(has_p, vp, vn))
        else:
            fill = np.where(has_p, vp, vn)
        out[:, j] = np.where(ok, out[:, j], np.where(has_p | has_n, fill, np.nan))
    empty = np.logical_and.reduceat(mask, starts, axis=0) if m else np.zeros((0, d), bool)
    return out, empty


def handle_missing(table: np.ndarray, missing: float | None = None,
                   impute: str | None = None, *, what: str = "data",
                   names: Sequence[str] | None = None) -> np.ndarray:
    """The missing-value policy on one series ``table`` (T, D); returns float64 (T', D).

    ``drop`` removes rows with a missing value (T' <= T); ``mask`` is not a filling policy
    (it needs the windows' mask, see :func:`impute_windows`) and fills with the mean here.
    """
    table = np.array(table, dtype=np.float64)
    if table.ndim != 2:
        raise ShapeError(f"{what} table must have 2 dimensions (time, features), got shape "
                         f"{table.shape}")
    mask = missing_mask(table, missing)
    names = list(names) if names is not None else [f"f{j}" for j in range(table.shape[1])]
    check_missing(mask, names, impute, what, missing)
    if not mask.any():
        return table
    if impute == "drop":
        return table[~mask.any(axis=1)]
    if impute in ("mean", "mask"):
        return np.where(mask, observed_mean(table, mask), table)
    return fill_along_series(table, mask, np.array([0]), impute)[0]


@dataclasses.dataclass
class Imputed:
    """Windows after the policy: ``x`` finite float64, ``x_mask`` (True = observed) under
    ``mask`` when something is missing, ``keep`` the windows kept under ``drop`` (None: all),
    ``rate`` the fraction missing per feature before anything was filled or dropped."""

    x: np.ndarray
    x_mask: np.ndarray | None = None
    keep: np.ndarray | None = None
    rate: np.ndarray | None = None


def impute_windows(x: np.ndarray, impute: str | None, names: Sequence[str], what: str,
                   missing: float | None = None, mask: np.ndarray | None = None) -> Imputed:
    """The policy on windows (N, T, D), each window on its own (``ffill``/``linear`` fill
    within a window; ``mean``/``mask`` use the feature's mean over every observed entry).
    ``mask`` (True = missing) defaults to :func:`missing_mask` of ``x``."""
    mask = missing_mask(x, missing) if mask is None else mask
    if not mask.any():
        return Imputed(np.asarray(x))
    check_missing(mask, names, impute, what, missing, unit="entries")
    rate = mask.mean(axis=(0, 1))
    x = np.array(x, dtype=np.float64)
    if impute == "drop":
        keep = ~mask.any(axis=(1, 2))
        if not keep.any():
            raise FactorseqError(f"every window of {what} has a missing value "
                                 f"({_per_column(mask, names, 'entries')}); nothing is left "
                                 "after --impute drop: use --impute mean or mask")
        return Imputed(x[keep], keep=keep, rate=rate)
    if impute in ("mean", "mask"):
        x = np.where(mask, observed_mean(x, mask), x)
        return Imputed(x, ~mask if impute == "mask" else None, rate=rate)
    n, t, d = x.shape
    bad = np.flatnonzero(mask.any(axis=(1, 2)))  # only windows with a gap are filled
    filled, empty = fill_along_series(x[bad].reshape(-1, d), mask[bad].reshape(-1, d),
                                      np.arange(len(bad)) * t, impute)
    if empty.any():
        cols = np.flatnonzero(empty.any(axis=0))
        j = int(cols[0])
        hit = bad[empty[:, j]]
        more = f" (and {len(cols) - 1} more columns)" if len(cols) > 1 else ""
        raise FactorseqError(
            f"column {names[j]!r} of {what} has no observed value in {len(hit):,} of {n:,} "
            f"windows (first: window {int(hit[0])}){more}; {impute} fills within a window: "
            f"use --impute mean (the column's mean), mask or drop, or "
            f"{_drop_hint([names[j]])}")
    x[bad] = filled.reshape(len(bad), t, d)
    return Imputed(x, rate=rate)


def window_policy(x: np.ndarray, cfg: DataConfig, names: Sequence[str], what: str) -> Imputed:
    """``cfg.remove_rate`` (values hidden on purpose), then ``cfg.impute``, on windows."""
    if cfg.remove_rate > 0:
        x, _ = remove_values(x, cfg.remove_rate, cfg.remove_pattern, cfg.removal_seed)
    return impute_windows(x, cfg.impute, names, what, cfg.missing)


# --------------------------------------------------------------------------- removing values

def remove_values(x: np.ndarray, rate: float, pattern: str = "mcar", seed: int = 0,
                  run_length: tuple[int, int] = (6, 30)) -> tuple[np.ndarray, np.ndarray]:
    """Hide a fraction ``rate`` of the entries of complete windows (N, T, D), seeded.

    ``mcar``: exactly round(rate * N*T*D) entries drawn uniformly (missing completely at
    random). ``runs``: blocks of one channel, the way sensors fail: along the channels' time
    lines (every (window, channel) lane, lanes in a seeded random order, laid end to end)
    observed stretches of geometric length with mean mu * (1 - rate) / rate alternate with
    missing runs of U{run_length} steps (mean mu), so the expected missing fraction is
    ``rate``; a run reaching a lane's end goes on in the next lane, which is another channel
    or window at random. Returns (x with NaN where removed, mask (N, T, D) bool, True =
    observed).
    """
    x = np.array(x, dtype=np.float64)
    if x.ndim != 3:
        raise ShapeError(f"x must have 3 dimensions (windows, time, features), got shape "
                         f"{x.shape}")
    lo, hi = run_length
    if not 1 <= lo <= hi:
        raise FactorseqError(f"run_length must be 1 <= min <= max, got {run_length}")
    # runs are kept apart by observed gaps of >= 1 step: mean gap mu (1 - rate) / rate >= 1
    limit = (lo + hi) / (lo + hi + 2) if pattern == "runs" else 1.0
    if not 0.0 <= rate < limit:
        raise FactorseqError(f"remove rate must be in [0, {limit:.3g}) for {pattern}, "
                             f"got {rate}")
    rng = np.random.default_rng(seed)
    n, t, d = x.shape
    size = n * t * d
    gone = np.zeros(size, dtype=bool)
    if pattern == "mcar":
        gone[rng.choice(size, size=int(round(rate * size)), replace=False)] = True
        gone = gone.reshape(n, t, d)
    elif pattern == "runs":
        gone = _runs(size, rate, lo, hi, rng)
        # lane k of the permuted order is (window, channel) perm[k]; entries (n, d, t)
        lanes = np.empty((n * d, t), dtype=bool)
        lanes[rng.permutation(n * d)] = gone.reshape(n * d, t)
        gone = lanes.reshape(n, d, t).transpose(0, 2, 1)
    else:
        raise FactorseqError(f"remove pattern must be mcar or runs, got {pattern!r}")
    x[gone] = np.nan
    return x, ~gone


def _runs(size: int, rate: float, lo: int, hi: int, rng: np.random.Generator) -> np.ndarray:
    """A (size,) bool line of alternating observed gaps (geometric) and missing runs
    (uniform lo..hi), started at a uniformly random point of the first cycle."""
    if rate == 0:
        return np.zeros(size, dtype=bool)
    mu = (lo + hi) / 2
    gap_mean = mu * (1 - rate) / rate  # >= 1: runs never touch, so each is one block
    cycles = int(size / (mu + gap_mean) * 1.2) + 10
    line = np.zeros(size + 1, dtype=np.int32)
    start = -int(rng.integers(0, int(mu + gap_mean) + 1))  # stationary-ish phase
    while start < size:
        gaps = rng.geometric(1 / gap_mean, size=cycles)
        runs = rng.integers(lo, hi + 1, size=cycles)
        ends = start + np.cumsum(gaps + runs)
        begins = ends - runs
        keep = ends > 0
        np.add.at(line, np.clip(begins[keep], 0, size), 1)
        np.add.at(line, np.clip(ends[keep], 0, size), -1)
        start = int(ends[-1])
    return np.cumsum(line[:size]) > 0
