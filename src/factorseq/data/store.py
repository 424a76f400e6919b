"""Windows kept on disk and read on demand: data sets larger than memory.

``DataConfig.store`` names a folder; :func:`load_stored` writes the loaded set there once
(``x.f32``: raw little-endian float32 windows, row after row; ``arrays.npz``: the per-window
annotations, ``x_mask`` included when values are missing; ``meta.json``: shape, names, meta,
missing rates and the data config it came from) and from then on returns a
:class:`SequenceData` whose ``x`` is a :class:`DiskWindows`. Only the rows a
batch or an FHVAE sampling round asks for are read (``os.pread`` into fresh buffers, no memory
map, so nothing of the file stays resident in the process), which is how Scalable FHVAE bounds
memory on corpora of thousands of hours. Per-window integers (sequence ids, labels) stay in
memory: a few bytes per window against ``time * features * 4`` for the window itself; an
``x_mask`` (``--impute mask``) stays in memory too, one byte per value (a quarter of ``x``).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import FactorseqError

FORMAT = "factorseq-windows"
VERSION = 1
_CHUNK_BYTES = 32 * 2 ** 20  # rows per read when a whole set is streamed (fit, export)


class DiskWindows:
    """Read-only (N, T, D) float32 windows in a file, optionally a row subset and a transform.

    Indexing (``w[i]``, ``w[3:9]``, ``w[idx]``) reads those rows and returns an ndarray, like
    numpy; :meth:`subset` and :meth:`with_transform` return new lazy views (nothing is read);
    ``np.asarray(w)`` reads everything (for small sets, e.g. a test split).
    """

    def __init__(self, path: str | Path, shape: tuple[int, int, int],
                 index: np.ndarray | None = None,
                 transform: Callable[[np.ndarray], np.ndarray] | None = None) -> None:
        self.path = Path(path)
        self.base_shape = tuple(int(s) for s in shape)
        self.index = None if index is None else np.asarray(index, dtype=np.int64)
        self.transform = transform
        self._row_bytes = self.base_shape[1] * self.base_shape[2] * 4
        try:
            size = self.path.stat().st_size
        except OSError as e:
            raise FactorseqError(f"cannot read stored windows {self.path}: {e.strerror}") from None
        if size != self.base_shape[0] * self._row_bytes:
            raise FactorseqError(f"stored windows {self.path} hold {size} bytes, expected "
                                 f"{self.base_shape[0] * self._row_bytes} for shape "
                                 f"{self.base_shape}; the store is corrupt, delete it")

    # --- array protocol ---------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, int, int]:
        n = self.base_shape[0] if self.index is None else len(self.index)
        return (n, *self.base_shape[1:])

    ndim = 3
    dtype = np.dtype(np.float32)

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape)) * 4

    def __len__(self) -> int:
        return self.shape[0]

    def __repr__(self) -> str:
        return f"DiskWindows({str(self.path)!r}, shape={self.shape})"

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = self[np.arange(len(self))]
        return out if dtype is None else out.astype(dtype, copy=False)

    def __getitem__(self, key: Any) -> np.ndarray:
        if isinstance(key, tuple):  # w[idx, :, 3]: rows first, the rest in memory
            return self[key[0]][(slice(None), *key[1:])]
        if isinstance(key, (int, np.integer)):
            return self[np.array([key])][0]
        x = self._read(self._file_rows(key))
        return x if self.transform is None else self.transform(x)

    def _file_rows(self, key: Any) -> np.ndarray:
        """Rows of the file that ``key`` (numpy row index of this view) selects."""
        rows = np.arange(len(self))[key]
        if rows.ndim != 1:
            raise IndexError(f"stored windows take a 1-d row index, got shape {rows.shape}")
        return rows if self.index is None else self.index[rows]

    # --- lazy views -------------------------------------------------------------------
    def subset(self, idx: Any) -> DiskWindows:
        return DiskWindows(self.path, self.base_shape, self._file_rows(idx), self.transform)

    def with_transform(self, fn: Callable[[np.ndarray], np.ndarray]) -> DiskWindows:
        """The same rows with ``fn`` applied after every read (e.g. a fitted scaler)."""
        prev = self.transform
        comp = fn if prev is None else (lambda x: fn(prev(x)))
        return DiskWindows(self.path, self.base_shape, self.index, comp)

    def iter_chunks(self, rows: int | None = None) -> Iterator[np.ndarray]:
        """The windows in order, ``rows`` at a time (default: ~32 MB per chunk)."""
        rows = rows or max(1, _CHUNK_BYTES // self._row_bytes)
        for i in range(0, len(self), rows):
            yield self[i:i + rows]

    # --- reading ----------------------------------------------------------------------
    def _read(self, base: np.ndarray) -> np.ndarray:
        """Rows ``base`` (any order, repeats allowed) of the file; runs of consecutive rows
        are read with one ``pread`` each."""
        _, t, d = self.base_shape
        out = np.empty((len(base), t, d), dtype="<f4")
        if not len(base):
            return out.astype(np.float32, copy=False)
        if base.min() < 0 or base.max() >= self.base_shape[0]:
            raise IndexError(f"row index out of range for {self.base_shape[0]} stored windows")
        order = np.argsort(base, kind="stable")
        sb = base[order]
        flat = out.reshape(len(base), -1)
        breaks = np.flatnonzero(np.diff(sb) != 1) + 1  # starts of runs of consecutive rows
        fd = os.open(self.path, os.O_RDONLY)
        try:
            for run in np.split(np.arange(len(sb)), breaks):
                lo, hi = int(sb[run[0]]), int(sb[run[-1]]) + 1
                buf = os.pread(fd, (hi - lo) * self._row_bytes, lo * self._row_bytes)
                if len(buf) != (hi - lo) * self._row_bytes:
                    raise FactorseqError(f"stored windows {self.path} ended early; the store "
                                         "is corrupt, delete it")
                flat[order[run]] = np.frombuffer(buf, dtype="<f4").reshape(hi - lo, -1)[
                    sb[run] - lo]
        finally:
            os.close(fd)
        return out.astype(np.float32, copy=False)


def is_lazy(x: Any) -> bool:
    return isinstance(x, DiskWindows)


# --------------------------------------------------------------------------- the store folder
def store_dir(root: str | Path, config: dict[str, Any]) -> Path:
    """Where the windows of a data config live under ``root``: one folder per config."""
    key = {k: v for k, v in config.items() if k not in ("store", "labels", "label_seed")}
    h = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]
    name = "".join(c if c.isalnum() or c in "-_." else "_" for c in Path(str(
        config.get("source", "data"))).name)[:40]
    return Path(root).expanduser() / f"{name}-{h}"


def _write_split(data: Any, folder: Path) -> None:
    folder.mkdir(parents=True)
    with open(folder / "x.f32", "wb") as fh:
        for chunk in (data.x.iter_chunks() if is_lazy(data.x) else [data.x]):
            fh.write(np.ascontiguousarray(chunk, dtype="<f4").tobytes())
    arrays = {k: v for k, v in data.arrays().items() if k != "x"}
    for key in ("start", "lengths"):  # window positions (time splits), entity lengths
        if getattr(data, key) is not None:  # not part of a batch
            arrays[key] = getattr(data, key)
    np.savez(folder / "arrays.npz", **arrays)
    extras = sorted(data.extras)
    info = {"format": FORMAT, "version": VERSION, "shape": list(data.x.shape),
            "name": data.name, "feature_names": list(data.feature_names or []),
            "extras": extras, "meta": data.meta, "has_test": data.test is not None,
            "missing_rate": data.missing_rate, "impute": data.impute}
    (folder / "meta.json").write_text(json.dumps(info, default=_jsonable))
    if data.test is not None:
        _write_split(data.test, folder / "test")


def _jsonable(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    raise TypeError(f"cannot store {type(v).__name__} in meta.json")


def write_store(data: Any, folder: str | Path, config: dict[str, Any]) -> Path:
    """Write ``data`` (and its test split) under ``folder``, atomically (temp dir + rename)."""
    folder = Path(folder)
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.tmp"))
    except OSError as e:
        raise FactorseqError(f"cannot write the data store {folder.parent}: "
                             f"{e.strerror or e}") from None
    try:
        _write_split(data, tmp / "data")
        (tmp / "data" / "config.json").write_text(json.dumps(config, default=str))
        try:
            os.replace(tmp / "data", folder)
        except OSError:
            if not (folder / "meta.json").is_file():  # not a parallel writer's finished copy
                raise
    except OSError as e:  # e.g. a full disk
        raise FactorseqError(f"cannot write the data store {folder}: {e.strerror or e}") \
            from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def read_store(folder: str | Path) -> Any:
    """The :class:`SequenceData` kept in ``folder``, its ``x`` on disk (nothing read yet)."""
    from .container import SequenceData

    folder = Path(folder)
    try:
        info = json.loads((folder / "meta.json").read_text())
        with np.load(folder / "arrays.npz", allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, KeyError) as e:
        raise FactorseqError(f"cannot read the data store {folder}: {e}; delete it to rebuild"
                             ) from None
    if info.get("format") != FORMAT or info.get("version") != VERSION:
        raise FactorseqError(f"{folder} is not a factorseq window store (version {VERSION})")
    x = DiskWindows(folder / "x.f32", tuple(info["shape"]))
    kw = {k: arrays[k] for k in ("x_mask", "y", "y_mask", "seq_id", "start", "domain",
                                 "attributes", "lengths")
          if k in arrays}
    extras = {k: arrays[k] for k in info.get("extras", [])}
    data = SequenceData(x=x, feature_names=info["feature_names"] or None,
                        extras=extras, meta=info.get("meta", {}), name=info.get("name", "data"),
                        missing_rate=info.get("missing_rate"), impute=info.get("impute"), **kw)
    if info.get("has_test"):
        data.test = read_store(folder / "test")
    return data


def load_stored(root: str | Path, config: dict[str, Any], load: Callable[[], Any]) -> Any:
    """The data of ``config`` from its folder under ``root``, written with ``load()`` first
    when absent. The finished folder is renamed into place, so an interrupted write leaves
    nothing that looks complete."""
    folder = store_dir(root, config)
    if not (folder / "meta.json").is_file():
        data = load()
        write_store(data, folder, config)
        del data
    return read_store(folder)
