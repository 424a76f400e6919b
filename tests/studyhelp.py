"""Shared helpers for tests that compare a benchmark study's harness commands with the command
lines of the script it replaced."""
from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def split_command(argv: list[str]) -> tuple[list[str], dict[str, str]]:
    """``argv`` without --out/--force/--seed (and evaluate's run folder), and those values."""
    rest, taken, i = [], {}, 0
    while i < len(argv):
        if argv[i] in ("--out", "--seed"):
            taken[argv[i]] = argv[i + 1]
            i += 2
            continue
        if argv[i] != "--force":
            rest.append(argv[i])
        i += 1
    if rest[0] == "evaluate":
        taken["run"] = rest.pop(1)
    return rest, taken


def repo_path(path: str) -> Path:
    return (REPO / path).resolve()  # the harness's paths are relative to the repository
