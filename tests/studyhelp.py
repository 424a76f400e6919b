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


def same_commands(cell, study: str, old_train: list[str], old_eval: list[str]
                  ) -> tuple[dict[str, str], dict[str, str], list[str], dict[str, str]]:
    """Assert ``cell`` (of ``study``) trains with the replaced script's arguments, in order,
    and the same seed; return (old train values, new train values, new evaluate arguments,
    new evaluate values) for the study's own checks of folders and evaluation."""
    assert (cell.study, cell.refusal_ok) == (study, False)
    new_train, new_eval = cell.commands()
    (a, old_t), (b, new_t) = split_command(old_train[1:]), split_command(new_train)
    assert b == a  # same arguments, in the same order
    assert new_t["--seed"] == old_t["--seed"] == str(cell.seed)
    new_e_args, new_e = split_command(new_eval)
    assert split_command(old_eval[1:])[0] == new_e_args
    return old_t, new_t, new_e_args, new_e
