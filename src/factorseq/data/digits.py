"""Bundled ``digits``: scikit-learn's 8x8 handwritten digits read as 8 steps of 8 features.

Each image (8 rows x 8 columns, grey levels 0..16) becomes one window (time = row, features =
column), so x is (N, 8, 8) and ``y`` the digit. The set ships inside scikit-learn (a factorseq
dependency), so nothing is copied into ``data/``. A seeded, stratified split holds out
``options["test_fraction"]`` (default 0.25) of the 1797 images as the ``.test`` split; the
split does not depend on the training seed, so every run is scored on the same images.
"""
from __future__ import annotations

import numpy as np

from ..errors import FactorseqError
from .config import DataConfig
from .container import SequenceData
from .registry import dataset

CITATION = ("E. Alpaydin, C. Kaynak, \"Optical Recognition of Handwritten Digits\", UCI Machine "
            "Learning Repository, 1998 (as bundled by scikit-learn: load_digits)")


def stratified_split(y: np.ndarray, test_fraction: float, seed: int
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, test): each class contributes round(test_fraction * count) test rows,
    chosen by a generator seeded with ``seed``; both index arrays sorted."""
    rng = np.random.default_rng(seed)
    test = []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        test.append(rng.permutation(idx)[: int(round(test_fraction * len(idx)))])
    test_idx = np.sort(np.concatenate(test))
    return np.setdiff1d(np.arange(len(y)), test_idx), test_idx


@dataset("digits", description="scikit-learn's 8x8 handwritten digits as 8 steps of 8 features "
         "(1797 images, y = digit, 25% stratified test split); options: test_fraction, "
         "split_seed", citation=CITATION, licence="CC BY 4.0 (UCI); shipped with scikit-learn "
         "(BSD-3-Clause)", scaler="minmax")
def digits(cfg: DataConfig) -> SequenceData:
    """Training images (N, 8, 8) with labels; ``.test`` holds the stratified held-out split."""
    from sklearn.datasets import load_digits

    frac = float(cfg.options.get("test_fraction", 0.25))
    if not 0.0 < frac < 1.0:
        raise FactorseqError(f"data option test_fraction must be in (0, 1), got {frac}")
    bunch = load_digits()
    x = bunch.images.astype(np.float32)  # (1797, 8, 8): rows are time steps
    y = bunch.target.astype(np.int64)
    tr, te = stratified_split(y, frac, int(cfg.options.get("split_seed", 0)))
    names = [f"col{j}" for j in range(8)]
    meta = {"n_classes": 10, "image_shape": [8, 8], "class_names": [str(i) for i in range(10)]}
    test = SequenceData(x=x[te], y=y[te], feature_names=names, meta=dict(meta),
                        name="digits.test")
    return SequenceData(x=x[tr], y=y[tr], feature_names=names, meta=meta, name="digits",
                        test=test)
