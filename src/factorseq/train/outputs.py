"""Where training writes a run, decided before any work, without ever losing a user's files.

* ``--out`` naming a file, an unwritable place, or an existing folder without ``--force`` is
  refused before the data are read.
* ``--force`` replaces only a factorseq run (a folder with a factorseq ``config.json``), and
  only once the new run has trained: training writes into a hidden sibling folder
  (``.NAME.factorseq-new``) that is swapped in at the end; a failed, diverged or interrupted
  attempt leaves the old run as it was. At the swap ``--out`` is checked again: if it is no
  longer a run (the user put a folder there meanwhile) nothing is moved and the new run stays in
  the staging folder; a failed swap puts the old run back.
* A new run (absent or empty ``--out``) trains in place, so that ``--resume`` can continue it
  after an interruption.

DDP launches child processes that run ``fit`` again from the start; they train in the folder
the main process chose (passed in the environment) and never create, swap or remove folders.
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from ..checkpoint import CONFIG, read_config
from ..errors import FactorseqError
from ..io import check_writable

WORK_ENV = "FACTORSEQ_TRAIN_WORK_DIR"


def is_child_process() -> bool:
    """True in the extra processes a DDP launcher starts (they must not touch outputs)."""
    return os.environ.get("LOCAL_RANK", "0") != "0" or os.environ.get("NODE_RANK", "0") != "0"


def is_run(path: Path) -> bool:
    try:
        read_config(path)
    except FactorseqError:
        return False
    return True


def _sibling(out: Path, role: str) -> Path:
    return out.parent / f".{out.name}.factorseq-{role}"


def _clear(path: Path) -> None:
    """Remove a staging folder factorseq left behind (empty, or holding a run's config)."""
    if not path.exists():
        return
    if not path.is_dir() or (any(path.iterdir()) and not is_run(path)):
        raise FactorseqError(f"{path} is in the way and is not factorseq's; move it away")
    shutil.rmtree(path)


@dataclasses.dataclass
class Target:
    """``out``: the run's place; ``work``: where training writes (``out`` itself, or a
    staging sibling when ``replaces`` an existing run)."""

    out: Path
    work: Path
    replaces: bool = False
    created: bool = False  # this attempt made ``work`` (only then may it remove it)

    def prepare(self) -> Path:
        """Create the folder training writes into (main process only); return it."""
        if not is_child_process():
            if self.replaces:
                _clear(self.work)
                self.work.mkdir(parents=True)
                self.created = True
            else:
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
        """Put the trained run at ``out``: the old run is moved aside, the new one renamed into
        place, then the old one removed. Returns ``out``."""
        if self.replaces and not is_child_process():
            if self.out.exists() and not is_run(self.out):
                # changed while training: never move or remove what is not a factorseq run
                self.created = False  # the new run stays where it is (abandon() keeps it)
                raise FactorseqError(f"{self.out} is no longer a factorseq run, so it was left "
                                     f"alone; the new run is in {self.work}")
            old = _sibling(self.out, "old")
            _clear(old)
            if self.out.exists():
                os.rename(self.out, old)
            try:
                os.rename(self.work, self.out)
            except OSError:
                if old.exists():
                    os.rename(old, self.out)  # the old run back in its place
                raise
            shutil.rmtree(old, ignore_errors=True)  # the run renamed aside just above
            self.replaces, self.work = False, self.out
        return self.out

    def abandon(self) -> None:
        """Drop a replacement attempt (the old run stays); a run trained in place is kept."""
        if self.replaces and self.created and not is_child_process():
            shutil.rmtree(self.work, ignore_errors=True)  # the staging folder prepare() made


def plan_target(out: Path, *, force: bool, resume: bool) -> Target:
    """Check ``out`` and decide where training writes; no folder is created yet."""
    if is_child_process():
        return Target(out, Path(os.environ.get(WORK_ENV, str(out))))
    if out.exists() and not out.is_dir():
        raise FactorseqError(f"--out {out} is a file; a run is written into a folder")
    if resume:
        check_writable(out)
        return Target(out, out)
    if out.is_dir() and any(out.iterdir()):
        if not force:
            raise FactorseqError(f"output {out} exists; use --force to replace it or --resume "
                                 "to continue it")
        if not is_run(out):
            raise FactorseqError(f"--force replaces only a factorseq run, and {out} is not one "
                                 f"(no factorseq {CONFIG}); its files are left alone: choose "
                                 "another --out")
        check_writable(out.parent)
        staging = _sibling(out, "new")
        if staging.exists() and not staging.is_dir():
            raise FactorseqError(f"{staging} is in the way and is not factorseq's; move it away")
        return Target(out, staging, replaces=True)
    check_writable(out)
    return Target(out, out)
