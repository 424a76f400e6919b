"""Writing and reading synthetic windows: ``.npz``, ``.npy``, ``.csv``, ``.parquet``; and the
one way factorseq writes any output file (:func:`atomic_output`).

Tables are long: one row per (sample, step) with the feature columns, so a user can open them
in any tool; reading turns them back into (samples, time, features).
"""
from __future__ import annotations

import contextlib
import os
import re
import secrets
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import FactorseqError, check_shape

FORMATS = (".npz", ".npy", ".csv", ".parquet")


@contextlib.contextmanager
def atomic_output(path: str | Path) -> Iterator[Path]:
    """Write ``path`` all or nothing: yields a temporary path in the same folder (same suffix,
    so writers that go by the suffix still work); on success it is flushed to disk and renamed
    onto ``path`` (one atomic step: readers see the old file or the new one, never a part), on
    any failure or interruption it is removed and ``path`` is left as it was.

        with atomic_output(out) as tmp:
            np.save(tmp, x)
    """
    p = Path(path)
    _remove_dead_temporaries(p)
    # a fresh name (not mkstemp: that creates the file 0600; writers create it with the umask)
    tmp = p.with_name(f".{p.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp{p.suffix}")
    try:
        yield tmp
        if not tmp.is_file():
            raise FactorseqError(f"nothing was written to {p}")
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())  # the bytes reach the disk before the name points to them
        os.chmod(tmp, _mode_for(p))  # some writers create 0600: every output alike
        os.replace(tmp, p)
    except OSError as e:  # disk full, file too large, read-only: p is left as it was
        raise FactorseqError(f"cannot write {p}: {e.strerror or e}") from None
    finally:
        tmp.unlink(missing_ok=True)


def _mode_for(p: Path) -> int:
    """The mode the file at ``p`` has (a replaced file keeps it), else a new file's under the
    process's umask."""
    try:
        return p.stat().st_mode & 0o777
    except OSError:
        mask = os.umask(0)
        os.umask(mask)
        return 0o666 & ~mask


def _remove_dead_temporaries(p: Path) -> None:
    """Remove the temporary files of earlier writes of ``p`` whose process is gone (killed
    before it could clean up: kill -9, power loss); a live writer's file is left alone."""
    pattern = re.compile(rf"\.{re.escape(p.name)}\.(\d+)-[0-9a-f]{{8}}\.tmp{re.escape(p.suffix)}")
    with contextlib.suppress(OSError):
        for q in p.parent.iterdir():
            m = pattern.fullmatch(q.name)
            if m and q.is_file() and not _alive(int(m.group(1))):
                q.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True  # another user's live process (or not a pid we can judge): keep
    return True


def free_memory() -> int | None:
    """Bytes of memory free now (None where the system does not say)."""
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):
        return None


def check_writable(folder: str | Path) -> None:
    """``folder`` can be written into: it (or, until it exists, its nearest existing ancestor)
    is a folder we may write to. A FactorseqError otherwise, before any work is done."""
    folder = Path(folder)
    probe = folder
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise FactorseqError(f"cannot create {folder}: {probe} is a file")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise FactorseqError(f"cannot write to {probe}: permission denied")


def check_output(path: str | Path, force: bool, *, formats: tuple[str, ...] | None = None
                 ) -> Path:
    """Check an output file before any work: refuse to overwrite an existing one unless
    ``force``, refuse a folder, an unknown suffix (``formats``, e.g. ``FORMATS``) or a folder
    we cannot write to; create the parent folder."""
    p = Path(path)
    if formats is not None and p.suffix.lower() not in formats:
        raise FactorseqError(f"unknown output format {p.suffix or p.name!r} for {p}; use "
                             f"{', '.join(formats)}")
    if p.is_dir():
        raise FactorseqError(f"output {p} is a directory")
    if p.exists() and not force:
        raise FactorseqError(f"output {p} exists; use --force to overwrite")
    check_writable(p.parent)
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise FactorseqError(f"cannot create {p.parent}: {e.strerror}") from None
    return p


