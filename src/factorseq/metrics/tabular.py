"""Scores of tables with categorical columns and per-entity attributes (issue #24).

- ``category_distance``: per categorical column, the total variation distance between the
  frequencies of its categories over all real and all synthetic steps,
  TV = 1/2 sum_k |p_k - q_k| in [0, 1] (0: the same frequencies; 1: no category in common).
- ``attribute_fidelity``: per attribute, train on synthetic, test on real: a classifier
  (categorical attribute: logistic regression, score = accuracy, beside the majority class's
  accuracy on the real windows) or a ridge regression (numeric: R^2 on the real windows)
  learns the attribute from synthetic windows sampled *for* the real windows' attributes and
  predicts it for the real windows. High = the generated windows carry their attribute the
  way real ones do; at the majority baseline (or R^2 <= 0) the conditioning is lost.

- ``length_ks``: entities of different lengths (``--max-length``): the two-sample
  Kolmogorov-Smirnov statistic sup_l |F_real(l) - F_synthetic(l)| between the real entities'
  lengths and those drawn for the synthetic ones, in [0, 1] (0: the same distribution).
  Category frequencies then count each entity's own steps only (not its padding).

The ``tabular`` evaluator adds these to the generative scores of runs whose data has
categorical columns, attributes or entity lengths (it claims them); attribute fidelity needs
a model with the ``attributes`` capability (without it there is nothing to condition on, so
it is skipped).
Windows are (windows, time, features): raw units with categories as codes.
"""
from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd

from ..data.lengths import within
from ..errors import FactorseqError
from .evaluators import GenerativeEvaluator, evaluator


def category_distance(real: np.ndarray, synthetic: np.ndarray, n_categories: int) -> float:
    """TV distance between the category frequencies (codes 0..n-1) of two arrays of codes."""
    p = np.bincount(np.rint(real).astype(np.int64).ravel(), minlength=n_categories)
    q = np.bincount(np.rint(synthetic).astype(np.int64).ravel(), minlength=n_categories)
    return float(0.5 * np.abs(p / p.sum() - q / q.sum()).sum())


def category_distances(real: np.ndarray, synthetic: np.ndarray, names: list[str],
                       categories: dict[str, list[str]], real_steps: np.ndarray | None = None,
                       synthetic_steps: np.ndarray | None = None) -> dict[str, float]:
    """{column: TV distance} of every categorical column of windows (N, T, D) / (M, T, D),
    over the steps (N, T) / (M, T) marked True (default: all)."""
    own = lambda x, m: x if m is None else x[m]  # noqa: E731
    return {c: category_distance(own(real[..., names.index(c)], real_steps),
                                 own(synthetic[..., names.index(c)], synthetic_steps),
                                 len(labels)) for c, labels in categories.items()}


def length_ks(real: np.ndarray, synthetic: np.ndarray) -> float:
    """Two-sample Kolmogorov-Smirnov statistic between two samples of entity lengths."""
    from scipy.stats import ks_2samp

    return float(ks_2samp(np.asarray(real), np.asarray(synthetic)).statistic)


def attribute_fidelity(real: np.ndarray, real_attr: np.ndarray, synthetic: np.ndarray,
                       synth_attr: np.ndarray, specs: list[dict], seed: int = 0
                       ) -> dict[str, dict[str, float]]:
    """Train on synthetic (windows (M, ...), attribute rows (M, A)), test on real (N, ...):
    per attribute ``{accuracy, majority}`` (categorical) or ``{r2}`` (numeric)."""
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.preprocessing import StandardScaler

    flat = lambda x: x.reshape(len(x), -1)  # noqa: E731
    scale = StandardScaler().fit(flat(synthetic))
    xs, xr = scale.transform(flat(synthetic)), scale.transform(flat(real))
    out: dict[str, dict[str, float]] = {}
    for j, s in enumerate(specs):
        ys, yr = synth_attr[:, j], real_attr[:, j]
        if s["kind"] == "categorical":
            counts = np.unique(yr, return_counts=True)[1]
            if len(np.unique(ys)) < 2:  # one class: the "classifier" is that class
                acc = float(np.mean(yr == ys[0]))
            else:
                clf = LogisticRegression(max_iter=1000, random_state=seed).fit(xs, ys)
                acc = float(np.mean(clf.predict(xr) == yr))
            out[s["name"]] = {"accuracy": acc, "majority": float(counts.max() / len(yr))}
        else:
            reg = Ridge(alpha=1.0).fit(xs, ys)
            out[s["name"]] = {"r2": float(reg.score(xr, yr))}
    return out


