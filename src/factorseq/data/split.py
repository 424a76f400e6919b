"""The run's split of its windows: training, validation (settings, early stopping) and held-out
(privacy), computed once here, saved with the run (``split.npz`` + ``data_split`` in
``config.json``) and read back by ``fit``, the evaluators, privacy and the benchmarks.

Windows cut with stride 1 share T - 1 steps with their neighbours, so a random window split
puts nearly every validation window next to a training one. ``kind="time"`` (the default
wherever the windows' positions are known: tables, TimeGAN's stocks, sets whose
overlapping windows give their order away) cuts each series into consecutive blocks instead,
train | validation | held-out in time, in up to ``data.split_blocks`` chunks so that the
held-out steps follow the whole series (:func:`portions`); a window straddling a cut belongs
to no block, so no validation or held-out window shares a step with a training window (the
gap: T - 1 window starts left out at each cut). Series too short for a window in every
block are laid end to end on one shared time line and cut there (whole series then go to
one block).
``kind="random"`` is the former seeded random split of the windows (no held-out block;
privacy then compares with the validation windows): sets without positions, or
``data.split=random``. Runs saved before splits were saved re-derive it here, marked
``legacy``.

Why chunks (measured on ``stockv``, a trending series, one timevae run per setting, trained
with the split it is scored with, ``evaluate --repeats 3``): with the held-out block as
the last 10 % alone (``split_blocks=1``) an honest model reads membership AUC 0.87 and DCR
share 0.83 (the last stretch is a price level the training windows never reach); with 4
chunks 0.36 and 0.02, with 8 chunks 0.59 and 0.00. Bootstrap copies of the training windows
read AUC 0.98 (1 chunk) and 0.88-0.90 (2-8 chunks) there, against 0.83 with the random split.

Every ``--labels N`` window stays in training (the N labels promised); validation and
held-out windows that share a step with one of them are left out.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import FactorseqError
from ..io import atomic_output
from .config import SPLITS  # noqa: F401  (data.split's choices, re-exported)

FILE = "split.npz"
BLOCKS = ("train", "val", "holdout")


class TooShort(FactorseqError):
    """The series are too short for a time split with these fractions."""


@dataclasses.dataclass
class SplitData:
    """The windows of each block (None when a block is empty), raw units."""

    train: Any
    val: Any
    holdout: Any

    def __iter__(self):
        return iter((self.train, self.val, self.holdout))

    @property
    def held_out(self) -> Any:
        """What privacy compares the training windows with: the held-out block, else (a
        random split) the validation windows."""
        return self.holdout if self.holdout is not None else self.val


@dataclasses.dataclass
class RunSplit:
    """Indices (into the run's windows, as ``Run.load_data()`` returns them) of each block.

    ``kind``: ``time`` or ``random``; ``window``: steps per window; ``dropped``: windows in
    no block (straddling a cut, or overlapping a kept label); ``legacy``: re-derived for a
    run saved before splits were saved; ``note``: why this kind, in words."""

    kind: str
    n_windows: int
    train: np.ndarray
    val: np.ndarray
    holdout: np.ndarray
    window: int
    val_fraction: float
    holdout_fraction: float
    dropped: int = 0
    legacy: bool = False
    note: str = ""

    def __post_init__(self) -> None:
        for b in BLOCKS:
            setattr(self, b, np.asarray(getattr(self, b), dtype=np.int64))

    def summary(self) -> dict[str, Any]:
        """What ``config.json`` says of the split (``data_split``); the indices live in
        ``split.npz``."""
        out = {"kind": self.kind, "file": FILE, "n_windows": int(self.n_windows),
               **{f"n_{b}": int(len(getattr(self, b))) for b in BLOCKS},
               "n_dropped": int(self.dropped), "window": int(self.window),
               "val_fraction": self.val_fraction, "holdout_fraction": self.holdout_fraction,
               "held_out": "holdout" if len(self.holdout) else
               ("validation" if len(self.val) else None), "note": self.note}
        if self.kind == "time":
            out["gap_steps"] = self.window - 1  # window starts left out at each cut (stride 1)
        if self.legacy:
            out["legacy"] = True
        return out

    def save(self, folder: str | Path) -> None:
        with atomic_output(Path(folder) / FILE) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, **{b: getattr(self, b) for b in BLOCKS})

    @classmethod
    def load(cls, folder: str | Path, summary: dict[str, Any]) -> RunSplit:
        path = Path(folder) / summary.get("file", FILE)
        try:
            with np.load(path, allow_pickle=False) as z:
                blocks = {b: z[b] for b in BLOCKS}
        except (OSError, ValueError, KeyError) as e:
            raise FactorseqError(f"cannot read the run's split {path}: {e}") from None
        return cls(kind=summary["kind"], n_windows=summary["n_windows"], **blocks,
                   window=summary["window"], val_fraction=summary["val_fraction"],
                   holdout_fraction=summary["holdout_fraction"],
                   dropped=summary.get("n_dropped", 0), legacy=summary.get("legacy", False),
                   note=summary.get("note", ""))

    def parts(self, data: Any) -> SplitData:
        """The blocks of ``data`` (the run's windows, or the same windows read otherwise)."""
        if data.n_windows != self.n_windows:
            raise FactorseqError(f"the run was split over {self.n_windows} windows but the data "
                                 f"holds {data.n_windows}: not the run's windows")
        if len(self.train) == self.n_windows:  # nothing held out: the data as it is
            return SplitData(data, None, None)
        return SplitData(*(data.subset(getattr(self, b)) if len(getattr(self, b)) else None
                           for b in BLOCKS))


def labels_kept(data: Any, labels: int | None) -> np.ndarray | None:
    """(N,) bool: the windows that must train. ``--labels N`` promises exactly N labels for
    training, so every window whose label was kept stays in the training block."""
    return data.y_mask if labels is not None else None


def make_split(data: Any, how: str, val_fraction: float, holdout_fraction: float, seed: int,
               labels: int | None = None, blocks: int = 4) -> RunSplit:
    """The split of ``data`` (see the module doc). ``how``: ``auto`` (time when the windows
    carry positions, else random), ``time`` (an error without positions) or ``random``."""
    keep = labels_kept(data, labels)
    start = getattr(data, "start", None)
    if how == "time" and start is None:
        raise FactorseqError(f"data.split=time needs the windows' positions in time, which "
                             f"{data.name!r} does not record (only tables, stocks and sets of "
                             "overlapping windows do); use data.split=random")
    if how == "random" or start is None:
        why = "data.split=random" if how == "random" else \
            "the windows carry no positions in time"
        return random_split(data.n_windows, data.seq_len, val_fraction, seed, keep,
                            note=f"{why}: seeded random windows (stride-1 validation windows "
                                 "overlap training ones); no held-out block")
    series = data.seq_id if data.seq_id is not None else np.zeros(data.n_windows, np.int64)
    try:
        out = time_split(series, start, data.seq_len, val_fraction, holdout_fraction, keep,
                         blocks)
    except TooShort as e:
        if how == "time":
            raise
        return random_split(data.n_windows, data.seq_len, val_fraction, seed, keep,
                            note=f"{e}: seeded random windows instead (stride-1 validation "
                                 "windows overlap training ones); no held-out block")
    if data.meta.get("positions") == "recovered":
        out.note += " (positions in time recovered from the windows' shared rows)"
    return out


def sequence_split(data: Any, fraction: float, seed: int, what: str = "evaluation"
                   ) -> tuple[Any, Any]:
    """(training, test) sequences an evaluator scores codes with: the data set's own ``.test``
    split, else a seeded ``fraction`` of its sequences (whole sequences: no test window shares
    a sequence with a training one)."""
    if data.seq_id is None:
        raise FactorseqError(f"{what} needs the sequence id of every window")
    if data.test is not None:
        if data.test.seq_id is None:
            raise FactorseqError("the test split has no sequence ids")
        return data, data.test
    ids = np.unique(data.seq_id)
    k = int(round(fraction * len(ids)))
    if k < 2 or k >= len(ids):
        raise FactorseqError(f"{len(ids)} sequences are too few to hold out {fraction} of them "
                             f"for {what}")
    return split_sequences(data, np.random.default_rng(seed).choice(ids, size=k,
                                                                     replace=False))


def sequences_per_group(seq_id: np.ndarray, group: np.ndarray, per_group: int, seed: int
                        ) -> np.ndarray:
    """``per_group`` sequence ids drawn (seeded) from each group (e.g. speaker) of the
    sequences; ``group`` gives each window's group, constant along a sequence."""
    rng = np.random.default_rng(seed)
    of = {int(s): int(group[seq_id == s][0]) for s in np.unique(seq_id)}
    return np.asarray([s for g in sorted(set(of.values())) for s in
                       rng.choice([s for s, v in of.items() if v == g], per_group,
                                  replace=False)])


def split_sequences(data: Any, held: np.ndarray) -> tuple[Any, Any]:
    """(the windows of sequences not in ``held``, those of ``held``)."""
    te = np.isin(data.seq_id, held)
    return data.subset(np.flatnonzero(~te)), data.subset(np.flatnonzero(te))


def legacy_split(config: dict[str, Any], data: Any) -> RunSplit | None:
    """The split of a run saved before splits were saved (``config``: its config.json): the
    seeded random split it trained with, re-derived; None without a ``train_config``."""
    train = config.get("train_config")
    if train is None:
        return None
    labels = (config.get("data_config") or {}).get("labels")
    out = random_split(data.n_windows, data.seq_len, float(train.get("val_fraction", 0.1)),
                       int(train.get("seed", 0)), labels_kept(data, labels), legacy=True,
                       note="re-derived: the run was saved before splits were saved "
                            "(seeded random windows; no held-out block)")
    return out


def random_split(n: int, window: int, val_fraction: float, seed: int,
                 keep: np.ndarray | None = None, *, note: str = "", legacy: bool = False
                 ) -> RunSplit:
    """Seeded random validation windows (the split of every run saved before time splits);
    ``keep`` windows are never drawn for validation."""
    n_val = int(round(n * val_fraction))
    rng = np.random.default_rng(seed)
    if n_val == 0:
        val = np.array([], np.int64)
    elif keep is not None:
        val = np.sort(rng.permutation(np.flatnonzero(~np.asarray(keep, bool)))[:n_val])
    else:
        val = np.sort(rng.permutation(n)[:n_val])
    return RunSplit("random", n, np.setdiff1d(np.arange(n), val), val, np.array([], np.int64),
                    window, val_fraction, 0.0, legacy=legacy, note=note)


def time_split(series: np.ndarray, start: np.ndarray, window: int, val_fraction: float,
               holdout_fraction: float, keep: np.ndarray | None = None, blocks: int = 1
               ) -> RunSplit:
    """Blocks in time per series (windows (N,) of ``series`` beginning at step ``start``),
    each time line cut into up to ``blocks`` chunks (see :func:`portions`)."""
    series, start = np.asarray(series, np.int64), np.asarray(start, np.int64)
    n = len(start)
    fractions = (val_fraction, holdout_fraction)
    pos, line, total = _time_lines(series, start, window, *fractions)
    block = np.full(n, -1)
    for k in np.unique(line):
        on = np.flatnonzero(line == k)
        edges, labels = portions(int(total[k]), window, *fractions, blocks=blocks)
        # the portion a window begins in; it belongs there when it also ends there
        j = np.searchsorted(edges, pos[on], side="right") - 1
        inside = pos[on] + window <= edges[j + 1]
        block[on[inside]] = labels[j[inside]]
    if keep is not None and np.any(keep):
        block = _keep_in_training(block, series, start, window, np.asarray(keep, bool))
    train, val, hold = (np.flatnonzero(block == k) for k in range(3))
    if len(train) == 0:
        raise TooShort(f"a time split leaves no training windows ({n} windows of {window} "
                       f"steps); use a shorter window or data.split=random")
    for name, frac, got in (("validation", val_fraction, val),
                            ("held-out", holdout_fraction, hold)):
        if frac > 0 and len(got) == 0:
            raise TooShort(f"a time split leaves no {name} windows: {frac:g} of the series is "
                           f"shorter than a window of {window} steps; use a longer series, a "
                           f"shorter window, a larger fraction or data.split=random")
    n_series = len(np.unique(series))
    return RunSplit("time", n, train, val, hold, window, val_fraction, holdout_fraction,
                    dropped=int((block < 0).sum()),
                    note=f"blocks in time over {n_series} series (up to {blocks} chunks of "
                         f"train | validation | held out each); no validation or held-out "
                         f"window shares a step with a training window")


def portions(total: int, window: int, val_fraction: float, holdout_fraction: float, *,
              blocks: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Edges (K + 1,) and blocks (K,) (0 train, 1 validation, 2 held out) of a time line of
    ``total`` steps. The line is cut into ``b`` equal chunks, each train | validation | held
    out in those fractions, every other chunk mirrored (held out | validation | train) so
    that neighbouring chunks meet train to train or held out to held out (no cut there).
    Chunks spread the validation and held-out steps over the whole series, so that they
    follow its level (a trending series' last stretch alone is unlike its past); ``b`` is
    ``blocks`` or fewer, so that the smallest portion spans at least two windows."""
    fractions = (1.0 - val_fraction - holdout_fraction, val_fraction, holdout_fraction)
    least = min(f for f in fractions[1:] + (1.0,) if f > 0)
    b = int(max(1, min(blocks, total * least // (2 * window))))
    edges, labels = [], []
    for c in range(b):
        a, size = total * c / b, total / b
        order = (0, 1, 2) if c % 2 == 0 else (2, 1, 0)
        for label in order:
            if fractions[label] > 0:
                if not labels or labels[-1] != label:
                    edges.append(int(round(a)))
                    labels.append(label)
                a += fractions[label] * size
    return np.array([*edges, total], np.int64), np.array(labels, np.int64)


def _time_lines(series: np.ndarray, start: np.ndarray, window: int, *fractions: float
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each window's position on its time line, the line's index, each line's length.

    A series long enough for a window in each block (span * fraction >= window for every
    fraction > 0) is its own line; the others are laid end to end on one shared line."""
    ids, inv = np.unique(series, return_inverse=True)
    lo = np.full(len(ids), np.iinfo(np.int64).max)
    np.minimum.at(lo, inv, start)
    hi = np.zeros(len(ids), np.int64)
    np.maximum.at(hi, inv, start + window)
    span = hi - lo
    least = min([f for f in fractions if f > 0], default=1.0)
    long = span * least >= window
    offset = np.zeros(len(ids), np.int64)
    short = np.flatnonzero(~long)
    offset[short] = np.concatenate([[0], np.cumsum(span[short])[:-1]])
    line_of = np.where(long, np.arange(len(ids)), len(ids))  # the shared line last
    total = np.append(span, span[short].sum())
    return start - lo[inv] + offset[inv], line_of[inv], total


def _keep_in_training(block: np.ndarray, series: np.ndarray, start: np.ndarray,
                      window: int, keep: np.ndarray) -> np.ndarray:
    """Kept windows train; other windows of the series sharing a step with one leave their
    validation / held-out block."""
    block = block.copy()
    block[keep] = 0
    key = series * (int(start.max()) + 2 * window + 1) + start  # series far apart
    kept = np.sort(key[keep])
    ask = np.flatnonzero(block > 0)
    i = np.searchsorted(kept, key[ask])
    near = np.full(len(ask), np.inf)
    for j in (i - 1, i):  # the kept windows just before and after
        ok = (j >= 0) & (j < len(kept))
        near[ok] = np.minimum(near[ok], np.abs(kept[j[ok]] - key[ask][ok]))
    block[ask[near < window]] = -1
    return block


def shares_steps(split: RunSplit, series: np.ndarray, start: np.ndarray) -> bool:
    """Whether any validation or held-out window shares a step with a training window (a
    check for tests and users: False for every time split)."""
    series, start = np.asarray(series), np.asarray(start)
    tr = split.train
    for other in (split.val, split.holdout):
        for s in np.unique(series[other]):
            a, b = start[tr][series[tr] == s], start[other][series[other] == s]
            if len(a) and len(b) and (np.abs(a[:, None] - b[None, :]) < split.window).any():
                return True
    return False
