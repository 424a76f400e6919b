"""Typed outputs of the model contract: what ``encode``, ``decompose`` and ``factors`` return.

``Codes`` is a dict of named code tensors whose :class:`CodeSpec` says what each one is (its
size and role: a whole-window latent, a sequence-level or segment-level factor, a class label,
class probabilities, per-step features). ``Decomposition`` holds additive parts of a window
that sum to the model's output. Both work on torch tensors inside a model and on numpy arrays
in :class:`factorseq.checkpoint.Run` (the user's side).
"""
from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from ..errors import FactorseqError, ShapeError

# what a code or factor stands for; trainers, metrics and the CLI read these, never names
ROLES = {
    "latent": "a code of the whole window (no finer structure)",
    "sequence": "a sequence-level factor: constant along a sequence (speaker, channel, style)",
    "segment": "a segment-level factor: changes from window to window (content, regime)",
    "label": "a class index (batch,)",
    "probs": "class probabilities (batch, n_classes)",
    "features": "features of an inference network (not decodable)",
    "steps": "per-step hidden states (batch, time, dim)",
}


@dataclasses.dataclass(frozen=True)
class CodeSpec:
    """One named part of a model's codes: ``dim`` numbers per window (per step if
    ``role == "steps"``); ``decoded`` parts are what :meth:`decode` needs."""

    name: str
    dim: int
    role: str = "latent"
    decoded: bool = True
    description: str = ""

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"code role must be one of {', '.join(ROLES)}, got {self.role!r}")

    def shape(self, batch: int, time: int) -> tuple[int, ...]:
        if self.role == "label":
            return (batch,)
        if self.role == "steps":
            return (batch, time, self.dim)
        return (batch, self.dim)


@dataclasses.dataclass(frozen=True)
class Factor:
    """A factor a user can hold fixed, set or scale in ``generate``.

    ``kind``: ``code`` (a latent code, taken from a reference or drawn from the prior),
    ``label`` (a class, set by value) or ``part`` (an additive part of the output, taken from a
    reference and/or scaled). ``role`` as in :data:`ROLES` (``sequence``/``segment``/...)."""

    name: str
    kind: str
    role: str = "latent"
    description: str = ""

    def __post_init__(self) -> None:
        if self.kind not in ("code", "label", "part"):
            raise ValueError(f"factor kind must be code, label or part, got {self.kind!r}")


class Codes(dict):
    """Named codes of a batch of windows: ``codes["z"]`` or ``codes.z``; ``codes.specs`` says
    what each part is (:class:`CodeSpec`)."""

    def __init__(self, values: Mapping[str, Any], specs: Iterable[CodeSpec]) -> None:
        super().__init__(values)
        self.specs = {s.name: s for s in specs}

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def by_role(self, role: str) -> dict[str, Any]:
        """The parts whose spec has ``role`` (e.g. every ``sequence``-level code)."""
        return {k: v for k, v in self.items() if k in self.specs and self.specs[k].role == role}

    def map(self, fn) -> Codes:
        """Apply ``fn`` to every part (e.g. ``.map(lambda t: t.cpu().numpy())``)."""
        return Codes({k: fn(v) for k, v in self.items()}, self.specs.values())

    def check(self, batch: int | None, time: int, *, decoded_only: bool = False) -> None:
        """ShapeError naming the part unless every (decoded) part has its spec's shape."""
        for s in self.specs.values():
            if decoded_only and not s.decoded:
                continue
            if s.name not in self:
                raise FactorseqError(f"codes lack the part {s.name!r} (a {s.role} code); "
                                     f"expected parts: {', '.join(self.specs)}")
            shape = tuple(self[s.name].shape)
            n = shape[0] if shape else None
            want = s.shape(batch if batch is not None else n, time)
            if shape != want:
                raise ShapeError(f"code {s.name!r} must have shape {want}, got shape {shape}")


@dataclasses.dataclass
class Decomposition:
    """Additive parts of windows: each part (batch, time, features), ``sum(parts) == output``.

    ``details`` holds finer views that are not extra summands (e.g. one array per seasonal
    block, whose sum is the ``seasonal`` part)."""

    parts: dict[str, Any]
    output: Any
    details: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __getitem__(self, name: str) -> Any:
        if name == "output":
            return self.output
        if name in self.parts:
            return self.parts[name]
        return self.details[name]

    def map(self, fn) -> Decomposition:
        return Decomposition({k: fn(v) for k, v in self.parts.items()}, fn(self.output),
                             {k: _map_nested(fn, v) for k, v in self.details.items()})


def _map_nested(fn, v: Any) -> Any:
    if isinstance(v, (list, tuple)):
        return type(v)(fn(e) for e in v)
    return fn(v)
