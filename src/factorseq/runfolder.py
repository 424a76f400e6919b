"""A run folder's one writer, its hidden neighbours, and the recovery of an interrupted swap.

Beside a run folder ``OUT`` (in its parent folder) factorseq may keep:

* ``.OUT.factorseq-lock``: held (``flock``) by the one process that writes ``OUT``; the kernel
  releases it when that process dies, even by kill -9, so a lock is never left stale.
* ``.OUT.factorseq-new``: where a replacement (``--force``) trains. It carries the mark
  ``.factorseq-staging`` while it trains (a leftover is cleared by the next attempt), then
  ``.factorseq-swap`` once it is a finished run about to be swapped in.
* ``.OUT.factorseq-old``: the old run moved aside during the swap, marked ``.factorseq-old-run``
  (the mark is written inside the run before it moves, so the folder is never unmarked).

The swap: mark the old run, rename it aside, rename the new run into place, carry the user's
own files (anything training did not write: notes, samples, metrics, reports) from the old run
into the new one, remove the old run. Killed at any point, :func:`recover` (run by the next
command that trains into or loads ``OUT``) finishes it or rolls it back from the marks alone;
a file training did not write is never removed.
"""
from __future__ import annotations

import contextlib
import fcntl
import fnmatch
import json
import os
import shutil
from pathlib import Path

from .errors import FactorseqError

STAGING_MARK = ".factorseq-staging"
SWAP_MARK = ".factorseq-swap"
OLD_MARK = ".factorseq-old-run"
MARKS = (STAGING_MARK, SWAP_MARK, OLD_MARK)
# what training writes into a run folder; everything else in it is the user's
TRAINING_ENTRIES = frozenset({"config.json", "model.safetensors", "split.npz", "checkpoints",
                              "logs", "tensorboard", *MARKS})


def sibling(out: Path, role: str) -> Path:
    """The hidden neighbour ``.OUT.factorseq-ROLE`` (``new``, ``old`` or ``lock``)."""
    return out.parent / f".{out.name}.factorseq-{role}"


