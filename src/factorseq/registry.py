"""Name -> object registries. One generic :class:`Registry` serves every kind (models, data
sets, file formats, scalers, evaluators); nothing branches on a registered name.

A registry is filled by decorators in the modules that define the objects; ``load`` names what
to import (a module, or a function) before the first look-up, so that importing the package
is what registers its members and the registry module imports nothing of them.
"""
from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from .errors import FactorseqError

T = TypeVar("T")


class Registry(Generic[T]):
    """``kind`` names the members in messages ("model", "data set", ...). ``load`` is a
    module name (or a list of them) to import, or a function to call, before the first
    look-up. Registering a different object under a taken name is a ValueError (a bug in the
    code, not a user error); an unknown name is a FactorseqError listing what is available."""

    def __init__(self, kind: str, load: str | list[str] | Callable[[], Any] | None = None
                 ) -> None:
        self.kind = kind
        self._load = load
        self._items: dict[str, T] = {}
        self._loaded = load is None
        self._loading = False

    # --- filling -----------------------------------------------------------------------
    def add(self, name: str, obj: T) -> T:
        """Register ``obj`` as ``name``; the same object (or an equal record) again is a no-op."""
        old = self._items.get(name)
        if old is not None and old is not obj and old != obj:
            raise ValueError(f"{self.kind} name {name!r} registered twice")
        self._items[name] = obj
        return obj

    def register(self, *names: str) -> Callable[[T], T]:
        """Decorator: ``@REG.register("a", "b")`` registers the decorated object under each
        name and returns it unchanged."""

        def deco(obj: T) -> T:
            for name in names:
                self.add(name, obj)
            return obj

        return deco

    def pop(self, name: str, default: Any = None) -> Any:
        """Remove ``name`` (tests that register a temporary member clean up with this)."""
        return self._items.pop(name, default)

    # --- looking up ---------------------------------------------------------------------
    def ensure_loaded(self) -> None:
        """Import what registers the members (once; re-entrant imports see a partial set)."""
        if self._loaded or self._loading:
            return
        self._loading = True
        try:
            if callable(self._load):
                self._load()
            else:
                for module in [self._load] if isinstance(self._load, str) else self._load:
                    importlib.import_module(module)
            self._loaded = True
        finally:
            self._loading = False

    def get(self, name: str, *, hint: str = "") -> T:
        """The member called ``name``; unknown -> FactorseqError naming the available ones."""
        self.ensure_loaded()
        try:
            return self._items[name]
        except KeyError:
            raise FactorseqError(f"unknown {self.kind} {name!r}{hint}; available: "
                                 f"{', '.join(self.names()) or '(none)'}") from None

    def names(self) -> list[str]:
        self.ensure_loaded()
        return sorted(self._items)

    def items(self) -> dict[str, T]:
        """Name -> member, sorted by name."""
        self.ensure_loaded()
        return {k: self._items[k] for k in sorted(self._items)}

    def __contains__(self, name: object) -> bool:
        self.ensure_loaded()
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        self.ensure_loaded()
        return len(self._items)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {len(self._items)} registered)"


# --------------------------------------------------------------------------- models
MODELS: Registry[type] = Registry("model", "factorseq.models")


def register(name: str) -> Callable[[type], type]:
    """Class decorator: ``@register("timevae")`` makes the model reachable by that name."""

    def deco(cls: type) -> type:
        MODELS.add(name, cls)
        cls.name = name
        return cls

    return deco


def get_model_class(name: str) -> type:
    return MODELS.get(name)


def available() -> list[str]:
    return MODELS.names()


def registry_items() -> dict[str, Any]:
    return MODELS.items()
