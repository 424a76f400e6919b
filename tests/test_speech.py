"""Speech front end (log-mel, Griffin-Lim, WAV I/O) and the bundled FSDD sets (repo data/)."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from factorseq.data import DataConfig, load_data
from factorseq.data.fsdd import (
    TEST_TAKES,
    _digit_strings,
    _read_cache,
    _write_cache,
    fix_length,
    load_utterances,
)
from factorseq.data.speech import (
    LogMel,
    deemphasis,
    front_end_from_meta,
    griffin_lim,
    hz_to_mel,
    log_mel,
    mel_filterbank,
    mel_to_hz,
    preemphasis,
    read_wav,
    silence_bounds,
    trim_silence,
    write_wav,
)
from factorseq.errors import FactorseqError, ShapeError

SR = 8000


def tone(freq: float, seconds: float = 0.5, sr: int = SR, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return amp * np.sin(2 * np.pi * freq * t)


# ----------------------------------------------------------------------------- front end

def test_logmel_settings_at_8k():
    cfg = LogMel()
    assert (cfg.win_length, cfg.hop_length, cfg.n_fft) == (200, 80, 256)
    assert LogMel(sample_rate=16000).n_fft == 512  # 400-sample window -> next pow2
    with pytest.raises(ValueError):
        LogMel(hop_ms=30.0)


def test_log_mel_shape_and_frame_count():
    for n in (200, 279, 280, 4000, 4321):
        feats = log_mel(tone(440, n / SR), SR)
        assert feats.shape == (1 + (n - 200) // 80, 80)
        assert feats.dtype == np.float32
    with pytest.raises(FactorseqError, match="shorter than one"):
        log_mel(np.zeros(150), SR)
    with pytest.raises(ShapeError):
        log_mel(np.zeros((2, 800)), SR)


def test_silence_gives_the_log_floor():
    feats = log_mel(np.zeros(800), SR)
    np.testing.assert_allclose(feats, np.log(1e-6), rtol=1e-6)


@pytest.mark.parametrize("freq", [300.0, 1000.0, 2500.0])
def test_mel_energy_peaks_in_the_tone_band(freq):
    cfg = LogMel()
    band = int(np.argmax(log_mel(tone(freq), SR, cfg).mean(axis=0)))
    # the band is the filter whose triangle holds the tone's mel position
    edges = mel_to_hz(np.linspace(0, hz_to_mel(SR / 2), cfg.n_mels + 2))
    assert edges[band] - 40 <= freq <= edges[band + 2] + 40


def test_filterbank_is_htk_triangles_and_never_empty():
    fb = mel_filterbank(LogMel())
    assert fb.shape == (80, 129)
    assert (fb >= 0).all() and (fb.sum(axis=1) > 0).all()
    assert np.all(np.diff(np.argmax(fb, axis=1)) >= 0)  # centres rise with the filter index
    # wide high filters: peak close to HTK's 1 at the bin nearest the centre
    assert fb[-10:].max(axis=1).min() > 0.8
    np.testing.assert_allclose(hz_to_mel(mel_to_hz([0.0, 500.0, 2146.0])), [0, 500, 2146])


def test_preemphasis_formula_and_inverse():
    x = np.array([1.0, 2.0, -1.0, 0.5])
    np.testing.assert_allclose(preemphasis(x, 0.97), [1.0, 2 - 0.97, -1 - 1.94, 0.5 + 0.97])
    rng = np.random.default_rng(0)
    w = rng.standard_normal(500)
    np.testing.assert_allclose(deemphasis(preemphasis(w)), w, atol=1e-10)


def test_resampled_wave_gives_the_same_features():
    a = log_mel(tone(700, 0.5, 8000), 8000)
    b = log_mel(tone(700, 0.5, 16000), 16000, LogMel())  # resampled to 8 kHz first
    assert a.shape == b.shape
    assert np.corrcoef(a[2:-2].ravel(), b[2:-2].ravel())[0, 1] > 0.99


# ----------------------------------------------------------------------------- Griffin-Lim

def test_griffin_lim_inverts_a_bundled_digit():
    wave, sr = read_wav(_bundled("3_jackson_7.flac"), expected_sr=SR)
    feats = log_mel(wave, sr)
    out = griffin_lim(feats, sr, n_iter=30)
    assert out.dtype == np.float32 and out.ndim == 1
    assert len(out) == (len(feats) - 1) * 80 + 200
    assert abs(len(out) - len(wave)) < 80
    again = log_mel(out, sr)
    assert again.shape == feats.shape
    assert np.corrcoef(again.ravel(), feats.ravel())[0, 1] > 0.8
    assert 0.2 < np.abs(out).max() / np.abs(wave).max() < 5  # about the right level


def test_griffin_lim_checks_shapes():
    with pytest.raises(ShapeError):
        griffin_lim(np.zeros((10, 40)), SR)
    with pytest.raises(FactorseqError, match="16000"):
        griffin_lim(np.zeros((10, 80)), 16000)


# ----------------------------------------------------------------------------- I/O

def test_read_wav_resamples_and_mixes_down(tmp_path):
    stereo = np.stack([tone(440, 0.5, 16000), tone(440, 0.5, 16000)], axis=1)
    path = tmp_path / "s.wav"
    sf.write(path, stereo, 16000, subtype="PCM_16")
    wave, sr = read_wav(path, expected_sr=8000)
    assert sr == 8000 and wave.ndim == 1 and len(wave) == 4000
    spec = np.abs(np.fft.rfft(wave))
    assert abs(np.argmax(spec) * 8000 / len(wave) - 440) < 4
    wave16, sr16 = read_wav(path)
    assert sr16 == 16000 and len(wave16) == 8000


def test_bad_audio_files_are_user_errors(tmp_path):
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(4000), SR, subtype="PCM_16")
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros(0), SR, subtype="PCM_16")
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"not audio at all")
    for path, what in ((silent, "silent"), (empty, "empty"), (junk, "cannot read")):
        with pytest.raises(FactorseqError, match=what) as e:
            read_wav(path)
        assert str(path) in str(e.value)
    with pytest.raises(FactorseqError, match="not found"):
        read_wav(tmp_path / "missing.wav")


def test_write_wav_round_trip(tmp_path):
    w = tone(500, 0.25) * 1.5  # clipped to [-1, 1] on the way out
    path = write_wav(tmp_path / "sub" / "out.wav", w, SR)
    back, sr = read_wav(path)
    assert sr == SR and len(back) == len(w)
    np.testing.assert_allclose(back, np.clip(w, -1, 1), atol=1e-4)


def test_trim_silence_keeps_the_loud_part():
    quiet = np.zeros(2000)
    w = np.concatenate([quiet, tone(600, 0.3), quiet])
    start, end = silence_bounds(w, SR)
    assert 1800 <= start <= 2000 and 4400 <= end <= 4700
    assert len(trim_silence(w, SR)) == end - start
    assert len(trim_silence(np.zeros(900), SR)) == 900  # nothing to trim against


def test_wav_folder_loads_as_sequences(tmp_path):
    write_wav(tmp_path / "b.wav", tone(300, 0.6), SR)
    write_wav(tmp_path / "a.flac", tone(900, 0.4, 16000), 16000)
    (tmp_path / "notes.txt").write_text("ignored")
    data = load_data(DataConfig(source=str(tmp_path), window=10, stride=5))
    frames = [1 + (3200 - 200) // 80, 1 + (4800 - 200) // 80]  # a (resampled), b
    n_seg = [1 + (f - 10) // 5 for f in frames]
    assert data.x.shape == (sum(n_seg), 10, 80)
    np.testing.assert_array_equal(np.bincount(data.seq_id), n_seg)
    assert data.meta["files"] == ["a.flac", "b.wav"] and data.meta["n_sequences"] == 2
    np.testing.assert_array_equal(data.extras["segment_index"][: n_seg[0]], np.arange(n_seg[0]))
    assert front_end_from_meta(data.meta) == LogMel()
    single = load_data(DataConfig(source=str(tmp_path / "b.wav"), window=10, stride=5))
    assert single.x.shape == (n_seg[1], 10, 80)


def test_wav_folder_skips_files_too_short_and_names_them(tmp_path):
    write_wav(tmp_path / "long.wav", tone(300, 0.6), SR)
    write_wav(tmp_path / "short.wav", tone(300, 0.1), SR)
    d = load_data(DataConfig(source=str(tmp_path), window=20, stride=5))
    assert d.meta["files"] == ["long.wav"] and d.meta["skipped_files"] == ["short.wav"]
    assert set(d.seq_id) == {0}
    with pytest.raises(FactorseqError, match="long.wav"):  # every file too short
        load_data(DataConfig(source=str(tmp_path), window=200, stride=5))
    empty = tmp_path / "none"
    empty.mkdir()
    with pytest.raises(FactorseqError, match="no .wav"):
        load_data(DataConfig(source=str(empty), window=20))


# ----------------------------------------------------------------------------- bundled FSDD

def _bundled(name: str):
    from factorseq.data.paths import data_dir
    return data_dir() / "fsdd" / "recordings" / name


def test_feature_cache_round_trip(tmp_path):
    feats = [np.ones((3, 4), np.float32), np.zeros((5, 4), np.float32)]
    _write_cache(tmp_path / "c.npz", feats)
    back = _read_cache(tmp_path / "c.npz", 2)
    assert [f.shape for f in back] == [(3, 4), (5, 4)] and back[0].sum() == 12
    assert _read_cache(tmp_path / "c.npz", 3) is None
    assert _read_cache(tmp_path / "missing.npz", 2) is None


def test_fix_length_crops_centre_and_pads_with_floor():
    f = np.arange(10, dtype=np.float32)[:, None]
    np.testing.assert_array_equal(fix_length(f, 4, -1)[:, 0], [3, 4, 5, 6])
    np.testing.assert_array_equal(fix_length(f[:2], 5, -1)[:, 0], [-1, 0, 1, -1, -1])


def test_fsdd_digits_shapes_and_split():
    data = load_data(DataConfig(source="fsdd-digits"))
    assert data.x.shape == (2700, 48, 80) and data.test.x.shape == (300, 48, 80)
    assert data.extras["take"].min() == TEST_TAKES  # takes 0-4 never in train
    assert data.test.extras["take"].max() == TEST_TAKES - 1
    np.testing.assert_array_equal(np.bincount(data.y), [270] * 10)
    np.testing.assert_array_equal(data.domain, data.extras["speaker"])
    assert data.y_mask.all()
    assert data.meta["n_classes"] == 10 and data.meta["n_mels"] == 80
    assert len(data.meta["speakers"]) == 6 and data.meta["frames"] == 48
    assert data.x.min() >= np.log(1e-6) - 1e-4


def test_fsdd_digits_target_speaker():
    data = load_data(DataConfig(source="fsdd-digits", options={"target_speaker": "theo"}))
    idx = data.meta["speakers"].index("theo")
    assert data.meta["target_speaker"] == idx and data.meta["n_domains"] == 2
    np.testing.assert_array_equal(data.domain, (data.extras["speaker"] == idx).astype(int))
    assert data.test.domain.sum() == 50
    with pytest.raises(FactorseqError, match="george, jackson, lucas, nicolas, theo"):
        load_data(DataConfig(source="fsdd-digits", options={"target_speaker": "bob"}))


def test_fsdd_digits_labels_hidden_generically():
    data = load_data(DataConfig(source="fsdd-digits", labels=100))
    assert data.y_mask.sum() == 100
    np.testing.assert_array_equal(np.bincount(data.y[data.y_mask]), [10] * 10)


def test_fsdd_strings_one_speaker_per_sequence():
    data = load_data(DataConfig(source="fsdd-strings", seed=3))
    assert data.x.shape[1:] == (20, 80) and data.meta["n_sequences"] == 450
    assert data.seq_id.max() == 449 and data.test.seq_id.max() == 47
    assert data.test.meta["n_sequences"] == 48
    for part in (data, data.test):
        spk, sid, pos = part.extras["speaker"], part.seq_id, part.extras["segment_index"]
        first = np.searchsorted(sid, np.arange(sid.max() + 1))  # segments are grouped by seq
        assert (np.diff(sid) >= 0).all()
        np.testing.assert_array_equal(spk, spk[first][sid])  # one speaker per sequence
        np.testing.assert_array_equal(pos, np.arange(len(sid)) - first[sid])
        fd = part.extras["frame_digit"]
        counts = np.stack([(fd == d).sum(1) for d in range(10)], 1)
        np.testing.assert_array_equal(counts.argmax(1), part.extras["digit"])
    # segments overlap by 10 frames: consecutive segments share frames
    first = data.x[data.seq_id == 0]
    np.testing.assert_array_equal(first[0, 10:], first[1, :10])
    again = load_data(DataConfig(source="fsdd-strings", seed=3))
    np.testing.assert_array_equal(again.x, data.x)
    other = load_data(DataConfig(source="fsdd-strings", seed=4, options={"n_sequences": 12}))
    assert other.meta["n_sequences"] == 12 and other.seq_id.max() == 11
    np.testing.assert_array_equal(other.test.x, data.test.x)  # fixed test strings


def test_fsdd_strings_draw_only_training_takes():
    utt = load_utterances()
    train = utt.take >= TEST_TAKES
    strings = _digit_strings(utt, train, [75] * 6, 4, 8, np.random.default_rng(0))
    used = np.concatenate([idx for _, idx in strings])
    assert (utt.take[used] >= TEST_TAKES).all()
    assert all((utt.speaker[idx] == s).all() and 4 <= len(idx) <= 8 for s, idx in strings)
    # about once each: a 450-utterance pool per speaker, ~450 draws per speaker
    assert len(np.unique(used)) > 0.85 * train.sum()
