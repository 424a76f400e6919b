"""The ``dann`` evaluator: does domain-adversarial training help on the unlabelled target domain?

Scores a ``dann`` run on the data's held-out split (``.test``; for ``fsdd-digits`` the takes
0-4 of every speaker, never trained on), windows of shape (windows, time, features):

- ``target_accuracy``: digit accuracy of the adapted classifier on the held-out windows of the
  target domain (``domain != 0``: the target speaker);
- ``source_only_accuracy``: the same for the source-only twin trained in the same run without
  the adversary; ``adaptation_gain`` = the difference;
- ``source_test_accuracy`` / ``source_only_source_test_accuracy``: both on the held-out source
  windows (adaptation should not cost much there);
- ``domain_accuracy``: accuracy of the model's domain classifier on the held-out windows
  (0.5 = features the domain classifier cannot separate).

The scores are deterministic (no sampling), so ``repeats`` does not apply.
"""
from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch

from ..data.container import SequenceData
from ..errors import FactorseqError
from .evaluators import Evaluator, evaluator


@evaluator("dann")
class DANNEvaluator(Evaluator):
    """Target-domain accuracy of a DANN run against its source-only twin.

    Option: ``batch_size`` (512) of the forward passes."""

    defaults: ClassVar[dict[str, Any]] = {"batch_size": 512}

    def __init__(self, run, data: SequenceData | None = None, *, repeats: int = 5,
                 samples: Any = None, seed: int = 0, **options: Any) -> None:
        super().__init__(run, data, repeats=repeats, samples=samples, seed=seed, **options)
        if samples is not None:
            raise FactorseqError("dann is a classifier: it is evaluated on real data, "
                                 "not on --samples")
        bs = self.options["batch_size"]
        if isinstance(bs, bool) or not isinstance(bs, int) or bs < 1:
            raise FactorseqError(f"dann evaluator option batch_size must be an integer >= 1, "
                                 f"got {bs!r}")
        data = data if data is not None else run.load_data()
        test = data.test
        if test is None:
            raise FactorseqError(f"data {data.name!r} has no held-out split to score dann on "
                                 "(use a set with a .test split, e.g. fsdd-digits)")
        if test.y is None or test.domain is None:
            raise FactorseqError("dann evaluation needs labels and domains on the held-out "
                                 "split")
        self.meta = data.meta
        self.test = test
        self.model = run.model.eval()
        self._cache: dict[str, np.ndarray] = {}

    @torch.no_grad()
    def _outputs(self) -> dict[str, np.ndarray]:
        """Logits of both heads, features and domain logits of the held-out windows."""
        if self._cache:
            return self._cache
        x = self.run.scaler.transform(self.test.x)
        bs = self.options["batch_size"]
        parts: dict[str, list[np.ndarray]] = {k: [] for k in
                                              ("dann", "source_only", "feat", "feat_so", "dom")}
        for i in range(0, len(x), bs):
            xb = torch.as_tensor(x[i:i + bs], device=self.model.device)
            f, logits = self.model.classifier(xb)
            f_so, logits_so = self.model.source_only(xb)
            parts["dann"].append(logits.cpu().numpy())
            parts["source_only"].append(logits_so.cpu().numpy())
            parts["feat"].append(f.cpu().numpy())
            parts["feat_so"].append(f_so.cpu().numpy())
            parts["dom"].append(self.model.domain_classifier(f).squeeze(-1).cpu().numpy())
        self._cache = {k: np.concatenate(v) for k, v in parts.items()}
        return self._cache

    def evaluate(self) -> dict[str, Any]:
        out = self._outputs()
        y, target = self.test.y, self.test.domain != 0
        known = self.test.y_mask if self.test.y_mask is not None else np.ones(len(y), bool)
        if not (target & known).any():
            raise FactorseqError("the held-out split has no labelled target-domain windows")
        acc = lambda head, rows: float((out[head][rows].argmax(1) == y[rows]).mean())  # noqa
        res: dict[str, Any] = {
            "target_speaker": self.meta.get("target_speaker_name",
                                            self.meta.get("target_speaker")),
            "n_target_test": int((target & known).sum()),
            "target_accuracy": acc("dann", target & known),
            "source_only_accuracy": acc("source_only", target & known),
        }
        res["adaptation_gain"] = res["target_accuracy"] - res["source_only_accuracy"]
        src = ~target & known
        if src.any():
            res["n_source_test"] = int(src.sum())
            res["source_test_accuracy"] = acc("dann", src)
            res["source_only_source_test_accuracy"] = acc("source_only", src)
        res["domain_accuracy"] = float(((out["dom"] > 0) == target).mean())
        return res

    def figures(self) -> list[tuple[str, Any]]:
        import matplotlib.pyplot as plt
        from sklearn.decomposition import PCA
        from sklearn.metrics import confusion_matrix

        out = self._outputs()
        y, target = self.test.y, self.test.domain != 0
        figs = []
        k = out["dann"].shape[1]
        fig, axes = plt.subplots(1, 2, figsize=(10, 4.5))
        for ax, head in zip(axes, ("dann", "source_only"), strict=True):
            cm = confusion_matrix(y[target], out[head][target].argmax(1), labels=range(k))
            ax.imshow(cm, cmap="Blues")
            ax.set_title(f"{head}: target accuracy {np.trace(cm) / max(cm.sum(), 1):.3f}")
            ax.set_xlabel("predicted")
            ax.set_ylabel("true")
        fig.tight_layout()
        figs.append(("confusion matrices on the target domain's held-out windows", fig))
        fig, axes = plt.subplots(1, 2, figsize=(10, 4.5))
        for ax, key, head in zip(axes, ("feat", "feat_so"), ("dann", "source_only"),
                                 strict=True):
            emb = PCA(2, random_state=self.seed).fit_transform(out[key])
            for dom, name in ((False, "source"), (True, "target")):
                m = target == dom
                ax.scatter(emb[m, 0], emb[m, 1], s=5, alpha=0.6, label=name)
            ax.set_title(f"PCA of {head} features by domain")
            ax.legend(markerscale=3)
        fig.tight_layout()
        figs.append(("features of source and target windows (adapted vs source-only)", fig))
        return figs
