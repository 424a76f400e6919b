"""Where training writes a run, decided before any work, without ever losing a user's files.

* One writer per run folder: ``--out`` is locked (:class:`factorseq.runfolder.RunLock`) before
  it is checked, so two trainings into one folder cannot both pass the check; the second gets
  one ``error:`` line naming the first's pid.
* ``--out`` naming a file, an unwritable place, or an existing folder without ``--force`` is
  refused before the data are read; so is ``--force`` onto a folder that is not a factorseq run.
  A folder a training created but never checkpointed (refused or crashed before its first
  checkpoint) is not a run yet: it is replaced without ``--force``, and a failed new training
  removes what it wrote (only that).
* ``--force`` replaces a factorseq run only once the new run has trained: training writes into
  a hidden sibling folder (``.NAME.factorseq-new``) that is swapped in at the end
  (:func:`factorseq.runfolder.swap_in`); the user's own files in the old run folder (anything
  training did not write: notes, samples, metrics, reports) are carried into the new one. A
  failed, diverged or interrupted attempt leaves the old run as it was; a swap killed half-way
  is finished or rolled back by the next command (:func:`factorseq.runfolder.recover`). At the
  swap ``--out`` is checked again: if it is no longer a run (the user put a folder there
  meanwhile) nothing is moved and the new run stays in the staging folder for good.
* Nothing else is ever removed: a staging folder only while it carries factorseq's mark (an
  interrupted attempt's leftover); any other folder at those sibling places is refused before
  work ("move it away").

DDP launches child processes that run ``fit`` again from the start; they train in the folder
the main process chose (passed in the environment) and never lock, create, swap or remove.
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

from ..checkpoint import CONFIG
from ..errors import FactorseqError
from ..io import check_writable
from ..runfolder import (
    STAGING_MARK,
    SWAP_MARK,
    RunLock,
    never_trained,
    recover,
    remove_training_entries,
    run_status,
    sibling,
    swap_in,
)

WORK_ENV = "FACTORSEQ_TRAIN_WORK_DIR"


def is_child_process() -> bool:
    """True in the extra processes a DDP launcher starts (they must not touch outputs)."""
    return os.environ.get("LOCAL_RANK", "0") != "0" or os.environ.get("NODE_RANK", "0") != "0"


def is_run(path: Path) -> bool:
    return run_status(path) is not None


def _in_the_way(path: Path) -> bool:
    """``path`` holds something that is not an empty folder or a marked staging folder."""
    return path.exists() and (not path.is_dir() or (
        any(path.iterdir()) and not (path / STAGING_MARK).is_file()))


def _clear(path: Path) -> None:
    """Remove a staging folder an interrupted attempt left (empty, or still marked); anything
    else, a user's folder or a run kept there, is refused and left as it is."""
    if _in_the_way(path):
        raise FactorseqError(f"{path} is in the way and is not factorseq's; move it away")
    if path.exists():
        shutil.rmtree(path)


