"""The data set every model trains on: windows ``x`` of shape (N, time, features), in memory
or on disk (:mod:`factorseq.data.store`)."""
from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from ..errors import FactorseqError, ShapeError
from .missing import check_missing
from .store import is_lazy


@dataclasses.dataclass
class SequenceData:
    """Windows of a multivariate series plus optional per-window annotations.

    - ``x``: float32 (N, T, D), raw (unscaled) units, always finite.
    - ``x_mask``: bool (N, T, D), True = observed, when values are missing and kept as gaps
      (``--impute mask``); ``x`` then holds a finite placeholder there (the feature's mean).
      None when every value is observed. Like ``y_mask`` for labels: one code path.
    - ``missing_rate``/``impute``: fraction of each feature's values that were missing in
      the source (before imputation) and the policy that handled them (saved in the schema).
    - ``y``/``y_mask``: int64 labels (N,) and bool mask (N,); masked-out labels are unknown.
    - ``seq_id``: int64 (N,) index of the sequence each window was cut from (FHVAE).
    - ``start``: int64 (N,) the step at which each window begins within its sequence (one
      sequence without ``seq_id``), where the source knows it (tables); time splits read it
      (:mod:`.split`). Not part of a batch.
    - ``domain``: int64 (N,) domain index (domain adaptation).
    - ``attributes``: float (N, A) the static attributes of each window's entity (tables with
      ``attribute_columns``: numbers, or codes of categories; ``meta["attributes"]`` names
      them). A batch carries them encoded by the run's scaler.
    - ``lengths``: int64 (N,) how many of each window's steps hold its entity's data, the
      rest being padding (masked in ``x_mask``): one sequence per entity (``max_length``).
      Not part of a batch (``x_mask`` carries it to the losses).
    - ``extras``: other per-window arrays of length N (evaluation-only labels, e.g. speaker).
    - ``meta``: facts about the set; keys matching model config fields (``n_classes``,
      ``n_sequences``) fill them. ``test``: the held-out split where the set defines one.
    """

    x: np.ndarray
    feature_names: list[str] | None = None
    x_mask: np.ndarray | None = None
    missing_rate: dict[str, float] | None = None
    impute: str | None = None
    y: np.ndarray | None = None
    y_mask: np.ndarray | None = None
    seq_id: np.ndarray | None = None
    start: np.ndarray | None = None
    domain: np.ndarray | None = None
    attributes: np.ndarray | None = None
    lengths: np.ndarray | None = None
    extras: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
    meta: dict[str, Any] = dataclasses.field(default_factory=dict)
    name: str = "data"
    test: SequenceData | None = None

    def __post_init__(self) -> None:
        if is_lazy(self.x):  # on disk (data.store): checked when it was written
            self._check_annotations(self.x.shape[0], self.x.shape[2])
            return
        x = np.asarray(self.x)
        if x.ndim != 3:
            raise ShapeError(f"data {self.name!r} must have 3 dimensions (windows, time, "
                             f"features), got shape {x.shape}")
        if x.shape[0] == 0:
            raise FactorseqError(f"data {self.name!r} has no windows")
        if 0 in x.shape[1:]:
            raise FactorseqError(f"data {self.name!r} has shape {x.shape}: windows need at "
                                 "least one time step and one feature")
        if np.iscomplexobj(x):
            raise FactorseqError(f"data {self.name!r} is complex-valued ({x.dtype}); give the "
                                 "real and imaginary parts as separate features")
        if not np.issubdtype(x.dtype, np.number):
            raise FactorseqError(f"data {self.name!r} must be numeric, got dtype {x.dtype}")
        with np.errstate(over="ignore"):  # beyond float32 becomes inf: named just below
            self.x = x.astype(np.float32, copy=False)
        n, _, d = self.x.shape
        if not np.isfinite(self.x).all():  # data built in code; the loaders impute first
            names = self.feature_names if self.feature_names and len(self.feature_names) == d \
                else [f"f{i}" for i in range(d)]
            check_missing(~np.isfinite(self.x), names, None, f"data {self.name!r}", None,
                          unit="entries")
        self._check_annotations(n, d)

    def _check_annotations(self, n: int, d: int) -> None:
        if self.feature_names is None:
            self.feature_names = [f"f{i}" for i in range(d)]
        if len(self.feature_names) != d:
            raise ShapeError(f"{len(self.feature_names)} feature names for {d} features")
        if self.y is not None:
            self.y = np.asarray(self.y, dtype=np.int64)
            if self.y_mask is None:
                self.y_mask = np.ones(n, dtype=bool)
        if self.y_mask is not None:
            self.y_mask = np.asarray(self.y_mask, dtype=bool)
        if self.x_mask is not None:
            self.x_mask = np.asarray(self.x_mask, dtype=bool)
            if self.x_mask.shape != tuple(self.x.shape):
                raise ShapeError(f"x_mask has shape {self.x_mask.shape} but x has "
                                 f"{tuple(self.x.shape)}")
            if self.x_mask.all():
                self.x_mask = None  # complete: no mask to carry
        if self.attributes is not None:
            self.attributes = np.asarray(self.attributes)
            if self.attributes.ndim != 2:
                raise ShapeError(f"attributes must be (windows, attributes), got shape "
                                 f"{self.attributes.shape}")
        for key in ("y", "y_mask", "seq_id", "start", "domain", "attributes", "lengths"):
            v = getattr(self, key)
            if v is not None and len(v) != n:
                raise ShapeError(f"{key} has length {len(v)} but x has {n} windows")
        if self.seq_id is not None:
            self.seq_id = np.asarray(self.seq_id, dtype=np.int64)
        if self.start is not None:
            self.start = np.asarray(self.start, dtype=np.int64)
        if self.domain is not None:
            self.domain = np.asarray(self.domain, dtype=np.int64)
        if self.lengths is not None:
            self.lengths = np.asarray(self.lengths, dtype=np.int64)
            if len(self.lengths) and not (1 <= self.lengths.min()
                                          and self.lengths.max() <= self.x.shape[1]):
                raise ShapeError(f"lengths must lie in 1..{self.x.shape[1]} (the windows' "
                                 f"steps), got {self.lengths.min()}..{self.lengths.max()}")
        for k, v in self.extras.items():
            if len(v) != n:
                raise ShapeError(f"extra {k!r} has length {len(v)} but x has {n} windows")

    @property
    def n_windows(self) -> int:
        return self.x.shape[0]

    @property
    def seq_len(self) -> int:
        return self.x.shape[1]

    @property
    def n_features(self) -> int:
        return self.x.shape[2]

    def schema(self) -> dict[str, Any]:
        """What a trained model needs to know of its data (saved in config.json); with
        missing values also ``impute`` and ``missing_rate`` {feature: fraction missing}."""
        out = {"name": self.name, "seq_len": self.seq_len, "n_features": self.n_features,
               "feature_names": list(self.feature_names or []),
               "meta": {k: v for k, v in self.meta.items()  # categories: {column: labels}
                        if isinstance(v, (int, float, str, bool, list, type(None)))
                        or k == "categories"}}
        rate = self.missing_rate
        if rate is None and self.x_mask is not None and self.lengths is None:
            # a mask built in code: its own rate (padding, with lengths, is no missing value)
            rate = dict(zip(out["feature_names"], 1.0 - self.x_mask.mean(axis=(0, 1)),
                            strict=True))
        if rate is not None:
            out["impute"] = self.impute
            out["missing_rate"] = {k: round(float(v), 6) for k, v in rate.items()}
        return out

    def subset(self, idx: np.ndarray) -> SequenceData:
        """Windows ``idx`` with their annotations (meta kept, no test split)."""
        pick = lambda v: None if v is None else v[idx]  # noqa: E731
        x = self.x.subset(idx) if is_lazy(self.x) else self.x[idx]  # on disk: a lazy view
        return dataclasses.replace(
            self, x=x, x_mask=pick(self.x_mask), y=pick(self.y), y_mask=pick(self.y_mask),
            seq_id=pick(self.seq_id), start=pick(self.start), domain=pick(self.domain),
            attributes=pick(self.attributes), lengths=pick(self.lengths),
            extras={k: v[idx] for k, v in self.extras.items()}, test=None)

    def select_features(self, idx: list[int]) -> SequenceData:
        """Features ``idx`` only (in memory; the test split too)."""
        names = [self.feature_names[j] for j in idx]
        rate = None if self.missing_rate is None else \
            {k: v for k, v in self.missing_rate.items() if k in names}
        test = None if self.test is None else self.test.select_features(idx)
        return dataclasses.replace(
            self, x=np.asarray(self.x)[:, :, idx], feature_names=names, missing_rate=rate,
            x_mask=None if self.x_mask is None else self.x_mask[:, :, idx], test=test)

    def arrays(self) -> dict[str, np.ndarray]:
        """The per-window arrays a batch carries (``x`` plus whatever is present)."""
        out = {"x": self.x}
        for key in ("x_mask", "y", "y_mask", "seq_id", "domain", "attributes"):
            v = getattr(self, key)
            if v is not None:
                out[key] = v
        out.update(self.extras)
        return out
