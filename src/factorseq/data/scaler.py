"""Per-feature scalers with scikit-learn's fit / transform / inverse_transform, JSON-savable."""
from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import FactorseqError, check_shape
from .store import is_lazy

_SCALERS: dict[str, type[Scaler]] = {}


def _chunks(x: Any):
    """The windows (N, T, D) as float64 chunks: one for an array, ~32 MB each on disk."""
    if is_lazy(x):
        for c in x.iter_chunks():
            yield c.astype(np.float64)
        return
    x = np.asarray(x, dtype=np.float64)
    check_shape("x", x, 3)
    yield x


def _register(cls):
    _SCALERS[cls.kind] = cls
    return cls


class Scaler:
    kind = "none"

    def fit(self, x: np.ndarray) -> Scaler:
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
        try:
            cls = _SCALERS[d["kind"]]
        except KeyError:
            raise FactorseqError(f"unknown scaler {d!r}") from None
        return cls._from_state(d)

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

    def fit(self, x: np.ndarray) -> MinMaxScaler:
        lo = hi = None
        for c in _chunks(x):
            cl, ch = c.min(axis=(0, 1)), c.max(axis=(0, 1))
            lo = cl if lo is None else np.minimum(lo, cl)
            hi = ch if hi is None else np.maximum(hi, ch)
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

    def fit(self, x: np.ndarray) -> StandardScaler:
        n, mean, m2 = 0, 0.0, 0.0  # Chan et al.'s pairwise merge of (count, mean, M2) per chunk
        for c in _chunks(x):
            flat = c.reshape(-1, c.shape[-1])
            nb, mb = len(flat), flat.mean(0)
            m2b = ((flat - mb) ** 2).sum(0)
            delta, tot = mb - mean, n + nb
            mean = mean + delta * nb / tot
            m2 = m2 + m2b + delta ** 2 * n * nb / tot
            n = tot
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
    try:
        return _SCALERS[kind]()
    except KeyError:
        raise FactorseqError(f"unknown scaler {kind!r}; choose from {', '.join(_SCALERS)}") \
            from None