@dataclasses.dataclass
class Target:
    """``out``: the run's place; ``work``: where training writes (``out`` itself, or a
    staging sibling when ``replaces`` an existing run). Holds ``out``'s lock until
    :meth:`release`."""

    out: Path
    work: Path
    replaces: bool = False
    created: bool = False  # this attempt made ``work`` (only then may it remove it)
    lock: RunLock | None = None
    made_parents: list[Path] = dataclasses.field(default_factory=list)

    def prepare(self) -> Path:
        """Create the folder training writes into (main process only); return it."""
        if not is_child_process():
            if self.replaces:
                _clear(self.work)
                self.work.mkdir(parents=True)
                (self.work / STAGING_MARK).touch()
                self.created = True
            else:
                self.created = not self.work.exists()
                self.work.mkdir(parents=True, exist_ok=True)
        return self.work

    @contextlib.contextmanager
    def shared_with_children(self) -> Iterator[None]:
        """Processes launched meanwhile (DDP) train in ``work`` too."""
        saved = os.environ.get(WORK_ENV)
        os.environ[WORK_ENV] = str(self.work)
        try:
            yield
        finally:
            if saved is None:
                os.environ.pop(WORK_ENV, None)
            else:
                os.environ[WORK_ENV] = saved

    def commit(self) -> Path:
        """Put the trained run at ``out`` (:func:`swap_in`: the old run aside, the new one in
        place, the user's files carried over, the old run removed). Returns ``out``."""
        if self.replaces and not is_child_process():
            old = sibling(self.out, "old")
            if self.out.exists() and not is_run(self.out):
                # changed while training: never move or remove what is not a factorseq run
                self._keep(f"{self.out} is no longer a factorseq run, so it was left alone")
            if _in_the_way(old):  # appeared while training: maybe the only copy of a run
                self._keep(f"{old} is in the way, so {self.out} was left alone")
            _clear(old)  # empty at most
            (self.work / SWAP_MARK).touch()  # a finished run from here on: recover() swaps it
            (self.work / STAGING_MARK).unlink()
            try:
                carried = swap_in(self.out, self.work)
            except OSError as e:  # the old run is back in place (swap_in); keep the new one
                if self.work.exists():
                    self._keep(f"could not put the new run in place ({e.strerror or e}); "
                               f"{self.out} is unchanged")
                raise
            if carried:
                print(f"kept your files from the old run in {self.out}: {', '.join(carried)}",
                      file=sys.stderr, flush=True)
            self.replaces, self.work = False, self.out
        return self.out

    def _keep(self, why: str) -> None:
        """Refuse the swap and keep the new run where it is, for good: abandon() and a later
        --force's clearing both leave it alone."""
        self.created = False
        for mark in (STAGING_MARK, SWAP_MARK):
            (self.work / mark).unlink(missing_ok=True)
        raise FactorseqError(f"{why}; the new run is in {self.work}")

    def abandon(self) -> None:
        """Drop an attempt that did not finish: a replacement's staging folder (the old run
        stays); a new run that never saved a checkpoint (what training wrote, and the folders
        this attempt made). A new run with a checkpoint is kept for ``--resume``."""
        if is_child_process():
            return
        if self.replaces and self.created:
            shutil.rmtree(self.work, ignore_errors=True)  # the staging folder prepare() made
        elif not self.replaces and never_trained(self.work):
            remove_training_entries(self.work, and_folder=self.created)

    def release(self) -> None:
        """Release the lock; then the parent folders this attempt made, if still empty (a
        failed attempt leaves no empty folders behind)."""
        if self.lock is not None:
            self.lock.release()
            self.lock = None
        _remove_empty(self.made_parents)


def _parents_to_make(out: Path) -> list[Path]:
    """The missing ancestors of ``out``, outermost first."""
    missing, p = [], out.parent
    while not p.exists():
        missing.append(p)
        p = p.parent
    return missing[::-1]


def plan_target(out: Path, *, force: bool, resume: bool) -> Target:
    """Lock ``out``, check it, and decide where training writes; only the lock file (and the
    missing parent folders it needs) is created yet. The caller calls ``release()``."""
    if is_child_process():
        return Target(out, Path(os.environ.get(WORK_ENV, str(out))))
    if out.exists() and not out.is_dir():
        raise FactorseqError(f"--out {out} is a file; a run is written into a folder")
    if out.is_symlink() and not out.exists():
        raise FactorseqError(f"--out {out} is a link to {os.readlink(out)}, which does not "
                             "exist; give a folder")
    check_writable(out)
    made = _parents_to_make(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        lock = RunLock(out).acquire()
    except BaseException:
        _remove_empty(made)
        raise
    try:
        for line in recover(out, locked=True):
            print(line, file=sys.stderr, flush=True)
        target = _decide(out, force=force, resume=resume)
    except BaseException:
        lock.release()
        _remove_empty(made)
        raise
    target.lock, target.made_parents = lock, made
    return target


def _remove_empty(folders: list[Path]) -> None:
    for folder in reversed(folders):
        with contextlib.suppress(OSError):
            folder.rmdir()


def _decide(out: Path, *, force: bool, resume: bool) -> Target:
    if resume:
        return Target(out, out)
    if out.is_dir() and never_trained(out):
        # a refused or crashed start (no checkpoint): not a run yet; training in place
        # overwrites its files, and a failure of this attempt removes them
        return Target(out, out)
    if out.is_dir() and any(out.iterdir()):
        if not force:
            raise FactorseqError(f"output {out} exists; use --force to replace it or --resume "
                                 "to continue it")
        if not is_run(out):
            raise FactorseqError(f"--force replaces only a factorseq run, and {out} is not one "
                                 f"(no factorseq {CONFIG}); its files are left alone: choose "
                                 "another --out")
        for neighbour in (sibling(out, "new"), sibling(out, "old")):  # before any work
            if _in_the_way(neighbour):
                raise FactorseqError(f"{neighbour} is in the way and is not factorseq's; move "
                                     "it away")
        return Target(out, sibling(out, "new"), replaces=True)
    return Target(out, out)
