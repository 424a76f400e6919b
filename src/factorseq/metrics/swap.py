"""The ``sprites`` evaluator: the Sprites protocol of sequential disentanglement (DSVAE, S3VAE,
C-DSVAE, DBSE), by factor swaps judged by a classifier of real sequences.

For a run whose model generates by factor (``factors``) with a static code (a factor of role
``sequence``) and a dynamic one (role ``segment``), on data that names its static and dynamic
labels (``meta["factors"]``, :func:`factor_roles`), holds them as per-window ``extras``, says
its frames' shape (``meta["frame_shape"]``) and has a ``.test`` split. Sequences are
(n, time, C*H*W); every generation goes through ``Run.generate(reference=, keep=)``.

1. A judge (:mod:`factorseq.metrics.judge`) trained on the real training sequences predicts
   every factor; ``judge_test_accuracy`` is its accuracy on the real test sequences (it must
   be near 1 for the rest to mean anything). Kept on disk, reused by every model.
2. ``static_redrawn``: each test sequence's dynamic code kept, the static one drawn from the
   prior. The judge must still read the dynamic factor (``accuracy`` against the reference's
   label) and, over the generations, ``inception_score`` = exp(E_x KL(p(y|x) || p(y))),
   ``h_y_given_x`` = E_x H(p(y|x)) (low = confident) and ``h_y`` = H(p(y)) (high = every
   class generated; at most ln K, 2.197 for 9 motions), in nats, p(y) = E_x p(y|x).
   ``attribute_accuracy``: the static labels of the reference read back (near chance if
   the static code really was redrawn).
3. ``dynamic_redrawn``: the static code kept, the dynamic one drawn from the prior: accuracy
   of each static label and their mean (``mean_attribute_accuracy``), and the dynamic
   label's accuracy against the reference's (near chance if the motion was redrawn).

One draw per test sequence (seed ``seed``): ``repeats`` does not apply. A model is never
named: what it keeps or redraws is chosen by its factors' roles.
"""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..config import build, require
from ..data.container import SequenceData
from ..data.paths import cache_dir
from ..errors import FactorseqError
from .evaluators import Evaluator, evaluator
from .factor_evaluator import factor_roles
from .judge import JudgeConfig, accuracies, judge_probs, load_or_train


@dataclasses.dataclass
class SwapOptions:
    """Options of the ``sprites`` evaluator (``--set key=value``).

    ``judge_*``: the judge's training (:class:`JudgeConfig`); ``judge_cache``: the folder of
    trained judges (default ``<cache>/judges``; ``none`` = train afresh, keep nothing);
    ``batch``: test sequences per ``generate`` call when only per-window codes are kept;
    ``max_test``: score the first ``max_test`` test sequences only (quick looks)."""

    judge_epochs: int = 40
    judge_min_epochs: int = 6
    judge_target: float = 0.99
    judge_channels: int = 16
    judge_hidden: int = 64
    judge_batch_size: int = 64
    judge_lr: float = 1e-3
    judge_cache: str | None = None
    batch: int = 256
    max_test: int | None = None

    def __post_init__(self) -> None:
        require(self.batch >= 1, f"batch must be >= 1, got {self.batch}")
        require(self.max_test is None or self.max_test >= 1,
                f"max_test must be >= 1 (or null for all), got {self.max_test}")

    def judge(self, seed: int) -> JudgeConfig:
        return build(JudgeConfig, {"epochs": self.judge_epochs, "target": self.judge_target,
                                   "min_epochs": self.judge_min_epochs,
                                   "channels": self.judge_channels,
                                   "hidden": self.judge_hidden, "lr": self.judge_lr,
                                   "batch_size": self.judge_batch_size, "seed": seed},
                     what="judge config")

    def cache(self) -> Path | None:
        if self.judge_cache is not None and self.judge_cache.lower() == "none":
            return None
        return Path(self.judge_cache) if self.judge_cache else cache_dir() / "judges"


@dataclasses.dataclass
class Plan:
    """What the protocol reads: the model's static / dynamic factor names, the data's static /
    dynamic label names, each label's number of classes, the frames' shape."""

    static_codes: list[str]
    dynamic_codes: list[str]
    static_labels: list[str]
    dynamic_labels: list[str]
    classes: dict[str, int]
    frame_shape: list[int]


def plan(run: Any, data: SequenceData | None) -> Plan | str:
    """The protocol's plan for ``run`` on ``data``, or one line saying why it cannot run."""
    if not run.has("factors"):
        return f"{run.model.name} cannot generate by factor (no 'factors' capability)"
    facs = run.factors()
    static = [f.name for f in facs if f.kind == "code" and f.role == "sequence"]
    dynamic = [f.name for f in facs if f.kind == "code" and f.role == "segment"]
    if not static or not dynamic:
        return (f"{run.model.name} needs a static (sequence) and a dynamic (segment) code "
                f"factor; its factors: {', '.join(f'{f.name}:{f.role}' for f in facs)}")
    if data is None:
        return "no data"
    roles = factor_roles(data.meta.get("factors"))
    labels = {r: [k for k, v in roles.items() if v == r] for r in ("sequence", "segment")}
    if not labels["sequence"] or not labels["segment"]:
        return "the data names no static and dynamic factors (meta 'factors')"
    shape = data.meta.get("frame_shape")
    if not shape or int(np.prod(shape)) != data.n_features:
        return f"the data's windows are not frames (meta frame_shape {shape!r})"
    if data.test is None:
        return "the data has no test split (.test) to score on"
    names = [*labels["sequence"], *labels["segment"]]
    missing = [k for k in names if k not in data.extras or k not in data.test.extras]
    if missing:
        return f"factor(s) {', '.join(missing)} are not per-window extras of both splits"
    known = data.meta.get("factor_classes") or {}
    classes = {k: int(known.get(k, int(np.max(data.extras[k])) + 1)) for k in names}
    return Plan(static, dynamic, labels["sequence"], labels["segment"], classes,
                [int(s) for s in shape])


