"""Bundled data sets by name: ``@dataset("stockv", citation=..., licence=...)``."""
from __future__ import annotations

import dataclasses
from collections.abc import Callable

from ..errors import FactorseqError
from .container import SequenceData


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    name: str
    loader: Callable[..., SequenceData]  # loader(cfg: DataConfig) -> SequenceData
    description: str
    citation: str
    licence: str
    scaler: str = "minmax"  # preprocessing the set calls for


_DATASETS: dict[str, DatasetInfo] = {}


def dataset(name: str, *, description: str, citation: str, licence: str,
            scaler: str = "minmax") -> Callable:
    def deco(fn: Callable[..., SequenceData]) -> Callable[..., SequenceData]:
        _DATASETS[name] = DatasetInfo(name, fn, description, citation, licence, scaler)
        return fn

    return deco


def _ensure_loaded() -> None:
    from . import bundled  # noqa: F401  (registers the bundled sets)


def get_dataset(name: str) -> DatasetInfo:
    _ensure_loaded()
    try:
        return _DATASETS[name]
    except KeyError:
        raise FactorseqError(f"unknown data set {name!r} (not a bundled name nor an existing "
                             f"path); bundled: {', '.join(sorted(_DATASETS))}") from None


def list_datasets() -> list[DatasetInfo]:
    _ensure_loaded()
    return [_DATASETS[k] for k in sorted(_DATASETS)]


def is_bundled(name: str) -> bool:
    _ensure_loaded()
    return name in _DATASETS
