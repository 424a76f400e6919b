"""Fidelity scores of synthetic windows, as Diffusion-TS reports them (Yuan & Qiao, ICLR 2024).

- Context-FID: the Fréchet distance between Gaussians fitted to TS2Vec embeddings of the real
  and of the synthetic windows, the TS2Vec encoder trained on the real windows
  (:mod:`factorseq.metrics.ts2vec`). 0 = same embedding mean and covariance; lower is better.
- Correlational score: the L1 distance between the real and synthetic lag-0 cross-correlation
  matrices of the channels (lower triangle, diagonal included), divided by 10. Each set is
  standardised per channel over (windows, time) (unbiased std); entry (i, j) is the mean over
  time, then windows, of ``z_i * z_j``. Diffusion-TS computes it on random subsets of N / 5
  windows of each set (drawn with replacement) and repeats.

All arrays are (windows, time, features), in the [0, 1]-scaled space of TimeGAN's protocol.
"""
from __future__ import annotations

import numpy as np
from threadpoolctl import threadpool_limits

from ..errors import FactorseqError, ShapeError, check_shape
from .ts2vec import OUTPUT_DIMS, TS2Vec

SUBSET_FRACTION = 0.2  # correlational subsets of N / 5 windows (Diffusion-TS: N / iterations)


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to the rows of ``a`` (n, C) and ``b`` (m, C):
    ``|mu_a - mu_b|^2 + tr(S_a) + tr(S_b) - 2 tr((S_a S_b)^(1/2))`` (sample covariances).

    The trace of the matrix square root is computed stably as the sum of the square roots of
    the eigenvalues of the symmetric ``R S_b R`` with ``R = S_a^(1/2)``: it has the eigenvalues
    of ``S_a S_b`` (AB and BA share them) and needs no complex arithmetic."""
    with threadpool_limits(1):  # small matrices: one BLAS thread (shared cores)
        return _frechet(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64))


def _frechet(a: np.ndarray, b: np.ndarray) -> float:
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ShapeError(f"embeddings must be (n, C) with equal C, got {a.shape} and {b.shape}")
    if min(len(a), len(b)) < 2:
        raise FactorseqError("the Fréchet distance needs at least 2 rows in each set")
    mu_a, mu_b = a.mean(0), b.mean(0)
    s_a, s_b = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    w, v = np.linalg.eigh(s_a)
    root_a = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    cross = np.linalg.eigvalsh(root_a @ s_b @ root_a)
    tr_sqrt = np.sqrt(np.clip(cross, 0, None)).sum()
    fd = ((mu_a - mu_b) ** 2).sum() + np.trace(s_a) + np.trace(s_b) - 2 * tr_sqrt
    return float(max(fd, 0.0))  # rounding can leave a tiny negative for equal sets


def _pair(real: np.ndarray, synthetic: np.ndarray, min_windows: int
          ) -> tuple[np.ndarray, np.ndarray]:
    r = np.asarray(real, dtype=np.float32)
    s = np.asarray(synthetic, dtype=np.float32)
    check_shape("real", r, 3)
    check_shape("synthetic", s, 3)
    if r.shape[1:] != s.shape[1:]:
        raise ShapeError(f"synthetic has shape {s.shape} but real has {r.shape}: "
                         "time and feature dimensions must match")
    if min(len(r), len(s)) < min_windows:
        raise FactorseqError(f"each set needs at least {min_windows} windows, got "
                             f"{len(r)} real and {len(s)} synthetic")
    if not (np.isfinite(r).all() and np.isfinite(s).all()):
        raise FactorseqError("real and synthetic windows must be finite")
    return r, s


def context_fid(real: np.ndarray, synthetic: np.ndarray, *, seed: int = 0,
                iterations: int | None = None, output_dims: int = OUTPUT_DIMS,
                hidden: int = 64, depth: int = 10, batch_size: int = 8) -> float:
    """Context-FID of ``synthetic`` (M, T, D) against ``real`` (N, T, D).

    A TS2Vec encoder (seeded with ``seed``) is trained on ``real`` for ``iterations``
    mini-batches (default: the authors' budget, 200 or 600), then both sets are embedded
    (max over time of the per-step representations) and :func:`frechet_distance` compares the
    embeddings. The architecture arguments default to Diffusion-TS's."""
    r, s = _pair(real, synthetic, 2)
    model = TS2Vec(r.shape[2], output_dims=output_dims, hidden=hidden, depth=depth,
                   batch_size=batch_size, seed=seed)
    model.fit(r, iterations)
    return frechet_distance(model.encode(r), model.encode(s))


def cross_correlation(x: np.ndarray) -> np.ndarray:
    """Lag-0 cross-correlations of the channels of ``x`` (N, T, D): the lower triangle,
    diagonal included, row by row (D (D + 1) / 2 values). Channels are standardised over
    (windows, time) with the unbiased std (a constant channel stays 0)."""
    x = np.asarray(x, dtype=np.float64)
    check_shape("x", x, 3)
    flat = x.reshape(-1, x.shape[2])
    sd = flat.std(0, ddof=1) if len(flat) > 1 else np.zeros(x.shape[2])
    z = (flat - flat.mean(0)) / np.where(sd > 0, sd, 1.0)
    # every window has T steps, so the mean over time then windows is the mean over all rows
    with threadpool_limits(1):
        corr = z.T @ z / len(z)
    return corr[np.tril_indices(x.shape[2])]


def correlational_score(real: np.ndarray, synthetic: np.ndarray, *, seed: int = 0,
                        size: int | None = None) -> float:
    """``sum |C_real - C_synthetic| / 10`` over the lower triangles of the cross-correlation
    matrices (:func:`cross_correlation`) of ``real`` (N, T, D) and ``synthetic`` (M, T, D).

    With ``size``, each set is first cut to ``size`` windows drawn with replacement (seeded by
    ``seed``; Diffusion-TS's subsets); without, all windows are used and ``seed`` is unused."""
    r, s = _pair(real, synthetic, 1)
    if size is not None:
        if size < 2:
            raise FactorseqError(f"correlational subsets need at least 2 windows, got {size}")
        rng = np.random.default_rng(seed)
        r, s = r[rng.integers(0, len(r), size)], s[rng.integers(0, len(s), size)]
    return float(np.abs(cross_correlation(r) - cross_correlation(s)).sum() / 10)

