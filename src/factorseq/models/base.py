"""The one model contract every factorseq model follows.

A model is an ``nn.Module`` with a typed config dataclass beside it (``Config``), registered by
name (``@register("timevae")``). All tensors are ``(batch, time, features)`` in the model's
scaled space; :class:`factorseq.checkpoint.Run` converts to and from the user's units.

A model declares what it can do in ``capabilities`` (:data:`CAPABILITIES`) and implements the
matching underscore methods; the public methods below are template methods of this class that
check shapes, labels and batch sizes once, run without gradients in batches, and turn a request
for a capability the model lacks into one FactorseqError. Trainer, CLI, report and metrics
call only these and read capabilities and code roles, never a model's name or internals.

Batches are dicts of tensors: ``x`` (batch, time, features), and when the data has them
``y`` (batch,) int64 labels with ``y_mask`` (batch,) bool (False = unlabelled; one code path
for partial labels), ``x_mask`` (batch, time, features) (1 = observed; see
``handles_missing``), ``seq_id`` (batch,) int64 sequence index, ``domain`` (batch,) int64, plus
any per-window extras of the data set.
"""
from __future__ import annotations

import abc
import dataclasses
import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from ..config import require
from ..errors import FactorseqError, ShapeError, check_shape
from .outputs import Codes, CodeSpec, Decomposition, Factor

GENERATES, ENCODES, DECODES = "generates", "encodes", "decodes"
CONDITIONAL, FACTORS, DECOMPOSES, CLASSIFIES = "conditional", "factors", "decomposes", "classifies"
ATTRIBUTES = "attributes"
CAPABILITIES = {
    GENERATES: "sample(n): synthetic windows",
    ENCODES: "encode(x): named codes (code_specs says each part's role)",
    DECODES: "decode(codes): windows from codes",
    CONDITIONAL: "sample(n, y=labels): windows of chosen classes",
    FACTORS: "generate(n, reference=, keep=, values=, scale=): generation by factor",
    DECOMPOSES: "decompose(x): additive parts (trend, seasonal, ...) summing to the output",
    CLASSIFIES: "predict_proba(x): class probabilities",
    ATTRIBUTES: "sample(n, attributes=a): windows of entities with given static attributes",
}

# the methods each capability needs (a tuple = any one of them), checked when a class is made
_NEEDS: dict[str, list[tuple[str, ...]]] = {
    GENERATES: [("_sample",)], ENCODES: [("code_specs",), ("_encode",)],
    DECODES: [("code_specs",), ("_decode",)], CONDITIONAL: [("_sample",)],
    FACTORS: [("factors",), ("_sample_codes",), ("_decode", "_decompose_codes")],
    DECOMPOSES: [("_decompose", "_decompose_codes")], CLASSIFIES: [("_predict_proba",)],
    ATTRIBUTES: [("_sample_attributes",)],
}


@dataclasses.dataclass
class ModelConfig:
    """Fields every model config has; ``seq_len``/``n_features`` are filled from the data.

    Any config field whose name matches a key of the data's ``meta`` (e.g. ``n_classes``,
    ``n_sequences``) is filled from it too, unless the user set it.
    """

    seq_len: int = 24
    n_features: int = 1

    def __post_init__(self) -> None:
        require(self.seq_len >= 1, f"seq_len must be >= 1, got {self.seq_len}")
        require(self.n_features >= 1, f"n_features must be >= 1, got {self.n_features}")


