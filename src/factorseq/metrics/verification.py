"""Speaker verification from sequence embeddings: cosine scoring of all pairs, equal error rate.

The protocol of the sequential-disentanglement papers (DSVAE, S3VAE, C-DSVAE, SKD, DBSE): one
embedding per test sequence (a sequence-level code, or a segment-level code averaged over the
sequence's segments), the cosine score of every unordered pair of sequences as a trial
(target = same speaker), and the EER where false acceptances equal false rejections. A code
that holds the speaker scores a low EER; one free of it scores near 0.5.
"""
from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_curve

from ..errors import FactorseqError, ShapeError


def equal_error_rate(scores: np.ndarray, target: np.ndarray) -> float:
    """EER of trials ``scores`` (n,) with ``target`` (n,) True for same-class pairs: the rate at
    which false acceptances equal false rejections, linearly interpolated on the ROC."""
    target = np.asarray(target, dtype=bool)
    if target.all() or not target.any():
        raise FactorseqError("EER needs both target and non-target trials")
    fpr, tpr, _ = roc_curve(target, scores)
    fnr = 1.0 - tpr
    d = fpr - fnr  # rises from -1 to 1 as the threshold falls
    i = int(np.argmax(d >= 0))
    if i == 0:
        return float(fpr[0])
    t = -d[i - 1] / (d[i] - d[i - 1])
    return float(fpr[i - 1] + t * (fpr[i] - fpr[i - 1]))


def cosine_trials(emb: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cosine scores and same-label flags of every unordered pair of rows of ``emb`` (n, d)."""
    e = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
    i, j = np.triu_indices(len(e), k=1)
    return np.einsum("nd,nd->n", e[i], e[j]), labels[i] == labels[j]


def per_sequence(codes: np.ndarray, seq_id: np.ndarray, labels: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Mean code (S, d) and most frequent label (S,) of each sequence (sorted ids), from
    per-segment ``codes`` (n, d), ``seq_id`` (n,) and ``labels`` (n,); ties -> smaller label."""
    codes = np.asarray(codes, dtype=np.float64)
    if codes.ndim != 2 or len(codes) != len(seq_id) or len(labels) != len(seq_id):
        raise ShapeError(f"codes must be (segments, dims) with one seq_id and label per segment; "
                         f"got codes {codes.shape}, seq_id {np.shape(seq_id)}, labels "
                         f"{np.shape(labels)}")
    ids, inv = np.unique(seq_id, return_inverse=True)
    sums = np.zeros((len(ids), codes.shape[1]))
    np.add.at(sums, inv, codes)
    return sums / np.bincount(inv, minlength=len(ids))[:, None], majority_labels(seq_id, labels)


def majority_labels(seq_id: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Most frequent label (S,) of each sequence (sorted ids); ties -> smaller label."""
    _, inv = np.unique(seq_id, return_inverse=True)
    lab = np.asarray(labels)
    out = np.empty(inv.max() + 1, dtype=lab.dtype)
    for s in range(len(out)):
        vals, counts = np.unique(lab[inv == s], return_counts=True)
        out[s] = vals[np.argmax(counts)]
    return out


def trials_eer(emb: np.ndarray, labels: np.ndarray) -> float | None:
    """EER of all pairs of rows of ``emb`` (S, d) scored by cosine, target = same ``labels``
    (S,); None without both kinds of trial."""
    scores, same = cosine_trials(np.asarray(emb, dtype=np.float64), np.asarray(labels))
    if same.all() or not same.any():
        return None
    return equal_error_rate(scores, same)


def sequence_eer(codes: np.ndarray, seq_id: np.ndarray, labels: np.ndarray) -> float | None:
    """EER of speaker verification from per-segment ``codes`` (n, d) averaged over each
    sequence (``seq_id`` (n,)), trials = all pairs of sequences, target = same ``labels``
    (per segment; a sequence takes its majority label). None without both kinds of trial.

    Averaging is what the DBSE protocol does for the dynamic code; for a sequence-level code
    whose sequence estimate is a positive multiple of the segment mean (FHVAE's closed-form
    mu2 = sum z2 / (N + sigma ratio)) the cosine scores equal those of that estimate."""
    return trials_eer(*per_sequence(codes, seq_id, labels))
