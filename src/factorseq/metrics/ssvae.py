"""The ``ssvae`` evaluator: how well does the semi-supervised VAE classify, and is its style
variable z free of the label? Windows are (batch, time, features); scores use the held-out
``.test`` split of the data (or the file of option ``test``), all labels visible.

- ``accuracy``: accuracy of q(y|x) on the test set, mean and std over ``draws`` label draws:
  the model is retrained with the run's resolved configs and ``label_seed`` = seed + d (the run
  itself serves the draw of its own label seed).
- ``baseline_accuracy``: the same encoder q(y|x) trained as a plain classifier (cross-entropy)
  on the same labelled windows only (``objective=classifier``), same draws, for
  ``baseline_epochs`` (300) passes over them (no validation labels to stop it earlier).
- ``label_from_style_acc``: a multinomial logistic-regression probe predicting y from the
  posterior means of z on the test set (stratified k-fold cross-validation); ``chance`` is the
  majority-class rate. Low = the style carries no label.
Figures: a grid of generated samples, one row per fixed z and one column per class y (images
when the data's meta has ``image_shape``, else features x time plots such as log-mel), and the
confusion matrix of the run's q(y|x).
"""
from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ..config import build
from ..data.container import SequenceData
from ..errors import FactorseqError
from .evaluators import Evaluator, evaluator


def role_spec(model, role: str):
    """The one code spec of ``model`` with ``role`` (SS-VAE: ``latent`` = its
    style z, ``label`` = its class y, ``probs`` = q(y|x)); read from ``code_specs``."""
    found = [s for s in model.code_specs() if s.role == role]
    if len(found) != 1:
        raise FactorseqError(f"{model.name} has {len(found)} {role} codes; the ssvae evaluator "
                             "needs exactly one")
    return found[0]


