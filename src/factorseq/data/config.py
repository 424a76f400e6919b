"""What data to load and how: a bundled name or a path, windowing, missing values, labels."""
from __future__ import annotations

import dataclasses
from typing import Any

from ..config import require


@dataclasses.dataclass
class DataConfig:
    """Resolved data options (saved in the run's config.json).

    ``source`` is a bundled data set name or a file/folder path. Long tables are cut into
    windows of ``window`` steps every ``stride`` steps. ``missing`` declares a sentinel value
    that means "missing" (NaN always does); missing values are an error unless ``impute`` is
    ``ffill``, ``linear`` or ``drop``. ``labels`` keeps exactly that many labels (class-balanced,
    seeded by ``label_seed``) and hides the rest. ``options`` holds set-specific options
    (e.g. ``target_speaker`` for domain adaptation, ``percent`` of training windows).
    ``store`` names a folder where the loaded windows are kept on disk and read batch by batch
    (sets larger than memory; FHVAE's hierarchical sampling then holds one round at a time);
    written on first use, reused while the config and the source files are unchanged.
    """

    source: str = "stockv"
    window: int = 24
    stride: int = 1
    missing: float | None = None
    impute: str | None = None
    id_column: str | None = None
    time_column: str | None = None
    label_column: str | None = None
    feature_columns: list[str] | None = None
    labels: int | None = None
    label_seed: int = 0
    seed: int = 0
    options: dict[str, Any] = dataclasses.field(default_factory=dict)
    store: str | None = None

    def __post_init__(self) -> None:
        require(self.window >= 1, f"window must be >= 1, got {self.window}")
        require(self.stride >= 1, f"stride must be >= 1, got {self.stride}")
        require(self.impute in (None, "ffill", "linear", "drop"),
                f"impute must be ffill, linear or drop, got {self.impute!r}")
        require(self.labels is None or self.labels >= 1, "labels must be >= 1")
