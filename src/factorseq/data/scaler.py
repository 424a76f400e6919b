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
        try:
            return SCALERS.get(d["kind"])._from_state(d)
        except KeyError as e:
            raise FactorseqError(f"the {d['kind']} scaler's state is missing {e}") from None
        except (TypeError, ValueError) as e:
            raise FactorseqError(f"the {d['kind']} scaler's state is corrupt: "
                                 f"{str(e).splitlines()[0][:120]}") from None

    @classmethod
    def _from_state(cls, d: dict[str, Any]) -> Scaler:
        return cls()


_register(Scaler)


def _vector(v: Any, name: str) -> np.ndarray:
    """A saved per-feature vector: finite numbers, one dimension (a damaged config is an
    error here, not a crash later)."""
    a = np.asarray(v, dtype=np.float64)
    if a.ndim != 1 or not np.isfinite(a).all():
        raise ValueError(f"{name} must be a list of finite numbers, got {v!r:.60}")
    return a


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
        s.min_, s.scale_ = _vector(d["min"], "min"), _vector(d["scale"], "scale")
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
        s.mean_, s.std_ = _vector(d["mean"], "mean"), _vector(d["std"], "std")
        return s


@_register
class QuantileScaler(Scaler):
    """Each feature through its empirical CDF to [0, 1] (scikit-learn's QuantileTransformer,
    uniform output; TabDDPM's numerical preprocessing uses its normal-output twin).

    A heavy tail is spread over the range instead of squeezing the bulk into a corner, and a
    value held by many entries (an exact 0, readings on a 10-unit grid) becomes a flat stretch
    of the inverse map, so generated values fall back on the observed levels. The map is
    monotone per feature: the order of values over time is kept.
    """

    kind = "quantile"

    def __init__(self, n_quantiles: int = 1000, max_rows: int = 200_000) -> None:
        self.n_quantiles, self.max_rows = n_quantiles, max_rows
        self.qt_: Any = None

    def fit(self, x: np.ndarray, mask: np.ndarray | None = None) -> QuantileScaler:
        from sklearn.preprocessing import QuantileTransformer

        # a uniform seeded subset of at most max_rows rows (quantiles need no more), kept chunk
        # by chunk for windows on disk: the rows with the smallest random keys (bottom-k)
        rng, flat, keys, count = np.random.default_rng(0), None, None, 0
        for c in _chunks(x, mask):
            rows = c.reshape(-1, c.shape[-1])
            count = count + (~np.isnan(rows)).sum(0)
            k = rng.random(len(rows))
            flat = rows if flat is None else np.concatenate([flat, rows])
            keys = k if keys is None else np.concatenate([keys, k])
            if len(flat) > self.max_rows:
                keep = np.argpartition(keys, self.max_rows)[:self.max_rows]
                flat, keys = flat[keep], keys[keep]
        _no_observed(count)
        # NaN (never observed) entries are left out of the quantiles by scikit-learn
        self.qt_ = QuantileTransformer(n_quantiles=min(self.n_quantiles, len(flat)),
                                       output_distribution="uniform", subsample=None,
                                       random_state=0).fit(flat)
        return self

    def _apply(self, x: np.ndarray, inverse: bool) -> np.ndarray:
        if self.qt_ is None:
            raise FactorseqError("scaler is not fitted")
        x = np.asarray(x, dtype=np.float64)
        check_shape("x", x, None, features=self.qt_.n_features_in_)
        flat = x.reshape(-1, x.shape[-1])
        if inverse:  # model outputs may leave [0, 1]; the CDF's range is [0, 1]
            out = self.qt_.inverse_transform(np.clip(flat, 0.0, 1.0))
        else:
            out = self.qt_.transform(flat)
        return out.reshape(x.shape).astype(np.float32)

    def _transform(self, x: np.ndarray) -> np.ndarray:
        return self._apply(x, inverse=False)

    def inverse_transform(self, x: np.ndarray) -> np.ndarray:
        return self._apply(x, inverse=True)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "n_quantiles": self.n_quantiles,
                "quantiles": self.qt_.quantiles_.tolist(),
                "references": self.qt_.references_.tolist()}

    @classmethod
    def _from_state(cls, d: dict[str, Any]) -> QuantileScaler:
        from sklearn.preprocessing import QuantileTransformer

        s = cls(int(d["n_quantiles"]))
        q = np.asarray(d["quantiles"], dtype=np.float64)
        qt = QuantileTransformer(n_quantiles=len(q), output_distribution="uniform")
        # the fitted state scikit-learn's transform reads (no pickle: JSON arrays)
        qt.quantiles_, qt.references_ = q, np.asarray(d["references"], dtype=np.float64)
        qt.n_quantiles_, qt.n_features_in_ = len(q), q.shape[1]
        s.qt_ = qt
        return s


def make_scaler(kind: str) -> Scaler:
    return SCALERS.get(kind)()