def inception_scores(p: np.ndarray) -> dict[str, float]:
    """From a table p(y|x) (n, K), rows summing to 1: IS = exp(E_x KL(p(y|x) || p(y))),
    H(y|x) = E_x H(p(y|x)) and H(y) = H(E_x p(y|x)), in nats (0 log 0 = 0)."""
    p = np.asarray(p, dtype=np.float64)
    p_y = p.mean(0)
    log_p = np.log(np.where(p > 0, p, 1.0))
    log_py = np.log(np.where(p_y > 0, p_y, 1.0))
    kl = (p * (log_p - log_py)).sum(1)
    return {"inception_score": float(np.exp(kl.mean())),
            "h_y_given_x": float(-(p * log_p).sum(1).mean()),
            "h_y": float(-(p_y * log_py).sum())}


@evaluator("sprites")
class SwapEvaluator(Evaluator):
    """The Sprites protocol: judge accuracy, static and dynamic codes redrawn in turn."""

    defaults: ClassVar[dict[str, Any]] = {f.name: f.default
                                          for f in dataclasses.fields(SwapOptions)}

    @classmethod
    def claims(cls, run: Any, data: Any) -> bool:
        """The data declares static and dynamic labels of image frames and the model has a
        static and a dynamic code to keep: this protocol is how such a run is scored."""
        return isinstance(data, SequenceData) and isinstance(plan(run, data), Plan)

    def __init__(self, run: Any, data: SequenceData | None = None, *, repeats: int = 5,
                 samples: Any = None, seed: int = 0, **options: Any) -> None:
        super().__init__(run, data, repeats=repeats, samples=samples, seed=seed, **options)
        if samples is not None:
            raise FactorseqError("the sprites evaluator generates by factor swaps itself; it "
                                 "takes no --samples")
        self.opts = build(SwapOptions, self.options, what="sprites evaluator options")
        self.data = data if data is not None else run.load_data()
        p = plan(run, self.data)
        if isinstance(p, str):
            raise FactorseqError(f"the sprites protocol cannot score this run: {p}")
        self.plan = p

    def evaluate(self) -> dict[str, Any]:
        p, o, secs = self.plan, self.opts, {}
        t0 = time.perf_counter()
        names = [*p.static_labels, *p.dynamic_labels]
        train, test = self.data, self.data.test
        rows = np.arange(test.n_windows if o.max_test is None else min(o.max_test,
                                                                       test.n_windows))
        judge, info = load_or_train(train.x, {k: train.extras[k] for k in names},
                                    p.frame_shape, p.classes, o.judge(self.seed),
                                    name=self.data.name, folder=o.cache())
        x = np.asarray(test.x[rows], dtype=np.float32)
        truth = {k: np.asarray(test.extras[k])[rows] for k in names}
        secs["judge"] = time.perf_counter() - t0
        out: dict[str, Any] = {
            "judge_test_accuracy": accuracies(judge_probs(judge, x), truth), "judge": info,
            "n_test": int(len(rows)), "kept_static": p.static_codes,
            "kept_dynamic": p.dynamic_codes, "static_factors": p.static_labels,
            "dynamic_factors": p.dynamic_labels}
        t0 = time.perf_counter()
        probs = judge_probs(judge, self._swap(x, p.dynamic_codes))
        out["static_redrawn"] = {
            **{k: {"accuracy": accuracies({k: probs[k]}, truth)[k],
                   **inception_scores(probs[k]), "h_y_max": float(np.log(p.classes[k]))}
               for k in p.dynamic_labels},
            "attribute_accuracy": accuracies({k: probs[k] for k in p.static_labels}, truth)}
        secs["static_redrawn"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        probs = judge_probs(judge, self._swap(x, p.static_codes))
        attr = accuracies({k: probs[k] for k in p.static_labels}, truth)
        out["dynamic_redrawn"] = {
            "attribute_accuracy": attr, "mean_attribute_accuracy": float(np.mean(list(
                attr.values()))),
            "dynamic_accuracy": accuracies({k: probs[k] for k in p.dynamic_labels}, truth)}
        secs["dynamic_redrawn"] = time.perf_counter() - t0
        out["chance"] = {k: 1.0 / p.classes[k] for k in names}
        out["seconds_per_step"] = {k: round(v, 2) for k, v in secs.items()}
        out["protocol"] = ("Sprites (DSVAE/S3VAE/C-DSVAE): judge trained on the real training "
                           "sequences; one prior redraw per test sequence")
        return out

    def _swap(self, x: np.ndarray, keep: list[str]) -> np.ndarray:
        """Generations keeping the factors ``keep`` of each sequence of ``x`` (n, time,
        features), every other factor drawn from the prior: in batches when every kept factor
        is per window (role segment), else one ``generate`` per sequence (a sequence-level
        code is taken from the whole reference)."""
        roles = {f.name: f.role for f in self.run.factors()}
        step = self.opts.batch if all(roles[k] == "segment" for k in keep) else 1
        parts = [self.run.generate(len(x[i:i + step]), reference=x[i:i + step], keep=keep,
                                   seed=self.seed + i)
                 for i in range(0, len(x), step)]
        return np.concatenate(parts).astype(np.float32)
