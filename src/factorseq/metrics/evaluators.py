"""Evaluators: how a trained run is scored. A model names its evaluator (``evaluator = "..."``).

Every module of the ``factorseq.metrics`` package is imported before a name is looked up, so
an evaluator registers itself just by living there::

    @evaluator("mine")
    class MyEvaluator(Evaluator):
        def evaluate(self) -> dict: ...          # JSON-ready scores
        def figures(self) -> list: ...           # [(title, matplotlib Figure)]

Which one scores a run (:func:`choose_evaluator`): the one asked for by name, else one whose
protocol the data declares and the model can follow (``Evaluator.claims``, e.g. the Sprites
protocol for data with static/dynamic labels of image frames and a model with a static and a
dynamic code), else the model's own (``model.evaluator``).

``GenerativeEvaluator`` (``"generative"``) scores synthetic windows with TimeGAN's protocol.
All arrays are (windows, time, features).
"""
from __future__ import annotations

import abc
import importlib
import multiprocessing
import pkgutil
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any, ClassVar

import numpy as np

from ..data.scaler import MinMaxScaler
from ..errors import FactorseqError, ShapeError
from ..registry import Registry
from .gaps import CHOICES as REAL_CHOICES
from .gaps import real_windows
from .timegan import GRU_CELLS, discriminative_scores, predictive_table, summarize

# the metrics package is imported (every module of it) before the first look-up
EVALUATORS: Registry[type] = Registry("evaluator", lambda: _load_all())


def evaluator(name: str) -> Callable[[type], type]:
    """Class decorator: ``@evaluator("generative")`` makes the evaluator reachable by name."""

    def deco(cls: type) -> type:
        EVALUATORS.add(name, cls)
        cls.name = name
        return cls

    return deco


def _load_all() -> None:
    from .. import metrics  # every module of the package registers its evaluators on import

    for m in pkgutil.iter_modules(metrics.__path__):
        importlib.import_module(f"{metrics.__name__}.{m.name}")


def get_evaluator(name: str) -> type[Evaluator]:
    """The evaluator class registered as ``name`` (FactorseqError if there is none)."""
    return EVALUATORS.get(name)


def available_evaluators() -> list[str]:
    return EVALUATORS.names()


def choose_evaluator(run: Any, data: Any, name: str | None = None) -> type[Evaluator]:
    """The evaluator of ``run`` on ``data``: ``name`` if given; else the first (by name) that
    claims them (the data declares its protocol and the model can follow it); else the
    model's own ``evaluator``."""
    if name:
        return get_evaluator(name)
    for other in available_evaluators():
        cls = get_evaluator(other)
        if cls.claims(run, data):
            return cls
    return get_evaluator(run.model.evaluator)


def build_evaluator(run: Any, data: Any, name: str | None = None, *, repeats: int = 5,
                    samples: Any = None, seed: int = 0, **options: Any) -> Evaluator:
    """The one place an evaluator is built (``Run.evaluator``, hence the CLI, the report and
    the benchmarks, come here): :func:`choose_evaluator`'s class on ``run`` and ``data``."""
    return choose_evaluator(run, data, name)(run, data, repeats=repeats, samples=samples,
                                             seed=seed, **options)


class Evaluator(abc.ABC):
    """Scores one run. ``run`` is a :class:`factorseq.checkpoint.Run` (scaler, model,
    ``load_data()``, ``sample(n, seed)``); ``data`` the real data (default: the run's training
    data); ``samples`` optional synthetic windows in raw units; ``options`` evaluator-specific
    keys, checked against ``defaults`` (unknown keys are a user error)."""

    name: ClassVar[str] = "base"
    defaults: ClassVar[dict[str, Any]] = {}

    @classmethod
    def claims(cls, run: Any, data: Any) -> bool:
        """Whether ``data`` declares this evaluator's protocol and ``run``'s model can follow
        it, so that it scores the run unless another is named (:func:`choose_evaluator`)."""
        return False

    def __init__(self, run: Any, data: Any = None, *, repeats: int = 5, samples: Any = None,
                 seed: int = 0, **options: Any) -> None:
        unknown = sorted(set(options) - set(self.defaults))
        if unknown:
            raise FactorseqError(f"unknown {self.name} evaluator option(s) {', '.join(unknown)}"
                                 f"; valid: {', '.join(sorted(self.defaults)) or 'none'}")
        if int(repeats) < 1:
            raise FactorseqError(f"repeats must be >= 1, got {repeats}")
        self.run, self.data, self.samples = run, data, samples
        self.repeats, self.seed = int(repeats), int(seed)
        self.options = {**self.defaults, **options}

    @abc.abstractmethod
    def evaluate(self) -> dict[str, Any]:
        """JSON-ready scores."""

    def scores(self) -> dict[str, Any]:
        """:meth:`evaluate` with the evaluator's name and the scoring version recorded (what
        ``metrics.json`` holds; see :mod:`.scoring`)."""
        from .scoring import stamp

        return stamp(self.evaluate(), self.name)

    def figures(self) -> list[tuple[str, Any]]:
        """``(title, matplotlib Figure)`` pairs for the report."""
        return []


