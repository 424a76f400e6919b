"""Load any supported source into :class:`SequenceData` windows of shape (N, time, features).

``load_data(cfg)`` reads a file when ``cfg.source`` is an existing path (``.npz``/``.npy``
window arrays, ``.csv``/``.parquet`` long tables, audio; :mod:`.formats`) and otherwise looks
the name up among the bundled data sets (:mod:`.registry`). Sources whose reader does not
handle them itself get ``drop_columns``, ``remove_rate`` and ``impute`` on their windows here.
The generic helpers (``sliding_windows``, ``keep_labels``: :mod:`.windows`; ``handle_missing``,
``missing_mask``: :mod:`.missing`) are re-exported for callers of the old names.
"""
from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import numpy as np

from ..errors import FactorseqError
from .config import IMPUTE_MODES, DataConfig
from .container import SequenceData
from .formats import FORMATS, file_loader
from .missing import handle_missing, missing_mask, window_policy
from .registry import get_dataset, is_bundled, list_datasets
from .store import load_stored, store_dir
from .windows import keep_labels, kept_features, sliding_windows

__all__ = ["load_data", "load_file", "file_loader", "IMPUTE_MODES", "sliding_windows",
           "keep_labels", "handle_missing", "missing_mask"]


def load_data(cfg: DataConfig, *, strict: bool = True) -> SequenceData:
    """Load ``cfg.source`` (an existing path, else a bundled name) as windows (N, T, D).

    Raw (unscaled) units; scaling is the trainer's job. When ``cfg.labels`` is set, exactly
    that many labels are kept (class-balanced, seeded by ``cfg.label_seed``) and the rest are
    masked out in ``y_mask``. ``strict``: a data option the reader never reads is an error
    (False for options a run carries over to another source, e.g. a bundled set's own).
    """
    if cfg.store:  # windows on disk, read on demand (written by the plain path below once)
        plain = dataclasses.replace(cfg, store=None, labels=None)
        data = load_stored(cfg.store, _store_key(cfg), lambda: load_data(plain, strict=strict))
        return _mask_labels(data, cfg)
    source = str(cfg.source)
    path = Path(source).expanduser()
    if path.exists():
        data = load_file(path, cfg, strict=strict)
    elif is_bundled(source):
        info = get_dataset(source)
        data = _load_bundled(info, cfg, strict)
        data.name = source
        data.meta.setdefault("scaler", info.scaler)
        data = window_step(data, cfg)
    else:
        names = ", ".join(d.name for d in list_datasets())
        raise FactorseqError(f"data source {source!r} is neither an existing file nor a bundled "
                             f"data set name (bundled: {names})")
    return _mask_labels(data, cfg)


class _ReadOptions(dict):
    """A data set's options that remember which keys its loader asked for."""

    def __init__(self, options: dict) -> None:
        super().__init__(options)
        self.asked: set = set()

    def get(self, key, default=None):
        self.asked.add(key)
        return super().get(key, default)

    def __getitem__(self, key):
        self.asked.add(key)
        return super().__getitem__(key)

    def __contains__(self, key) -> bool:
        self.asked.add(key)
        return super().__contains__(key)


def _load_bundled(info, cfg: DataConfig, strict: bool = True) -> SequenceData:
    """The bundled set's loader on ``cfg``; an option it never asked for (a misspelt one, or
    ``--target-speaker`` on a set without speakers) is an error, not silently ignored."""
    return _reading_every_option(cfg, info.loader, f"the data set {info.name!r}", strict)


def _reading_every_option(cfg: DataConfig, read, what: str, strict: bool) -> SequenceData:
    """``read(cfg)``, then (``strict``) an error naming any data option it never asked for."""
    options = _ReadOptions(cfg.options or {})
    data = read(dataclasses.replace(cfg, options=options))
    unused = sorted(set(options) - options.asked)
    if unused and strict:
        asked = ", ".join(sorted(str(k) for k in options.asked)) or "none"
        raise FactorseqError(f"data option(s) {', '.join(map(str, unused))} are not used by "
                             f"{what} (its options: {asked})")
    return data


def _store_key(cfg: DataConfig) -> dict:
    plain = dataclasses.replace(cfg, store=None, labels=None)
    from .. import __version__  # a new release may cut or scale bundled sets differently
    key = {**dataclasses.asdict(plain), "source_files": _fingerprint(plain.source),
           "factorseq": __version__}
    for k in ("split", "holdout_fraction", "split_blocks"):  # how a run splits, not what is
        key.pop(k)                                             # stored
    for k, unset in (("categorical_columns", None), ("attribute_columns", None),
                     ("categories", None), ("max_categories", 100)):
        if key[k] == unset:  # keys of stores written before these options existed
            key.pop(k)
    return key


def without_new_store(cfg: DataConfig) -> DataConfig:
    """``cfg`` for reading a run's data: its window store only when that store exists already
    (a run folder may come from elsewhere: the folder its config names is never written)."""
    if cfg.store and not (store_dir(cfg.store, _store_key(cfg)) / "meta.json").is_file():
        return dataclasses.replace(cfg, store=None)
    return cfg


def _fingerprint(source: str) -> str | None:
    """Names, sizes and modification times of a source file or folder (None for a bundled
    set): a stored copy is reused only while they are unchanged."""
    path = Path(source).expanduser()
    if not path.exists():
        return None
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    h = hashlib.sha256()
    for p in files:
        st = p.stat()
        h.update(f"{p.relative_to(path.parent)}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def _mask_labels(data: SequenceData, cfg: DataConfig) -> SequenceData:
    if cfg.labels is not None:
        if data.y is None:
            raise FactorseqError(f"--labels {cfg.labels} needs labelled data, but "
                                 f"{data.name!r} has no labels")
        data.y_mask = keep_labels(data.y, data.y_mask, cfg.labels, cfg.label_seed)
    return data


def load_file(path: str | Path, cfg: DataConfig, *, strict: bool = True) -> SequenceData:
    """Read one file (or a folder a registered loader understands) by its suffix."""
    path = Path(path)
    key = "dir" if path.is_dir() else path.suffix.lower()
    if key not in FORMATS:
        what = "a folder" if key == "dir" else f"a {key or 'suffix-less'} file"
        known = ", ".join(s for s in FORMATS.names() if s != "dir")
        raise FactorseqError(f"cannot read {path}: it is {what}; factorseq reads {known} files")
    fmt = FORMATS.get(key)
    data = _reading_every_option(cfg, lambda c: fmt.read(path, c), path.name, strict)
    return data if fmt.handles_missing else window_step(data, cfg)


def window_step(data: SequenceData, cfg: DataConfig) -> SequenceData:
    """``drop_columns``, then ``remove_rate`` and ``impute`` on complete windows (bundled sets,
    audio); the ``.test`` split keeps every value."""
    if cfg.drop_columns:
        data = data.select_features(kept_features(data.feature_names, cfg.drop_columns,
                                                  data.name))
    if cfg.remove_rate <= 0:
        return data
    names = list(data.feature_names)
    imp = window_policy(np.asarray(data.x), cfg, names, data.name)
    if imp.rate is None:  # nothing was removed (a tiny rate)
        return data
    test = data.test
    if imp.keep is not None:
        data = data.subset(np.flatnonzero(imp.keep))
    return dataclasses.replace(
        data, x=imp.x, x_mask=imp.x_mask, impute=cfg.impute, test=test,
        missing_rate=dict(zip(names, imp.rate.tolist(), strict=True)))


