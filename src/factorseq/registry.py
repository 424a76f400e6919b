"""Name -> class registries. Models register themselves; nothing branches on a model's name."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .errors import FactorseqError

_MODELS: dict[str, type] = {}


def register(name: str) -> Callable[[type], type]:
    """Class decorator: ``@register("timevae")`` makes the model reachable by that name."""

    def deco(cls: type) -> type:
        if name in _MODELS and _MODELS[name] is not cls:
            raise ValueError(f"model name {name!r} registered twice")
        cls.name = name
        _MODELS[name] = cls
        return cls

    return deco


def _ensure_loaded() -> None:
    from . import models  # noqa: F401  (importing the package registers every model)


def get_model_class(name: str) -> type:
    _ensure_loaded()
    try:
        return _MODELS[name]
    except KeyError:
        raise FactorseqError(f"unknown model {name!r}; available: {', '.join(available())}") \
            from None


def available() -> list[str]:
    _ensure_loaded()
    return sorted(_MODELS)


def registry_items() -> dict[str, Any]:
    _ensure_loaded()
    return dict(_MODELS)
