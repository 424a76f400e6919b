"""Supervised disentanglement scores of a code against known factors, as disentanglement_lib
(Locatello et al. 2019) computes them: MIG, DCI, SAP and modularity.

Inputs are numpy arrays: ``codes`` (N, dims) posterior means, ``factors`` (N, K) integer
factor values (continuous factors binned beforehand). Scores that fit predictors (DCI, SAP)
take a training set and a test set; MIG and modularity use one set.

- MIG (Chen et al. 2018): each latent discretised into a 20-bin histogram; I(z_j; v_k) by
  sklearn's ``mutual_info_score``; per factor the gap between the two most informative
  latents over H(v_k); averaged over factors. 1 = each factor in one latent alone.
- DCI (Eastwood & Williams 2018): one gradient-boosted tree classifier per factor on all
  latents; R[j, k] = importance of latent j for factor k. Disentanglement = sum_j rho_j
  (1 - H_K(R[j, :] / sum_k R[j, k])) with rho_j = latent j's share of all importance;
  completeness = sum_k rho_k (1 - H_dims(R[:, k] / sum_j R[j, k])); informativeness = mean
  test accuracy of the classifiers (entropies in base K and base dims).
- SAP (Kumar et al. 2018): S[j, k] = test accuracy of a linear SVM (C = 0.01, balanced
  classes) predicting factor k from latent j alone; per factor the gap between the two best
  latents; averaged.
- Modularity (Ridgeway & Zemel 2018): with m = I(z_j; v_k) on the same histograms, per latent
  1 - (sum_k m^2 - max_k m^2) / (max_k m^2 (K - 1)) (0 for a latent with no information);
  averaged over latents. 1 = each latent informs about one factor only.
- Matched accuracy (clustering accuracy, as InfoGAN's categorical code is scored): the share
  of windows whose category maps to their class under the one-to-one map of categories to
  classes that maximises it (Hungarian algorithm on the contingency table).
"""
from __future__ import annotations

import warnings

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.stats import entropy
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import mutual_info_score
from sklearn.svm import LinearSVC

from ..errors import FactorseqError, ShapeError


