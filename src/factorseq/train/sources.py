"""What ``fs.fit`` accepts as data and options, turned into its three configs.

``data`` may be a :class:`DataConfig`, a path or bundled name, a pandas DataFrame (a long
table: one row per time step, ``id_column`` / ``time_column`` as in the CLI; or a wide table
of one series) or a numpy array (windows (N, T, D), or one series (T, D) / (T,)). In-memory
data is written once, content-addressed, to the cache (``$FACTORSEQ_CACHE/frames``), and the
run's ``data_config.source`` names that file, so the run can be reloaded, evaluated and
resumed like any other. Keyword options go to the config whose field they name: data
(``window``, ``id_column``, ...), training (``epochs``, ``seed``, ``lr``, ...) or the model.
"""
from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from ..data.config import DataConfig
from ..data.paths import cache_dir
from ..errors import FactorseqError
from ..io import atomic_output
from .config import TrainConfig

_TRAIN = {f.name for f in dataclasses.fields(TrainConfig)}
_DATA = {f.name for f in dataclasses.fields(DataConfig)} - _TRAIN  # seed: training's


def resolve_call(cls: type, data: Any, train: Any, model: dict[str, Any], options: dict[str, Any]
                 ) -> tuple[DataConfig, Any, dict[str, Any]]:
    """``fs.fit``'s arguments as (data config, train config or dict, model overrides)."""
    model_fields = {f.name for f in dataclasses.fields(cls.Config)}
    unknown = sorted(set(options) - _DATA - _TRAIN - model_fields)
    if unknown:
        raise FactorseqError(f"unknown option(s) {', '.join(unknown)} for fit({cls.name!r}): "
                             "not a data, training or model setting")
    data_opts = {k: v for k, v in options.items() if k in _DATA}
    train_opts = {k: v for k, v in options.items() if k in _TRAIN}
    model_opts = {k: v for k, v in options.items() if k not in _DATA and k not in _TRAIN}
    return (data_config(data, data_opts), _merge_train(train, train_opts),
            {**model, **model_opts})


def data_config(data: Any, options: dict[str, Any]) -> DataConfig:
    if isinstance(data, DataConfig):
        return dataclasses.replace(data, **options) if options else data
    if isinstance(data, str | Path):
        return DataConfig(source=str(data), **options)
    if _is_frame(data) or isinstance(data, np.ndarray):
        return DataConfig(source=str(frame_file(data)), **options)
    raise FactorseqError(f"data must be a DataConfig, a path or bundled name, a pandas "
                         f"DataFrame or a numpy array, got {type(data).__name__}")


def _merge_train(train: Any, options: dict[str, Any]) -> Any:
    if train is not None and not isinstance(train, dict | TrainConfig):
        raise FactorseqError(f"train config must be a TrainConfig or a dict, got "
                             f"{type(train).__name__}")
    if not options:
        return train
    if train is None:
        return dict(options)
    if isinstance(train, dict):
        return {**train, **options}
    return {**{k: getattr(train, k) for k in train.given()}, **options}  # a TrainConfig


def _is_frame(obj: Any) -> bool:
    return type(obj).__name__ == "DataFrame" and hasattr(obj, "to_parquet")


def frame_file(obj: Any) -> Path:
    """The cache file holding ``obj`` (written once per content): windows as ``.npy``; one
    series (2-D / 1-D array) and DataFrames as ``.parquet`` tables."""
    import pandas as pd

    if isinstance(obj, np.ndarray):
        if obj.ndim == 3:
            return _cached(obj.tobytes() + str((obj.shape, obj.dtype)).encode(), ".npy",
                           lambda tmp: np.save(tmp, obj))
        if obj.ndim not in (1, 2):
            raise FactorseqError(f"an array must be windows (N, T, D) or one series (T, D), "
                                 f"got shape {obj.shape}")
        series = obj.reshape(len(obj), -1)
        obj = pd.DataFrame(series, columns=[f"f{j}" for j in range(series.shape[1])])
    df = obj.copy()
    df.columns = [str(c) for c in df.columns]  # parquet names columns by strings
    if not isinstance(df.index, pd.RangeIndex):
        df = df.reset_index(drop=df.index.name is None)
    digest = pd.util.hash_pandas_object(df, index=False).to_numpy().tobytes() + \
        str(list(zip(df.columns, map(str, df.dtypes), strict=True))).encode()
    return _cached(digest, ".parquet", lambda tmp: df.to_parquet(tmp, index=False))


def _cached(content: bytes, suffix: str, write: Any) -> Path:
    path = cache_dir() / "frames" / f"{hashlib.sha256(content).hexdigest()[:24]}{suffix}"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_output(path) as tmp:
            write(tmp)
    return path
