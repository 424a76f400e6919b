"""Generic window helpers: cut a table (T, D) into windows (N, L, D), pick the features to keep,
keep exactly n class-balanced labels. Pure numpy; nothing here knows a file format."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import FactorseqError, ShapeError


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


def kept_features(names: Sequence[str], drop: Sequence[str] | None, what: str) -> list[int]:
    """Indices of the features left after ``drop`` (``--drop-columns``).

    Each entry of ``drop`` is a feature name, or else a 0-based index into ``names`` (arrays
    without names have the default names ``f0, f1, ...``). Unknown entries, and dropping every
    feature, are user errors naming the features there are.
    """
    names = [str(n) for n in names]
    gone: set[int] = set()
    for item in drop or []:
        item = str(item).strip()
        if item in names:
            gone.add(names.index(item))
        elif item.isdigit() and int(item) < len(names):
            gone.add(int(item))
        else:
            raise FactorseqError(f"cannot drop column {item!r}: {what} has no such column; "
                                 f"its columns: {', '.join(names)} (or an index 0.."
                                 f"{len(names) - 1})")
    keep = [j for j in range(len(names)) if j not in gone]
    if not keep:
        raise FactorseqError(f"drop_columns leaves {what} without features")
    return keep


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


def recover_starts(x: np.ndarray, max_rows: int = 20_000_000) -> np.ndarray | None:
    """Positions in time of windows (N, T, D) whose source did not keep them, from their
    overlaps: windows cut from one series share exact rows (stride-1 windows share T - 1),
    so equal rows are one step and consecutive rows of a window an edge between steps. When
    every step has at most one successor and one predecessor (no row repeats) the steps form
    simple paths, and a window's start is its first row's place on its path. Paths are laid
    on one time line in order of their first window, T steps apart, so windows of different
    paths (which share no row, hence no step) never look overlapping. None when the order is
    ambiguous (a repeated row), the windows are one step long, or there are more than
    ``max_rows`` rows (the cost is a sort of N * T rows)."""
    x = np.ascontiguousarray(x)
    n, t, d = x.shape
    if n == 0 or d == 0 or t < 2 or n * t > max_rows or not np.isfinite(x).all():
        return None
    rows = x.reshape(n * t, d)
    _, ids = np.unique(rows.view(np.dtype((np.void, rows.dtype.itemsize * d))).ravel(),
                       return_inverse=True)
    ids = ids.reshape(n, t)
    m = int(ids.max()) + 1
    edges = np.unique(np.stack([ids[:, :-1].ravel(), ids[:, 1:].ravel()], 1), axis=0)
    out_deg, in_deg = (np.bincount(edges[:, k], minlength=m) for k in (0, 1))
    if (edges[:, 0] == edges[:, 1]).any() or out_deg.max() > 1 or in_deg.max() > 1:
        return None
    succ = np.full(m, -1)
    succ[edges[:, 0]] = edges[:, 1]
    path, place = np.full(m, -1), np.full(m, -1)
    for k, node in enumerate(np.flatnonzero(in_deg == 0)):
        i = 0
        while node >= 0:
            path[node], place[node] = k, i
            node, i = succ[node], i + 1
    if (path < 0).any():  # a cycle: rows repeat after all
        return None
    first = ids[:, 0]
    # paths in order of their first window; each takes its length plus a gap of T steps
    order = _first_seen(path[first])  # every path begins with some window's first row
    length = np.bincount(path, minlength=len(order))
    offset = np.zeros(len(order), np.int64)
    offset[order] = np.concatenate([[0], np.cumsum(length[order] + t)[:-1]])
    return offset[path[first]] + place[first]


def recovered_meta(start: np.ndarray | None) -> dict[str, str]:
    """The meta entry of positions recovered from overlapping windows (the split's note)."""
    return {} if start is None else {"positions": "recovered"}


def _first_seen(labels: np.ndarray) -> np.ndarray:
    """The distinct labels in order of their first occurrence."""
    uniq, idx = np.unique(labels, return_index=True)
    return uniq[np.argsort(idx)]