def write_windows(path: str | Path, x: np.ndarray, feature_names: list[str] | None = None,
                  extra: dict[str, np.ndarray] | None = None) -> Path:
    """Save windows ``x`` (samples, time, features) in the format named by the suffix (all or
    nothing: see :func:`atomic_output`)."""
    p = Path(path)
    check_shape("samples", x, 3)
    n, t, d = x.shape
    names = list(feature_names or [f"f{i}" for i in range(d)])
    suffix = p.suffix.lower()
    if suffix not in FORMATS:
        raise FactorseqError(f"unknown output format {p.suffix!r}; use {', '.join(FORMATS)}")
    with atomic_output(p) as tmp:
        if suffix == ".npz":
            np.savez_compressed(tmp, data=x, feature_names=np.array(names), **(extra or {}))
        elif suffix == ".npy":
            np.save(tmp, x)
        else:
            df = windows_frame(x, names)
            for k, v in (extra or {}).items():
                df[k] = np.repeat(np.asarray(v), t)
            if suffix == ".csv":
                df.to_csv(tmp, index=False)
            else:
                df.to_parquet(tmp, index=False)
    return p


def write_frame(path: str | Path, frame: pd.DataFrame) -> Path:
    """A table as ``.csv`` or ``.parquet`` (by the suffix), all or nothing."""
    p = Path(path)
    with atomic_output(p) as tmp:
        if p.suffix.lower() == ".csv":
            frame.to_csv(tmp, index=False)
        else:
            frame.to_parquet(tmp, index=False)
    return p


def windows_frame(x: np.ndarray, names: list[str] | None = None) -> pd.DataFrame:
    """Windows (n, time, features) as a long table: ``sample``, ``step``, the features."""
    n, t, d = x.shape
    df = pd.DataFrame(x.reshape(n * t, d), columns=list(names or [f"f{j}" for j in range(d)]))
    df.insert(0, "step", np.tile(np.arange(t), n))
    df.insert(0, "sample", np.repeat(np.arange(n), t))
    return df


def read_windows(path: str | Path) -> np.ndarray:
    """Read windows written by :func:`write_windows` (or any (N, T, D) npz/npy)."""
    p = Path(path)
    if not p.is_file():
        raise FactorseqError(f"samples file not found: {p}")
    suffix = p.suffix.lower()
    try:
        if suffix == ".npz":
            with np.load(p, allow_pickle=False) as z:
                keys = [k for k in z.files if k != "feature_names"]
                key = "data" if "data" in z.files else (keys[0] if len(keys) == 1 else None)
                if key is None:
                    raise FactorseqError(f"{p} has several arrays and none named 'data'")
                x = z[key]
        elif suffix == ".npy":
            x = np.load(p, allow_pickle=False)
        elif suffix in (".csv", ".parquet"):
            df = pd.read_csv(p) if suffix == ".csv" else pd.read_parquet(p)
            if not {"sample", "step"} <= set(df.columns):
                raise FactorseqError(f"{p} needs 'sample' and 'step' columns")
            df = df.sort_values(["sample", "step"])
            feats = [c for c in df.columns if c not in ("sample", "step", "label")]
            n, t = df["sample"].nunique(), df["step"].nunique()
            if n * t != len(df):
                raise FactorseqError(f"{p}: samples do not all have {t} steps")
            x = df[feats].to_numpy(np.float32).reshape(n, t, len(feats))
        else:
            raise FactorseqError(f"unknown samples format {p.suffix!r}; use {', '.join(FORMATS)}")
    except (ValueError, OSError, KeyError, EOFError, zipfile.BadZipFile) as e:
        raise FactorseqError(f"cannot read {p}: {str(e).splitlines()[0][:200]}") from None
    check_shape("samples", x, 3)
    if not np.isfinite(x).all():
        raise FactorseqError(f"{p} contains NaN/inf values")
    return x.astype(np.float32)
