"""Privacy scores of synthetic windows: do they copy the training windows?

Users make synthetic data because the real data is private, so a generator that reproduces
its training windows leaks them. Both scores compare the training windows of a run with its
held-out windows (the run's held-out block, which the model never trained on):

- DCR (distance to closest record): each synthetic window's distance to its nearest training
  window, against each held-out real window's distance to its nearest training window. A
  generator that makes new windows is no closer to the training set than fresh real data is:
  about 5 % of the synthetic windows fall below the held-out distances' 5th percentile; copies
  of training windows push that share to 1.
- Membership inference (the full black-box distance attack of GAN-Leaks, Chen et al., CCS
  2020): a window is called a training member when a synthetic window lies close to it. The
  score is the ROC AUC of ``-distance to the nearest synthetic window`` telling training
  windows (members) from held-out ones, on balanced sets (as many training windows as
  held-out ones, drawn per repeat). 0.5 = no leakage, 1 = every training window has a closer
  synthetic neighbour than any held-out one.

Distances are Euclidean between flattened windows, reported as the root mean square per value
(divided by sqrt(T * D)) so that they read in the scaled units; nearest neighbours by
scikit-learn (brute force, one thread). Arrays are (windows, time, features), scaled.

The held-out set is the run's held-out block (:mod:`factorseq.data.split`): with a time
split, windows of a later stretch of each series that share no step with any training
window, i.e. fresh data. Windows cut with stride 1 overlap their neighbours in T - 1 steps,
so under a random split (sets without positions in time, or ``data.split=random``, where the
validation windows stand in) a held-out window is nearly always a one-step shift of a
training window: it lies closer to the training set than new data would and both scores
read too low (measured on stocks with the random split: exact copies drawn with replacement
gave a membership AUC of 0.83, copies with 0.01 RMS noise a DCR share of 0;
``tests/test_holdout.py`` shows both flagged with the time split). For such held-out sets
the windows that share no time step (an identical row of D values) with any training window
are used when at least ``min_holdout`` of them exist, else all of them, and the result says
which (``holdout: "disjoint"`` / ``"overlapping"``).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import FactorseqError, ShapeError, check_shape
from .timegan import summarize

MIN_HOLDOUT = 50  # fewest disjoint held-out windows used on their own
PERCENTILE = 5.0  # DCR: share of synthetic windows below this percentile of held-out distances


def _flat(name: str, x: np.ndarray) -> np.ndarray:
    a = np.asarray(x, dtype=np.float32)
    check_shape(name, a, 3)
    if len(a) < 1 or not np.isfinite(a).all():
        raise FactorseqError(f"{name} must hold at least one window of finite values")
    return a.reshape(len(a), -1)


def _check(train: np.ndarray, holdout: np.ndarray, synthetic: np.ndarray
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    shapes = {k: np.shape(v) for k, v in
              (("train", train), ("holdout", holdout), ("synthetic", synthetic))}
    flat = [_flat(k, v) for k, v in (("train", train), ("holdout", holdout),
                                     ("synthetic", synthetic))]
    if len({s[1:] for s in shapes.values()}) != 1:
        raise ShapeError(f"train, holdout and synthetic windows must have equal (time, "
                         f"features), got {shapes}")
    return flat[0], flat[1], flat[2], float(np.sqrt(flat[0].shape[1]))


def nearest_distances(reference: np.ndarray, *queries: np.ndarray) -> list[np.ndarray]:
    """Euclidean distance from every row of each ``queries`` array (m, F) to its nearest row
    of ``reference`` (n, F): scikit-learn brute force, on one thread (restored after)."""
    from sklearn.neighbors import NearestNeighbors  # lazy: sklearn is slow to import
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        index = NearestNeighbors(n_neighbors=1, algorithm="brute").fit(reference)
        return [index.kneighbors(q, return_distance=True)[0][:, 0] for q in queries]


def shares_time_step(train: np.ndarray, holdout: np.ndarray) -> np.ndarray:
    """(M,) bool: held-out window k shares a time step with some training window, i.e. one of
    its rows of D values occurs exactly in ``train`` (N, T, D) (overlapping stride windows)."""
    tr, ho = np.asarray(train, dtype=np.float32), np.asarray(holdout, dtype=np.float32)
    seen = {row.tobytes() for row in np.ascontiguousarray(tr).reshape(-1, tr.shape[-1])}
    rows = np.ascontiguousarray(ho).reshape(len(ho), -1, ho.shape[-1])
    return np.array([any(r.tobytes() in seen for r in w) for w in rows], dtype=bool)


def dcr(train: np.ndarray, holdout: np.ndarray, synthetic: np.ndarray) -> dict[str, Any]:
    """Distance to closest record of ``synthetic`` (M, T, D) vs ``holdout`` (H, T, D), both
    to ``train`` (N, T, D). Deterministic (no seed). Returns (RMS distances per value):
    ``synthetic_median``, ``holdout_median``, ``holdout_p5`` (5th percentile of the held-out
    distances), ``share_below_holdout_p5`` (share of synthetic windows closer than that: about
    0.05 without copying, 1 for copies) and ``share_copies`` (distance < 1e-6)."""
    tr, ho, sy, norm = _check(train, holdout, synthetic)
    d_syn, d_hold = (d / norm for d in nearest_distances(tr, sy, ho))
    p5 = float(np.percentile(d_hold, PERCENTILE))
    return {"synthetic_median": float(np.median(d_syn)),
            "holdout_median": float(np.median(d_hold)),
            "holdout_p5": p5,
            "share_below_holdout_p5": float((d_syn < p5).mean()),
            "share_copies": float((d_syn < 1e-6).mean())}


def membership_auc(train: np.ndarray, holdout: np.ndarray, synthetic: np.ndarray, *,
                   seed: int = 0) -> float:
    """ROC AUC of the distance attack: ``min(len(train), len(holdout))`` training windows
    (drawn with ``seed``) vs the held-out ones, each scored by minus its distance to the
    nearest ``synthetic`` window. Arrays (windows, time, features)."""
    from sklearn.metrics import roc_auc_score

    tr, ho, sy, _ = _check(train, holdout, synthetic)
    rng = np.random.default_rng(seed)
    members = tr[rng.permutation(len(tr))[:len(ho)]]
    d = nearest_distances(sy, np.concatenate([members, ho]))[0]
    labels = np.r_[np.ones(len(members)), np.zeros(len(ho))]
    return float(roc_auc_score(labels, -d))


def privacy_scores(train: np.ndarray, holdout: np.ndarray, synthetic: np.ndarray, *,
                   seeds: list[int], min_holdout: int = MIN_HOLDOUT,
                   split: dict[str, Any] | None = None) -> dict[str, Any]:
    """``dcr`` and ``membership_auc`` (``{mean, std, values}`` over ``seeds``) with the
    held-out set chosen as the module docstring says; ``holdout`` records the choice and
    ``split`` (the run's split kind and which block was held out) where it came from."""
    overlap = shares_time_step(train, holdout)
    disjoint = int((~overlap).sum())
    block = split is not None and split.get("kind") == "time"  # disjoint by construction
    if not block and disjoint >= min_holdout:
        holdout = np.asarray(holdout)[~overlap]
    info = {"holdout": "disjoint" if block or disjoint >= min_holdout else "overlapping",
            "n_train": int(len(train)), "n_holdout": int(len(holdout)),
            "n_holdout_disjoint": disjoint}
    if split is not None:
        info.update(split=split.get("kind"), held_out=split.get("held_out"))
    return {"dcr": {**dcr(train, holdout, synthetic), **info},
            "membership_auc": summarize([membership_auc(train, holdout, synthetic, seed=s)
                                         for s in seeds])}


def run_split(run: Any) -> tuple[np.ndarray, np.ndarray] | None:
    """The raw-unit training and held-out windows of ``run``: its saved split's training and
    held-out blocks (a random split's validation windows when it holds no block out; see
    :mod:`factorseq.data.split`), or None when it held nothing out."""
    from .gaps import fill_within_windows

    parts = run.splits()
    if parts is None or parts.held_out is None:
        return None
    # gaps (--impute mask): filled within each window, never the mean placeholders
    return tuple(np.asarray(d.x if d.x_mask is None else fill_within_windows(d.x, d.x_mask),
                            dtype=np.float32) for d in (parts.train, parts.held_out))
