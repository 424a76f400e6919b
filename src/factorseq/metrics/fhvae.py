"""The ``fhvae`` evaluator: does z2 hold the sequence factor (speaker) and z1 the segment factor
(content)? All windows are segments (segments, time, features) with a ``seq_id``.

Scores on held-out sequences (the data's ``.test`` split, else a seeded fraction of sequences):
- ``speaker_eer``: speaker verification equal error rate, cosine score between the closed-form
  mu2 of every pair of held-out sequences (all target and non-target trials).
- ``speaker_acc_z2`` / ``speaker_acc_z1`` / ``content_acc_z1`` / ``content_acc_z2``: multinomial
  logistic-regression probes fit on the training segments' posterior means, scored on the test
  segments (speaker and content = the ``speaker`` / ``digit`` extras; options
  ``speaker_key`` / ``content_key`` name another extra, ``y`` or ``none``).
- ``conversion_speaker_acc`` / ``conversion_content_acc``: every test sequence is converted to a
  random other speaker (z2 -> z2 - mu2_source + mu2_target, mu2_target from one test sequence of
  that speaker) and decoded; MLP probes fit on real training features (scaled log-mel
  segments) must name the target speaker and the source content. Averaged over ``repeats`` draws of
  targets. Reference points: the same probes on real test features and on reconstructions.
"""
from __future__ import annotations

import warnings
from typing import Any, ClassVar

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ..data.container import SequenceData
from ..data.split import sequence_split
from ..errors import FactorseqError
from .evaluators import Evaluator, evaluator
from .verification import cosine_trials, equal_error_rate  # noqa: F401  (also re-exported)


def fit_probe(x: np.ndarray, y: np.ndarray, max_iter: int = 1000, seed: int = 0):
    """Standardise + multinomial logistic regression on features (n, d)."""
    probe = make_pipeline(StandardScaler(),
                          LogisticRegression(max_iter=max_iter, random_state=seed))
    with warnings.catch_warnings():  # an unconverged probe is still a (weaker) probe
        warnings.simplefilter("ignore", ConvergenceWarning)
        return probe.fit(x, y)