def run_status(path: Path) -> str | None:
    """The ``status`` of a factorseq run config in ``path`` (``trained`` when an older run has
    none); None when ``path`` holds no factorseq run config."""
    try:
        cfg = json.loads((path / "config.json").read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    if not isinstance(cfg, dict) or cfg.get("format") != "factorseq-run":
        return None
    return str(cfg.get("status", "trained"))


# every file a training writes before its first checkpoint (paths inside the run folder)
_EARLY_FILES = ("config.json", "split.npz", "logs/metrics.csv", "logs/hparams.yaml",
                "tensorboard/hparams.yaml", "tensorboard/events.out.tfevents.*",
                ".config.json.*.tmp.json", *MARKS)
_RUN_FILES = (*_EARLY_FILES, "model.safetensors", "checkpoints/*.ckpt")  # and once trained


def user_entries(folder: Path) -> list[Path]:
    """What training did not write in ``folder`` (the user's): top-level entries of other
    names or links (training never writes a link, so ``logs -> ~/mine`` is the user's), and
    inside training's own folders (``logs/``, ``checkpoints/``, ...) every file or link no
    training writes."""
    if not folder.is_dir():
        return []
    top = [p for p in folder.iterdir() if p.name not in TRAINING_ENTRIES or p.is_symlink()]
    inner = [p for name in TRAINING_ENTRIES
             if (folder / name).is_dir() and not (folder / name).is_symlink()
             for p in (folder / name).rglob("*") if (p.is_symlink() or not p.is_dir())
             and not any(fnmatch.fnmatchcase(p.relative_to(folder).as_posix(), pat)
                         for pat in _RUN_FILES)]
    return sorted(top + inner)


def never_trained(folder: Path) -> bool:
    """A run folder a training created but never checkpointed (refused or crashed before its
    first epoch ended): status ``training`` and no file but those such a training writes
    (so a file of the user's, even inside ``logs/``, makes it a folder to leave alone; so
    does any link, which no training writes)."""
    if run_status(folder) != "training" or any(p.is_symlink() for p in folder.rglob("*")):
        return False
    files = (p.relative_to(folder).as_posix() for p in folder.rglob("*") if not p.is_dir())
    return all(any(fnmatch.fnmatchcase(f, pat) for pat in _EARLY_FILES) for f in files)


def remove_training_entries(folder: Path, *, and_folder: bool = False) -> None:
    """Remove what training wrote into ``folder``, a folder for which :func:`never_trained`
    holds (so nothing else is there); with ``and_folder`` (training created it) ``folder``
    too, if that left it empty."""
    if not never_trained(folder):
        raise FactorseqError(f"{folder} holds more than a failed start's files; left alone")
    for name in TRAINING_ENTRIES:
        p = folder / name
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        elif p.exists() or p.is_symlink():
            p.unlink()
    if and_folder:
        with contextlib.suppress(OSError):
            folder.rmdir()  # only when empty


class RunLock:
    """One writer per run folder: an exclusive ``flock`` on ``.OUT.factorseq-lock`` with the
    holder's pid written in it. ``acquire`` never waits: a second writer gets a one-line
    FactorseqError naming the holder."""

    def __init__(self, out: Path) -> None:
        self.out, self.path, self._fd = Path(out), sibling(Path(out), "lock"), None

    def acquire(self) -> RunLock:
        while self._fd is None:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.read(fd, 32).decode(errors="replace").strip() or "another process"
                os.close(fd)
                raise FactorseqError(f"{self.out} is being written by process {holder} (lock "
                                     f"{self.path}); wait for it to finish") from None
            try:  # the holder before us may have removed the file after we opened it
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if not same:
                os.close(fd)
                continue
            os.ftruncate(fd, 0)
            os.write(fd, str(os.getpid()).encode())
            self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                self.path.unlink()  # while still held: a waiter re-checks the inode
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def swap_in(out: Path, new: Path) -> list[str]:
    """Put the finished run ``new`` (marked ``SWAP_MARK``) at ``out``; the run there before is
    marked, moved aside, and removed once the user's files in it are carried over. Returns the
    names carried over. Call with the lock held."""
    old = sibling(out, "old")
    if out.exists():
        (out / OLD_MARK).touch()
        os.rename(out, old)
    try:
        os.rename(new, out)
    except OSError:
        if old.exists() and not out.exists():
            os.rename(old, out)  # the old run back in its place
            (out / OLD_MARK).unlink(missing_ok=True)
        raise
    (out / SWAP_MARK).unlink(missing_ok=True)
    return _finish_old(out, old)


def _finish_old(out: Path, old: Path) -> list[str]:
    """Carry the user's entries of the moved-aside run ``old`` into ``out`` (the new run;
    ``NAME.previous`` when the new run has a namesake), then remove ``old``, which then holds
    only what training wrote."""
    carried = []
    for entry in user_entries(old):  # at its own place in the new run (logs/notes.txt too)
        rel = entry.relative_to(old)
        dest, k = out / rel, 1
        dest.parent.mkdir(parents=True, exist_ok=True)
        while dest.exists() or dest.is_symlink():
            dest, k = dest.with_name(f"{rel.name}.previous{'' if k == 1 else k}"), k + 1
        os.rename(entry, dest)
        carried.append(dest.relative_to(out).as_posix())
    shutil.rmtree(old)  # what is left is training's alone
    return carried


def recover(out: Path, *, locked: bool = False) -> list[str]:
    """Finish or roll back a swap that was interrupted (kill -9, power loss) at ``out``, from
    the marks alone. Returns what was done, one line each (nothing when there was nothing to
    do, or when another process holds the lock: the swap is then under way). ``locked``: the
    caller holds ``out``'s lock already."""
    out = Path(out)
    old, new = sibling(out, "old"), sibling(out, "new")
    pending = ((old / OLD_MARK).is_file() or (new / SWAP_MARK).is_file()
               or any((out / m).is_file() for m in (OLD_MARK, SWAP_MARK)))
    if not pending:
        return []
    if locked:
        return _recover_locked(out, old, new)
    try:
        lock = RunLock(out).acquire()
    except FactorseqError:
        return []
    try:
        return _recover_locked(out, old, new)
    finally:
        lock.release()


def _recover_locked(out: Path, old: Path, new: Path) -> list[str]:
    done = []
    old_moved = (old / OLD_MARK).is_file()
    new_ready = (new / SWAP_MARK).is_file() and run_status(new) == "trained"
    (out / SWAP_MARK).unlink(missing_ok=True)  # killed right after the new run moved in
    if not old_moved:
        (out / OLD_MARK).unlink(missing_ok=True)  # killed before the old run moved aside
    if not out.exists() and old_moved and not new_ready:
        (old / OLD_MARK).unlink()
        os.rename(old, out)
        return [f"an interrupted replacement of {out} was rolled back: the old run is back"]
    if out.exists() and run_status(out) is None:
        # the user put something at --out meanwhile: never move or remove it; say where
        # factorseq's copies are
        return [f"{out} is not a factorseq run; the replacement's runs are kept in "
                f"{' and '.join(str(p) for p in (new, old) if p.exists())}"]
    if new_ready and not (old_moved and out.exists()):
        carried = swap_in(out, new)
        done.append(f"an interrupted replacement of {out} was finished: the new run is in place")
    elif old_moved and out.exists():
        carried = _finish_old(out, old)
        done.append(f"an interrupted replacement of {out} was finished: the old run removed")
    else:
        carried = []
    if carried:
        done.append(f"kept your files from the old run: {', '.join(carried)}")
    return done


def hidden_copies(out: Path) -> list[Path]:
    """The hidden neighbours of ``out`` that hold a run (for messages that must name them)."""
    return [p for p in (sibling(out, "new"), sibling(out, "old")) if run_status(p) is not None]


# --- the data a run names -----------------------------------------------------------------

def source_for_run(source: str, run_dir: str | Path) -> str:
    """How a run stores its data source: an existing file or folder by its path relative to
    the run folder (a run folder moves; one sent from elsewhere must not name files by
    absolute path), anything else (a bundled name) as it is."""
    path = Path(str(source)).expanduser()
    if not path.exists():
        return str(source)
    return os.path.relpath(path.resolve(), Path(run_dir).resolve())


def resolved_source(source: str, run_dir: str | Path) -> str:
    """The stored source read relative to the run folder when it names something there;
    otherwise as stored (a bundled name, or a path :func:`source_of_run` refuses)."""
    path = Path(str(source))
    inside = Path(run_dir) / path
    return str(inside) if not path.is_absolute() and inside.exists() else str(source)


def source_of_run(source: str, run_dir: str | Path) -> str:
    """The stored source as something to read: a path is read relative to the run folder; an
    absolute path (a run folder from elsewhere, or one saved before paths were stored
    relative) is refused with the way to name the data explicitly."""
    from .data.registry import is_bundled

    path = Path(str(source))
    if path.is_absolute():
        raise FactorseqError(f"the run's data source {source} is an absolute path: a run folder "
                             f"may come from elsewhere, so the files it names are read only "
                             f"relative to it; name the data yourself (--data {source})")
    found = resolved_source(source, run_dir)
    if found != str(source):
        return found
    if is_bundled(str(source)):
        return str(source)
    raise FactorseqError(f"the run's data source {str(source)!r} is not found relative to the "
                         f"run folder {run_dir}; name the data yourself (--data PATH)")