@torch.no_grad()
def predict(model, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(q(y|x) probabilities (N, K), posterior style means (N, z_dim)) of scaled ``x``
    (N, T, D): the ``probs`` and ``latent`` codes of the contract's ``encode``."""
    codes = model.encode(x)
    return (codes[role_spec(model, "probs").name].cpu().numpy(),
            codes[role_spec(model, "latent").name].cpu().numpy())


@torch.no_grad()
def class_probs(model, x: np.ndarray, batch: int = 512) -> np.ndarray:
    """q(y|x) (N, K) of scaled ``x`` (N, T, D) (any model with ``predict_proba``)."""
    return np.concatenate([model.predict_proba(torch.as_tensor(x[i:i + batch])).numpy()
                           for i in range(0, len(x), batch)])


def probe_accuracy(z: np.ndarray, y: np.ndarray, folds: int = 5, seed: int = 0) -> float:
    """Cross-validated accuracy of a logistic-regression probe y ~ z (standardised z)."""
    counts = np.bincount(y)
    folds = int(min(folds, counts[counts > 0].min()))
    if folds < 2:
        raise FactorseqError("the style probe needs at least 2 test windows of every class")
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
    return float(cross_val_score(probe, z, y, cv=cv).mean())


def label_folds(y: np.ndarray, y_mask: np.ndarray, folds: int = 5, seed: int = 0
                ) -> list[np.ndarray]:
    """Class-stratified K folds of the labelled windows only: sorted window indices (into
    ``y``), disjoint, together exactly ``flatnonzero(y_mask)``. Choosing a setting by training
    on K-1 folds and scoring q(y|x) on the held-out one uses no label beyond the N given."""
    lab = np.flatnonzero(np.asarray(y_mask, dtype=bool))
    counts = np.bincount(np.asarray(y)[lab])
    if folds < 2 or len(lab) == 0 or counts[counts > 0].min() < folds:
        raise FactorseqError(f"{folds} label folds need >= {max(folds, 2)} labels of every "
                             f"labelled class (class counts {counts.tolist()})")
    cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
    return [np.sort(lab[held]) for _, held in cv.split(lab, np.asarray(y)[lab])]


def style_leakage(z: np.ndarray, target: np.ndarray, folds: int = 5, seed: int = 0
                  ) -> dict[str, float]:
    """How well the style code ``z`` (N, z_dim) predicts ``target`` (N,): the probe of
    ``label_from_style_acc`` (:func:`probe_accuracy`) and ``chance``, the majority rate.

    With ``target`` = the model's own argmax q(y|x) on training windows this needs no label:
    a label-free stand-in for ``label_from_style_acc``. Classes with fewer than 2 windows
    (rarely predicted) are left out of the probe, as ``probe_accuracy`` cannot split them.
    """
    target = np.asarray(target)
    counts = np.bincount(target)
    keep = counts[target] >= 2
    kept = np.bincount(target[keep])
    if (kept > 0).sum() < 2:  # one class predicted for all: z cannot add anything to chance
        return {"probe": 1.0, "chance": 1.0}
    return {"probe": probe_accuracy(np.asarray(z)[keep], target[keep], folds, seed),
            "chance": float(kept.max() / kept.sum())}


def retrain(run, label_seed: int, *, classifier: bool = False, classifier_epochs: int = 300):
    """Train the run's model again with its resolved configs on label draw ``label_seed``.

    ``classifier``: the baseline, q(y|x) alone by cross-entropy on the labelled windows; no
    label beyond the N may select it, so it has no validation split and no early stopping: it
    runs ``classifier_epochs`` passes over the labelled windows (the learning rate still
    decays on training-loss plateaus). The run directory is temporary; the returned Run keeps
    the model.
    """
    from ..train import TrainConfig, fit

    cfg = run.config
    data_cfg = dataclasses.replace(run.data_config, label_seed=int(label_seed))
    train_cfg = build(TrainConfig, cfg["train_config"], what="train config")
    train_cfg = dataclasses.replace(train_cfg, progress=False, tensorboard=False)
    overrides = dict(cfg["model_config"])
    if classifier:
        overrides["objective"] = "classifier"
        train_cfg = dataclasses.replace(train_cfg, val_fraction=0.0, epochs=classifier_epochs,
                                        patience=classifier_epochs)
    with tempfile.TemporaryDirectory(prefix="factorseq-ssvae-") as tmp:
        return fit(cfg["model"], data_cfg, train_cfg, overrides, Path(tmp) / "run")


def _stats(values: list[float]) -> dict[str, Any]:
    v = np.asarray(values, dtype=np.float64)
    return {"mean": float(v.mean()), "std": float(v.std()), "values": [float(a) for a in v]}


@evaluator("ssvae")
class SSVAEEvaluator(Evaluator):
    """Accuracy vs a plain classifier over label draws, style probe, sample grid."""

    defaults: ClassVar[dict[str, Any]] = {"draws": None, "test": None, "probe_folds": 5,
                                          "grid_rows": 6, "baseline": True,
                                          "baseline_epochs": 300}

    def __init__(self, run, data: SequenceData | None = None, *, repeats: int = 5,
                 samples: Any = None, seed: int = 0, **options: Any) -> None:
        super().__init__(run, data, repeats=repeats, samples=samples, seed=seed, **options)
        self.opt = self.options
        self.draws = int(self.opt["draws"] or self.repeats)
        if self.draws < 1:
            raise FactorseqError(f"draws must be >= 1, got {self.draws}")
        self.model = run.model.eval()

    # --- data --------------------------------------------------------------------------------
    def test_set(self) -> tuple[np.ndarray, np.ndarray]:
        """(scaled test windows (N, T, D), labels (N,)) with every label visible."""
        if self.opt["test"]:  # read with the run's options, every label visible
            data = self.run.load_data(str(self.opt["test"]))
            test = data.test if data.test is not None else data
        else:
            data = self.data if self.data is not None else self.run.load_data()
            test = data.test
        if test is None or test.y is None:
            raise FactorseqError("ssvae evaluation needs labelled held-out windows: a data set "
                                 "with a test split (digits, fsdd-digits) or --set test=FILE")
        keep = test.y_mask if test.y_mask is not None else np.ones(len(test.y), dtype=bool)
        if not keep.any():
            raise FactorseqError("the test windows have no labels")
        n_classes = self.model.config.n_classes
        y = test.y[keep]
        if y.min() < 0 or y.max() >= n_classes:
            raise FactorseqError(f"test labels must be in 0..{n_classes - 1}")
        return self.run.scaler.transform(test.x[keep]), y

    # --- scores ------------------------------------------------------------------------------
    def _scores(self, model, x: np.ndarray, y: np.ndarray) -> dict[str, float]:
        probs, z = predict(model.eval(), x)
        return {"accuracy": float((probs.argmax(1) == y).mean()),
                "label_from_style_acc": probe_accuracy(z, y, int(self.opt["probe_folds"]),
                                                       self.seed)}

    def evaluate(self) -> dict[str, Any]:
        x, y = self.test_set()
        dcfg = self.run.data_config
        draws = self.draws if dcfg.labels is not None else 1  # no label draws without --labels
        rows = []
        for d in range(draws):
            label_seed = self.seed + d
            own = label_seed == dcfg.label_seed or dcfg.labels is None
            model = self.model if own else retrain(self.run, label_seed).model
            row = {"label_seed": label_seed, **self._scores(model, x, y)}
            if self.opt["baseline"]:
                base = retrain(self.run, label_seed, classifier=True,
                               classifier_epochs=int(self.opt["baseline_epochs"])).model.eval()
                row["baseline_accuracy"] = float((class_probs(base, x).argmax(1) == y).mean())
            rows.append(row)
        counts = np.bincount(y, minlength=self.model.config.n_classes)
        out: dict[str, Any] = {
            "accuracy": _stats([r["accuracy"] for r in rows]),
            "label_from_style_acc": _stats([r["label_from_style_acc"] for r in rows]),
            "chance": float(counts.max() / counts.sum()),
            "run_accuracy": self._scores(self.model, x, y)["accuracy"],
        }
        if self.opt["baseline"]:
            out["baseline_accuracy"] = _stats([r["baseline_accuracy"] for r in rows])
            out["accuracy_gain"] = out["accuracy"]["mean"] - out["baseline_accuracy"]["mean"]
        out.update({"n_labels": dcfg.labels, "draws": draws, "n_test": int(len(y)),
                    "per_draw": rows})
        return out

    # --- figures -----------------------------------------------------------------------------
    def figures(self) -> list[tuple[str, Any]]:
        figs = [("generated samples: one row per fixed z, one column per class y",
                 sample_grid_figure(self.run, int(self.opt["grid_rows"]), self.seed))]
        try:
            x, y = self.test_set()
        except FactorseqError:
            return figs
        pred = class_probs(self.model, x).argmax(1)
        figs.append(("confusion matrix of q(y|x) on the test set",
                     confusion_figure(y, pred, self.model.config.n_classes)))
        return figs


@torch.no_grad()
def sample_grid_figure(run, rows: int = 6, seed: int = 0):
    """Decode ``rows`` fixed z ~ N(0, I) with every class y: a rows x K grid, raw units."""
    import matplotlib.pyplot as plt

    model = run.model.eval()
    K, c = model.config.n_classes, model.config
    style, label = role_spec(model, "latent"), role_spec(model, "label")
    z = torch.randn(rows, style.dim, generator=torch.Generator().manual_seed(seed))
    x = model.decode({style.name: z.repeat_interleave(K, 0),
                      label.name: torch.arange(K).repeat(rows)}).cpu().numpy()
    x = run.scaler.inverse_transform(x).reshape(rows, K, c.seq_len, c.n_features)
    meta = run.schema.get("meta", {})
    image = bool(meta.get("image_shape"))
    names = meta.get("class_names") or [str(k) for k in range(K)]
    w, h = (1.0, 1.0) if image else (1.3, 1.1)
    fig, axes = plt.subplots(rows, K, figsize=(w * K + 0.6, h * rows + 0.5), squeeze=False)
    lo, hi = np.percentile(x, [1, 99])
    for i in range(rows):
        for k in range(K):
            ax = axes[i, k]
            if image:  # a window is the image: time = row, features = column
                ax.imshow(x[i, k], cmap="gray_r", vmin=lo, vmax=hi)
            else:  # features x time, e.g. mel bands over frames
                ax.imshow(x[i, k].T, origin="lower", aspect="auto", cmap="magma", vmin=lo,
                          vmax=hi)
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(f"y={names[k]}", fontsize=8)
            if k == 0:
                ax.set_ylabel(f"z{i + 1}", fontsize=8)
    fig.tight_layout()
    return fig


def confusion_figure(y: np.ndarray, pred: np.ndarray, n_classes: int):
    import matplotlib.pyplot as plt

    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (y, pred), 1)
    fig, ax = plt.subplots(figsize=(4.2, 3.8))
    im = ax.imshow(cm, cmap="Blues")
    ax.set_xlabel("predicted y")
    ax.set_ylabel("true y")
    ax.set_title(f"accuracy {np.trace(cm) / max(cm.sum(), 1):.3f}", fontsize=9)
    fig.colorbar(im, ax=ax)
    fig.tight_layout()
    return fig