def overlap_average(segments: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Frames (total, D) from segments (n, T, D) starting at frame ``starts`` (n,): each frame is
    the mean of the segments covering it (segments cut with a hop smaller than T overlap)."""
    n, t, d = segments.shape
    total = int(starts.max()) + t
    acc, cnt = np.zeros((total, d)), np.zeros((total, 1))
    for s, seg in zip(starts, segments, strict=True):
        acc[s:s + t] += seg
        cnt[s:s + t] += 1
    return (acc / np.maximum(cnt, 1)).astype(np.float32)


def fit_feature_probe(x: np.ndarray, y: np.ndarray, max_iter: int = 200, seed: int = 0):
    """Probe of real features (n, T*D): standardise + one-hidden-layer MLP (256 ReLU units,
    early stopping on 10% of the data). On fsdd-strings a linear probe of raw log-mel segments
    names the digit of only ~58% of real test segments, this one ~91%, so conversion scores
    measure the conversion rather than the probe."""
    from sklearn.neural_network import MLPClassifier

    probe = make_pipeline(StandardScaler(), MLPClassifier(
        (256,), max_iter=max_iter, early_stopping=True, random_state=seed))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return probe.fit(x, y)


def code_roles(model) -> dict[str, str]:
    """Names of ``model``'s segment-level and sequence-level codes (one of each; FHVAE's z1 and
    z2), read from its ``code_specs``; FactorseqError naming what is missing."""
    model.require("encodes")
    model.require("decodes")
    names = {}
    for role in ("segment", "sequence"):
        found = [s.name for s in model.code_specs() if s.role == role and s.decoded]
        if len(found) != 1:
            raise FactorseqError(f"{model.name} has {len(found)} decoded {role}-level codes; "
                                 "conversion needs exactly one")
        names[role] = found[0]
    return names


def convert(model, x: Any, shift: Any) -> torch.Tensor:
    """Sequence-factor conversion through the public contract: encode segments ``x``
    (batch, time, features) (scaled), add ``shift`` ((dim,) or (batch, dim): mu_target -
    mu_source, Hsu et al.'s z2 -> z2 - mu2_source + mu2_target) to the sequence-level code,
    decode. A zero shift is the reconstruction."""
    seq = code_roles(model)["sequence"]
    codes = model.encode(x)
    codes[seq] = codes[seq] + torch.as_tensor(shift, dtype=codes[seq].dtype)
    return model.decode(codes).cpu()


def sequence_means(model, codes: Any, seq_id: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(per-sequence value of the sequence-level code (S, dim), each window's row in it (N,))
    via the contract's ``sequence_codes`` (FHVAE: closed-form mu2)."""
    seq = code_roles(model)["sequence"]
    ids, per_seq = model.sequence_codes({seq: torch.as_tensor(codes[seq])}, seq_id)
    inv = np.searchsorted(np.asarray(ids), np.asarray(seq_id))
    return np.asarray(per_seq[seq]), inv


def _subsample(n: int, k: int, rng: np.random.Generator) -> np.ndarray:
    return np.sort(rng.choice(n, size=k, replace=False)) if n > k else np.arange(n)


@evaluator("fhvae")
class FHVAEEvaluator(Evaluator):
    """Disentanglement, speaker verification and conversion scores of an FHVAE run."""

    defaults: ClassVar[dict[str, Any]] = {
        "speaker_key": "speaker", "content_key": "digit", "test_fraction": 0.2,
        "probe_max_train": 20000, "feature_probe_max_train": 20000, "tsne_points": 1000,
        "probe_iterations": 1000, "feature_probe_iterations": 200}

    def __init__(self, run, data: SequenceData | None = None, *, repeats: int = 5,
                 samples: Any = None, seed: int = 0, **options: Any) -> None:
        super().__init__(run, data, repeats=repeats, samples=samples, seed=seed, **options)
        self.opt = self.options
        data = data if data is not None else run.load_data()
        self.train, self.test = sequence_split(data, float(self.opt["test_fraction"]),
                                               self.seed, "fhvae evaluation")
        self.model = run.model.eval()
        self.names = code_roles(self.model)  # z1 = the segment code, z2 = the sequence code
        self._cache: dict[str, Any] = {}

    # --- data -----------------------------------------------------------------------------
    def _labels(self, data: SequenceData, key: str) -> np.ndarray | None:
        """Per-segment labels named by option ``key``: an extra of the data, ``y`` (the
        windows' labels, e.g. a table's --label-column), or none (``""``/``none``)."""
        name = self.opt[key]
        if name in (None, "", "none"):
            return None
        if name == "y":
            if data.y is not None and data.y_mask is not None and not data.y_mask.all():
                raise FactorseqError(f"{key}=y needs every window labelled")
            return data.y
        v = data.extras.get(name)
        if v is not None and np.ndim(v) != 1:
            raise FactorseqError(f"{key}={name!r} is not one label per segment")
        return None if v is None else np.asarray(v)

    def _encoded(self) -> dict[str, Any]:
        """Scaled features, posterior means and closed-form mu2 of both splits (cached)."""
        if "train" in self._cache:
            return self._cache
        for name, d in (("train", self.train), ("test", self.test)):
            x = self.run.scaler.transform(d.x)  # windows on disk stay there for train
            if name == "test":
                x = np.asarray(x)
            codes = self.model.encode(x)  # on-disk windows are encoded chunk by chunk
            mu2, inv = sequence_means(self.model, codes, d.seq_id)
            self._cache[name] = dict(x=x, z1=codes[self.names["segment"]].cpu().numpy(),
                                     z2=codes[self.names["sequence"]].cpu().numpy(),
                                     ids=np.unique(d.seq_id), mu2=mu2, inv=inv,
                                     speaker=self._labels(d, "speaker_key"),
                                     content=self._labels(d, "content_key"))
        return self._cache

    @staticmethod
    def _per_sequence(labels: np.ndarray, inv: np.ndarray, n: int) -> np.ndarray:
        """The most frequent segment label of each sequence (n,)."""
        out = np.empty(n, dtype=labels.dtype)
        for s in range(n):
            vals, counts = np.unique(labels[inv == s], return_counts=True)
            out[s] = vals[np.argmax(counts)]
        return out

    # --- metrics --------------------------------------------------------------------------
    def _probe_scores(self, tr: dict, te: dict) -> dict[str, float]:
        rng = np.random.default_rng(self.seed)
        idx = _subsample(len(tr["z1"]), int(self.opt["probe_max_train"]), rng)
        out = {}
        for task in ("speaker", "content"):
            if tr[task] is None or te[task] is None:
                continue
            for z in ("z1", "z2"):
                probe = fit_probe(tr[z][idx], tr[task][idx], int(self.opt["probe_iterations"]),
                                  self.seed)
                out[f"{task}_acc_{z}"] = float(np.mean(probe.predict(te[z]) == te[task]))
            vals, counts = np.unique(te[task], return_counts=True)
            out[f"{task}_chance"] = float(counts.max() / counts.sum())
        return out

    def _conversion_scores(self, tr: dict, te: dict) -> dict[str, Any]:
        if tr["speaker"] is None or te["speaker"] is None:
            return {}
        rng = np.random.default_rng(self.seed)
        flat = lambda x: x.reshape(len(x), -1)  # noqa: E731
        idx = _subsample(len(tr["x"]), int(self.opt["feature_probe_max_train"]), rng)
        it = int(self.opt["feature_probe_iterations"])
        probes = {task: fit_feature_probe(flat(tr["x"][idx]), tr[task][idx], it, self.seed)
                  for task in ("speaker", "content") if tr[task] is not None}
        out: dict[str, Any] = {}
        recon = self.model.reconstruct(te["x"]).cpu().numpy()
        for task, probe in probes.items():
            out[f"feature_{task}_acc"] = float(np.mean(probe.predict(flat(te["x"]))
                                                       == te[task]))
            out[f"reconstruction_{task}_acc"] = float(np.mean(probe.predict(flat(recon))
                                                              == te[task]))
        out["reconstruction_mse"] = float(np.mean((recon - te["x"]) ** 2))
        seq_spk = self._per_sequence(te["speaker"], te["inv"], len(te["ids"]))
        speakers = np.unique(seq_spk)
        if len(speakers) < 2:
            return out
        spk_acc, cnt_acc = [], []
        for r in range(self.repeats):
            g = np.random.default_rng([self.seed, r])
            conv, target_spk = self._convert_all(te, seq_spk, speakers, g)
            spk_acc.append(float(np.mean(probes["speaker"].predict(flat(conv)) == target_spk)))
            if "content" in probes:
                cnt_acc.append(float(np.mean(probes["content"].predict(flat(conv))
                                             == te["content"])))
        out["conversion_speaker_acc"] = float(np.mean(spk_acc))
        out["conversion_speaker_acc_std"] = float(np.std(spk_acc))
        if cnt_acc:
            out["conversion_content_acc"] = float(np.mean(cnt_acc))
            out["conversion_content_acc_std"] = float(np.std(cnt_acc))
        return out

    def _convert_all(self, te: dict, seq_spk: np.ndarray, speakers: np.ndarray,
                     g: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Every test segment converted to a random other speaker of its sequence's choosing:
        returns converted segments (n, T, D) and the target speaker of each."""
        n_seq = len(te["ids"])
        tgt_seq = np.empty(n_seq, dtype=np.int64)
        for s in range(n_seq):
            other = speakers[speakers != seq_spk[s]]
            spk = other[g.integers(len(other))]
            tgt_seq[s] = g.choice(np.flatnonzero(seq_spk == spk))
        shift = te["mu2"][tgt_seq] - te["mu2"]  # per sequence: mu2_target - mu2_source
        conv = self.model.decode({self.names["segment"]: torch.as_tensor(te["z1"]),
                                  self.names["sequence"]: torch.as_tensor(
                                      te["z2"] + shift[te["inv"]])}).cpu().numpy()
        return conv, seq_spk[tgt_seq][te["inv"]]

    def evaluate(self) -> dict[str, Any]:
        enc = self._encoded()
        tr, te = enc["train"], enc["test"]
        out: dict[str, Any] = {"n_train_segments": int(len(tr["z1"])),
                               "n_test_segments": int(len(te["z1"])),
                               "n_test_sequences": int(len(te["ids"]))}
        if te["speaker"] is not None:
            seq_spk = self._per_sequence(te["speaker"], te["inv"], len(te["ids"]))
            scores, same = cosine_trials(te["mu2"], seq_spk)
            if same.any() and not same.all():
                out["speaker_eer"] = equal_error_rate(scores, same)
                out["n_trials"] = int(len(scores))
                out["n_target_trials"] = int(same.sum())
        out.update(self._probe_scores(tr, te))
        out.update(self._conversion_scores(tr, te))
        if len(out) == 3:
            raise FactorseqError(f"the data has no {self.opt['speaker_key']!r} or "
                                 f"{self.opt['content_key']!r} labels to score the factors "
                                 "with (set speaker_key=/content_key=)")
        return out

    # --- figures --------------------------------------------------------------------------
    def figures(self) -> list[tuple[str, Any]]:
        import matplotlib.pyplot as plt
        from sklearn.manifold import TSNE

        enc = self._encoded()
        te = enc["test"]
        figs = []
        rng = np.random.default_rng(self.seed)
        idx = _subsample(len(te["z1"]), int(self.opt["tsne_points"]), rng)
        colourings = [(k, self._names(k, te[k][idx])) for k in ("speaker", "content")
                      if te[k] is not None]
        if colourings:
            fig, axes = plt.subplots(len(colourings), 2, figsize=(10, 4.5 * len(colourings)),
                                     squeeze=False)
            for j, z in enumerate(("z1", "z2")):
                emb = TSNE(2, init="pca", perplexity=min(30.0, max(5.0, len(idx) / 10)),
                           random_state=self.seed).fit_transform(te[z][idx])
                for i, (name, lab) in enumerate(colourings):
                    ax = axes[i, j]
                    for v in np.unique(lab):
                        m = lab == v
                        ax.scatter(emb[m, 0], emb[m, 1], s=4, label=str(v))
                    ax.set_title(f"t-SNE of {z} (test segments) by {self.opt[name + '_key']}")
                    ax.legend(markerscale=3, fontsize=7, ncol=2)
            fig.tight_layout()
            figs.append(("t-SNE of z1 and z2 coloured by speaker and content", fig))
        fig = self._conversion_figure()
        if fig is not None:
            figs.append(("log-mel: original vs converted to another speaker", fig))
        return figs

    def _conversion_figure(self):
        """Source sequence, its conversion to another speaker, and that speaker's sequence."""
        import matplotlib.pyplot as plt

        te = self._encoded()["test"]
        if te["speaker"] is None or len(te["ids"]) < 2:
            return None
        seq_spk = self._per_sequence(te["speaker"], te["inv"], len(te["ids"]))
        others = np.flatnonzero(seq_spk != seq_spk[0])
        if not len(others):
            return None
        src, tgt = 0, int(others[0])

        def frames(segs: np.ndarray, s: int) -> np.ndarray:
            m = np.flatnonzero(te["inv"] == s)
            starts = self._starts(m)
            return overlap_average(self.run.scaler.inverse_transform(segs[m]), starts)

        m = np.flatnonzero(te["inv"] == src)
        conv = convert(self.model, te["x"][m], te["mu2"][tgt] - te["mu2"][src]).numpy()
        full = np.zeros_like(te["x"])
        full[m] = conv
        s_name, t_name = self._names("speaker", seq_spk[[src, tgt]])
        panels = [(f"source (speaker {s_name})", frames(te["x"], src)),
                  (f"converted to speaker {t_name}", frames(full, src)),
                  (f"a sequence of speaker {t_name}", frames(te["x"], tgt))]
        fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
        lo = min(p[1].min() for p in panels)
        hi = max(p[1].max() for p in panels)
        for ax, (title, f) in zip(axes, panels, strict=True):
            ax.imshow(f.T, origin="lower", aspect="auto", vmin=lo, vmax=hi, cmap="magma")
            ax.set_title(title)
            ax.set_xlabel("frame")
            ax.set_ylabel("mel bin")
        fig.tight_layout()
        return fig

    def _names(self, task: str, labels: np.ndarray) -> np.ndarray:
        """Speaker indices as names where the data's meta lists them (``speakers``)."""
        names = self.test.meta.get("speakers")
        if task == "speaker" and names and np.issubdtype(labels.dtype, np.integer) \
                and labels.min() >= 0 and labels.max() < len(names):
            return np.asarray(names)[labels]
        return labels

    def _starts(self, rows: np.ndarray) -> np.ndarray:
        """First frame of test segments ``rows`` within their sequence (segment_index x hop)."""
        hop = int(self.test.meta.get("segment_hop", self.model.config.seq_len))
        idx = self.test.extras.get("segment_index")
        if idx is None:
            return np.arange(len(rows)) * hop
        return np.asarray(idx)[rows].astype(np.int64) * hop
