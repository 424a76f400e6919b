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

    def transform_mask(self, mask: np.ndarray) -> np.ndarray:
        """``x_mask`` (N, T, D) of raw windows -> the mask of their transform (the same for
        per-feature scalers; :class:`TabularScaler` widens it)."""
        return mask

    def get_feature_names_out(self, names: list[str]) -> list[str]:
        """Names of the transformed features (scikit-learn's name for it)."""
        return list(names)

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


@_register
class TabularScaler(Scaler):
    """Windows with categorical columns and per-entity attributes (:mod:`.tabular`).

    Raw windows (N, T, D) hold numbers and, in the ``categorical`` columns, category codes.
    ``transform``: the numeric columns through the ``inner`` scaler (minmax, standard, ...),
    then one one-hot block per categorical column over the codes seen in training, so the
    model sees (N, T, numeric + sum of block sizes). ``inverse_transform``: the inner inverse,
    and per block the code of its largest entry (argmax), so a decoded window holds only
    categories that training saw, in the raw layout again.

    ``fit_attributes`` / ``transform_attributes``: attribute rows (N, A) -> the conditioning
    vector (N, A_enc): numeric attributes standardised, categorical ones one-hot. The distinct
    training rows and their counts are kept to draw attributes when none are given.
    Everything is saved as JSON (``to_dict``).
    """

    kind = "tabular"

    def __init__(self, inner: Scaler | None = None, categorical: list[int] = (),
                 n_features: int = 0, attribute_kinds: list[str] = ()) -> None:
        self.inner, self.categorical, self.n_features = inner, list(categorical), n_features
        self.numeric = [j for j in range(n_features) if j not in self.categorical]
        self.attribute_kinds = list(attribute_kinds)
        self.levels_: list[np.ndarray] | None = None
        self.attr_: list[dict[str, Any]] = []
        self.rows_ = self.counts_ = None

    # --- windows ---------------------------------------------------------------------------
    def fit(self, x: np.ndarray, mask: np.ndarray | None = None) -> TabularScaler:
        if is_lazy(x):
            raise FactorseqError("categorical columns and attributes cannot be read from a "
                                 "window store (data.store): leave it out")
        x = np.asarray(x, dtype=np.float64)
        check_shape("x", x, 3, features=self.n_features)
        if self.numeric:
            self.inner.fit(x[..., self.numeric], None if mask is None
                           else np.asarray(mask)[..., self.numeric])
        self.levels_ = [np.unique(x[..., j]) for j in self.categorical]
        return self

    @property
    def width(self) -> int:
        """Features the model sees: the numeric ones plus every one-hot block."""
        return len(self.numeric) + sum(len(v) for v in self.levels_)

    def _transform(self, x: np.ndarray) -> np.ndarray:
        if self.levels_ is None:
            raise FactorseqError("scaler is not fitted")
        x = np.asarray(x, dtype=np.float64)
        check_shape("x", x, None, features=self.n_features)
        parts = [self.inner.transform(x[..., self.numeric])] if self.numeric else []
        parts += [(x[..., j, None] == lv).astype(np.float32)  # a code never seen: all zeros
                  for j, lv in zip(self.categorical, self.levels_, strict=True)]
        return np.concatenate(parts, axis=-1).astype(np.float32)

    def inverse_transform(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        check_shape("x", x, None, features=self.width)
        out = np.zeros((*x.shape[:-1], self.n_features), dtype=np.float32)
        k = len(self.numeric)
        if k:
            out[..., self.numeric] = self.inner.inverse_transform(x[..., :k])
        for j, lv in zip(self.categorical, self.levels_, strict=True):
            out[..., j] = lv[np.argmax(x[..., k:k + len(lv)], axis=-1)]
            k += len(lv)
        return out

    def get_feature_names_out(self, names: list[str]) -> list[str]:
        """The numeric features, then ``name=code`` for every entry of each one-hot block."""
        return [names[j] for j in self.numeric] + [
            f"{names[j]}={int(c)}" for j, lv in zip(self.categorical, self.levels_, strict=True)
            for c in lv]

    def transform_mask(self, mask: np.ndarray) -> np.ndarray:
        """Numeric columns keep their mask; a one-hot block takes its column's mask on every
        entry (a category is never missing in a table; the steps padding an entity are)."""
        mask = np.asarray(mask, dtype=bool)
        blocks = [np.repeat(mask[..., j, None], len(lv), axis=-1)
                  for j, lv in zip(self.categorical, self.levels_, strict=True)]
        return np.concatenate([mask[..., self.numeric], *blocks], axis=-1)

    # --- attributes ------------------------------------------------------------------------
    def fit_attributes(self, a: np.ndarray) -> TabularScaler:
        """Fit on the training windows' attribute rows (N, A): numbers' mean and spread,
        categories seen; the distinct rows and how many windows have each."""
        a = np.asarray(a, dtype=np.float64)
        self.attr_ = [{"kind": k, "levels": np.unique(a[:, i])} if k == "categorical" else
                      {"kind": k, "mean": float(a[:, i].mean()),
                       "std": float(a[:, i].std()) + 1e-8}
                      for i, k in enumerate(self.attribute_kinds)]
        self.rows_, self.counts_ = np.unique(a, axis=0, return_counts=True)
        return self

    @property
    def attribute_width(self) -> int:
        return sum(len(s["levels"]) if "levels" in s else 1 for s in self.attr_)

    def transform_attributes(self, a: np.ndarray) -> np.ndarray:
        """Attribute rows (N, A) -> conditioning vectors (N, attribute_width), float32."""
        a = np.asarray(a, dtype=np.float64)
        check_shape("attributes", a, 2, features=len(self.attr_))
        cols = [(a[:, i, None] == s["levels"]) if "levels" in s else
                ((a[:, i] - s["mean"]) / s["std"])[:, None] for i, s in enumerate(self.attr_)]
        return np.concatenate(cols, axis=1).astype(np.float32)

    # --- JSON ------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        attrs = [{k: v.tolist() if isinstance(v, np.ndarray) else v for k, v in s.items()}
                 for s in self.attr_]
        return {"kind": self.kind, "inner": self.inner.to_dict() if self.numeric else None,
                "categorical": self.categorical, "n_features": self.n_features,
                "levels": [v.tolist() for v in self.levels_], "attributes": attrs,
                "attribute_rows": None if self.rows_ is None else self.rows_.tolist(),
                "attribute_counts": None if self.counts_ is None else self.counts_.tolist()}

    @classmethod
    def _from_state(cls, d: dict[str, Any]) -> TabularScaler:
        attrs = d.get("attributes") or []
        s = cls(Scaler.from_dict(d["inner"]) if d["inner"] else None, d["categorical"],
                int(d["n_features"]), [a["kind"] for a in attrs])
        s.levels_ = [_vector(v, "levels") for v in d["levels"]]
        s.attr_ = [{**a, "levels": _vector(a["levels"], "levels")} if "levels" in a else a
                   for a in attrs]
        if d.get("attribute_rows") is not None:
            s.rows_ = np.asarray(d["attribute_rows"], dtype=np.float64).reshape(
                -1, len(attrs))
            s.counts_ = np.asarray(d["attribute_counts"], dtype=np.int64)
        return s


def make_scaler(kind: str) -> Scaler:
    return SCALERS.get(kind)()
