"""What data to load and how: a bundled name or a path, windowing, missing values, labels."""
from __future__ import annotations

import dataclasses
import os
from typing import Any

from ..config import require
from ..errors import FactorseqError

# missing-value policies (see factorseq.data.missing)
IMPUTE_MODES = ("linear", "ffill", "mean", "mask", "drop")
REMOVE_PATTERNS = ("mcar", "runs")
SPLITS = ("auto", "time", "random")  # data.split (factorseq.data.split)


@dataclasses.dataclass
class DataConfig:
    """Resolved data options (saved in the run's config.json).

    ``source`` is a bundled data set name or a file/folder path. Long tables are cut into
    windows of ``window`` steps every ``stride`` steps. ``drop_columns`` leaves features out
    (names, or 0-based indices; ``--drop-columns a,b``), for every source.

    Missing values: NaN, +-inf and the sentinel ``missing`` (e.g. -200) are missing; they are
    an error unless ``impute`` is ``linear``, ``ffill`` (tables: along each whole series,
    before windowing; arrays: within each window), ``mean`` (the feature's mean over its
    observed values), ``mask`` (keep the gaps: ``x_mask`` travels with the windows, for models
    with ``handles_missing``) or ``drop`` (rows of a table / windows). See
    :mod:`factorseq.data.missing`.

    ``remove_rate`` > 0 hides that fraction of the training windows' values on purpose
    (benchmarks of imputation and of training with gaps): ``remove_pattern`` ``mcar``
    (entries at random) or ``runs`` (blocks of 6-30 steps of one channel), seeded by
    ``remove_seed`` (default: ``seed``); the removed values then follow ``impute``. A set's
    held-out ``.test`` split stays complete.

    ``labels`` keeps exactly that many labels (class-balanced, seeded by ``label_seed``) and
    hides the rest. ``options`` holds set-specific options (e.g. ``target_speaker`` for domain
    adaptation, ``percent`` of training windows). ``store`` names a folder where the loaded
    windows are kept on disk and read batch by batch (sets larger than memory; FHVAE's
    hierarchical sampling then holds one round at a time); written on first use, reused while
    the config and the source files are unchanged.

    ``split`` decides which windows train (:mod:`.split`): ``time`` cuts each series into
    blocks in time, train | validation (``train.val_fraction``) | held out
    (``holdout_fraction``, what privacy compares with), so that no validation or held-out
    window shares a step with a training one; ``random`` draws seeded random validation
    windows and holds nothing out (the former split); ``auto`` (default) is ``time`` where
    the windows' positions are known (tables, stocks, sets of overlapping windows) and
    ``random`` elsewhere. A time split cuts each series into up to ``split_blocks`` chunks,
    each train | validation | held out, so that the held-out steps follow the whole series
    (a trending series' last stretch alone is unlike its past). The split is saved with the
    run.

    Tables only: ``categorical_columns`` declares features that hold categories (a status
    code); a non-numeric feature column is one without being named. ``attribute_columns``
    (with ``id_column``) are per-entity static attributes, numeric or categorical: not
    features, one value per entity (:mod:`.tabular`). ``categories`` fixes the categories of
    such columns ({column: [labels]}; a run re-reads new files with its own) and
    ``max_categories`` bounds how many a detected column may have.

    ``max_length`` (tables with ``id_column``; ``window``/``stride`` then unused): every
    entity becomes ONE sequence of ``max_length`` steps instead of windows: its first
    ``max_length`` steps (a longer entity is cut there; its length counts as ``max_length``),
    a shorter one padded at the end by repeating its last step, the padded steps masked
    (``x_mask`` 0, so models with ``handles_missing`` leave them out of their losses). Each
    sequence keeps its entity's length (``SequenceData.lengths``); the run saves the
    training entities' length distribution and ``sample`` draws a length per entity from it.
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
    drop_columns: list[str] | None = None
    remove_rate: float = 0.0
    remove_pattern: str = "mcar"
    remove_seed: int | None = None
    labels: int | None = None
    label_seed: int = 0
    seed: int = 0
    options: dict[str, Any] = dataclasses.field(default_factory=dict)
    store: str | None = None
    split: str = "auto"
    holdout_fraction: float = 0.1
    split_blocks: int = 4
    categorical_columns: list[str] | None = None
    attribute_columns: list[str] | None = None
    categories: dict[str, list[str]] | None = None
    max_categories: int = 100
    max_length: int | None = None

    def __post_init__(self) -> None:
        if isinstance(self.source, os.PathLike):
            self.source = os.fspath(self.source)
        require(isinstance(self.source, str), "source must be a file, folder or bundled set "
                f"name (a string), got a {type(self.source).__name__}; give arrays and tables "
                "to fit() itself")
        require(self.window >= 1, f"window must be >= 1, got {self.window}")
        require(self.stride >= 1, f"stride must be >= 1, got {self.stride}")
        require(self.impute in (None, *IMPUTE_MODES),
                f"impute must be one of {', '.join(IMPUTE_MODES)}, got {self.impute!r}")
        require(self.labels is None or self.labels >= 1, "labels must be >= 1")
        self.drop_columns = _names(self.drop_columns)
        self.categorical_columns = _names(self.categorical_columns)
        self.attribute_columns = _names(self.attribute_columns)
        require(self.attribute_columns is None or self.id_column is not None,
                "attribute_columns are per-entity values: they need id_column (which entity "
                "a row belongs to)")
        require(self.max_length is None or self.max_length >= 1,
                f"max_length must be >= 1, got {self.max_length}")
        require(self.max_length is None or self.id_column is not None,
                "max_length makes one sequence per entity: it needs id_column (which entity "
                "a row belongs to)")
        require(self.max_categories >= 1, f"max_categories must be >= 1, got "
                                          f"{self.max_categories}")
        require(self.categories is None or isinstance(self.categories, dict),
                f"categories must map column names to lists of labels, got "
                f"{self.categories!r:.60}")
        require(0.0 <= self.remove_rate < 1.0,
                f"remove_rate must be in [0, 1), got {self.remove_rate}")
        require(self.split in SPLITS, f"split must be one of {', '.join(SPLITS)}, got "
                f"{self.split!r}")
        require(self.split_blocks >= 1, f"split_blocks must be >= 1, got {self.split_blocks}")
        require(0.0 <= self.holdout_fraction < 1.0,
                f"holdout_fraction must be in [0, 1), got {self.holdout_fraction}")
        require(self.remove_pattern in REMOVE_PATTERNS,
                f"remove_pattern must be one of {', '.join(REMOVE_PATTERNS)}, got "
                f"{self.remove_pattern!r}")

    @property
    def removal_seed(self) -> int:
        return self.seed if self.remove_seed is None else self.remove_seed


def _names(value: Any) -> list[str] | None:
    """Column names from a list or "a,b" (``--drop-columns a,b``, ``--set``); empty -> None."""
    if isinstance(value, (str, int)):
        value = str(value).split(",")
    if value is None:
        return None
    return [str(c).strip() for c in value if str(c).strip() != ""] or None


def int_option(cfg: DataConfig, key: str, default: int, minimum: int = 1) -> int:
    """An integer set-specific option ``cfg.options[key]`` >= ``minimum`` (``--set
    'data.options={key: ...}'`` or a YAML file may give "10" or 10.0)."""
    value = cfg.options.get(key, default)
    try:
        as_float = float(value)
    except (TypeError, ValueError):
        as_float = float("nan")
    if not as_float.is_integer() or as_float < minimum:
        raise FactorseqError(f"data option {key} must be an integer >= {minimum}, got {value!r}")
    return int(as_float)
