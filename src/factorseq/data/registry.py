"""Bundled data sets by name: ``@dataset("stockv", citation=..., licence=...)``.

A thin layer over the generic :class:`factorseq.registry.Registry`; importing
``factorseq.data.bundled`` registers every bundled set.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from ..registry import Registry


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    name: str
    loader: Callable[..., Any]  # loader(cfg: DataConfig) -> SequenceData
    description: str
    citation: str
    licence: str
    scaler: str = "minmax"  # preprocessing the set calls for


DATASETS: Registry[DatasetInfo] = Registry("data set", "factorseq.data.bundled")
_DATASETS = DATASETS  # the name tests used before the generic registry (``.pop`` works)


def dataset(name: str, *, description: str, citation: str, licence: str,
            scaler: str = "minmax") -> Callable:
    """Function decorator: ``loader(cfg) -> SequenceData`` becomes the bundled set ``name``."""

    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        DATASETS.add(name, DatasetInfo(name, fn, description, citation, licence, scaler))
        return fn

    return deco


def get_dataset(name: str) -> DatasetInfo:
    return DATASETS.get(name, hint=" (not a bundled name nor an existing path)")


def list_datasets() -> list[DatasetInfo]:
    return list(DATASETS.items().values())


def is_bundled(name: str) -> bool:
    return name in DATASETS
