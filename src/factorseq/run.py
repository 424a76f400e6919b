"""``Run``: a trained model with its scaler and configuration, speaking the user's units.

Every method takes and returns arrays in the data's own units (the scaled space stays inside
the model) unless ``scaled=True`` is passed. Arrays are (windows, time, features).

    run = factorseq.load("runs/tv")
    x = run.sample(1000)                          # synthetic windows, original units
    codes = run.encode(real)                      # Codes: named parts, e.g. codes["z"]
    again = run.decode(codes)                     # windows from codes
    mix = run.generate(8, reference=real[:1], keep=["trend", "level"], scale={"seasonal": 2})
    parts = run.decompose(real[:4])               # Decomposition: level, trend, ... (units)
    scores = run.evaluate()                       # the model's evaluator, as a dict
"""
from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .config import build
from .data.config import DataConfig
from .data.container import SequenceData
from .data.lengths import draw, hold_after
from .data.scaler import Scaler
from .data.split import RunSplit, SplitData
from .errors import FactorseqError
from .io import free_memory
from .models.base import SequenceModel
from .models.outputs import Codes, Decomposition


def _numpy(t: Any) -> np.ndarray:
    return t.detach().cpu().numpy() if torch.is_tensor(t) else np.asarray(t)


@dataclasses.dataclass
class Run:
    """A trained model and everything needed to use it on new data (``path`` is None for a
    run trained in memory; ``split``: which of its windows trained, chose settings, were
    held out, as ``fit`` saved it)."""

    path: Path | None
    model: SequenceModel
    scaler: Scaler
    config: dict[str, Any]
    split: RunSplit | None = None

    # --- facts ---------------------------------------------------------------------------
    @property
    def schema(self) -> dict[str, Any]:
        return self.config["data_schema"]

    @property
    def data_config(self) -> DataConfig:
        """The run's data options; a run saved before splits were saved split at random."""
        cfg = build(DataConfig, self.config["data_config"], what="data config")
        if self.path is not None:  # files a run names are relative to it
            from .runfolder import resolved_source
            cfg = dataclasses.replace(cfg, source=resolved_source(cfg.source, self.path))
        return cfg if "data_split" in self.config else dataclasses.replace(cfg, split="random")

    def has(self, capability: str) -> bool:
        """Whether the model can do ``capability`` (see ``factorseq.models.base``)."""
        return self.model.has(capability)

    def load_data(self, source: str | None = None) -> SequenceData:
        """The training data (raw units), or ``source`` (a file, WAV, folder or bundled name)
        read with the same options, cut into windows as long as the model's (every
        ``segment_hop`` frames for speech runs). Checks the windows against the model's.

        Values and labels hidden on purpose (``data.remove_rate``, ``--labels N``) belong to
        the training data only: a ``source`` named here is read as it is (e.g. the complete
        set, or every label of a test file, to score against)."""
        from .data.loaders import load_data, without_new_store
        cfg = self.data_config
        meta = self.schema.get("meta", {})
        fixed = {**meta.get("categories", {}), **{a["name"]: a["categories"] for a in
                                                   meta.get("attributes", []) if
                                                   "categories" in a}}
        if fixed:  # a new file is coded with the run's own categories
            cfg = dataclasses.replace(cfg, categories=fixed)
        cfg = without_new_store(cfg)
        if source is None and self.path is not None:  # read only what the run may name
            from .runfolder import source_of_run
            source_of_run(self.config["data_config"]["source"], self.path)
        if source is not None:
            hop = self.schema.get("meta", {}).get("segment_hop", cfg.stride)
            cfg = dataclasses.replace(cfg, source=str(source), window=self.model.config.seq_len,
                                      stride=int(hop), remove_rate=0.0, labels=None)
        data = load_data(cfg, strict=source is None)  # another source: options carried over
        t, d = self.model.config.seq_len, self.schema.get("n_features",
                                                          self.model.config.n_features)
        if data.n_features != d or data.seq_len != t:  # raw features (before any one-hot)
            raise FactorseqError(f"data {source or cfg.source!r} has windows of {data.seq_len} "
                                 f"x {data.n_features} but the model expects {t} x {d} "
                                 f"(time x features)")
        return data

    def splits(self, data: SequenceData | None = None) -> SplitData | None:
        """The run's blocks (train, val, holdout; raw units) of its training data, or of
        ``data`` when given (the same windows read otherwise, e.g. without values hidden on
        purpose). A run saved before splits were saved re-derives its random split (marked
        ``legacy`` in ``self.split.summary()``); None when its config does not say how."""
        data = self.load_data() if data is None else data
        if self.split is None:
            from .data.split import legacy_split
            self.split = legacy_split(self.config, data)
            if self.split is None:
                return None
        return self.split.parts(data)

    # --- units -----------------------------------------------------------------------------
    def to_model(self, x: Any, scaled: bool = False) -> np.ndarray:
        """Windows in the user's units -> the model's scaled space (float32)."""
        try:
            x = np.asarray(x, dtype=np.float32)
        except (ValueError, TypeError) as e:
            raise FactorseqError(f"windows must be numbers: {str(e).splitlines()[0][:120]}"
                                 ) from None
        if not np.isfinite(x).all():
            raise FactorseqError("windows contain NaN/inf values; fill them first (see "
                                 "factorseq.data.missing)")
        return x if scaled else np.asarray(self.scaler.transform(x), dtype=np.float32)

    def to_user(self, x: Any, scaled: bool = False) -> np.ndarray:
        """Windows in the model's scaled space -> the user's units (float32)."""
        x = _numpy(x).astype(np.float32)
        return x if scaled else np.asarray(self.scaler.inverse_transform(x), dtype=np.float32)

    def _check_room(self, n: Any) -> None:
        """Refuse a request whose windows cannot fit in the free memory (before any work):
        the model's output, the scaled and the user's copies, float32."""
        schema = self.config.get("data_schema", {})
        t, d = int(schema.get("seq_len", 0) or 0), int(schema.get("n_features", 0) or 0)
        try:
            need = 3 * 4 * int(n) * t * d
        except (TypeError, ValueError):
            return  # a bad n is the model's to refuse
        free = free_memory()
        if free is not None and need > free:
            raise FactorseqError(f"{int(n):,} windows of {t} x {d} need about {need / 1e9:.1f} GB "
                                 f"of memory, more than is free ({free / 1e9:.1f} GB); ask for "
                                 "fewer and sample in parts (--seed differs per part)")

    # --- the contract, in the user's units -----------------------------------------------
    def sample(self, n: int | None = None, *, y: Any = None, attributes: Any = None,
               seed: int = 0, scaled: bool = False, as_frame: bool = False) -> Any:
        """``n`` synthetic windows (n, time, features); ``y``: class(es) for conditional
        models. ``as_frame``: a long pandas table instead, one row per (sample, step) with the
        data's feature names as columns (what ``factorseq sample --out x.csv`` writes).

        Runs trained with attributes: ``attributes`` {name: value} for all n, or a DataFrame
        / list of dicts with one row per entity (n = its rows); attributes not given are
        drawn from the training entities (:mod:`.sampling`). Categorical columns come back
        as codes (indices into ``schema["meta"]["categories"]``), as labels with
        ``as_frame``, which then uses the input's column names."""
        x, rows, ids = self.sample_entities(n, y=y, attributes=attributes, seed=seed,
                                            scaled=scaled)
        if not as_frame:
            return x
        return self.as_frame(x, rows, ids, self.sample_lengths(len(x), seed))

    def sample_entities(self, n: int | None = None, *, y: Any = None, attributes: Any = None,
                        seed: int = 0, scaled: bool = False
                        ) -> tuple[np.ndarray, np.ndarray | None, list | None]:
        """(windows, attribute rows (n, A) or None, entity ids or None): :meth:`sample` with
        the attributes it used (numbers, or codes of categories)."""
        from .sampling import attribute_rows, specs

        rows = ids = enc = None
        if specs(self) or attributes is not None:
            rows, ids = attribute_rows(self, n, attributes, seed)
            n, enc = len(rows), self.scaler.transform_attributes(rows)
        if n is None:
            raise FactorseqError("how many windows to sample? (n)")
        n = _count(n)
        self._check_room(n)
        g = _generator(seed)
        x = self.to_user(self.model.sample(n, y=y, attributes=enc, generator=g), scaled)
        return hold_after(x, self.sample_lengths(n, seed)), rows, ids

    def sample_lengths(self, n: int, seed: int = 0) -> np.ndarray:
        """(n,) entity lengths: drawn (seeded) from the training entities' lengths for a run
        trained with ``max_length`` (the ones :meth:`sample_entities` with the same ``n`` and
        ``seed`` used), else every window's full length."""
        dist = self.schema.get("lengths")
        if dist is None:
            return np.full(_count(n), int(self.schema.get("seq_len") or
                                          self.model.config.seq_len), dtype=np.int64)
        return draw(dist, _count(n), seed)

    def as_frame(self, x: np.ndarray, rows: np.ndarray | None = None,
                 ids: list | None = None, lengths: np.ndarray | None = None) -> Any:
        """Windows (n, time, features) as a long table: ``sample``, ``step``, the features
        (the layout ``factorseq sample --out x.csv`` writes); a run with categorical columns,
        attributes or entity lengths uses the input's id/time column names, adds the
        attributes ``rows``, writes categories as labels and keeps the first ``lengths[i]``
        steps of window i (:func:`factorseq.sampling.tabular_frame`)."""
        from .io import windows_frame
        from .sampling import is_tabular, tabular_frame

        if is_tabular(self):
            return tabular_frame(self, x, rows, ids, lengths)
        return windows_frame(x, self.schema.get("feature_names"))

    def save(self, path: str | Path) -> Run:
        """Write this run (e.g. one trained in memory) as a run folder at ``path``, which must
        not exist or be empty; returns the saved run."""
        from .checkpoint import load, save_run

        path = Path(path)
        if path.exists() and (not path.is_dir() or any(path.iterdir())):
            raise FactorseqError(f"{path} exists and is not an empty folder")
        cfg = self.config
        extra = {k: v for k, v in cfg.items() if k not in (
            "format", "version", "model", "class", "model_config", "scaler", "data_schema",
            "data_config", "train_config", "data_split")}
        save_run(path, self.model, self.scaler, cfg["data_schema"], self.data_config,
                 cfg.get("train_config"), extra, split=self.split)
        return load(path)

    def encode(self, x: Any, *, scaled: bool = False) -> Codes:
        """Named codes (numpy arrays) of windows ``x``; ``codes.specs`` says each part's role."""
        return self.model.encode(self.to_model(x, scaled)).map(_numpy)

    def decode(self, codes: Any, *, scaled: bool = False) -> np.ndarray:
        """Windows from codes (a Codes/dict, or one array when the model has one code)."""
        return self.to_user(self.model.decode(codes), scaled)

    def reconstruct(self, x: Any, *, scaled: bool = False) -> np.ndarray:
        return self.to_user(self.model.reconstruct(self.to_model(x, scaled)), scaled)

    def generate(self, n: int, *, reference: Any = None, keep: Iterable[str] = (),
                 values: Mapping[str, Any] | None = None, scale: Mapping[str, float] | None = None,
                 seed: int = 0, scaled: bool = False) -> np.ndarray:
        """Generation by factor (see ``SequenceModel.generate``): factors in ``keep`` from the
        ``reference`` windows, ``values`` set, ``scale`` multiplied, the rest from the prior."""
        ref = None if reference is None else self.to_model(reference, scaled)
        self._check_room(_count(n))
        g = _generator(seed)
        x = self.model.generate(n, reference=ref, keep=keep, values=values, scale=scale,
                                generator=g)
        return self.to_user(x, scaled)

    def factors(self) -> list[Any]:
        return self.model.factors() if self.model.has("factors") else []

    def decompose(self, x: Any, *, scaled: bool = False) -> Decomposition:
        """Additive parts of windows ``x`` in the user's units: the scaler is affine per
        feature (x_user = a x + b), so every part is multiplied by a and the first part (the
        level or trend) also carries b; the parts still sum to ``output``."""
        d = self.model.decompose(self.to_model(x, scaled)).map(_numpy)
        if scaled:
            return d
        if self.scaler.kind == "tabular":
            raise FactorseqError("parts in the data's units need a per-feature scaler; with "
                                 "categorical columns ask for them scaled (scaled=True)")
        d_ = d.output.shape[-1]
        b = self.to_user(np.zeros((1, 1, d_), np.float32))
        a = self.to_user(np.ones((1, 1, d_), np.float32)) - b
        first = next(iter(d.parts))
        parts = {k: a * v + (b if k == first else 0.0) for k, v in d.parts.items()}
        details = {k: [a * e for e in v] if isinstance(v, list) else a * v
                   for k, v in d.details.items()}
        return Decomposition(parts, self.to_user(d.output), details)

    def predict_proba(self, x: Any, *, scaled: bool = False) -> np.ndarray:
        """Class probabilities (windows, n_classes)."""
        return _numpy(self.model.predict_proba(self.to_model(x, scaled)))

    def evaluator(self, data: SequenceData | str | None = None, *, evaluator: str | None = None,
                  repeats: int = 5, samples: Any = None, seed: int = 0, **options: Any) -> Any:
        """The evaluator that scores this run (``build_evaluator``, the one place evaluators
        are built; the CLI, the report and the benchmarks come here): ``evaluator`` by name,
        else the protocol the data declares, else the model's own (``choose_evaluator``).
        ``data``: a SequenceData, a source to load with the run's options, or None for the
        training data;
        ``samples``: synthetic windows in the user's units instead of sampling."""
        from .metrics.evaluators import build_evaluator

        if data is None or isinstance(data, str):
            data = self.load_data(data)
        return build_evaluator(self, data, evaluator, repeats=repeats, samples=samples,
                               seed=seed, **options)

    def evaluate(self, data: SequenceData | str | None = None, *, evaluator: str | None = None,
                 repeats: int = 5, samples: Any = None, seed: int = 0, **options: Any
                 ) -> dict[str, Any]:
        """Scores of :meth:`evaluator` (same arguments), with the evaluator's name and the
        scoring version recorded (``factorseq.metrics.scoring``)."""
        return self.evaluator(data, evaluator=evaluator, repeats=repeats, samples=samples,
                              seed=seed, **options).scores()


def _count(n: Any) -> int:
    """A number of windows: a whole number >= 0 (not text, not a float, not a bool)."""
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 0:
        raise FactorseqError(f"the number of windows must be a whole number >= 0, got {n!r}")
    return int(n)


def _generator(seed: Any) -> torch.Generator:
    """A seeded generator; seeds as training's: whole numbers in [0, 2**32 - 1]."""
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) \
            or not 0 <= seed < 2**32:
        raise FactorseqError(f"seed must be a whole number in [0, 2**32 - 1], got {seed!r}")
    return torch.Generator().manual_seed(int(seed))
