"""Bundled Free Spoken Digit Dataset sets: ``fsdd-digits`` and ``fsdd-strings`` (log-mel).

FSDD: 6 speakers x 10 digits x 50 takes of 8 kHz mono speech, stored losslessly as FLAC in
``data/fsdd/recordings/<digit>_<speaker>_<take>.flac``. The FSDD README's split is used:
takes 0-4 are the test set (``data.test``), takes 5-49 the training set.

Every utterance is silence-trimmed (:func:`~factorseq.data.speech.trim_silence`, 30 dB) and
turned into log-mel frames (:class:`~factorseq.data.speech.LogMel`: 80 mels, 25 ms / 10 ms);
those per-utterance features are computed once per process and cached on disk under
``~/.cache/factorseq`` (keyed on the recordings' content hash and the front-end settings).
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import io
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import soundfile as sf

from ..errors import FactorseqError
from .config import DataConfig
from .config import int_option as _int_option
from .container import SequenceData
from .paths import bundled_file, cache_dir
from .registry import dataset
from .speech import LogMel, front_end_meta, log_mel, segment_frames, trim_silence, warp_log_mel
from .split import sequences_per_group, split_sequences

CITATION = ("Z. Jackson, C. Souza, J. Flaks, Y. Pan, H. Nicolas, A. Thite, \"Free Spoken Digit "
            "Dataset\" (Jakobovski/free-spoken-digit-dataset), Zenodo, "
            "doi:10.5281/zenodo.1342401")
LICENCE = "CC BY-SA 4.0 (Jakobovski et al., free-spoken-digit-dataset)"
TEST_TAKES = 5  # FSDD README: takes 0-4 are the test set, 5-49 the training set
TRIM_DB = 30.0
FRAMES = 48  # fsdd-digits length: 48 x 10 ms covers 88 % of trimmed digits uncropped
_CACHE_VERSION = 1  # bump when the feature recipe changes


@dataclasses.dataclass(frozen=True)
class Utterances:
    """Per-utterance log-mel features of the bundled FSDD, sorted by (speaker, digit, take).

    ``feats[i]`` is (frames_i, n_mels) float32; ``digit``/``speaker``/``take`` are (3000,) int;
    ``speakers`` the speaker names (index = ``speaker`` value), sorted alphabetically.
    """

    feats: tuple[np.ndarray, ...]
    digit: np.ndarray
    speaker: np.ndarray
    take: np.ndarray
    speakers: tuple[str, ...]
    front_end: LogMel


def _listing(folder: Path) -> list[tuple[int, str, int, Path]]:
    rows = []
    for p in folder.glob("*.flac"):
        parts = p.stem.split("_")
        if len(parts) != 3 or not parts[0].isdigit() or not parts[2].isdigit():
            raise FactorseqError(f"unexpected FSDD file name {p.name} (want digit_speaker_take)")
        rows.append((int(parts[0]), parts[1], int(parts[2]), p))
    if not rows:
        raise FactorseqError(f"no FSDD recordings (*.flac) in {folder}")
    return rows


@functools.lru_cache(maxsize=4)
def load_utterances(front_end: LogMel = LogMel(), top_db: float = TRIM_DB) -> Utterances:
    """Trimmed log-mel features of all bundled recordings (memoised; disk-cached)."""
    folder = bundled_file("fsdd", "recordings")
    known = pd.read_csv(bundled_file("fsdd", "speakers.csv"))["speaker"].astype(str).tolist()
    rows = _listing(folder)
    speakers = tuple(sorted(known))
    unknown = sorted({r[1] for r in rows} - set(speakers))
    if unknown:
        raise FactorseqError(f"FSDD recordings by speakers missing from speakers.csv: {unknown}")
    rows.sort(key=lambda r: (speakers.index(r[1]), r[0], r[2]))
    blobs = [r[3].read_bytes() for r in rows]
    h = hashlib.sha256(repr((_CACHE_VERSION, front_end.to_dict(), top_db)).encode())
    for r, b in zip(rows, blobs, strict=True):
        h.update(r[3].name.encode())
        h.update(hashlib.sha256(b).digest())
    cache = cache_dir() / f"fsdd-{h.hexdigest()[:20]}.npz"
    feats = _read_cache(cache, len(rows))
    if feats is None:
        feats = []
        for b in blobs:
            wave, sr = sf.read(io.BytesIO(b), dtype="float64")
            feats.append(log_mel(trim_silence(wave, sr, top_db), sr, front_end))
        _write_cache(cache, feats)
    for f in feats:
        f.setflags(write=False)  # shared by every caller in this process
    return Utterances(feats=tuple(feats), digit=np.array([r[0] for r in rows]),
                      speaker=np.array([speakers.index(r[1]) for r in rows]),
                      take=np.array([r[2] for r in rows]), speakers=speakers,
                      front_end=front_end)


def _read_cache(path: Path, n: int) -> list[np.ndarray] | None:
    try:
        with np.load(path, allow_pickle=False) as z:
            frames, bounds = z["frames"], z["bounds"]
    except (OSError, ValueError, KeyError):
        return None
    if len(bounds) != n + 1:
        return None
    return [frames[bounds[i]:bounds[i + 1]] for i in range(n)]


def _write_cache(path: Path, feats: list[np.ndarray]) -> None:
    """Atomic write (temp file + rename) so parallel runs never read half a file; a read-only
    home just means no cache."""
    bounds = np.concatenate([[0], np.cumsum([len(f) for f in feats])])
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz.tmp")
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, frames=np.concatenate(feats), bounds=bounds)
        os.replace(tmp, path)
    except OSError:
        pass


def fix_length(feats: np.ndarray, frames: int, pad_value: float) -> np.ndarray:
    """(t, D) -> (frames, D): centre crop when longer, pad both sides with ``pad_value`` (the
    log floor, i.e. digital silence) when shorter (extra pad frame at the end)."""
    t = len(feats)
    if t >= frames:
        start = (t - frames) // 2
        return feats[start:start + frames]
    before = (frames - t) // 2
    return np.pad(feats, ((before, frames - t - before), (0, 0)), constant_values=pad_value)


def target_speaker_index(name: Any, speakers: tuple[str, ...]) -> int:
    """Index of ``name`` (a speaker name, case-insensitive) among ``speakers``."""
    lowered = [s.lower() for s in speakers]
    if str(name).strip().lower() in lowered:
        return lowered.index(str(name).strip().lower())
    raise FactorseqError(f"unknown FSDD speaker {name!r}; speakers: {', '.join(speakers)}")


def heldout_speakers(value: Any, speakers: tuple[str, ...]) -> list[int]:
    """Indices of the held-out speakers named by ``value`` (None, a list of names or one
    comma-separated string); at least one speaker must stay for training."""
    if value is None or value == "" or value == []:
        return []
    names = value.split(",") if isinstance(value, str) else list(value)
    held = sorted({target_speaker_index(n, speakers) for n in names})
    if len(held) >= len(speakers):
        raise FactorseqError("heldout_speakers leaves no speaker to train on")
    return held


def voice_warps(value: Any) -> list[float]:
    """The ``voice_warps`` option: None / [] (no synthetic voices), a list of warp factors or
    one comma-separated string; each in [0.7, 1.4], no repeats."""
    if value is None or value == "" or value == []:
        return []
    items = value.split(",") if isinstance(value, str) else list(value)
    try:
        warps = [float(v) for v in items]
    except (TypeError, ValueError):
        raise FactorseqError(f"voice_warps must be numbers, got {value!r}") from None
    if any(not 0.7 <= w <= 1.4 for w in warps) or len(set(warps)) != len(warps):
        raise FactorseqError(f"voice_warps must be distinct factors in [0.7, 1.4], got {warps}")
    return warps


def with_voices(utt: Utterances, warps: list[float], held: list[int]
                ) -> tuple[Utterances, list[int]]:
    """Synthetic voices: speaker s speaks in ``len(warps)`` voices, voice v (index
    ``s * V + v``, name ``speaker@warp``) being its takes t with t % V == v, each log-mel
    frame warped by ``warps[v]`` (:func:`~factorseq.data.speech.warp_log_mel`). Every take
    belongs to one voice, so the voices share no recording. Returns the voiced utterances and
    the voices of the held-out speakers ``held``."""
    v = len(warps)
    voice = utt.take % v
    feats = tuple(warp_log_mel(f, warps[k], utt.front_end) for f, k in zip(utt.feats, voice,
                                                                           strict=True))
    names = tuple(f"{s}@{w:g}" for s in utt.speakers for w in warps)
    return (dataclasses.replace(utt, feats=feats, speaker=utt.speaker * v + voice,
                                speakers=names),
            [s * v + k for s in held for k in range(v)])


@dataset("fsdd-digits", description="Free Spoken Digit Dataset: isolated digits as log-mel "
         "(N, 48, 80), y = digit, domain = speaker; test split = takes 0-4; options: frames "
         "(48), target_speaker (domain = 1 for that speaker, 0 for the others)",
         citation=CITATION, licence=LICENCE, scaler="standard")
def fsdd_digits(cfg: DataConfig) -> SequenceData:
    """Isolated digits: x (N, frames, 80) trimmed log-mel, centre-cropped / floor-padded.

    Train = takes 5-49 (2700 windows), ``.test`` = takes 0-4 (300). y = digit (10 classes),
    domain = speaker index 0-5, or with ``options["target_speaker"]`` 1 for that speaker and 0
    for the five others. Extras: ``speaker``, ``take``. ``cfg.window`` is not used: the length
    is ``options["frames"]`` (default 48 = 0.5 s).
    """
    utt = load_utterances()
    frames = _int_option(cfg, "frames", FRAMES)
    target = cfg.options.get("target_speaker")
    tgt = None if target is None else target_speaker_index(target, utt.speakers)
    fe = utt.front_end
    meta = {"n_classes": 10, "speakers": list(utt.speakers), "n_speakers": len(utt.speakers),
            "frames": frames, "n_domains": len(utt.speakers) if tgt is None else 2,
            **front_end_meta(fe)}
    if tgt is not None:
        meta["target_speaker"] = tgt
        meta["target_speaker_name"] = utt.speakers[tgt]

    def build(sel: np.ndarray, split: str) -> SequenceData:
        idx = np.flatnonzero(sel)
        x = np.stack([fix_length(utt.feats[i], frames, fe.log_floor) for i in idx])
        spk = utt.speaker[idx]
        domain = spk if tgt is None else (spk == tgt).astype(np.int64)
        return SequenceData(x=x, feature_names=[f"mel{i:02d}" for i in range(fe.n_mels)],
                            y=utt.digit[idx], domain=domain,
                            extras={"speaker": spk.astype(np.int64),
                                    "take": utt.take[idx].astype(np.int64)},
                            meta={**meta, "split": split}, name="fsdd-digits")

    data = build(utt.take >= TEST_TAKES, "train")
    data.test = build(utt.take < TEST_TAKES, "test")
    return data


def _digit_strings(utt: Utterances, sel: np.ndarray, counts: list[int], lo: int, hi: int,
                   rng: np.random.Generator) -> list[tuple[int, np.ndarray]]:
    """``counts[s]`` sequences per speaker s, each ``lo..hi`` utterance indices of that speaker
    drawn without replacement from successive shuffles of its selected utterances (so every
    take is used once before any is reused). Returns (speaker, utterance indices) pairs."""
    out = []
    for s, n in enumerate(counts):
        pool = np.flatnonzero(sel & (utt.speaker == s))
        if n and not len(pool):
            raise FactorseqError(f"FSDD speaker {utt.speakers[s]} has no utterances to draw")
        stream: list[int] = []
        for _ in range(n):
            k = int(rng.integers(lo, hi + 1))
            while len(stream) < k:
                stream.extend(rng.permutation(pool).tolist())
            out.append((s, np.array(stream[:k])))
            del stream[:k]
    return out


@dataset("fsdd-strings", description="Free Spoken Digit Dataset: strings of 4-8 digits by one "
         "speaker, log-mel cut into segments (N, 20, 80) with seq_id (FHVAE); test split = "
         "takes 0-4; options: n_sequences, segment (20), segment_hop (10), min_digits (4), "
         "max_digits (8), heldout_speakers (names: trained without them, tested on them "
         "alone), voice_warps (warp factors: each speaker speaks in that many synthetic "
         "voices, vocal-tract warps of its log-mel on disjoint takes), validation_strings "
         "(strings per speaker held out of the training strings as the test split, drawn "
         "with validation_seed, default 0: a validation set)",
         citation=CITATION, licence=LICENCE, scaler="standard")
def fsdd_strings(cfg: DataConfig) -> SequenceData:
    """Digit strings for FHVAE: x (N_seg, segment, 80), seq_id = string index.

    Each string concatenates the trimmed log-mel frames of ``min_digits``..``max_digits``
    (4-8) utterances of ONE speaker, drawn from takes 5-49 (seeded by ``cfg.seed``); the
    ``.test`` strings come from takes 0-4 (seeded by ``options["test_seed"]``, default 0, so
    every run is scored on the same strings; their seq_id counts from 0). Segments of
    ``segment`` frames every ``segment_hop`` frames; the tail that does not fill a segment is
    dropped. Default ``n_sequences`` = 450 training strings (75 per speaker = 450 utterances /
    6 digits on average: each training take used about once); test 48 (8 per speaker).
    Extras: ``speaker``, ``digit`` (majority frame digit, ties -> smaller digit),
    ``segment_index`` (order within its string: frames ``i*hop .. i*hop+segment``) and
    ``frame_digit`` (N_seg, segment) frame-level digits, for evaluation only.

    ``options["heldout_speakers"]`` (a list of speaker names, or one comma-separated string)
    tests generalisation to unseen speakers: training strings come from the other speakers
    only (their takes 5-49), the ``.test`` strings from the held-out speakers only, drawn from
    all their takes (none of their audio is seen in training); the counts keep the default
    rule (strings per speaker = that speaker's utterances / mean string length).

    ``options["voice_warps"]`` (V warp factors) turns the six speakers into 6 V synthetic
    voices (:func:`with_voices`; ``speaker`` = voice index, ``meta["speakers"]`` their names):
    with ``heldout_speakers`` every voice of those speakers is held out, so two held-out
    speakers and three warps give six test voices, none of whose recordings is trained on.

    ``options["validation_strings"]`` (K) makes a validation set: K of the training strings
    per speaker (drawn with ``options["validation_seed"]``, default 0) become ``.test`` and
    are never trained on; the takes 0-4 are not loaded (:func:`validation_split`).
    """
    utt = load_utterances()
    held = heldout_speakers(cfg.options.get("heldout_speakers"), utt.speakers)
    warps = voice_warps(cfg.options.get("voice_warps"))
    if warps:
        utt, held = with_voices(utt, warps, held)
    seg = _int_option(cfg, "segment", 20)
    hop = _int_option(cfg, "segment_hop", 10)
    lo = _int_option(cfg, "min_digits", 4)
    hi = _int_option(cfg, "max_digits", 8)
    if hi < lo:
        raise FactorseqError(f"max_digits ({hi}) must be >= min_digits ({lo})")
    n_spk = len(utt.speakers)
    mean_len = (lo + hi) / 2
    train_spk = [s for s in range(n_spk) if s not in held]
    test_spk = held or train_spk

    def per_speaker(total: int, among: list[int]) -> list[int]:
        k = len(among)
        return [total // k + (among.index(s) < total % k) if s in among else 0
                for s in range(n_spk)]

    train_sel = (utt.take >= TEST_TAKES) & np.isin(utt.speaker, train_spk)
    test_sel = np.isin(utt.speaker, held) if held else utt.take < TEST_TAKES
    default = len(train_spk) * round(int(train_sel.sum()) / len(train_spk) / mean_len)
    n_train = _int_option(cfg, "n_sequences", default)
    n_test = len(test_spk) * round(int(test_sel.sum()) / len(test_spk) / mean_len)
    fe = utt.front_end
    meta = {"speakers": list(utt.speakers), "n_speakers": n_spk, "segment": seg,
            "segment_hop": hop, "factors": {"speaker": "sequence", "digit": "segment"},
            "heldout_speakers": [utt.speakers[s] for s in held], "voice_warps": warps,
            **front_end_meta(fe)}

    def build(strings: list[tuple[int, np.ndarray]], split: str) -> SequenceData:
        xs, sid, spk, dig, pos, fdig = [], [], [], [], [], []
        for i, (s, idx) in enumerate(strings):
            feats = np.concatenate([utt.feats[j] for j in idx])
            frame_digit = np.concatenate([np.full(len(utt.feats[j]), utt.digit[j]) for j in idx])
            if len(feats) < seg:
                raise FactorseqError(f"segment of {seg} frames is longer than FSDD string {i} "
                                     f"({len(feats)} frames); lower options.segment")
            windows = segment_frames(feats, seg, hop)
            labels = segment_frames(frame_digit[:, None], seg, hop)[..., 0]
            counts = np.stack([(labels == d).sum(1) for d in range(10)], axis=1)
            xs.append(windows)
            fdig.append(labels)
            dig.append(counts.argmax(1))
            n = len(windows)
            sid.append(np.full(n, i))
            spk.append(np.full(n, s))
            pos.append(np.arange(n))
        cat = lambda v: np.concatenate(v).astype(np.int64)  # noqa: E731
        return SequenceData(x=np.concatenate(xs),
                            feature_names=[f"mel{i:02d}" for i in range(fe.n_mels)],
                            seq_id=cat(sid), extras={"speaker": cat(spk), "digit": cat(dig),
                                                     "segment_index": cat(pos),
                                                     "frame_digit": cat(fdig)},
                            meta={**meta, "n_sequences": len(strings), "split": split},
                            name="fsdd-strings")

    rng = np.random.default_rng(cfg.seed)
    data = build(_digit_strings(utt, train_sel, per_speaker(n_train, train_spk), lo, hi, rng),
                 "train")
    if cfg.options.get("validation_strings") is not None:
        return validation_split(data, _int_option(cfg, "validation_strings", 1),
                                _int_option(cfg, "validation_seed", 0, minimum=0))
    test_rng = np.random.default_rng(_int_option(cfg, "test_seed", 0, minimum=0))
    data.test = build(_digit_strings(utt, test_sel, per_speaker(n_test, test_spk), lo, hi,
                                     test_rng), "test")
    return data


def validation_split(data: SequenceData, per_speaker: int, seed: int) -> SequenceData:
    """``data`` without ``per_speaker`` of its strings per speaker (drawn with ``seed``),
    which become its ``.test``; both parts' ``seq_id`` (and ``meta["n_sequences"]``) count
    0..S-1 in their order."""
    speaker = data.extras["speaker"]
    fewest = min(len(np.unique(data.seq_id[speaker == s])) for s in np.unique(speaker))
    if per_speaker >= fewest:
        raise FactorseqError(f"validation_strings={per_speaker} leaves no training string for "
                             f"a speaker with {fewest}")
    held = sequences_per_group(data.seq_id, speaker, per_speaker, seed)
    train, val = (_renumbered(d, split) for d, split in
                  zip(split_sequences(data, held), ("train", "validation"), strict=True))
    train.test = val
    return train


def _renumbered(data: SequenceData, split: str) -> SequenceData:
    _, seq = np.unique(data.seq_id, return_inverse=True)
    return dataclasses.replace(data, seq_id=seq.astype(np.int64),
                               meta={**data.meta, "n_sequences": int(seq.max()) + 1,
                                     "split": split})