def check_codes(codes: np.ndarray, factors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``codes`` (N, dims) float and ``factors`` (N, K) int64, same N (ShapeError if not)."""
    codes = np.asarray(codes, dtype=np.float64)
    factors = np.asarray(factors)
    if codes.ndim != 2 or factors.ndim != 2 or len(codes) != len(factors):
        raise ShapeError(f"codes must be (N, dims) and factors (N, K) with the same N; got "
                         f"codes {codes.shape}, factors {factors.shape}")
    if len(codes) < 2 or codes.shape[1] < 1 or factors.shape[1] < 1:
        raise ShapeError(f"need >= 2 points, >= 1 latent and >= 1 factor; got codes "
                         f"{codes.shape}, factors {factors.shape}")
    if not np.issubdtype(factors.dtype, np.integer):
        raise FactorseqError("factors must be integers (bin continuous factors first)")
    return codes, factors.astype(np.int64)


def histogram_discretize(codes: np.ndarray, bins: int = 20) -> np.ndarray:
    """Each latent (column of ``codes`` (N, dims)) as its bin index among ``bins`` equal-width
    bins of its own range (disentanglement_lib's histogram discretiser)."""
    out = np.empty(codes.shape, dtype=np.int64)
    for j in range(codes.shape[1]):
        edges = np.histogram(codes[:, j], bins)[1]
        out[:, j] = np.digitize(codes[:, j], edges[:-1])
    return out


def mutual_information(codes: np.ndarray, factors: np.ndarray, bins: int = 20) -> np.ndarray:
    """I(z_j; v_k) in nats, (dims, K), of histogram-discretised latents and integer factors."""
    codes, factors = check_codes(codes, factors)
    disc = histogram_discretize(codes, bins)
    return np.array([[mutual_info_score(factors[:, k], disc[:, j])
                      for k in range(factors.shape[1])] for j in range(codes.shape[1])])


def factor_entropy(factors: np.ndarray) -> np.ndarray:
    """H(v_k) in nats of each integer factor column, (K,)."""
    return np.array([mutual_info_score(f, f) for f in np.asarray(factors).T])


def mig_per_factor(codes: np.ndarray, factors: np.ndarray, bins: int = 20) -> np.ndarray:
    """(I(z_a; v_k) - I(z_b; v_k)) / H(v_k) per factor (K,), z_a and z_b the two latents most
    informative about v_k (with one latent, I(z; v_k) / H(v_k)); NaN for a constant factor."""
    mi = mutual_information(codes, factors, bins)
    h = factor_entropy(factors)
    top = np.sort(mi, axis=0)[::-1]
    gap = top[0] - (top[1] if len(top) > 1 else 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(h > 0, gap / h, np.nan)


def mig(codes: np.ndarray, factors: np.ndarray, bins: int = 20) -> float:
    """Mutual information gap: :func:`mig_per_factor` averaged over the factors that vary
    (NaN when none does)."""
    per = mig_per_factor(codes, factors, bins)
    return float(np.nanmean(per)) if np.isfinite(per).any() else float("nan")


def modularity(codes: np.ndarray, factors: np.ndarray, bins: int = 20) -> float:
    """Ridgeway & Zemel's modularity (see module docstring); 1 with a single factor."""
    sq = mutual_information(codes, factors, bins) ** 2
    if sq.shape[1] == 1:
        return 1.0
    top = sq.max(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        delta = (sq.sum(axis=1) - top) / (top * (sq.shape[1] - 1))
    score = np.where(top > 0, 1.0 - delta, 0.0)
    return float(np.mean(score))


def dci_importance(codes: np.ndarray, factors: np.ndarray, codes_test: np.ndarray,
                   factors_test: np.ndarray, seed: int = 0) -> tuple[np.ndarray, float]:
    """Importance matrix R (dims, K) of gradient-boosted trees (sklearn's defaults: 100
    stages of depth-3 trees) fit per factor on the training set, and the mean test accuracy
    (informativeness). A factor with one value in training gets zero importance and counts
    as predicted (it is constant)."""
    codes, factors = check_codes(codes, factors)
    codes_test, factors_test = check_codes(codes_test, factors_test)
    r = np.zeros((codes.shape[1], factors.shape[1]))
    acc = []
    for k in range(factors.shape[1]):
        y = factors[:, k]
        if len(np.unique(y)) < 2:
            acc.append(float(np.mean(factors_test[:, k] == y[0])))
            continue
        model = GradientBoostingClassifier(random_state=seed).fit(codes, y)
        r[:, k] = np.abs(model.feature_importances_)
        acc.append(float(np.mean(model.predict(codes_test) == factors_test[:, k])))
    return r, float(np.mean(acc))


def dci_scores(importance: np.ndarray) -> tuple[float, float]:
    """(disentanglement, completeness) of an importance matrix R (dims, K)."""
    r = np.asarray(importance, dtype=np.float64)
    dims, k = r.shape
    weights = r if r.sum() > 0 else np.ones_like(r)
    # 1 - entropy of each latent's importance over factors (base K); 1e-11 as in the reference
    per_code = 1.0 - entropy(r.T + 1e-11, base=k) if k > 1 else np.ones(dims)
    per_factor = 1.0 - entropy(r + 1e-11, base=dims) if dims > 1 else np.ones(k)
    d = float(np.sum(per_code * weights.sum(axis=1) / weights.sum()))
    c = float(np.sum(per_factor * weights.sum(axis=0) / weights.sum()))
    return d, c


def dci(codes: np.ndarray, factors: np.ndarray, codes_test: np.ndarray,
        factors_test: np.ndarray, seed: int = 0) -> dict[str, object]:
    """``dci_disentanglement``, ``dci_completeness``, ``dci_informativeness`` (test accuracy)
    and the importance matrix (dims x K, as a list of rows)."""
    r, info = dci_importance(codes, factors, codes_test, factors_test, seed)
    d, c = dci_scores(r)
    return {"dci_disentanglement": d, "dci_completeness": c, "dci_informativeness": info,
            "dci_importance": r.tolist()}


def sap_matrix(codes: np.ndarray, factors: np.ndarray, codes_test: np.ndarray,
               factors_test: np.ndarray) -> np.ndarray:
    """S (dims, K): test accuracy of a linear SVM (C = 0.01, balanced class weights) that
    predicts factor k from latent j alone, fit on the training set."""
    codes, factors = check_codes(codes, factors)
    codes_test, factors_test = check_codes(codes_test, factors_test)
    s = np.zeros((codes.shape[1], factors.shape[1]))
    with warnings.catch_warnings():  # a latent that tells nothing leaves the SVM unconverged
        warnings.simplefilter("ignore", ConvergenceWarning)
        for k in range(factors.shape[1]):
            y = factors[:, k]
            if len(np.unique(y)) < 2:
                continue  # constant factor: no latent is better than another
            for j in range(codes.shape[1]):
                svm = LinearSVC(C=0.01, class_weight="balanced").fit(codes[:, j:j + 1], y)
                s[j, k] = np.mean(svm.predict(codes_test[:, j:j + 1]) == factors_test[:, k])
    return s


def sap(codes: np.ndarray, factors: np.ndarray, codes_test: np.ndarray,
        factors_test: np.ndarray) -> float:
    """SAP score: mean over factors of the gap between the two best latents' SVM accuracy
    (with one latent, its accuracy)."""
    s = np.sort(sap_matrix(codes, factors, codes_test, factors_test), axis=0)
    second = s[-2] if len(s) > 1 else np.zeros(s.shape[1])
    return float(np.mean(s[-1] - second))


def matched_accuracy(pred: np.ndarray, true: np.ndarray) -> float:
    """Accuracy of categories ``pred`` (N,) against classes ``true`` (N,) under the best
    one-to-one matching of categories to classes (unmatched categories count as errors)."""
    pred, true = np.asarray(pred), np.asarray(true)
    if pred.ndim != 1 or pred.shape != true.shape or len(pred) == 0:
        raise ShapeError(f"pred and true must be equal non-empty (N,) arrays; got "
                         f"{pred.shape} and {true.shape}")
    _, p = np.unique(pred, return_inverse=True)
    _, t = np.unique(true, return_inverse=True)
    table = np.zeros((p.max() + 1, t.max() + 1))
    np.add.at(table, (p, t), 1)
    rows, cols = linear_sum_assignment(table, maximize=True)
    return float(table[rows, cols].sum() / len(pred))
