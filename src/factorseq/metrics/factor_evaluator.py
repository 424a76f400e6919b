"""The ``disentanglement`` evaluator: which factor of a sequence each part of a model's code
holds, on data whose factors are known. Any model that ``encodes``: its codes come from the
contract (``Run.encode``) and are chosen by their CodeSpec role (:func:`codes_of`); the
per-sequence static code from ``model.sequence_codes``; never a model's name or internals.

The data names its factors in ``meta["factors"]`` ({name: "sequence" | "segment"}, or
{"static": [names], "dynamic": [names]}: :func:`factor_roles`; integer
``extras[name]``, continuous factors binned), e.g. ``known-factors`` or ``fsdd-strings``
(speaker, digit); option ``factors`` overrides it. Scores, on the data's ``.test`` split
(else a seeded ``test_fraction`` of its sequences), with predictors fit on (at most
``max_train``, 3000) training windows:

- ``mig``, ``modularity`` (+ ``mig_per_factor``) on the test windows; ``dci_disentanglement``,
  ``dci_completeness``, ``dci_informativeness`` and ``sap`` trained on training windows,
  scored on test windows (:mod:`factorseq.metrics.disentanglement`); all over every code
  part concatenated and all known factors. ``importance_by_role``: per factor, the share of
  its DCI importance held by the sequence-level / segment-level / whole-window parts.
- ``eer_static`` / ``eer_dynamic`` (``eer_latent`` for a whole-window code): speaker
  verification EER from the sequence-level parts per test sequence (``sequence_codes``) /
  from the segment-level (latent) parts averaged over each test sequence
  (:mod:`factorseq.metrics.verification`; speakers = ``speaker_key`` extra). Low static and
  high (~0.5) dynamic EER = the speaker sits in the static part only.
- ``symmetry`` when the data can be re-generated with one factor changed (known-factors):
  :mod:`factorseq.metrics.symmetry`.
- ``category_accuracy`` for a categorical code (``probs`` part, e.g. InfoGAN's c_cat):
  accuracy of its argmax on each factor after the best matching of categories to classes
  (Hungarian); ``category_accuracy_best`` and the part:factor it was reached on.
- The scored parts are those with role sequence, segment, latent or probs (one vector per
  window); ``steps`` parts (one code per time step) and ``label`` parts are left out.
- ``seconds_per_metric`` (wall) and ``cpu_seconds_per_metric`` (this process). Option
  ``metrics`` (list) picks a subset: mig, modularity, dci, sap, eer, symmetry, category.
"""
from __future__ import annotations

import time
from typing import Any, ClassVar

import numpy as np
import torch

from ..data import known_factors
from ..data.container import SequenceData
from ..data.split import sequence_split
from ..errors import FactorseqError
from .disentanglement import dci, matched_accuracy, mig_per_factor, modularity, sap
from .evaluators import Evaluator, evaluator
from .symmetry import by_role, symmetry
from .verification import majority_labels, sequence_eer, trials_eer

METRICS = ("mig", "modularity", "dci", "sap", "eer", "symmetry", "category")
SCORED_ROLES = ("sequence", "segment", "latent", "probs")  # one vector per window
EER_KEYS = {"sequence": "eer_static", "segment": "eer_dynamic", "latent": "eer_latent"}


def codes_of(run: Any, x: np.ndarray) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Codes of windows ``x`` (n, T, D) in the run's scaled space, by part (numpy), and the
    role of each part from the model's CodeSpecs (``sequence``, ``segment``, ``latent``,
    ``probs``, ``steps``, ...): the contract's ``Run.encode``, nothing model-specific."""
    run.model.require("encodes")  # one-line error for a model without an encoder
    codes = run.encode(np.asarray(x, dtype=np.float32), scaled=True)
    return dict(codes), {k: s.role for k, s in codes.specs.items() if k in codes}


def factor_roles(factors: Any) -> dict[str, str]:
    """The data's named factors as {name: "sequence" | "segment"}: ``meta["factors"]`` is that
    mapping already, or {"static": [names], "dynamic": [names]} (static = constant along a
    sequence, dynamic = changing within it, as the Sprites set declares them). {} if neither."""
    if not isinstance(factors, dict):
        return {}
    if set(factors) <= {"static", "dynamic"} and all(isinstance(v, (list, tuple))
                                                     for v in factors.values()):
        role = {"static": "sequence", "dynamic": "segment"}
        return {str(n): role[k] for k, names in factors.items() for n in names}
    return {str(k): str(v) for k, v in factors.items()}


