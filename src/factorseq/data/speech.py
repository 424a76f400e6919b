"""Speech front end (numpy/scipy only): WAV I/O, log-mel features, Griffin-Lim inversion.

Features are ``(frames, n_mels)`` float32 per utterance; stacked windows are
``(windows, time=frames, features=n_mels)`` like every factorseq data set.

The log-mel recipe is the usual ASR one (HTK/Kaldi style): pre-emphasis ``y[n] = x[n] - 0.97
x[n-1]``, 25 ms Hamming frames every 10 ms, ``|rfft|^2`` on ``n_fft`` = next power of two of
the window, triangular filters on the HTK mel scale ``mel(f) = 2595 log10(1 + f/700)``, and
``log(mel + 1e-6)``. :func:`griffin_lim` goes back to a waveform (voice conversion output).
"""
from __future__ import annotations

import dataclasses
import functools
from math import gcd
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
from scipy import optimize, signal, sparse

from ..config import require
from ..errors import FactorseqError, ShapeError
from .formats import file_loader

AUDIO_SUFFIXES = (".wav", ".flac")


@dataclasses.dataclass(frozen=True)
class LogMel:
    """Log-mel front-end settings (frozen: hashable, usable as a cache key).

    ``sample_rate`` is the rate the features are defined at (waves at another rate are
    resampled); ``win_ms``/``hop_ms`` give ``win_length``/``hop_length`` samples and
    ``n_fft`` = next power of two >= ``win_length`` (8 kHz: 200 / 80 / 256).
    ``f_max`` None means ``sample_rate / 2``. ``floor`` is added before the log.
    """

    sample_rate: int = 8000
    n_mels: int = 80
    win_ms: float = 25.0
    hop_ms: float = 10.0
    preemphasis: float = 0.97
    f_min: float = 0.0
    f_max: float | None = None
    floor: float = 1e-6

    def __post_init__(self) -> None:
        require(self.sample_rate >= 1000, f"sample_rate must be >= 1000, got {self.sample_rate}")
        require(self.n_mels >= 1, f"n_mels must be >= 1, got {self.n_mels}")
        require(0 < self.hop_ms <= self.win_ms, "need 0 < hop_ms <= win_ms")
        require(0.0 <= self.preemphasis < 1.0, "preemphasis must be in [0, 1)")
        require(self.floor > 0, "floor must be > 0")
        require(0 <= self.f_min < self.nyquist, f"f_min must be in [0, {self.nyquist})")
        require(self.f_max is None or self.f_min < self.f_max <= self.nyquist,
                f"f_max must be in (f_min, {self.nyquist}]")

    @property
    def nyquist(self) -> float:
        return self.sample_rate / 2

    @property
    def win_length(self) -> int:
        return int(round(self.sample_rate * self.win_ms / 1000))

    @property
    def hop_length(self) -> int:
        return int(round(self.sample_rate * self.hop_ms / 1000))

    @property
    def n_fft(self) -> int:
        return 1 << (self.win_length - 1).bit_length()

    @property
    def log_floor(self) -> float:
        """The value of a frame with zero energy, ``log(floor)`` (used for padding)."""
        return float(np.log(self.floor))

    def n_frames(self, n_samples: int) -> int:
        """Frames of a wave of ``n_samples``: ``1 + (n_samples - win) // hop`` (no padding)."""
        return 0 if n_samples < self.win_length else 1 + (n_samples - self.win_length) \
            // self.hop_length

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def __call__(self, wave: np.ndarray, sr: int) -> np.ndarray:
        """``log_mel(wave, sr, self)``: (frames, n_mels) float32."""
        return log_mel(wave, sr, self)


def hz_to_mel(f):
    """HTK mel scale: 2595 log10(1 + f / 700)."""
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def mel_to_hz(m):
    return 700.0 * (10.0 ** (np.asarray(m, dtype=np.float64) / 2595.0) - 1.0)


