"""Shared helpers for tests that drive the command line in-process."""
from __future__ import annotations

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