@evaluator("disentanglement")
class DisentanglementEvaluator(Evaluator):
    """MIG, DCI, SAP, modularity, static/dynamic EER and symmetry of a run's code."""

    defaults: ClassVar[dict[str, Any]] = {
        "factors": None, "speaker_key": "speaker", "metrics": None, "max_train": 3000,
        "max_test": 10000, "bins": 20, "actions": 100, "pairs": 5000, "test_fraction": 0.2}

    def __init__(self, run: Any, data: SequenceData | None = None, *, repeats: int = 5,
                 samples: Any = None, seed: int = 0, **options: Any) -> None:
        super().__init__(run, data, repeats=repeats, samples=samples, seed=seed, **options)
        run.model.require("encodes")  # before any work
        o = self.options
        wanted = o["metrics"] if o["metrics"] is not None else list(METRICS)
        wanted = [wanted] if isinstance(wanted, str) else list(wanted)
        unknown = sorted(set(wanted) - set(METRICS))
        if unknown:
            raise FactorseqError(f"unknown metric(s) {', '.join(unknown)}; choose from "
                                 f"{', '.join(METRICS)}")
        self.wanted = wanted
        for key in ("max_train", "max_test", "bins", "actions", "pairs"):
            v = o[key]
            if isinstance(v, bool) or not float(v).is_integer() or v < 2:
                raise FactorseqError(f"disentanglement option {key} must be an integer >= 2, "
                                     f"got {v!r}")
            o[key] = int(v)
        data = data if data is not None else run.load_data()
        self.train, self.test = sequence_split(data, float(o["test_fraction"]), self.seed,
                                               "disentanglement evaluation")
        roles = factor_roles(o["factors"] if o["factors"] is not None
                             else data.meta.get("factors"))
        if not roles:
            raise FactorseqError("the data names no factors (meta 'factors'); give them with "
                                 "--set 'factors={name: sequence, other: segment}'")
        bad = [f for f in roles if f not in self.test.extras or f not in self.train.extras]
        if bad:
            raise FactorseqError(f"factor(s) {', '.join(bad)} are not per-window extras of the "
                                 f"data; extras: {', '.join(sorted(self.test.extras))}")
        self.factor_roles = roles

    def _factors(self, data: SequenceData, rows: np.ndarray | None = None) -> np.ndarray:
        cols = [np.asarray(data.extras[f]) for f in self.factor_roles]
        f = np.stack(cols, axis=1)
        if not np.issubdtype(f.dtype, np.integer):
            raise FactorseqError("factor extras must be integers (bin continuous factors)")
        return f if rows is None else f[rows]

    def _encode(self, data: SequenceData) -> tuple[dict[str, np.ndarray], dict[str, str]]:
        return codes_of(self.run, np.asarray(self.run.scaler.transform(data.x)))

    def _encoded(self, rng: np.random.Generator) -> dict[str, Any]:
        """Codes of the test windows, and of at most ``max_train`` training windows when a
        predictor is fit (DCI, SAP): parts concatenated (n, dims), with the factors (n, K)."""
        o = self.options
        n_tr = self.train.n_windows
        tr_rows = np.sort(rng.choice(n_tr, o["max_train"], replace=False)) \
            if n_tr > o["max_train"] else np.arange(n_tr)
        codes, roles = self._encode(self.test)
        parts = [k for k in codes if roles.get(k) in SCORED_ROLES]
        if not parts:
            raise FactorseqError("the model's code has no sequence, segment or latent part")

        def flat(c: dict[str, np.ndarray]) -> np.ndarray:
            return np.concatenate([c[k].reshape(len(c[k]), -1) for k in parts], 1)

        enc = {"codes": codes, "roles": roles, "parts": parts, "z_te": flat(codes),
               "f_te": self._factors(self.test), "z_tr": None, "f_tr": None}
        n_te = len(enc["z_te"])
        enc["te_rows"] = np.sort(rng.choice(n_te, o["max_test"], replace=False)) \
            if n_te > o["max_test"] else np.arange(n_te)
        if {"dci", "sap"} & set(self.wanted):
            train = self.train.subset(tr_rows)
            enc["z_tr"], enc["f_tr"] = flat(self._encode(train)[0]), self._factors(train)
        return enc

    def evaluate(self) -> dict[str, Any]:
        o = self.options
        secs: dict[str, float] = {}
        cpu: dict[str, float] = {}
        t0, c0 = time.perf_counter(), time.process_time()
        enc = self._encoded(np.random.default_rng(self.seed))
        secs["encode"], cpu["encode"] = time.perf_counter() - t0, time.process_time() - c0
        codes_te, roles, parts = enc["codes"], enc["roles"], enc["parts"]
        z_tr, f_tr, te_rows = enc["z_tr"], enc["f_tr"], enc["te_rows"]
        z_te, f_te = enc["z_te"][te_rows], enc["f_te"][te_rows]
        n_te = len(enc["z_te"])
        names = list(self.factor_roles)
        out: dict[str, Any] = {
            "factors": dict(self.factor_roles),
            "code_parts": {k: [roles[k], int(codes_te[k].reshape(n_te, -1).shape[1])]
                           for k in parts},
            "n_train_windows": 0 if z_tr is None else int(len(z_tr)),
            "n_test_windows": int(n_te),
            "n_test_sequences": int(len(np.unique(self.test.seq_id)))}

        def timed(name: str, fn):
            if name in self.wanted:
                t, c = time.perf_counter(), time.process_time()
                fn()
                secs[name], cpu[name] = time.perf_counter() - t, time.process_time() - c

        def do_mig():
            per = mig_per_factor(z_te, f_te, o["bins"])
            out["mig"] = float(np.nanmean(per)) if np.isfinite(per).any() else None
            out["mig_per_factor"] = {n: _num(v) for n, v in zip(names, per, strict=True)}

        def do_dci():
            res = dci(z_tr, f_tr, z_te, f_te, self.seed)
            imp = np.asarray(res.pop("dci_importance"))
            out.update(res)
            out["importance_by_role"] = _by_role(imp, [roles[k] for k in parts],
                                                 [codes_te[k].reshape(n_te, -1).shape[1]
                                                  for k in parts], names)

        timed("mig", do_mig)
        timed("modularity", lambda: out.update(modularity=modularity(z_te, f_te, o["bins"])))
        timed("dci", do_dci)
        timed("sap", lambda: out.update(sap=sap(z_tr, f_tr, z_te, f_te)))
        timed("eer", lambda: out.update(self._eer(codes_te, roles)))
        timed("symmetry", lambda: out.update(self._symmetry(codes_te, roles)))
        timed("category", lambda: out.update(self._category(codes_te, roles)))
        out["seconds_per_metric"] = {k: round(v, 3) for k, v in secs.items()}
        out["cpu_seconds_per_metric"] = {k: round(v, 3) for k, v in cpu.items()}
        return out

    def _eer(self, codes: dict[str, np.ndarray], roles: dict[str, str]) -> dict[str, Any]:
        """Static EER from the model's per-sequence codes (``sequence_codes``: FHVAE's
        closed-form mu2, else the mean over the sequence); dynamic / whole-window EER from the
        segment / latent parts averaged over each sequence."""
        labels = self.test.extras.get(self.options["speaker_key"])
        if labels is None or np.ndim(labels) != 1:
            return {"eer_note": f"no per-window {self.options['speaker_key']!r} extra"}
        seq_id, labels = np.asarray(self.test.seq_id), np.asarray(labels)
        out: dict[str, Any] = {}
        for role, z in by_role(codes, roles).items():
            if role != "sequence":
                out[EER_KEYS[role]] = sequence_eer(z, seq_id, labels)
        static = [k for k in codes if roles.get(k) == "sequence"]
        if static:
            ids, per_seq = self.run.model.sequence_codes(
                {k: torch.as_tensor(codes[k]) for k in static}, torch.as_tensor(seq_id))
            emb = np.concatenate([np.asarray(per_seq[k]) for k in static], axis=1)
            if not np.array_equal(np.asarray(ids), np.unique(seq_id)):
                raise FactorseqError("sequence_codes must return the sorted sequence ids")
            out["eer_static"] = trials_eer(emb, majority_labels(seq_id, labels))
        ids = np.unique(seq_id)
        out["eer_trials"] = int(len(ids) * (len(ids) - 1) // 2)
        return out

    def _category(self, codes: dict[str, np.ndarray], roles: dict[str, str]) -> dict[str, Any]:
        """Accuracy of each categorical code (``probs`` part: its argmax) on every discrete
        factor after the best one-to-one matching of categories to classes (Hungarian)."""
        f = self._factors(self.test)
        acc = {k: {name: matched_accuracy(np.asarray(codes[k]).argmax(1), f[:, j])
                   for j, name in enumerate(self.factor_roles)}
               for k in codes if roles.get(k) == "probs"}
        if not acc:
            return {}
        best = max(((v, k, name) for k, d in acc.items() for name, v in d.items()))
        return {"category_accuracy": acc, "category_accuracy_best": best[0],
                "category_best_match": f"{best[1]}:{best[2]}"}

    def _symmetry(self, codes: dict[str, np.ndarray], roles: dict[str, str]) -> dict[str, Any]:
        test = self.test
        if not known_factors.can_act(test):
            return {"symmetry": None}
        scaler = self.run.scaler

        def act(seq: int, factor: str, rng: np.random.Generator, segment: int | None):
            rows, x = known_factors.random_action(test, seq, factor, rng, segment)
            return rows, np.asarray(scaler.transform(x))

        factor_roles = {f: r for f, r in self.factor_roles.items()
                        if f in known_factors.FACTORS}
        res = symmetry(lambda x: codes_of(self.run, x)[0], act, codes, test.seq_id,
                       test.extras["segment_index"], factor_roles, roles,
                       actions=self.options["actions"], seed=self.seed,
                       pairs=self.options["pairs"])
        return {"symmetry": res}


def _num(v: float) -> float | None:
    return float(v) if np.isfinite(v) else None


def _by_role(imp: np.ndarray, part_roles: list[str], dims: list[int], names: list[str]
             ) -> dict[str, dict[str, float]]:
    """Per factor, the share of its importance (rows of ``imp`` = latents) held by each role."""
    role_of = np.repeat(part_roles, dims)
    out = {}
    for k, name in enumerate(names):
        total = imp[:, k].sum()
        out[name] = {r: float(imp[role_of == r, k].sum() / total) if total > 0 else 0.0
                     for r in dict.fromkeys(part_roles)}
    return out
