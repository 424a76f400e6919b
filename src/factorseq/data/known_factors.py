"""``known-factors``: a synthetic multichannel corpus whose generative factors are all known.

Every window is one *segment* (time = ``segment`` steps, features = ``channels``) of a
*sequence*; sequences belong to *speakers* (profiles). Sequence-level factors are fixed along
a sequence (all sequences of a speaker share them); segment-level factors are drawn anew for
every segment. A window is

    x[t, d] = M[d, 0] * amplitude * wave_shape(frequency * t / T + phase / (2 pi))
              + M[d, 1] * regime_curve[t] + noise_std * eps[t, d],      t = 0 .. T-1

- sequence-level: ``amplitude`` ~ U(0.5, 2), ``frequency`` ~ U(1, 3) cycles per segment,
  ``shape`` in {sine, triangle, square, sawtooth}, ``mixing`` = which of 4 fixed channel
  loadings M (channels x 2; drawn once from a constant seed, the same in every corpus);
- segment-level: ``regime`` in {high (+1), low (-1), rising (-1 -> 1), falling (1 -> -1)},
  ``phase`` ~ U(0, pi) (half a cycle, so that one number can order it);
- eps ~ N(0, 1) from a generator keyed by (seed, split, sequence): re-rendering a sequence
  with one factor changed (:func:`regenerate`) keeps its noise.

Every factor is stored beside the data: ``extras[name]`` holds ints (continuous factors binned
into ``bins`` equal-width bins of their range), ``extras[name + "_value"]`` the continuous
values, ``extras["speaker"]`` the profile and ``extras["segment_index"]`` the position in the
sequence; ``meta["factors"]`` maps each factor to ``"sequence"`` or ``"segment"``. The
``.test`` split holds sequences of *other* speakers (new profiles drawn from the same priors;
seeded by ``options["test_seed"]``, so every run is scored on the same sequences).
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np

from ..errors import FactorseqError
from .config import DataConfig
from .config import int_option as _int
from .container import SequenceData
from .registry import dataset

GENERATOR = "known_factors"  # meta["generator"]: data that regenerate() can act on
SHAPES = ("sine", "triangle", "square", "sawtooth")
REGIMES = ("high", "low", "rising", "falling")
N_MIXING = 4
# continuous factors and the range of their uniform prior
CONTINUOUS = {"amplitude": (0.5, 2.0), "frequency": (1.0, 3.0), "phase": (0.0, math.pi)}
DISCRETE = {"shape": len(SHAPES), "mixing": N_MIXING, "regime": len(REGIMES)}
FACTORS = {"amplitude": "sequence", "frequency": "sequence", "shape": "sequence",
           "mixing": "sequence", "regime": "segment", "phase": "segment"}
_MIXING_SEED = 20170912  # the channel loadings are part of the corpus' definition


@dataclasses.dataclass(frozen=True)
class Spec:
    """How windows are rendered (saved in ``meta["generator_params"]``)."""

    segment: int = 20
    channels: int = 4
    noise: float = 0.1
    bins: int = 4
    min_segments: int = 8
    max_segments: int = 12


def mixing_patterns(channels: int) -> np.ndarray:
    """The ``N_MIXING`` channel loadings (N_MIXING, channels, 2): column 0 weighs the
    oscillation, column 1 the regime curve; each column has unit root-mean-square."""
    m = np.random.default_rng(_MIXING_SEED).standard_normal((N_MIXING, channels, 2))
    return m / np.sqrt((m ** 2).mean(axis=1, keepdims=True))


def waves(shape: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Unit waveforms at cycle positions ``u`` (n, T) for shape indices ``shape`` (n,)."""
    s = np.sin(2 * np.pi * u)
    table = np.stack([s, (2 / np.pi) * np.arcsin(s),          # sine, triangle
                      np.tanh(4 * s) / np.tanh(4.0),          # smoothed square
                      2 * (u - np.floor(u)) - 1])             # sawtooth
    return table[shape, np.arange(len(shape))]


