"""The scoring version: which rules a stored score was computed under.

Every ``metrics.json`` the evaluators write (``Evaluator.scores``) and every benchmark result
records ``scoring_version``. Bump :data:`SCORING_VERSION` (and add a line to
:data:`HISTORY`) whenever a change alters what a score means or how it is computed (a split,
a metric's definition, the windows compared), so that results cached under older rules are
flagged by the benchmark assembly (``benchmarks/stale_results.py``) instead of being mixed
with new ones. A result without the key predates versioning: version 0.
"""
from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

SCORING_VERSION = 1
HISTORY = {
    0: "unversioned: results written before the scoring version was recorded",
    1: "time splits with a gap saved with the run (split.npz); privacy on the held-out block; "
       "evaluators through the public model contract",
}
KEY = "scoring_version"


def stamp(scores: dict[str, Any], evaluator: str | None = None) -> dict[str, Any]:
    """``scores`` with the current scoring version (and the evaluator's name) recorded."""
    out = dict(scores)
    if evaluator is not None:
        out.setdefault("evaluator", evaluator)
    out[KEY] = SCORING_VERSION
    return out


def version_of(result: Any) -> int:
    """The scoring version a result was computed under: its own ``scoring_version``, else
    that of its ``metrics`` (a benchmark cell wrapping a metrics.json), else the oldest of its
    entries (a file of named cells, each a result); 0 when nothing records one."""
    if not isinstance(result, dict):
        return 0
    if KEY in result:
        return int(result[KEY])
    if isinstance(result.get("metrics"), dict):
        return version_of(result["metrics"])
    cells = [version_of(v) for v in result.values() if isinstance(v, dict)]
    return min(cells) if cells else 0


def read_versions(path: str | Path) -> list[int]:
    """Scoring versions of the results in a file: one for a JSON file, one per row of a
    JSON-lines file (``.jsonl``)."""
    text = Path(path).read_text()
    if str(path).endswith(".jsonl"):
        return [version_of(json.loads(line)) for line in text.splitlines() if line.strip()]
    return [version_of(json.loads(text))]


def stale_files(paths: Iterable[str | Path]) -> list[tuple[Path, int]]:
    """(file, its oldest scoring version) of every file with a result older than
    :data:`SCORING_VERSION`; unreadable files count as version 0."""
    out = []
    for p in sorted(Path(p) for p in paths):
        try:
            versions = read_versions(p)
        except (OSError, ValueError):
            versions = [0]
        oldest = min(versions, default=SCORING_VERSION)
        if oldest < SCORING_VERSION:
            out.append((p, oldest))
    return out


def stale_note(paths: Iterable[str | Path]) -> str:
    """A markdown line flagging a table built from results scored under older rules ("" when
    every result is current), to print under the table."""
    paths = list(paths)
    stale = stale_files(paths)
    if not stale:
        return ""
    names = ", ".join(f"`{p.parent.name}/{p.name}` (v{v})" for p, v in stale[:8])
    more = f" and {len(stale) - 8} more" if len(stale) > 8 else ""
    return (f"\n> **Stale:** {len(stale)} of {len(paths)} result files were scored under an "
            f"older scoring version than v{SCORING_VERSION}: {names}{more}. Re-score them "
            "before quoting these numbers.\n")