def attribute_frame(specs: list[dict], rows: np.ndarray) -> pd.DataFrame:
    """Attribute rows (N, A) (codes of categories) as the values a user would give."""
    cols = {}
    for j, s in enumerate(specs):
        col = rows[:, j]
        cols[s["name"]] = (np.asarray(s["categories"], dtype=object)[col.astype(np.int64)]
                           if s["kind"] == "categorical" else col)
    return pd.DataFrame(cols)


@evaluator("tabular")
class TabularEvaluator(GenerativeEvaluator):
    """The generative scores (option ``generative``, default true) plus ``category_distance``
    {column: TV} and ``attribute_fidelity`` {attribute: scores} (see the module doc), on
    ``max_windows`` (2000) real windows, seeded."""

    defaults: ClassVar[dict[str, Any]] = {**GenerativeEvaluator.defaults, "generative": True,
                                          "max_windows": 2000}

    @classmethod
    def claims(cls, run: Any, data: Any) -> bool:
        meta = getattr(data, "meta", None) or {}
        return bool(meta.get("categories") or meta.get("attributes")
                    or getattr(data, "lengths", None) is not None)

    def evaluate(self) -> dict[str, Any]:
        if not isinstance(self.options["generative"], bool):
            raise FactorseqError("tabular evaluator option generative must be true or false")
        out = super().evaluate() if self.options["generative"] else {}
        return {**out, **self.tabular_scores()}

    def tabular_scores(self) -> dict[str, Any]:
        from ..sampling import categories, specs

        if self.data is None:
            self.data = self.run.load_data()
        rng = np.random.default_rng(self.seed)
        n = min(len(self.data.x), int(self.options["max_windows"]))
        pick = np.sort(rng.choice(len(self.data.x), n, replace=False))
        real = np.asarray(self.data.x[pick], dtype=np.float32)
        sp, out = specs(self.run), {}
        attrs = None if self.data.attributes is None or not sp else self.data.attributes[pick]
        seen = np.ones(len(real), dtype=bool)  # the real windows scored
        if attrs is not None and self.run.has("attributes"):
            seen = self._seen(attrs, sp)
            real, attrs = real[seen], attrs[seen]
            synth, rows, _ = self.run.sample_entities(
                attributes=attribute_frame(sp, attrs), seed=self.seed)
            to_model = self.run.scaler.transform  # one-hot blocks: what the model sees
            out["attribute_fidelity"] = attribute_fidelity(
                to_model(real), attrs, to_model(synth), rows, sp, self.seed)
        else:
            synth = self.run.sample(len(real), seed=self.seed)
        lengths = getattr(self.data, "lengths", None)
        real_len = None if lengths is None else lengths[pick]
        synth_len = self.run.sample_lengths(len(synth), self.seed)  # the ones synth has
        if real_len is not None:
            out["length_ks"] = length_ks(real_len, synth_len)
        cats = categories(self.run)
        if cats:  # over each entity's own steps (with lengths; else every step)
            t = real.shape[1]
            out["category_distance"] = category_distances(
                real, synth, list(self.data.feature_names), cats,
                None if real_len is None else within(real_len[seen], t),
                None if real_len is None else within(synth_len, t))
        out["n_tabular_windows"] = int(len(real))
        return out

    def _seen(self, attrs: np.ndarray, sp: list[dict]) -> np.ndarray:
        """Real windows whose categorical attributes training saw (the model knows no other)."""
        ok = np.ones(len(attrs), dtype=bool)
        for j, fitted in enumerate(self.run.scaler.attr_):
            if sp[j]["kind"] == "categorical":
                ok &= np.isin(attrs[:, j], fitted["levels"])
        if not ok.any():
            raise FactorseqError("no real window has attribute values that training saw")
        return ok