def regime_curves(length: int) -> np.ndarray:
    """(len(REGIMES), length): high, low, rising, falling."""
    ramp = np.linspace(-1.0, 1.0, length)
    return np.stack([np.ones(length), -np.ones(length), ramp, -ramp])


def noise_of(key: tuple[int, int], seq: int, n: int, spec: Spec) -> np.ndarray:
    """The noise eps (n, T, D) of sequence ``seq`` of the split keyed ``key``."""
    rng = np.random.default_rng([key[0], key[1], seq + 1])
    return rng.standard_normal((n, spec.segment, spec.channels))


def render(f: dict[str, np.ndarray], eps: np.ndarray, spec: Spec) -> np.ndarray:
    """Windows (n, T, D) float32 from per-window factor values ``f`` (each (n,); continuous
    ones as values) and noise ``eps`` (n, T, D)."""
    t = np.arange(spec.segment) / spec.segment
    u = f["frequency"][:, None] * t[None, :] + f["phase"][:, None] / (2 * np.pi)
    osc = f["amplitude"][:, None] * waves(np.asarray(f["shape"], dtype=np.int64), u)
    reg = regime_curves(spec.segment)[np.asarray(f["regime"], dtype=np.int64)]
    m = mixing_patterns(spec.channels)[np.asarray(f["mixing"], dtype=np.int64)]  # (n, D, 2)
    x = osc[:, :, None] * m[:, None, :, 0] + reg[:, :, None] * m[:, None, :, 1]
    return (x + spec.noise * eps).astype(np.float32)


def bin_of(name: str, values: np.ndarray, bins: int) -> np.ndarray:
    """Equal-width bin (0 .. bins-1) of a continuous factor's values over its prior range."""
    lo, hi = CONTINUOUS[name]
    return np.clip(((np.asarray(values) - lo) / (hi - lo) * bins).astype(np.int64), 0, bins - 1)


def draw(rng: np.random.Generator, speakers: int, per_speaker: int, spec: Spec
         ) -> dict[str, np.ndarray]:
    """Per-window factor values of ``speakers`` x ``per_speaker`` sequences, plus ``seq_id``,
    ``speaker`` and ``segment_index`` (each (windows,))."""
    prof = {"amplitude": rng.uniform(*CONTINUOUS["amplitude"], speakers),
            "frequency": rng.uniform(*CONTINUOUS["frequency"], speakers),
            "shape": rng.integers(0, DISCRETE["shape"], speakers),
            "mixing": rng.integers(0, DISCRETE["mixing"], speakers)}
    spk = np.repeat(np.arange(speakers), per_speaker)
    lengths = rng.integers(spec.min_segments, spec.max_segments + 1, len(spk))
    seq = np.repeat(np.arange(len(spk)), lengths)
    n = len(seq)
    out = {k: v[spk][seq] for k, v in prof.items()}
    out.update(regime=rng.integers(0, DISCRETE["regime"], n),
               phase=rng.uniform(*CONTINUOUS["phase"], n), seq_id=seq, speaker=spk[seq],
               segment_index=np.arange(n) - np.repeat(np.cumsum(lengths) - lengths, lengths))
    return out