def _run_job(job: tuple[Callable[..., Any], tuple, dict]) -> Any:
    fn, args, kw = job
    return fn(*args, **kw)


def protocol_minmax(x: np.ndarray) -> MinMaxScaler:
    """TimeGAN's [0, 1] MinMax fitted on the real windows ``x`` (N, T, D): the one place the
    protocol's scaler is made (also for scoring real data without a run)."""
    return MinMaxScaler().fit(x)


def protocol_scaler(scaler: Any, x: np.ndarray) -> Any:
    """TimeGAN's [0, 1] MinMax space of the real windows ``x`` (a MinMax fitted on them):
    ``scaler`` itself when it is that same MinMax (a run scored on the data it was fitted on,
    so its samples need no round trip). A run fitted on other windows (quantile or
    standardised inputs, a subset kept by ``--impute drop``, values hidden on purpose) is
    scored in the real windows' space, so that every run scored on ``x`` is in one space."""
    fitted = protocol_minmax(x)
    if scaler.kind == "minmax" and all(  # the same min and range, up to float32 rounding
            np.allclose(a, b, rtol=1e-6, atol=0.0)
            for a, b in ((scaler.min_, fitted.min_), (scaler.scale_, fitted.scale_))):
        return scaler
    return fitted


@evaluator("generative")
class GenerativeEvaluator(Evaluator):
    """TimeGAN's scores of a generative model: discriminative and predictive (train on
    synthetic, test on real), each ``repeats`` times (seeds ``seed .. seed + repeats - 1``),
    plus the predictive score of a GRU trained on the real data itself (the reference line).

    Real windows are ``data.x`` in TimeGAN's [0, 1] MinMax space of those windows (the run's
    scaler when it is that MinMax: see ``protocol_scaler``); synthetic ones are the
    given raw-unit ``samples`` scaled the same way, else ``run.sample(len(real), seed=seed)``.
    With fewer (or more) synthetic than real windows, the discriminator sees min(N, M) of each.

    ``evaluate()`` returns ``discriminative``, ``predictive``, ``predictive_real`` (each
    ``{mean, std, values}``), ``n_real``, ``n_synthetic``, ``repeats``, ``seed``, ``protocol``
    and ``iterations``.

    Options: ``disc_iterations`` (2000), ``pred_iterations`` (5000), ``batch_size`` (128),
    ``processes`` (1: the two trainings, predictors then discriminators, one after the other;
    2 runs them in two spawned processes with identical results, worth it only on idle
    cores; the caller's main module must then be import-safe), ``plot_windows``
    (1000: windows per set in the PCA / t-SNE figures), ``real_windows`` (``complete``: when
    the real data has gaps, only its complete windows, if at least ``min_complete`` (100);
    else, or with ``imputed``, windows filled within themselves, never the placeholders of
    ``--impute mask``; see :mod:`factorseq.metrics.gaps`; metrics.json says which).

    Fidelity (``fidelity``, default true; :mod:`.fidelity`): ``context_fid`` and
    ``correlational`` (Diffusion-TS), ``{mean, std, values}`` over the same seeds; TS2Vec
    trains ``ts2vec_iterations`` mini-batches (default: its authors' 200 / 600). ``gru``: the
    post-hoc GRU's equations, ``keras`` (default) or ``tf1`` (TimeGAN's code; timegan.py). Privacy
    (``privacy``, default true; :mod:`.privacy`): ``dcr`` and ``membership_auc`` of the
    synthetic windows against the run's saved split of its training data: training windows
    vs the held-out block (whatever ``data`` is scored). ``score_seconds`` gives the seconds
    of each group.
    """

    defaults: ClassVar[dict[str, Any]] = {"disc_iterations": 2000, "pred_iterations": 5000,
                                          "batch_size": 128, "processes": 1,
                                          "plot_windows": 1000, "space": None,
                                          "real_windows": "complete", "min_complete": 100,
                                          "fidelity": True, "privacy": True,
                                          "ts2vec_iterations": None, "gru": "keras"}

    def __init__(self, run: Any, data: Any = None, *, repeats: int = 5, samples: Any = None,
                 seed: int = 0, **options: Any) -> None:
        super().__init__(run, data, repeats=repeats, samples=samples, seed=seed, **options)
        if self.options["space"] not in (None, "scaled", "raw"):
            raise FactorseqError(f"generative evaluator option space must be scaled or raw, "
                                 f"got {self.options['space']!r}")
        if self.options["real_windows"] not in REAL_CHOICES:
            raise FactorseqError(f"generative evaluator option real_windows must be "
                                 f"{' or '.join(REAL_CHOICES)}, got "
                                 f"{self.options['real_windows']!r}")
        for key in ("disc_iterations", "pred_iterations", "batch_size", "processes",
                    "plot_windows", "min_complete"):  # the integer options
            value, least = self.options[key], 0 if key.endswith("iterations") else 1
            if isinstance(value, float) and value.is_integer():  # --set x=1e3 parses as float
                value = self.options[key] = int(value)
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise FactorseqError(f"generative evaluator option {key} must be an integer "
                                     f">= {least}, got {value!r}")
        for key in ("fidelity", "privacy"):
            if not isinstance(self.options[key], bool):
                raise FactorseqError(f"generative evaluator option {key} must be true or false, "
                                     f"got {self.options[key]!r}")
        if self.options["gru"] not in GRU_CELLS:
            raise FactorseqError(f"generative evaluator option gru must be "
                                 f"{' or '.join(GRU_CELLS)}, got {self.options['gru']!r}")
        it = self.options["ts2vec_iterations"]
        if it is not None and (isinstance(it, bool) or not float(it).is_integer() or it < 0):
            raise FactorseqError(f"generative evaluator option ts2vec_iterations must be an "
                                 f"integer >= 0, got {it!r}")
        self._arrays: tuple[np.ndarray, np.ndarray] | None = None
        self._real_info: dict[str, Any] = {}
        self._score_scaler: Any = None

    @property
    def space(self) -> str:
        """Where scores are computed: ``scaled`` (the run's [0, 1] MinMax space, TimeGAN's
        protocol for real data) or ``raw`` (the data's units); default: what the data set
        declares (``meta["eval_space"]``; TimeGAN scores its sines unscaled), else scaled."""
        if self.options["space"]:
            return self.options["space"]
        meta = getattr(self.data, "meta", None) or {}
        return meta.get("eval_space", "scaled")

    def real_and_synthetic(self) -> tuple[np.ndarray, np.ndarray]:
        """Scaled real (N, T, D) and synthetic (M, T, D) windows (computed once)."""
        if self._arrays is None:
            if self.data is None:
                self.data = self.run.load_data()
            x, self._real_info = real_windows(self.data, self.options["real_windows"],
                                              self.options["min_complete"])
            self._raw_real = x
            sc = self.score_scaler(x)
            if self.samples is not None:
                raw = np.asarray(self.samples, dtype=np.float32)
                _check_pair(x, raw)  # before the scaler sees a wrong feature count
                synthetic = sc.transform(raw)
            elif sc is self.run.scaler:  # the model's own space is the protocol's
                synthetic = self.run.sample(len(x), seed=self.seed, scaled=True)
            else:
                synthetic = sc.transform(self.run.sample(len(x), seed=self.seed))
            real = np.asarray(sc.transform(x), dtype=np.float32)
            synthetic = np.asarray(synthetic, dtype=np.float32)
            if self.space == "raw":  # score in the data's own units (TimeGAN's sines)
                real, synthetic = x, sc.inverse_transform(synthetic)
            _check_pair(real, synthetic)
            self._arrays = real, synthetic
        return self._arrays

    def score_scaler(self, x: np.ndarray | None = None) -> Any:
        """TimeGAN's [0, 1] MinMax space of the real windows (``protocol_scaler``), so that
        scores never depend on the model's preprocessing or on the windows it was fitted on."""
        if self._score_scaler is None:
            self._score_scaler = protocol_scaler(self.run.scaler,
                                                 self._raw_real if x is None else x)
        return self._score_scaler

    def evaluate(self) -> dict[str, Any]:
        real, synthetic = self.real_and_synthetic()
        o = self.options
        seeds = list(range(self.seed, self.seed + self.repeats))
        disc = {"seeds": seeds, "iterations": o["disc_iterations"], "batch_size": o["batch_size"],
                "cell": o["gru"]}
        pred = {"seeds": seeds, "iterations": o["pred_iterations"], "batch_size": o["batch_size"],
                "cell": o["gru"]}
        # each job trains all its networks side by side (see timegan.py): the predictors on
        # synthetic and on real data in one job, the discriminators in the other
        jobs = [(predictive_table, ({"predictive": synthetic, "predictive_real": real}, real),
                 pred),
                (discriminative_scores, (real, synthetic), disc)]
        if o["processes"] > 1:
            ctx = multiprocessing.get_context("spawn")  # fork is unsafe with torch threads
            with ProcessPoolExecutor(min(o["processes"], len(jobs)), mp_context=ctx) as pool:
                predictive, discriminative = pool.map(_run_job, jobs)
        else:
            predictive, discriminative = (_run_job(j) for j in jobs)
        scores = {"discriminative": summarize(discriminative),
                  **{k: summarize(v) for k, v in predictive.items()}}
        return {
            "discriminative": scores["discriminative"],
            "predictive": scores["predictive"],
            "predictive_real": scores["predictive_real"],
            "n_real": int(len(real)),
            "n_synthetic": int(len(synthetic)),
            "repeats": self.repeats,
            "seed": self.seed,
            "space": self.space,
            # whose MinMax: the run's own scaler, or one fitted on these real windows
            "scaled_by": None if self.space == "raw" else (
                "run" if self.score_scaler() is self.run.scaler else "real_windows"),
            **self._real_info,
            "protocol": f"TimeGAN (GRU discriminator {o['disc_iterations']} it., GRU predictor "
                        f"{o['pred_iterations']} it., batch {o['batch_size']}, {o['gru']} cell)",
            "iterations": {"discriminative": o["disc_iterations"],
                           "predictive": o["pred_iterations"], "batch_size": o["batch_size"]},
            **self.fidelity_privacy(real, synthetic, seeds),
        }

    def fidelity_privacy(self, real: np.ndarray, synthetic: np.ndarray, seeds: list[int]
                          ) -> dict[str, Any]:
        """Context-FID and correlational (option ``fidelity``), DCR and membership AUC
        (option ``privacy``), and the seconds of each."""
        from .fidelity import SUBSET_FRACTION, context_fid, correlational_score
        from .privacy import privacy_scores, run_split

        o, out, seconds = self.options, {}, {}
        it = None if o["ts2vec_iterations"] is None else int(o["ts2vec_iterations"])
        size = max(2, int(len(real) * SUBSET_FRACTION))  # Diffusion-TS's N / 5 subsets
        groups = {"context_fid": lambda s: context_fid(real, synthetic, seed=s, iterations=it),
                  "correlational": lambda s: correlational_score(real, synthetic, seed=s,
                                                                 size=size)}
        for name, fn in groups.items() if o["fidelity"] else ():
            t0 = time.perf_counter()
            out[name] = summarize([fn(s) for s in seeds])
            seconds[name] = round(time.perf_counter() - t0, 2)
        if o["privacy"]:
            t0 = time.perf_counter()
            split = run_split(self.run)
            if split is None:
                out.update(dcr=None, membership_auc=None,
                           privacy_skipped="the run held out no windows (no held-out block "
                                           "and no validation split)")
            else:
                scale = (lambda a: a) if self.space == "raw" else self.score_scaler().transform
                train, holdout = (np.asarray(scale(a), dtype=np.float32) for a in split)
                out.update(privacy_scores(train, holdout, synthetic, seeds=seeds,
                                          split=self.run.split.summary()))
            seconds["privacy"] = round(time.perf_counter() - t0, 2)
        return {**out, "score_seconds": seconds} if seconds else out

    def figures(self) -> list[tuple[str, Any]]:
        from .plots import pca_tsne_figures, samples_figure

        real, synthetic = self.real_and_synthetic()
        names = getattr(self.data, "feature_names", None)
        # sample windows in the data's own units; the 2-D views in the scaled space (TimeGAN)
        raw_real = self._raw_real  # the windows scored against (complete or imputed)
        raw_syn = synthetic if self.space == "raw" else np.asarray(
            self.score_scaler().inverse_transform(synthetic), dtype=np.float32)
        figs = [("real vs synthetic windows",
                 samples_figure(raw_real, raw_syn, names, seed=self.seed))]
        for title, fig in pca_tsne_figures(real, synthetic, n=self.options["plot_windows"],
                                           seed=self.seed):
            figs.append((f"{title}: real (red) vs synthetic (blue)", fig))
        return figs


def _check_pair(real: np.ndarray, synthetic: np.ndarray) -> None:
    if synthetic.ndim != 3 or synthetic.shape[1:] != real.shape[1:]:
        raise ShapeError(f"synthetic windows have shape {tuple(synthetic.shape)} but the real "
                         f"data has shape {tuple(real.shape)}: (time, features) must match")
