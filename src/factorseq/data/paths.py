"""Where the bundled data files live: ``$FACTORSEQ_DATA_DIR``, else the copy an installed
wheel carries (``factorseq/_bundled``: every set but the FSDD audio), else the repository's
``data/`` (a clone or an editable install).
"""
from __future__ import annotations

import os
from pathlib import Path

from ..errors import FactorseqError


def data_dir() -> Path:
    env = os.environ.get("FACTORSEQ_DATA_DIR")
    if env:
        return Path(env)
    shipped = Path(__file__).resolve().parents[1] / "_bundled"
    return shipped if shipped.is_dir() else Path(__file__).resolve().parents[3] / "data"


def cache_dir() -> Path:
    """Where generated or derived data is cached: ``$FACTORSEQ_CACHE`` (or the older
    ``$FACTORSEQ_CACHE_DIR``), else ``$XDG_CACHE_HOME/factorseq``, else ``~/.cache/factorseq``."""
    for var in ("FACTORSEQ_CACHE", "FACTORSEQ_CACHE_DIR"):
        if os.environ.get(var):
            return Path(os.environ[var])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "factorseq"


def bundled_file(*parts: str) -> Path:
    p = data_dir().joinpath(*parts)
    if not p.exists():
        raise FactorseqError(f"bundled data file missing: {p} (an installed wheel ships every "
                             "set but the FSDD audio; set FACTORSEQ_DATA_DIR to the data/ "
                             "folder of a factorseq clone)")
    return p
