"""The ``ssvae`` evaluator: how well does the semi-supervised VAE classify, and is its style
variable z free of the label? Windows are (batch, time, features); scores use the held-out
``.test`` split of the data (or the file of option ``test``), all labels visible. It scores
the run it is given, nothing else: no model is trained here.

- ``accuracy``: accuracy of the run's q(y|x) (``predict_proba``) on the test set.
- ``label_from_style_acc``: a multinomial logistic-regression probe predicting y from the
  posterior means of the style code (role ``latent``) on the test set (stratified k-fold
  cross-validation); ``chance`` is the majority-class rate. Low = the style carries no label.
  Left out when the model has no style code (``objective=classifier``: q(y|x) alone).

Repetitions over label draws and the plain-classifier baseline are runs of their own, scored
the same way: ``factorseq train ssvae --labels N --seed S --set data.label_seed=S`` for draw S,
and the same command with ``--set objective=classifier`` for the baseline (the same encoder
trained by cross-entropy on the labelled windows only); ``benchmarks/ssvae_bench.py`` runs
them as cells of the benchmark harness and pairs them.
Figures: a grid of generated samples, one row per fixed z and one column per class y (images
when the data's meta has ``image_shape``, else features x time plots such as log-mel; only
for a model that decodes), and the confusion matrix of the run's q(y|x).
"""
from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ..config import build, require
from ..data.container import SequenceData
from ..errors import FactorseqError
from .evaluators import Evaluator, evaluator


def role_spec(model, role: str, needed: bool = True):
    """The one code spec of ``model`` with ``role`` (SS-VAE: ``latent`` = its
    style z, ``label`` = its class y, ``probs`` = q(y|x)); read from ``code_specs``. None when
    the model has no such code and ``needed`` is False."""
    found = [s for s in model.code_specs() if s.role == role]
    if not found and not needed:
        return None
    if len(found) != 1:
        raise FactorseqError(f"{model.name} has {len(found)} {role} codes; the ssvae evaluator "
                             "needs exactly one")
    return found[0]


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


# options a former version took to retrain the model over label draws and train a plain
# classifier beside it: repetitions and baselines are runs of their own now (module docstring)
RETRAINING = ("draws", "baseline", "baseline_epochs")


@dataclasses.dataclass
class SSVAEOptions:
    """Options of the ``ssvae`` evaluator (``--set key=value``).

    ``test``: a file of labelled windows scored instead of the data's ``.test`` split (read
    with the run's data options, every label visible); ``probe_folds``: folds of the style
    probe's stratified cross-validation (at most the smallest class's count); ``grid_rows``:
    rows (fixed z) of the figure of generated samples."""

    test: str | None = None
    probe_folds: int = 5
    grid_rows: int = 6

    def __post_init__(self) -> None:
        require(self.probe_folds >= 2, f"probe_folds must be >= 2, got {self.probe_folds}")
        require(self.grid_rows >= 1, f"grid_rows must be >= 1, got {self.grid_rows}")


@evaluator("ssvae")
class SSVAEEvaluator(Evaluator):
    """Accuracy of the run's q(y|x), the style probe against chance, sample grid."""

    defaults: ClassVar[dict[str, Any]] = {f.name: f.default
                                          for f in dataclasses.fields(SSVAEOptions)}

    def __init__(self, run, data: SequenceData | None = None, *, repeats: int = 5,
                 samples: Any = None, seed: int = 0, **options: Any) -> None:
        gone = [k for k in RETRAINING if k in options]
        if gone:
            raise FactorseqError(
                f"ssvae evaluator option(s) {', '.join(gone)} no longer exist: the evaluator "
                "scores only the run it is given. Train each label draw as a run (--seed S "
                "--set data.label_seed=S) and the baseline with --set objective=classifier, "
                "then evaluate each run (benchmarks/ssvae_bench.py pairs them)")
        super().__init__(run, data, repeats=repeats, samples=samples, seed=seed, **options)
        self.opts = build(SSVAEOptions, self.options, what="ssvae evaluator options")
        self.model = run.model.eval()
        self.model.require("classifies")

    # --- data --------------------------------------------------------------------------------
    def test_set(self) -> tuple[np.ndarray, np.ndarray]:
        """(scaled test windows (N, T, D), labels (N,)) with every label visible."""
        if self.opts.test:  # read with the run's options, every label visible
            data = self.run.load_data(str(self.opts.test))
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
    def evaluate(self) -> dict[str, Any]:
        x, y = self.test_set()
        dcfg = self.run.data_config
        counts = np.bincount(y, minlength=self.model.config.n_classes)
        out: dict[str, Any] = {
            "accuracy": float((class_probs(self.model, x).argmax(1) == y).mean())}
        style = role_spec(self.model, "latent", needed=False)
        if style is not None:  # a model with a style code: does it carry the label?
            z = self.model.encode(x)[style.name].cpu().numpy()
            out["label_from_style_acc"] = probe_accuracy(z, y, self.opts.probe_folds,
                                                         self.seed)
        out.update({"chance": float(counts.max() / counts.sum()), "n_labels": dcfg.labels,
                    "label_seed": dcfg.label_seed, "n_test": int(len(y))})
        return out

    # --- figures -----------------------------------------------------------------------------
    def figures(self) -> list[tuple[str, Any]]:
        figs = []
        if self.model.has("decodes") and role_spec(self.model, "latent", needed=False):
            figs.append(("generated samples: one row per fixed z, one column per class y",
                         sample_grid_figure(self.run, self.opts.grid_rows, self.seed)))
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
