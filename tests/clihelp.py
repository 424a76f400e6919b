"""Shared helpers for tests that drive the command line in-process."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from factorseq.cli import main


def cli(*args) -> int:
    """Run ``factorseq ARGS...`` in this process; its exit code."""
    return main([str(a) for a in args])


def user_error(capsys, *args) -> str:
    """Run a command expected to fail on user input: exit 2 and exactly one ``error:`` line."""
    capsys.readouterr()
    assert cli(*args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


def sine_windows_npz(root: Path, n: int) -> Path:
    """``root/w.npz``: n windows (12 steps, 2 channels) of sines with random frequency and
    phase, seeded: a tiny data set any model can fit in a few epochs."""
    rng = np.random.default_rng(0)
    t = np.arange(12)
    x = np.sin(t[None, :, None] * rng.uniform(0.2, 0.6, (n, 1, 2))
               + rng.uniform(0, 3, (n, 1, 2)))
    path = root / "w.npz"
    np.savez(path, data=x.astype(np.float32))
    return path
