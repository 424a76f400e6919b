"""List the benchmark result files scored under an older scoring version than this checkout's.

    python benchmarks/stale_results.py                # benchmarks/out and benchmarks/results
    python benchmarks/stale_results.py DIR_OR_FILE... [--check]

A result file is a ``result.json`` / ``metrics.json`` of a cell, a ``*.jsonl`` of rows, or a
JSON file under ``benchmarks/results``; its version is ``scoring_version`` (see
``factorseq.metrics.scoring``; none recorded = 0). ``--check`` exits 1 when any is stale, so
that the assembly of BENCHMARKS.md can refuse (or warn about) numbers of older rules.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from factorseq.metrics.scoring import SCORING_VERSION, stale_files

HERE = Path(__file__).resolve().parent
DEFAULT = [HERE / "out", HERE / "results"]
PATTERNS = ("result.json", "metrics.json", "*.jsonl")


def result_files(roots: list[Path]) -> list[Path]:
    """Every result file under ``roots`` (files are taken as given)."""
    found: set[Path] = set()
    for root in roots:
        if root.is_file():
            found.add(root)
        elif root.name == "results":  # committed summaries: every JSON file
            found.update(root.rglob("*.json"))
        for pattern in PATTERNS if root.is_dir() else ():
            found.update(root.rglob(pattern))
    return sorted(found)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("paths", nargs="*", type=Path, default=DEFAULT)
    ap.add_argument("--check", action="store_true", help="exit 1 if any result is stale")
    a = ap.parse_args(argv)
    files = result_files(a.paths)
    stale = stale_files(files)
    for path, version in stale:
        print(f"stale (v{version} < v{SCORING_VERSION}): {path}")
    print(f"{len(stale)} of {len(files)} result files scored under an older version than "
          f"v{SCORING_VERSION}", file=sys.stderr)
    return 1 if a.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
