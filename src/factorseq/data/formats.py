"""File formats by suffix: ``@file_loader(".csv", ".parquet")`` registers a reader
``read(path, cfg) -> SequenceData``; ``"dir"`` stands for folders.

The reader modules register themselves when imported; the registry imports them (lazily) on
the first look-up, so this module imports none of them and the imports run one way.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from ..registry import Registry


@dataclasses.dataclass(frozen=True)
class FileFormat:
    """A reader, and whether it applies ``drop_columns`` / ``remove_rate`` / ``impute`` itself
    (tables and window arrays must: their missing values are handled while reading); the
    others get the generic window step of :func:`factorseq.data.loaders.load_data`."""

    read: Callable[..., Any]
    handles_missing: bool = False


FORMATS: Registry[FileFormat] = Registry(
    "file format", ["factorseq.data.arrays", "factorseq.data.tables", "factorseq.data.speech"])


def file_loader(*suffixes: str, handles_missing: bool = False) -> Callable:
    """Decorator: ``@file_loader(".wav", "dir")`` reads those paths in ``load_data``."""

    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        for s in suffixes:
            FORMATS.add(s.lower(), FileFormat(fn, handles_missing))
        return fn

    return deco