class SequenceModel(nn.Module, abc.ABC):
    """Base class: the contract's public methods, checked once, and the training hooks.

    Class attributes a model sets:
    - ``capabilities``: names from :data:`CAPABILITIES`; each needs its underscore methods:
      ``generates`` -> ``_sample``; ``encodes`` -> ``code_specs``, ``_encode``; ``decodes`` ->
      ``code_specs``, ``_decode``; ``conditional`` -> ``_sample`` honours ``y`` and the config
      has ``n_classes``; ``factors`` -> ``factors``, ``_sample_codes``, ``_decode`` (and
      ``_decompose_codes`` for ``part`` factors); ``decomposes`` -> ``_decompose``;
      ``classifies`` -> ``_predict_proba``; ``attributes`` -> ``_sample_attributes`` and the
      config has ``n_attributes`` (the width of the encoded attribute vector, 0 = trained
      without; its loss reads ``batch["attributes"]`` (batch, n_attributes)).
    - ``manual_optimization``: True for adversarial models; the trainer then calls
      :meth:`training_step` with one optimiser per name of :meth:`optimizer_groups`.
    - ``monitor_early_stopping``: False where the validation loss is not a stopping signal.
    - ``train_defaults``: TrainConfig keys this model prefers (the user's settings win).
    - ``handles_missing``: the loss honours ``batch["x_mask"]`` (gaps in the data).
    - ``evaluator``: name of the evaluator in ``factorseq.metrics`` that scores this model.
    - ``scaler``: default preprocessing of inputs (``minmax``, ``standard`` or ``none``).
    - ``legacy_config``: values for config keys that older runs did not write.
    """

    name: ClassVar[str] = "base"
    Config: ClassVar[type[ModelConfig]] = ModelConfig
    capabilities: ClassVar[frozenset[str]] = frozenset()
    manual_optimization: ClassVar[bool] = False
    monitor_early_stopping: ClassVar[bool] = True
    train_defaults: ClassVar[dict[str, Any]] = {}
    handles_missing: ClassVar[bool] = False
    evaluator: ClassVar[str] = "generative"
    scaler: ClassVar[str] = "minmax"
    legacy_config: ClassVar[dict[str, Any]] = {}
    infer_batch: ClassVar[int] = 4096  # windows per forward pass of the public methods

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        _check_capabilities(type(self))

    # --- capabilities --------------------------------------------------------------------
    def has(self, capability: str) -> bool:
        """Whether this model (with its config) can do ``capability``."""
        if capability not in CAPABILITIES:
            raise ValueError(f"unknown capability {capability!r}")
        return capability in self.capabilities

    def supported(self) -> list[str]:
        return [c for c in CAPABILITIES if self.has(c)]

    def require(self, capability: str) -> None:
        """One-line FactorseqError unless the model has ``capability``."""
        if not self.has(capability):
            raise FactorseqError(f"{self.name} cannot do '{capability}' "
                                 f"({CAPABILITIES[capability].split(':')[0]}); it supports: "
                                 f"{', '.join(self.supported()) or 'training only'}")

    # --- the public contract (template methods; models implement the underscore parts) ------
    @torch.no_grad()
    def sample(self, n: int, *, y: Any = None, attributes: Any = None,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` synthetic windows (n, time, features), scaled space; ``y`` (conditional
        models) one class for all or n classes; ``attributes`` (models with ``attributes``)
        encoded attribute vectors, one (n_attributes,) for all or (n, n_attributes)."""
        self.require(GENERATES)
        n = _count(n)
        labels = self.labels_for(n, y)
        attrs = self.attributes_for(n, attributes)
        pick = lambda v, i, m: None if v is None else v[i:i + m]  # noqa: E731
        parts = [self._sample(m, pick(labels, i, m), generator) if attrs is None else
                 self._sample_attributes(m, pick(labels, i, m), attrs[i:i + m], generator)
                 for i, m in _chunks(n, self.infer_batch)]
        return self._check_windows(torch.cat(parts), n, "samples")

    @torch.no_grad()
    def encode(self, x: Any) -> Codes:
        """Codes of windows ``x`` (batch, time, features): a :class:`Codes` whose parts are
        named and typed by :meth:`code_specs` (posterior means where the model has them).
        ``x`` may be windows on disk (anything with ``iter_chunks()``, e.g. a ``data.store``
        array): read and encoded a chunk at a time, never loaded whole."""
        self.require(ENCODES)
        pieces = x.iter_chunks() if hasattr(x, "iter_chunks") else [x]
        chunks, n = [], 0
        for piece in pieces:
            piece = self.as_input(piece)
            n += len(piece)
            chunks += [self._encode(piece[i:i + m]) for i, m in _chunks(len(piece),
                                                                         self.infer_batch)]
        if not chunks:
            raise ShapeError("x has no windows")
        codes = Codes({k: torch.cat([c[k] for c in chunks]) for k in chunks[0]},
                      self.code_specs())
        codes.check(n, self.config.seq_len)
        return codes

    @torch.no_grad()
    def decode(self, codes: Any) -> torch.Tensor:
        """Windows (batch, time, features) from codes: a :class:`Codes`/dict with the decoded
        parts of :meth:`code_specs`, or a bare tensor when there is only one such part."""
        self.require(DECODES)
        codes = self.as_codes(codes)
        n = len(next(iter(codes.values())))
        out = [self._decode({k: v[i:i + m] for k, v in codes.items()})
               for i, m in _chunks(n, self.infer_batch)]
        return self._check_windows(torch.cat(out), n, "decoded windows")

    def reconstruct(self, x: Any) -> torch.Tensor:
        """``decode(encode(x))``, the shape of ``x``."""
        return self.decode(self.encode(x))

    @torch.no_grad()
    def decompose(self, x: Any) -> Decomposition:
        """Additive parts of windows ``x`` (batch, time, features) summing to the model's
        reconstruction (``output``)."""
        self.require(DECOMPOSES)
        x = self.as_input(x)
        ds = [self._decompose(x[i:i + m]) for i, m in _chunks(len(x), self.infer_batch)]
        return _cat_decompositions(ds)

    @torch.no_grad()
    def predict_proba(self, x: Any) -> torch.Tensor:
        """Class probabilities (batch, n_classes) of windows ``x`` (batch, time, features)."""
        self.require(CLASSIFIES)
        x = self.as_input(x)
        return torch.cat([self._predict_proba(x[i:i + m])
                          for i, m in _chunks(len(x), self.infer_batch)])

    @torch.no_grad()
    def generate(self, n: int, *, reference: Any = None, keep: Iterable[str] = (),
                 values: Mapping[str, Any] | None = None, scale: Mapping[str, float] | None = None,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        """Generation by factor: ``n`` windows whose factors in ``keep`` come from the windows
        ``reference`` (batch, time, features) (sequence-level factors: from the whole reference;
        per-window ones: from each window, one reference window or n), factors in ``values``
        are set (a class label), parts or codes in ``scale`` multiplied, and every other factor
        drawn from the prior. :meth:`factors` lists the names."""
        self.require(FACTORS)
        n, keep = _count(n), list(keep)
        values, scale = dict(values or {}), dict(scale or {})
        factors = {f.name: f for f in self.factors()}
        asked = [*keep, *values, *scale]
        unknown = [k for k in asked if k not in factors]
        if unknown:
            raise FactorseqError(f"{self.name} has no factor {unknown[0]!r}; its factors: "
                                 f"{', '.join(factors)}")
        bad = [k for k, s in scale.items() if not _finite_number(s)]
        if bad:
            raise FactorseqError(f"scale of {bad[0]} must be a finite number, got "
                                 f"{scale[bad[0]]!r}")
        if keep and reference is None:
            raise FactorseqError("keeping a factor needs a reference (windows to take it from)")
        given = {k: self.labels_for(n, v) if factors[k].kind == "label" else
                 _rows(torch.as_tensor(v, dtype=torch.float32, device=self.device), n, k)
                 for k, v in values.items()}
        part_names = {k for k in asked if factors[k].kind == "part"}
        ref = None
        if reference is not None:
            ref = self._reference_codes(reference)
            used = ref if part_names else {k: ref[k] for k in keep}  # parts need every code
            ref = {k: _rows(v, n, k) for k, v in used.items()}
        given.update({k: ref[k] for k in keep if factors[k].kind != "part"})
        codes = self._sample_codes(n, given, generator)
        codes.update({k: codes[k] * s for k, s in scale.items() if factors[k].kind == "code"})
        if not part_names:
            return self._check_windows(self._decode(codes), n, "generated windows")
        new = self._decompose_codes(codes).parts
        old = self._decompose_codes(ref).parts if ref is not None else {}
        x = sum((old[k] if k in keep else v) * float(scale.get(k, 1.0)) for k, v in new.items())
        return self._check_windows(x, n, "generated windows")

    # --- what models implement -----------------------------------------------------------
    @abc.abstractmethod
    def loss(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Return ``dict(loss=scalar, **terms)``; ``loss`` is minimised (per-batch mean)."""

    def code_specs(self) -> list[CodeSpec]:
        """The named parts of this model's codes (``encodes``/``decodes``/``factors``)."""
        return []

    def factors(self) -> list[Factor]:
        """What :meth:`generate` can keep, set or scale (``factors``)."""
        return []

    def _sample(self, n: int, y: torch.Tensor | None,
                generator: torch.Generator | None) -> torch.Tensor:
        raise _unimplemented(self, "_sample")

    def _sample_attributes(self, n: int, y: torch.Tensor | None, attributes: torch.Tensor,
                           generator: torch.Generator | None) -> torch.Tensor:
        """``n`` windows for the encoded attribute vectors ``attributes`` (n, n_attributes)."""
        raise _unimplemented(self, "_sample_attributes")

    def _encode(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        raise _unimplemented(self, "_encode")

    def _decode(self, codes: dict[str, torch.Tensor]) -> torch.Tensor:
        raise _unimplemented(self, "_decode")

    def _sample_codes(self, n: int, given: dict[str, torch.Tensor],
                      generator: torch.Generator | None) -> dict[str, torch.Tensor]:
        """Codes of ``n`` windows drawn from the prior, parts in ``given`` held fixed."""
        raise _unimplemented(self, "_sample_codes")

    def _decompose(self, x: torch.Tensor) -> Decomposition:
        return self._decompose_codes(self._encode(x))

    def _decompose_codes(self, codes: dict[str, torch.Tensor]) -> Decomposition:
        raise _unimplemented(self, "_decompose_codes")

    def _predict_proba(self, x: torch.Tensor) -> torch.Tensor:
        raise _unimplemented(self, "_predict_proba")

    def sequence_codes(self, codes: Mapping[str, torch.Tensor], seq_id: torch.Tensor
                       ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Per-sequence values of the ``sequence``-role codes: (sorted ids (S,), {name: (S,
        dim)}); the mean over a sequence's windows unless a model knows better (FHVAE's
        closed-form mu2)."""
        ids, inv = torch.unique(torch.as_tensor(np.asarray(seq_id)), return_inverse=True)
        out = {}
        for s in self.code_specs():
            if s.role == "sequence":
                v = torch.as_tensor(codes[s.name])
                acc = torch.zeros(len(ids), v.shape[1], dtype=v.dtype).index_add_(0, inv, v)
                out[s.name] = acc / torch.bincount(inv, minlength=len(ids))[:, None].to(v.dtype)
        return ids, out

    # --- training hooks (defaults fit most VAEs) ------------------------------------------
    def optimizer_groups(self) -> dict[str, list[nn.Parameter]]:
        """Named parameter groups, one optimiser each. One group = automatic optimisation."""
        return {"all": list(self.parameters())}

    def optimizer_config(self, name: str) -> dict[str, Any]:
        """Adam keyword overrides (lr, betas, weight_decay) for optimiser group ``name``."""
        return {}

    def training_step(self, batch: dict[str, torch.Tensor], optimizers: dict[str, Any],
                      backward: Callable[[torch.Tensor], None], step: int) -> dict[str, Any]:
        """Manual optimisation only: do the model's alternating updates, return loss terms."""
        raise TypeError(f"{type(self).__name__} uses automatic optimisation; the trainer calls "
                        "training_step only when manual_optimization is True")

    def validation_loss(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return self.loss(batch)

    def on_train_epoch_start(self, epoch: int, max_epochs: int) -> None:
        """Called by the trainer before each epoch (annealing, training phases)."""

    def on_optimizer_step(self, step: int) -> None:
        """Called by the trainer after each optimiser step of automatic optimisation (``step``
        = optimiser steps so far, from 1), e.g. to update an EMA copy of the weights."""

    def make_batch_sampler(self, data: Any, batch_size: int, seed: int) -> Any:
        """Optional custom batching of the training windows (``data`` is the scaled
        SequenceData): an iterable of index lists, re-iterated every epoch. None = shuffled
        mini-batches. FHVAE uses it for hierarchical sampling of sequences."""
        return None

    def on_fit_end(self, loader: Any) -> None:
        """Called once after training with a loader over the (scaled) training data, e.g. to
        fit a code distribution for sampling. State to keep must live in buffers."""

    def report_figures(self, x: torch.Tensor) -> list[tuple[str, Any]]:
        """Model-specific (title, matplotlib figure) pairs for the report; ``x`` is real data."""
        return []

    # --- checks shared by the public methods ----------------------------------------------
    def check_input(self, x: torch.Tensor, name: str = "x") -> None:
        check_shape(name, x, 3, features=self.config.n_features, time=self.config.seq_len)

    def as_input(self, x: Any, name: str = "x") -> torch.Tensor:
        """``x`` as a float32 tensor on the model's device, shape-checked."""
        x = torch.as_tensor(np.asarray(x, dtype=np.float32) if not torch.is_tensor(x) else x)
        self.check_input(x, name)
        if len(x) == 0:
            raise ShapeError(f"{name} has no windows (shape {tuple(x.shape)})")
        return x.to(device=self.device, dtype=torch.float32)

    def as_codes(self, codes: Any) -> Codes:
        """A Codes of the decoded parts from a Codes, a dict or a bare tensor."""
        specs = [s for s in self.code_specs() if s.decoded]
        if not isinstance(codes, Mapping):
            if len(specs) != 1:
                raise FactorseqError(f"{self.name} decodes {len(specs)} named codes "
                                     f"({', '.join(s.name for s in specs)}): pass a dict")
            codes = {specs[0].name: codes}
        dtypes = {s.name: torch.long if s.role == "label" else torch.float32 for s in specs}
        vals = {s.name: torch.as_tensor(np.asarray(codes[s.name]) if not
                                        torch.is_tensor(codes[s.name]) else codes[s.name])
                .to(self.device, dtypes[s.name]) for s in specs if s.name in codes}
        out = Codes(vals, specs)
        out.check(None, self.config.seq_len, decoded_only=True)
        return out

    def labels_for(self, n: int, y: Any) -> torch.Tensor | None:
        """``y`` as (n,) int64 class indices (one label is repeated), checked against
        ``n_classes``; None stays None. A label for an unconditional model is an error."""
        if y is None:
            return None
        self.require(CONDITIONAL)
        k = int(self.config.n_classes)
        labels = torch.as_tensor(np.asarray(y)).reshape(-1)
        if labels.dtype.is_floating_point and not torch.equal(labels, labels.round()):
            raise FactorseqError(f"labels must be class indices, got {labels[:5].tolist()}")
        labels = labels.long().to(self.device)
        if labels.numel() == 1:
            labels = labels.expand(n)
        if labels.numel() != n:
            raise FactorseqError(f"got {labels.numel()} labels for {n} windows")
        if int(labels.min()) < 0 or int(labels.max()) >= k:
            bad = sorted(set(labels.tolist()))[:5]
            raise FactorseqError(f"label must be in 0..{k - 1}, got {bad}")
        return labels

    def attributes_for(self, n: int, attributes: Any) -> torch.Tensor | None:
        """``attributes`` as (n, n_attributes) float32 (one row is repeated); None stays None.
        Attributes for a model that cannot take them, or of the wrong width, are errors."""
        if attributes is None:
            return None
        self.require(ATTRIBUTES)
        k = int(getattr(self.config, "n_attributes", 0))
        if k == 0:
            raise FactorseqError(f"this {self.name} model was trained without attributes")
        a = torch.as_tensor(np.asarray(attributes, dtype=np.float32)).to(self.device)
        a = a.reshape(1, -1) if a.dim() == 1 else a
        if a.dim() != 2 or a.shape[1] != k:
            raise ShapeError(f"attributes must be (n, {k}) encoded vectors, got shape "
                             f"{tuple(a.shape)}")
        if not torch.isfinite(a).all():
            raise FactorseqError("attributes contain NaN/inf values")
        return _rows(a, n, "attributes")

    def _reference_codes(self, reference: Any) -> dict[str, torch.Tensor]:
        """Codes of the reference windows: sequence-level parts from the whole reference (one
        sequence, one row), the others per window."""
        x = self.as_input(reference, "reference")
        chunks = [self._encode(x[i:i + m]) for i, m in _chunks(len(x), self.infer_batch)]
        codes = {k: torch.cat([c[k] for c in chunks]) for k in chunks[0]}
        _, seq = self.sequence_codes(codes, torch.zeros(len(x), dtype=torch.long))
        return {k: seq[k] if k in seq else v for k, v in codes.items()}

    def _check_windows(self, x: torch.Tensor, n: int, what: str) -> torch.Tensor:
        want = (n, self.config.seq_len, self.config.n_features)
        if tuple(x.shape) != want:
            raise ShapeError(f"{self.name} produced {what} of shape {tuple(x.shape)}, "
                             f"expected {want}")
        return x

    @property
    def device(self) -> torch.device:
        p = next(self.parameters(), None)
        return p.device if p is not None else torch.device("cpu")


_CHECKED: set[type] = set()


def _check_capabilities(cls: type) -> None:
    """A model class that declares a capability must implement what it needs (checked once
    per class, at its first instance, so that no public method can reach a missing part)."""
    if cls in _CHECKED:
        return
    for cap in cls.capabilities:
        if cap not in CAPABILITIES:
            raise TypeError(f"{cls.__name__}: unknown capability {cap!r}")
        for options in _NEEDS[cap]:
            if all(getattr(cls, m) is getattr(SequenceModel, m) for m in options):
                raise TypeError(f"{cls.__name__} declares {cap!r} but implements none of "
                                f"{', '.join(options)}")
    _CHECKED.add(cls)


def _unimplemented(model: SequenceModel, method: str) -> TypeError:
    return TypeError(f"{type(model).__name__} does not implement {method}")


def _count(n: Any) -> int:
    if isinstance(n, bool) or int(n) != n or n < 1:
        raise FactorseqError(f"the number of windows must be a positive integer, got {n!r}")
    return int(n)


def _chunks(n: int, size: int) -> list[tuple[int, int]]:
    """(start, length) of consecutive chunks of at most ``size`` covering 0..n."""
    return [(i, min(size, n - i)) for i in range(0, n, size)]


def _rows(v: torch.Tensor, n: int, name: str) -> torch.Tensor:
    """One row (or a value without batch dim) repeated n times, or exactly n rows."""
    if v.dim() == 0 or (v.dim() >= 1 and v.shape[0] == 1):
        v = v.reshape(1, *v.shape[1:]) if v.dim() else v.reshape(1)
        return v.expand(n, *v.shape[1:]).clone()
    if v.shape[0] != n:
        raise ShapeError(f"{name} has {v.shape[0]} rows for {n} windows (give 1 or {n})")
    return v


def _cat_decompositions(ds: list[Decomposition]) -> Decomposition:
    if len(ds) == 1:
        return ds[0]
    cat = torch.cat
    details = {}
    for k, v in ds[0].details.items():
        details[k] = ([cat([d.details[k][j] for d in ds]) for j in range(len(v))]
                      if isinstance(v, (list, tuple)) else cat([d.details[k] for d in ds]))
    return Decomposition({k: cat([d.parts[k] for d in ds]) for k in ds[0].parts},
                         cat([d.output for d in ds]), details)


def gaussian_kl(mean: torch.Tensor, logvar: torch.Tensor, prior_mean: torch.Tensor | float = 0.0,
                prior_logvar: torch.Tensor | float = 0.0) -> torch.Tensor:
    """KL(N(mean, e^logvar) || N(prior_mean, e^prior_logvar)), summed over the last dim."""
    prior_logvar = torch.as_tensor(prior_logvar, dtype=mean.dtype, device=mean.device)
    prior_mean = torch.as_tensor(prior_mean, dtype=mean.dtype, device=mean.device)
    kl = 0.5 * (prior_logvar - logvar
                + (logvar.exp() + (mean - prior_mean) ** 2) / prior_logvar.exp() - 1.0)
    return kl.sum(-1)


def reparameterize(mean: torch.Tensor, logvar: torch.Tensor,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    eps = torch.randn(mean.shape, generator=generator, dtype=mean.dtype, device=mean.device)
    return mean + eps * torch.exp(0.5 * logvar)


def _finite_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
