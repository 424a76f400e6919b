"""BENCHMARKS.md's tables, rendered from the committed result files when the page is assembled
(issue #22): a line ``<!-- table: VIEW [PATTERN] -->`` in a section is followed by the table of
``VIEW``, and the files that table read are the section's sources (``provenance.py``).

A view is a study's table: every ``tables.py`` study (PATTERN: a regular expression on its
cell names), ``unified`` and ``unified_weights`` (section 7), ``gaps`` (section 8) and
``disentanglement`` (sections 6 and 12), ``fhvae`` (section 2), ``ssvae`` (section 3) and
``infogan_diagnose`` (section 12) (PATTERN: a regular expression on their cell names), and
``fhvae_invariance`` (section 6).

    python benchmarks/render.py fill < SECTION.md      # the section with its tables filled
    python benchmarks/render.py table VIEW [PATTERN]   # one table
"""
from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from pathlib import Path

import disentanglement_table
import fhvae_invariance
import fhvae_table
import gaps_table
import harness
import infogan_diagnose
import ssvae_bench
import tables
import unified_table

MARK = re.compile(r"<!-- table: (\S+)(?: (\S+))? -->")


def _cells(table: Callable[[list[str]], str], cells: dict) -> Callable[[str], str]:
    """A view over a study whose table takes cell names: those of ``cells`` (in the study's
    order) that the pattern finds."""
    return lambda pattern: table([c for c in cells if re.search(pattern, c)])


def _study(study: str) -> Callable[[str], str]:
    return lambda pattern: tables.table(study, pattern)


# view -> its table from a pattern (ignored by the views that take none)
VIEWS: dict[str, Callable[[str], str]] = {
    **{study: _study(study) for study in tables.STUDIES},
    "unified": lambda _: unified_table.table(),
    "unified_weights": lambda _: unified_table.weights_table(),
    "gaps": lambda _: gaps_table.table(),
    "disentanglement": _cells(disentanglement_table.table, disentanglement_table.CELLS),
    "fhvae": _cells(fhvae_table.table, fhvae_table.CELLS),
    "fhvae_invariance": lambda _: fhvae_invariance.table(),
    "infogan_diagnose": infogan_diagnose.table,
    "ssvae": ssvae_bench.table,
}


def marks(markdown: str) -> list[tuple[str, str]]:
    """(view, pattern) of each line that is a table mark (a mark quoted in prose is not)."""
    return [(m[1], m[2] or "") for line in markdown.splitlines()
            if (m := MARK.fullmatch(line.strip()))]


def render(view: str, pattern: str = "") -> tuple[str, set[Path]]:
    """The table of ``view`` and the committed result files it read."""
    if view not in VIEWS:
        raise SystemExit(f"error: no table view {view!r}; views: {', '.join(sorted(VIEWS))}")
    with harness.reading() as files:
        text = VIEWS[view](pattern)
    return text, set(files)


def sources(markdown: str) -> set[Path]:
    """The committed result files behind every table mark of ``markdown``."""
    found: set[Path] = set()
    for view, pattern in marks(markdown):
        found |= render(view, pattern)[1]
    return found


def fill(markdown: str) -> str:
    """``markdown`` with each table mark line followed by its table, rendered now."""
    out = []
    for line in markdown.splitlines(keepends=True):
        out.append(line)
        m = MARK.fullmatch(line.strip())
        if m:
            out.append("\n" + render(m[1], m[2] or "")[0])
    return "".join(out)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="verb", required=True)
    sub.add_parser("fill", help="stdin's markdown with its table marks filled, to stdout")
    t = sub.add_parser("table", help="one view's table")
    t.add_argument("view", choices=sorted(VIEWS))
    t.add_argument("pattern", nargs="?", default="")
    a = ap.parse_args(argv)
    sys.stdout.write(fill(sys.stdin.read()) if a.verb == "fill"
                     else render(a.view, a.pattern)[0])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
