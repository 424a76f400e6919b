"""Per-feature scalers with scikit-learn's fit / transform / inverse_transform, JSON-savable.

``fit(x, mask=None)`` fits on the observed entries only when ``mask`` (N, T, D) bool, True =
observed, is given (``SequenceData.x_mask``): the placeholders of missing entries never move
the statistics.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import FactorseqError, check_shape
from ..registry import Registry
from .store import is_lazy

SCALERS: Registry[type] = Registry("scaler")


def _chunks(x: Any, mask: np.ndarray | None = None):
    """The windows (N, T, D) as float64 chunks (one for an array, ~32 MB each on disk), NaN
    where ``mask`` says the entry was never observed."""
    if mask is not None and tuple(np.shape(mask)) != tuple(x.shape):
        raise FactorseqError(f"x_mask has shape {np.shape(mask)} but x has {tuple(x.shape)}")
    start = 0
    for c in (x.iter_chunks() if is_lazy(x) else [x]):
        c = np.asarray(c, dtype=np.float64)
        check_shape("x", c, 3)
        if mask is not None:  # a new array: the caller's windows keep their placeholders
            c = np.where(np.asarray(mask[start:start + len(c)], dtype=bool), c, np.nan)
        start += len(c)
        yield c


def _no_observed(count: np.ndarray) -> None:
    empty = np.flatnonzero(np.asarray(count) == 0)
    if len(empty):
        raise FactorseqError(f"feature {int(empty[0])} has no observed value in the training "
                             "data; the scaler cannot be fitted (drop the column)")


def _register(cls):
    SCALERS.add(cls.kind, cls)
    return cls


class Scaler:
    kind = "none"

    def fit(self, x: np.ndarray, mask: np.ndarray | None = None) -> Scaler:
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        if is_lazy(x):  # windows on disk are scaled as they are read
            return x.with_transform(self._transform)
        return self._transform(x)

    def _transform(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(x, dtype=np.float32)

    def inverse_transform(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(x, dtype=np.float32)

    def fit_transform(self, x: np.ndarray) -> np.ndarray:
        return self.fit(x).transform(x)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind}

    @staticmethod
    def from_dict(d: dict[str, Any]) -> Scaler:
        if not isinstance(d, dict) or "kind" not in d:
            raise FactorseqError(f"unknown scaler {d!r}")
        return SCALERS.get(d["kind"])._from_state(d)

    @classmethod
    def _from_state(cls, d: dict[str, Any]) -> Scaler:
        return cls()


_register(Scaler)


@_register
class MinMaxScaler(Scaler):
    """Scale each feature to [0, 1] over all windows and steps: (x - min) / (max - min + eps).

    This is TimeGAN's and TimeVAE's preprocessing; the eps keeps constant features finite.
    """

    kind = "minmax"

    def __init__(self, eps: float = 1e-7) -> None:
        self.eps = eps
        self.min_: np.ndarray | None = None
        self.scale_: np.ndarray | None = None

    def fit(self, x: np.ndarray, mask: np.ndarray | None = None) -> MinMaxScaler:
        lo = hi = None
        count = 0
        for c in _chunks(x, mask):
            # fmin/fmax skip NaN (never-observed entries); an all-NaN feature stays NaN
            cl, ch = np.fmin.reduce(c, axis=(0, 1)), np.fmax.reduce(c, axis=(0, 1))
            lo = cl if lo is None else np.fmin(lo, cl)
            hi = ch if hi is None else np.fmax(hi, ch)
            count = count + (~np.isnan(c)).sum(axis=(0, 1))
        _no_observed(count)
        self.min_ = lo
        self.scale_ = hi - self.min_ + self.eps
        return self

    def _check(self, x: np.ndarray) -> np.ndarray:
        if self.min_ is None:
            raise FactorseqError("scaler is not fitted")
        x = np.asarray(x, dtype=np.float64)
        check_shape("x", x, None, features=len(self.min_))
        return x

    def _transform(self, x: np.ndarray) -> np.ndarray:
        return ((self._check(x) - self.min_) / self.scale_).astype(np.float32)

    def inverse_transform(self, x: np.ndarray) -> np.ndarray:
        return (self._check(x) * self.scale_ + self.min_).astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "eps": self.eps, "min": self.min_.tolist(),
                "scale": self.scale_.tolist()}

    @classmethod
    def _from_state(cls, d: dict[str, Any]) -> MinMaxScaler:
        s = cls(d.get("eps", 1e-7))
        s.min_, s.scale_ = np.asarray(d["min"]), np.asarray(d["scale"])
        return s


@_register
class StandardScaler(Scaler):
    """Global per-feature mean/variance normalisation (speech features: CMVN over training)."""

    kind = "standard"

    def __init__(self) -> None:
        self.mean_: np.ndarray | None = None
        self.std_: np.ndarray | None = None

    def fit(self, x: np.ndarray, mask: np.ndarray | None = None) -> StandardScaler:
        # Chan et al.'s pairwise merge of per-feature (count, mean, M2) over chunks; NaN
        # (never observed) entries are left out of every sum and count
        n, mean, m2 = 0, 0.0, 0.0
        for c in _chunks(x, mask):
            flat = c.reshape(-1, c.shape[-1])
            ok = ~np.isnan(flat)
            nb = ok.sum(0)
            mb = np.where(ok, flat, 0.0).sum(0) / np.maximum(nb, 1)
            m2b = np.where(ok, (flat - mb) ** 2, 0.0).sum(0)
            delta, tot = mb - mean, n + nb
            frac = nb / np.maximum(tot, 1)
            mean = mean + delta * frac
            m2 = m2 + m2b + delta ** 2 * n * frac
            n = tot
        _no_observed(n)
        self.mean_, self.std_ = np.asarray(mean), np.sqrt(m2 / n) + 1e-8
        return self

    def _check(self, x: np.ndarray) -> np.ndarray:
        if self.mean_ is None:
            raise FactorseqError("scaler is not fitted")
        x = np.asarray(x, dtype=np.float64)
        check_shape("x", x, None, features=len(self.mean_))
        return x

    def _transform(self, x: np.ndarray) -> np.ndarray:
        return ((self._check(x) - self.mean_) / self.std_).astype(np.float32)

    def inverse_transform(self, x: np.ndarray) -> np.ndarray:
        return (self._check(x) * self.std_ + self.mean_).astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "mean": self.mean_.tolist(), "std": self.std_.tolist()}

    @classmethod
    def _from_state(cls, d: dict[str, Any]) -> StandardScaler:
        s = cls()
        s.mean_, s.std_ = np.asarray(d["mean"]), np.asarray(d["std"])
        return s


def make_scaler(kind: str) -> Scaler:
    return SCALERS.get(kind)()