def build(f: dict[str, np.ndarray], key: tuple[int, int], spec: Spec, split: str
          ) -> SequenceData:
    """SequenceData of the drawn factors ``f`` (see :func:`draw`), noise keyed by ``key``."""
    seq = f["seq_id"]
    eps = np.concatenate([noise_of(key, s, int(c), spec)
                          for s, c in zip(*np.unique(seq, return_counts=True), strict=True)])
    extras: dict[str, np.ndarray] = {}
    for name in FACTORS:
        if name in CONTINUOUS:
            extras[name] = bin_of(name, f[name], spec.bins)
            extras[name + "_value"] = np.asarray(f[name], dtype=np.float64)
        else:
            extras[name] = np.asarray(f[name], dtype=np.int64)
    extras["speaker"] = f["speaker"].astype(np.int64)
    extras["segment_index"] = f["segment_index"].astype(np.int64)
    meta = {"factors": dict(FACTORS), "continuous_factors": {k: list(v) for k, v in
                                                             CONTINUOUS.items()},
            "factor_bins": spec.bins, "shapes": list(SHAPES), "regimes": list(REGIMES),
            "n_sequences": int(seq.max()) + 1, "n_speakers": int(f["speaker"].max()) + 1,
            "split": split, "generator": GENERATOR,
            "generator_params": {**dataclasses.asdict(spec), "noise_key": list(key)}}
    return SequenceData(x=render(f, eps, spec), feature_names=[f"c{i}" for i in
                                                              range(spec.channels)],
                        seq_id=seq, extras=extras, meta=meta, name="known-factors")


def spec_of(cfg: DataConfig) -> Spec:
    noise = cfg.options.get("noise", 0.1)
    try:
        noise = float(noise)
    except (TypeError, ValueError):
        noise = -1.0
    if not noise >= 0:
        raise FactorseqError(f"data option noise must be a number >= 0, got "
                             f"{cfg.options.get('noise')!r}")
    spec = Spec(segment=_int(cfg, "segment", 20, 2), channels=_int(cfg, "channels", 4, 2),
                noise=noise, bins=_int(cfg, "bins", 4, 2),
                min_segments=_int(cfg, "min_segments", 8), max_segments=_int(cfg, "max_segments",
                                                                             12))
    if spec.max_segments < spec.min_segments:
        raise FactorseqError(f"max_segments ({spec.max_segments}) must be >= min_segments "
                             f"({spec.min_segments})")
    return spec


@dataset("known-factors", description="synthetic multichannel sequences with known factors: "
         "sequence-level amplitude, frequency, shape, mixing; segment-level regime, phase; "
         "segments (N, 20, 4) with seq_id, every factor in extras, test split = unseen "
         "speakers; options: speakers (100), sequences_per_speaker (6), test_speakers (30), "
         "test_sequences_per_speaker (4), segment (20), channels (4), min_segments (8), "
         "max_segments (12), noise (0.1), bins (4), test_seed (0)",
         citation="factorseq (generated; docs/disentanglement.md)",
         licence="synthetic, generated on the fly (no data licence)", scaler="standard")
def known_factors(cfg: DataConfig) -> SequenceData:
    """Training sequences from ``cfg.seed``; the ``.test`` split (other speakers) from
    ``options["test_seed"]``. The two draw from distinct generator streams (split 0 / 1)."""
    spec = spec_of(cfg)
    train_key, test_key = (cfg.seed, 0), (_int(cfg, "test_seed", 0, 0), 1)
    f = draw(np.random.default_rng(list(train_key)), _int(cfg, "speakers", 100),
             _int(cfg, "sequences_per_speaker", 6), spec)
    data = build(f, train_key, spec, "train")
    ft = draw(np.random.default_rng(list(test_key)), _int(cfg, "test_speakers", 30),
              _int(cfg, "test_sequences_per_speaker", 4), spec)
    data.test = build(ft, test_key, spec, "test")
    return data


# --- acting on the data ---------------------------------------------------------------------
def can_act(data: SequenceData) -> bool:
    """Whether ``data`` was rendered by this generator (so :func:`regenerate` can act on it)."""
    return data.meta.get("generator") == GENERATOR and data.seq_id is not None


def _spec_and_key(data: SequenceData) -> tuple[Spec, tuple[int, int]]:
    if not can_act(data):
        raise FactorseqError(f"data {data.name!r} was not generated by known-factors; its "
                             "sequences cannot be re-generated")
    params = dict(data.meta["generator_params"])
    key = tuple(int(k) for k in params.pop("noise_key"))
    return Spec(**params), (key[0], key[1])


