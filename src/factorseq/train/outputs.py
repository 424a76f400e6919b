"""Where training writes a run, decided before any work, without ever losing a user's files.

* ``--out`` naming a file, an unwritable place, or an existing folder without ``--force`` is
  refused before the data are read.
* ``--force`` replaces only a factorseq run (a folder with a factorseq ``config.json``), and
  only once the new run has trained: training writes into a hidden sibling folder
  (``.NAME.factorseq-new``) that is swapped in at the end; a failed, diverged or interrupted
  attempt leaves the old run as it was. At the swap ``--out`` is checked again: if it is no
  longer a run (the user put a folder there meanwhile) nothing is moved and the new run stays in
  the staging folder for good; a failed swap puts the old run back.
* Nothing else is ever removed: a staging folder only while it carries factorseq's mark (an
  interrupted attempt's leftover), the old run only once the new one is in its place; any other
  folder at those sibling places is refused before work ("move it away").
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


# inside a staging folder for as long as it is one: an interrupted attempt's leftover carries
# it; a new run kept there (the swap refused) or any folder of the user's does not
STAGING_MARK = ".factorseq-staging"


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
                (self.work / STAGING_MARK).touch()
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
            old = _sibling(self.out, "old")
            if self.out.exists() and not is_run(self.out):
                # changed while training: never move or remove what is not a factorseq run
                self._keep(f"{self.out} is no longer a factorseq run, so it was left alone")
            if _in_the_way(old):  # appeared while training: maybe the only copy of a run
                self._keep(f"{old} is in the way, so {self.out} was left alone")
            _clear(old)  # empty at most
            (self.work / STAGING_MARK).unlink()  # a run from here on, not a staging folder
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

    def _keep(self, why: str) -> None:
        """Refuse the swap and keep the new run where it is, for good: abandon() and a later
        --force's clearing both leave it alone."""
        self.created = False
        (self.work / STAGING_MARK).unlink(missing_ok=True)
        raise FactorseqError(f"{why}; the new run is in {self.work}")

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
        for sibling in (_sibling(out, "new"), _sibling(out, "old")):  # before any work
            if _in_the_way(sibling):
                raise FactorseqError(f"{sibling} is in the way and is not factorseq's; move "
                                     "it away")
        return Target(out, _sibling(out, "new"), replaces=True)
    check_writable(out)
    return Target(out, out)