@functools.lru_cache(maxsize=16)
def _filterbank(sr: int, n_fft: int, n_mels: int, f_min: float, f_max: float) -> np.ndarray:
    edges = mel_to_hz(np.linspace(hz_to_mel(f_min), hz_to_mel(f_max), n_mels + 2))
    lo, ce, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    df = sr / n_fft

    def area(f):  # integral of the unit-peak triangle (lo, ce, hi) from -inf to f
        f = np.asarray(f)[None, :]
        rise = np.clip(f - lo, 0, ce - lo) ** 2 / (2 * (ce - lo))
        fall_part = np.clip(f - ce, 0, hi - ce)
        fall = fall_part - fall_part ** 2 / (2 * (hi - ce))
        return rise + fall

    # Bin k stands for the band [(k - 1/2) df, (k + 1/2) df]: its weight is the triangle's mean
    # over that band. At bin centres this equals HTK's point sampling for wide filters, and
    # narrow low-frequency filters (80 mels at 8 kHz are narrower than one bin) are never empty.
    centres = np.arange(n_fft // 2 + 1) * df
    fb = (area(centres + df / 2) - area(centres - df / 2)) / df
    fb.setflags(write=False)
    return fb


def _fb_key(cfg: LogMel) -> tuple:
    return (cfg.sample_rate, cfg.n_fft, cfg.n_mels, float(cfg.f_min),
            float(cfg.f_max if cfg.f_max is not None else cfg.nyquist))


def mel_filterbank(cfg: LogMel | None = None) -> np.ndarray:
    """Triangular HTK-mel filterbank, shape (n_mels, n_fft // 2 + 1), applied to |rfft|^2."""
    return _filterbank(*_fb_key(cfg or LogMel()))


@functools.lru_cache(maxsize=16)
def _sparse_filterbank(*key) -> sparse.csr_matrix:
    # Each bin feeds <= 3 filters: the sparse product avoids BLAS, whose thread start-up makes
    # thousands of tiny matmuls ~20x slower on a busy machine.
    return sparse.csr_matrix(_filterbank(*key))


def preemphasis(wave: np.ndarray, coef: float = 0.97) -> np.ndarray:
    """``y[0] = x[0]``, ``y[n] = x[n] - coef * x[n-1]``: a first-order high-pass that flattens
    speech's spectral tilt."""
    x = np.asarray(wave, dtype=np.float64)
    return np.concatenate([x[:1], x[1:] - coef * x[:-1]])


def deemphasis(wave: np.ndarray, coef: float = 0.97) -> np.ndarray:
    """Inverse of :func:`preemphasis`: ``x[n] = y[n] + coef * x[n-1]`` (all-pole IIR)."""
    return signal.lfilter([1.0], [1.0, -coef], np.asarray(wave, dtype=np.float64))


def _resample(wave: np.ndarray, sr: int, target: int) -> np.ndarray:
    g = gcd(int(sr), int(target))
    return signal.resample_poly(wave, target // g, sr // g)


def _check_wave(wave: np.ndarray) -> np.ndarray:
    x = np.asarray(wave, dtype=np.float64)
    if x.ndim != 1:
        raise ShapeError(f"wave must be 1-D (samples,), got shape {x.shape}")
    return x


def power_spectrogram(wave: np.ndarray, sr: int, cfg: LogMel | None = None) -> np.ndarray:
    """``|rfft(hamming * frame, n_fft)|^2`` of the pre-emphasised wave: (frames, n_fft//2+1).

    A wave at ``sr != cfg.sample_rate`` is resampled first; one shorter than a window is a
    :class:`FactorseqError`.
    """
    cfg = cfg or LogMel()
    x = _check_wave(wave)
    if int(sr) != cfg.sample_rate:
        x = _resample(x, int(sr), cfg.sample_rate)
    if len(x) < cfg.win_length:
        raise FactorseqError(f"wave of {len(x)} samples is shorter than one {cfg.win_ms:g} ms "
                             f"window ({cfg.win_length} samples at {cfg.sample_rate} Hz)")
    x = preemphasis(x, cfg.preemphasis)
    frames = np.lib.stride_tricks.sliding_window_view(x, cfg.win_length)[::cfg.hop_length]
    spec = np.fft.rfft(frames * np.hamming(cfg.win_length), n=cfg.n_fft, axis=-1)
    return spec.real ** 2 + spec.imag ** 2


def log_mel(wave: np.ndarray, sr: int, cfg: LogMel | None = None) -> np.ndarray:
    """Log-mel features of a 1-D wave: (frames, n_mels) float32, frames = 1 + (len - win)//hop.

    ``log(M @ |X|^2 + floor)`` with ``M`` = :func:`mel_filterbank`. Waves at another rate than
    ``cfg.sample_rate`` are resampled (the length then counts at ``cfg.sample_rate``).
    """
    cfg = cfg or LogMel()
    mel = (_sparse_filterbank(*_fb_key(cfg)) @ power_spectrogram(wave, sr, cfg).T).T
    return np.log(mel + cfg.floor).astype(np.float32)


def mel_centres(cfg: LogMel) -> np.ndarray:
    """Centre frequencies (Hz) of the ``n_mels`` triangular filters, (n_mels,)."""
    f_max = cfg.nyquist if cfg.f_max is None else cfg.f_max
    return mel_to_hz(np.linspace(hz_to_mel(cfg.f_min), hz_to_mel(f_max), cfg.n_mels + 2))[1:-1]


def warp_log_mel(feats: np.ndarray, alpha: float, cfg: LogMel | None = None) -> np.ndarray:
    """Vocal-tract length warp of log-mel frames (frames, n_mels): the spectrum of a voice
    whose formants sit ``alpha`` times higher, S'(f) = S(f / alpha) (Jaitly & Hinton's VTLP
    on the filter centres). Each output filter reads the input at f_m / alpha, linearly
    interpolated on the mel scale between neighbouring filters (held at the edge filters
    beyond the range). ``alpha`` = 1 returns the frames unchanged."""
    if not 0.5 <= alpha <= 2.0:
        raise FactorseqError(f"warp factor must be in [0.5, 2], got {alpha}")
    cfg = cfg or LogMel()
    centres = hz_to_mel(mel_centres(cfg))
    pos = np.interp(hz_to_mel(mel_centres(cfg) / alpha), centres, np.arange(cfg.n_mels))
    lo = np.minimum(np.floor(pos).astype(np.int64), cfg.n_mels - 1)
    hi = np.minimum(lo + 1, cfg.n_mels - 1)
    w = (pos - lo).astype(np.float32)
    f = np.asarray(feats, dtype=np.float32)
    return (f[:, lo] * (1 - w) + f[:, hi] * w).astype(np.float32)


def trim_silence(wave: np.ndarray, sr: int, top_db: float = 30.0, *,
                 frame_ms: float = 25.0, hop_ms: float = 10.0) -> np.ndarray:
    """Cut leading/trailing silence: keep from the first to the last frame whose energy is within
    ``top_db`` dB of the loudest frame (frame energy = mean square over ``frame_ms`` every
    ``hop_ms``). A wave shorter than a frame, or all zeros, is returned unchanged."""
    start, end = silence_bounds(wave, sr, top_db, frame_ms=frame_ms, hop_ms=hop_ms)
    return np.asarray(wave)[start:end]


def silence_bounds(wave: np.ndarray, sr: int, top_db: float = 30.0, *,
                   frame_ms: float = 25.0, hop_ms: float = 10.0) -> tuple[int, int]:
    """``(start, end)`` sample indices :func:`trim_silence` keeps."""
    x = _check_wave(wave)
    win = max(1, int(round(sr * frame_ms / 1000)))
    hop = max(1, int(round(sr * hop_ms / 1000)))
    if len(x) < win:
        return 0, len(x)
    energy = np.mean(np.lib.stride_tricks.sliding_window_view(x, win)[::hop] ** 2, axis=1)
    if energy.max() <= 0:
        return 0, len(x)
    loud = np.flatnonzero(10 * np.log10(np.maximum(energy, 1e-30) / energy.max()) > -top_db)
    return int(loud[0] * hop), int(min(len(x), loud[-1] * hop + win))


def read_wav(path: str | Path, expected_sr: int | None = None) -> tuple[np.ndarray, int]:
    """Read any soundfile-readable file (WAV, FLAC, ...) -> (wave float32 (samples,), sr).

    Channels are averaged to mono. When ``expected_sr`` is given and the file has another rate,
    the wave is resampled to ``expected_sr`` with ``scipy.signal.resample_poly`` (polyphase
    anti-aliasing filter) and ``expected_sr`` is returned. An unreadable, empty or silent
    (peak below one 16-bit step) file is a :class:`FactorseqError` naming the path.
    """
    p = Path(path)
    if not p.is_file():
        raise FactorseqError(f"audio file not found: {p}")
    try:
        wave, sr = sf.read(str(p), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as e:
        raise FactorseqError(f"cannot read audio file {p}: {str(e).splitlines()[0]}") from None
    wave = wave.mean(axis=1)
    if wave.size == 0:
        raise FactorseqError(f"audio file {p} is empty (0 samples)")
    if float(np.abs(wave).max()) < 2.0 ** -15:
        raise FactorseqError(f"audio file {p} is silent")
    if expected_sr is not None and int(sr) != int(expected_sr):
        wave = _resample(wave, int(sr), int(expected_sr)).astype(np.float32)
        sr = int(expected_sr)
    return wave, int(sr)


def write_wav(path: str | Path, wave: np.ndarray, sr: int) -> Path:
    """Write a 1-D float wave (clipped to [-1, 1]) as 16-bit PCM (.wav, or .flac by suffix);
    creates the parent folder. Returns the path."""
    x = _check_wave(wave)
    if not np.isfinite(x).all():
        raise FactorseqError(f"cannot write {path}: the wave has NaN/inf samples")
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(p), np.clip(x, -1.0, 1.0), int(sr), subtype="PCM_16")
    return p


def mel_to_power(logmel: np.ndarray, cfg: LogMel | None = None) -> np.ndarray:
    """Invert the filterbank: non-negative least squares per frame, ``min_p ||M p - mel||``,
    ``p >= 0`` -> linear power (frames, n_fft//2+1). ``mel = exp(logmel) - floor``."""
    cfg = cfg or LogMel()
    lm = np.asarray(logmel, dtype=np.float64)
    if lm.ndim != 2 or lm.shape[1] != cfg.n_mels:
        raise ShapeError(f"logmel must be (frames, {cfg.n_mels}), got shape {lm.shape}")
    mel = np.maximum(np.exp(lm) - cfg.floor, 0.0)
    fb = mel_filterbank(cfg)
    # Scale each frame to unit max so NNLS's tolerance is relative, then scale back.
    scale = np.maximum(mel.max(axis=1, keepdims=True), 1e-30)
    out = np.stack([optimize.nnls(fb, m)[0] for m in mel / scale])
    return out * scale


def griffin_lim(logmel: np.ndarray, sr: int | None = None, cfg: LogMel | None = None,
                n_iter: int = 60, *, momentum: float = 0.99, seed: int = 0) -> np.ndarray:
    """Waveform (samples,) float32 at ``cfg.sample_rate`` from log-mel frames (frames, n_mels).

    Magnitude = sqrt of :func:`mel_to_power`; phase by Griffin & Lim (1984) alternating
    projections (``scipy.signal.stft``/``istft`` with the analysis Hamming window, hop and
    n_fft), with the momentum of the "fast Griffin-Lim" of Perraudin et al. (2013)
    (``momentum=0`` is the classic algorithm). Finally the pre-emphasis is undone. Output length
    is ``(frames - 1) * hop + win`` samples. ``sr`` must equal ``cfg.sample_rate`` if given.
    """
    cfg = cfg or LogMel()
    if sr is not None and int(sr) != cfg.sample_rate:
        raise FactorseqError(f"griffin_lim: sr {sr} differs from the front end's "
                             f"{cfg.sample_rate} Hz")
    if n_iter < 1:
        raise FactorseqError(f"griffin_lim: n_iter must be >= 1, got {n_iter}")
    win = np.hamming(cfg.win_length)
    kw = dict(fs=cfg.sample_rate, window=win, nperseg=cfg.win_length,
              noverlap=cfg.win_length - cfg.hop_length, nfft=cfg.n_fft)
    # scipy's stft divides by sum(window); our |rfft| is unscaled.
    mag = np.sqrt(mel_to_power(logmel, cfg)).T / win.sum()  # (freq, frames) like scipy
    n_frames = mag.shape[1]
    length = (n_frames - 1) * cfg.hop_length + cfg.win_length

    def project(spec):  # istft then stft: nearest consistent spectrogram
        _, x = signal.istft(spec, boundary=False, input_onesided=True, **kw)
        x = x[:length]
        if len(x) < length:
            x = np.pad(x, (0, length - len(x)))
        _, _, s = signal.stft(x, boundary=None, padded=False, detrend=False, **kw)
        return x, s

    rng = np.random.default_rng(seed)
    angles = np.exp(2j * np.pi * rng.random(mag.shape))
    prev = np.zeros_like(angles)
    for _ in range(n_iter):
        _, rebuilt = project(mag * angles)
        accel = rebuilt + momentum * (rebuilt - prev)  # c_n = t_n + alpha (t_n - t_{n-1})
        prev = rebuilt
        angles = accel / np.maximum(np.abs(accel), 1e-16)
    _, x = signal.istft(mag * angles, boundary=False, input_onesided=True, **kw)
    x = x[:length]
    return deemphasis(x, cfg.preemphasis).astype(np.float32)


def segment_frames(feats: np.ndarray, length: int, hop: int) -> np.ndarray:
    """Cut (frames, D) into (n_segments, length, D) windows every ``hop`` frames (tail that does
    not fill a window is dropped); fewer than ``length`` frames gives 0 segments."""
    if len(feats) < length:
        return np.zeros((0, length, feats.shape[1]), dtype=feats.dtype)
    view = np.lib.stride_tricks.sliding_window_view(feats, length, axis=0)[::hop]
    return np.ascontiguousarray(view.transpose(0, 2, 1))


def front_end_meta(fe: LogMel) -> dict[str, Any]:
    """The front end's settings plus ``log_floor``, for a data set's ``meta`` (JSON-ready, so a
    checkpoint's schema can rebuild the :class:`LogMel` with :func:`front_end_from_meta`)."""
    return {**fe.to_dict(), "log_floor": fe.log_floor}


def front_end_from_meta(meta: dict[str, Any]) -> LogMel:
    """The :class:`LogMel` a set's ``meta`` (or a run's ``schema["meta"]``) was made with."""
    keys = {f.name for f in dataclasses.fields(LogMel)}
    return LogMel(**{k: v for k, v in meta.items() if k in keys})


def front_end_from_options(options: dict[str, Any]) -> LogMel:
    """A :class:`LogMel` from data options named like its fields (``--set data.options.n_mels=40``
    and so on); the others keep their defaults."""
    keys = {f.name for f in dataclasses.fields(LogMel)}
    try:
        return LogMel(**{k: options[k] for k in sorted(keys) if k in options})
    except (TypeError, ValueError) as e:
        raise FactorseqError(f"invalid log-mel option: {e}") from None


def load_wav_folder(path: str | Path, cfg, front_end: LogMel | None = None):
    """Every ``.wav``/``.flac`` in folder ``path`` (or that one file) is one sequence: its log-mel
    frames are cut into segments (N, cfg.window, n_mels) every ``cfg.stride`` frames.

    Files are read in sorted name order and resampled to the front end's rate; ``seq_id`` is the
    file's index, extras ``segment_index`` the segment's position within its file (frames
    ``i*stride .. i*stride+window``). ``front_end`` defaults to :class:`LogMel` built from
    ``cfg.options``. A file with fewer frames than one segment is skipped and listed in
    ``meta["skipped_files"]`` (all of them too short: a :class:`FactorseqError` naming the
    longest). meta: ``n_sequences``, ``files`` (by seq_id), ``segment``, ``segment_hop`` and the
    front end.
    """
    from .container import SequenceData

    p = Path(path)
    fe = front_end if front_end is not None else front_end_from_options(cfg.options)
    if p.is_dir():
        files = sorted(f for f in p.iterdir()
                       if f.is_file() and f.suffix.lower() in AUDIO_SUFFIXES)
        if not files:
            raise FactorseqError(f"folder {p} holds no .wav or .flac files")
    else:
        files = [p]
    xs, sid, pos, used, skipped, longest = [], [], [], [], [], (0, files[0])
    for f in files:
        wave, sr = read_wav(f, expected_sr=getattr(fe, "sample_rate", None))
        feats = fe(wave, sr)
        if len(feats) < cfg.window:  # too short for one segment: skip it, say so in meta
            skipped.append(f.name)
            longest = max(longest, (len(feats), f))
            continue
        seg = segment_frames(feats, cfg.window, cfg.stride)
        xs.append(seg)
        sid.append(np.full(len(seg), len(used), dtype=np.int64))
        pos.append(np.arange(len(seg), dtype=np.int64))
        used.append(f.name)
    if not xs:
        raise FactorseqError(f"every audio file is shorter than one segment of {cfg.window} "
                             f"frames (the longest, {longest[1]}, has {longest[0]}); lower "
                             "--window")
    n_mels = xs[0].shape[2]
    meta = {"n_sequences": len(used), "files": used, "scaler": "standard",
            "segment": cfg.window, "segment_hop": cfg.stride}
    if skipped:
        meta["skipped_files"] = skipped
    if isinstance(fe, LogMel):
        meta.update(front_end_meta(fe))
    return SequenceData(x=np.concatenate(xs), feature_names=[f"mel{i:02d}" for i in range(n_mels)],
                        seq_id=np.concatenate(sid), extras={"segment_index": np.concatenate(pos)},
                        meta=meta, name=p.stem if p.is_file() else p.name)


file_loader(*AUDIO_SUFFIXES, "dir")(load_wav_folder)  # drop/remove/impute: load_data's step