def regenerate(data: SequenceData, seq: int, changes: dict[str, float] | None = None,
               segment: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Re-render sequence ``seq`` of ``data`` with factor values ``changes`` (continuous ones
    as values in their prior range, discrete ones as ints), its noise unchanged.

    Sequence-level factors change in every segment; segment-level ones only in the segment at
    position ``segment`` (required for them, refused for the others). Returns ``(rows, x)``:
    the row indices of the sequence's windows in ``data`` (segment order) and the new windows
    (len(rows), T, D); rows that the change leaves alone come out equal to ``data.x[rows]``.
    """
    spec, key = _spec_and_key(data)
    rows = rows_of(data, seq)
    f = {k: np.array(data.extras[k + "_value"][rows] if k in CONTINUOUS
                     else data.extras[k][rows]) for k in FACTORS}
    pos = None
    if segment is not None:
        pos = np.flatnonzero(data.extras["segment_index"][rows] == segment)
        if not len(pos):
            raise FactorseqError(f"sequence {seq} has no segment {segment}")
    for name, value in (changes or {}).items():
        _check_value(name, value)
        if FACTORS[name] == "segment":
            if pos is None:
                raise FactorseqError(f"{name} is a segment-level factor: name the segment")
            f[name][pos] = value
        else:
            if segment is not None:
                raise FactorseqError(f"{name} is a sequence-level factor: it changes every "
                                     "segment, not one")
            f[name][:] = value
    return rows, render(f, noise_of(key, int(seq), len(rows), spec), spec)


def rows_of(data: SequenceData, seq: int) -> np.ndarray:
    """Row indices of the windows of sequence ``seq`` in ``data``, in segment order."""
    rows = np.flatnonzero(data.seq_id == seq)
    if not len(rows):
        raise FactorseqError(f"no sequence {seq} in data {data.name!r}")
    return rows[np.argsort(data.extras["segment_index"][rows], kind="stable")]


def _check_value(name: str, value: float) -> None:
    if name not in FACTORS:
        raise FactorseqError(f"unknown factor {name!r}; factors: {', '.join(FACTORS)}")
    if name in CONTINUOUS:
        lo, hi = CONTINUOUS[name]
        if not lo <= float(value) <= hi:
            raise FactorseqError(f"{name} must lie in [{lo:g}, {hi:g}], got {value!r}")
    elif int(value) != value or not 0 <= int(value) < DISCRETE[name]:
        raise FactorseqError(f"{name} must be an integer in 0..{DISCRETE[name] - 1}, "
                             f"got {value!r}")


def random_action(data: SequenceData, seq: int, factor: str, rng: np.random.Generator,
                  segment: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """One random group element acting on sequence ``seq``: ``factor`` gets a new value (a
    discrete factor another value, uniformly; a continuous one a fresh draw from its prior
    that falls in another bin), everything else fixed. Returns the rows the action changed
    and their new windows: all segments for a sequence-level factor, segment ``segment``
    (position in the sequence) for a segment-level one."""
    rows = rows_of(data, seq)
    i = rows if segment is None else rows[data.extras["segment_index"][rows] == segment]
    if not len(i):
        raise FactorseqError(f"sequence {seq} has no segment {segment}")
    current = int(data.extras[factor][i[0]])
    if factor in CONTINUOUS:
        bins = int(data.meta["factor_bins"])
        new_bin = (current + rng.integers(1, bins)) % bins
        lo, hi = CONTINUOUS[factor]
        value = lo + (new_bin + rng.uniform()) * (hi - lo) / bins
    else:
        value = (current + rng.integers(1, DISCRETE[factor])) % DISCRETE[factor]
    rows, x = regenerate(data, seq, {factor: value}, segment)
    keep = np.isin(rows, i)
    return rows[keep], x[keep]
