"""The ``classifier`` evaluator: accuracy of a model that classifies, per domain, on held-out data.

For any run whose model ``classifies`` (``predict_proba``), on the data's held-out split
(``.test``; for ``fsdd-digits`` the takes 0-4 of every speaker, never trained on), windows of
shape (windows, time, features):

- ``accuracy`` on every labelled held-out window; with domains, ``target_accuracy`` (domain
  != 0, e.g. the target speaker of domain adaptation) and ``source_test_accuracy``;
- ``domain_probe_accuracy`` (models that also ``encode``): balanced accuracy of a logistic
  regression telling target from source windows by their features, 5-fold cross-validated
  (0.5 = features that no linear probe can separate by domain);
- ``baseline`` (option, another run dir, e.g. the source-only ``dann --set lambda_max=0``):
  the same scores for that run, ``baseline_*``, and ``adaptation_gain`` = target accuracy minus
  the baseline's.

The scores are deterministic (no sampling), so ``repeats`` does not apply.
"""
from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from ..data.container import SequenceData
from ..errors import FactorseqError
from .evaluators import Evaluator, evaluator


def _scores(run, test: SequenceData, seed: int) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Accuracy per domain of ``run`` on ``test`` and its raw outputs (probs, features)."""
    run.model.eval()
    probs = run.predict_proba(test.x)
    y = test.y
    known = test.y_mask if test.y_mask is not None else np.ones(len(y), dtype=bool)
    acc = lambda rows: float((probs[rows].argmax(1) == y[rows]).mean())  # noqa: E731
    res: dict[str, Any] = {"n_test": int(known.sum()), "accuracy": acc(known)}
    out = {"probs": probs}
    if test.domain is not None:
        target = test.domain != 0
        if (target & known).any():
            res["n_target_test"] = int((target & known).sum())
            res["target_accuracy"] = acc(target & known)
        if (~target & known).any():
            res["n_source_test"] = int((~target & known).sum())
            res["source_test_accuracy"] = acc(~target & known)
        if run.has("encodes") and target.any() and (~target).any():
            feats = np.concatenate([v.reshape(len(v), -1) for v in
                                    run.encode(test.x).by_role("features").values()], axis=1)
            out["features"] = feats
            res["domain_probe_accuracy"] = _domain_probe(feats, target, seed)
    return res, out


def _domain_probe(feats: np.ndarray, target: np.ndarray, seed: int) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    folds = int(min(5, target.sum(), (~target).sum()))
    if folds < 2 or feats.shape[1] == 0:
        return float("nan")
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
    return float(cross_val_score(probe, feats, target, cv=cv, scoring="balanced_accuracy").mean())


@evaluator("classifier")
class ClassifierEvaluator(Evaluator):
    """Held-out accuracy per domain of a classifying run (and of a ``baseline`` run)."""

    defaults: ClassVar[dict[str, Any]] = {"baseline": None}

    def __init__(self, run, data: SequenceData | None = None, *, repeats: int = 5,
                 samples: Any = None, seed: int = 0, **options: Any) -> None:
        super().__init__(run, data, repeats=repeats, samples=samples, seed=seed, **options)
        if samples is not None:
            raise FactorseqError(f"{run.model.name} is scored as a classifier on real data, "
                                 "not on --samples")
        run.model.require("classifies")
        data = data if data is not None else run.load_data()
        if data.test is None or data.test.y is None:
            raise FactorseqError(f"data {data.name!r} has no labelled held-out split to score "
                                 "a classifier on (use a set with a .test split, e.g. "
                                 "fsdd-digits)")
        self.meta, self.test = data.meta, data.test
        self.baseline = None
        if self.options["baseline"]:
            from ..checkpoint import load
            self.baseline = load(self.options["baseline"])
            self.baseline.model.require("classifies")
        self._cache: tuple[dict[str, Any], dict[str, np.ndarray]] | None = None

    def _own(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        if self._cache is None:
            self._cache = _scores(self.run, self.test, self.seed)
        return self._cache

    def evaluate(self) -> dict[str, Any]:
        res = dict(self._own()[0])
        name = self.meta.get("target_speaker_name", self.meta.get("target_speaker"))
        if name is not None:
            res["target_speaker"] = name
        if self.baseline is not None:
            base, _ = _scores(self.baseline, self.test, self.seed)
            res["baseline"] = str(self.options["baseline"])
            res.update({f"baseline_{k}": v for k, v in base.items() if not k.startswith("n_")})
            if "target_accuracy" in res and "target_accuracy" in base:
                res["adaptation_gain"] = res["target_accuracy"] - base["target_accuracy"]
        return res

    def figures(self) -> list[tuple[str, Any]]:
        import matplotlib.pyplot as plt
        from sklearn.decomposition import PCA
        from sklearn.metrics import confusion_matrix

        _, out = self._own()
        y, probs = self.test.y, out["probs"]
        rows = self.test.domain != 0 if self.test.domain is not None else np.ones(len(y), bool)
        where = "the target domain's" if self.test.domain is not None else "the"
        cm = confusion_matrix(y[rows], probs[rows].argmax(1), labels=range(probs.shape[1]))
        fig, ax = plt.subplots(figsize=(5, 4.5))
        ax.imshow(cm, cmap="Blues")
        ax.set_title(f"accuracy {np.trace(cm) / max(cm.sum(), 1):.3f}")
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        figs = [(f"confusion matrix on {where} held-out windows", fig)]
        if "features" in out:
            emb = PCA(2, random_state=self.seed).fit_transform(out["features"])
            fig, ax = plt.subplots(figsize=(5, 4.5))
            for dom, label in ((False, "source"), (True, "target")):
                m = rows == dom
                ax.scatter(emb[m, 0], emb[m, 1], s=5, alpha=0.6, label=label)
            ax.set_title("PCA of the features by domain")
            ax.legend(markerscale=3)
            figs.append(("features of source and target windows", fig))
        return figs
