"""Synthetic voices for leave-speakers-out verification: the vocal-tract warp of log-mel
frames (by hand on the filter centres), the split of takes into voices, and fsdd-strings with
held-out speakers in several voices."""
from __future__ import annotations

import numpy as np
import pytest

from factorseq.data import DataConfig, load_data
from factorseq.data.fsdd import Utterances, voice_warps, with_voices
from factorseq.data.speech import LogMel, hz_to_mel, mel_centres, mel_to_hz, warp_log_mel
from factorseq.errors import FactorseqError

FE = LogMel()


def test_mel_centres_are_the_inner_points_of_an_even_mel_grid():
    c = mel_centres(FE)
    step = hz_to_mel(4000.0) / (FE.n_mels + 1)
    assert len(c) == 80
    assert c[0] == pytest.approx(float(mel_to_hz(step)))
    assert c[-1] == pytest.approx(float(mel_to_hz(80 * step)))


def test_warp_of_one_is_the_identity_and_ramps_interpolate_linearly():
    f = np.random.default_rng(0).standard_normal((5, 80)).astype(np.float32)
    np.testing.assert_allclose(warp_log_mel(f, 1.0, FE), f, atol=1e-6)
    # a frame equal to each filter's mel position: the warp returns the read position
    ramp = hz_to_mel(mel_centres(FE))[None, :].astype(np.float32)
    got = warp_log_mel(ramp, 1.25, FE)[0]
    want = np.clip(hz_to_mel(mel_centres(FE) / 1.25), ramp[0, 0], ramp[0, -1])
    np.testing.assert_allclose(got, want, rtol=1e-5)


@pytest.mark.parametrize("alpha", [0.8, 1.2])
def test_a_formant_moves_to_alpha_times_its_frequency(alpha):
    c = mel_centres(FE)
    peak = 30
    frame = np.zeros((1, 80), np.float32)
    frame[0, peak] = 1.0
    moved = int(np.argmax(warp_log_mel(frame, alpha, FE)[0]))
    # the output filter nearest alpha * f_peak (on the mel scale) reads the peak
    want = int(np.argmin(np.abs(hz_to_mel(c) - hz_to_mel(alpha * c[peak]))))
    assert moved == want and moved != peak
    with pytest.raises(FactorseqError):
        warp_log_mel(frame, 3.0, FE)


def small_utterances() -> Utterances:
    rng = np.random.default_rng(0)
    take = np.tile(np.arange(6), 2)
    return Utterances(feats=tuple(rng.standard_normal((4, 80)).astype(np.float32)
                                  for _ in range(12)),
                      digit=np.zeros(12, np.int64), speaker=np.repeat([0, 1], 6), take=take,
                      speakers=("ann", "bob"), front_end=FE)


def test_voices_split_the_takes_and_warp_each_voice():
    utt = small_utterances()
    voiced, held = with_voices(utt, [1.0, 0.9, 1.1], [1])
    assert voiced.speakers == ("ann@1", "ann@0.9", "ann@1.1", "bob@1", "bob@0.9", "bob@1.1")
    # take t of speaker s is voice s * 3 + t % 3
    np.testing.assert_array_equal(voiced.speaker, [0, 1, 2, 0, 1, 2, 3, 4, 5, 3, 4, 5])
    assert held == [3, 4, 5]
    np.testing.assert_array_equal(voiced.feats[3], utt.feats[3])  # warp 1.0: unchanged
    np.testing.assert_allclose(voiced.feats[4], warp_log_mel(utt.feats[4], 0.9, FE))
    assert not np.allclose(voiced.feats[4], utt.feats[4])


def test_voice_warps_option():
    assert voice_warps(None) == [] and voice_warps("0.9,1.1") == [0.9, 1.1]
    for bad in ("a,b", [0.5], [1.0, 1.0]):
        with pytest.raises(FactorseqError, match="voice_warps"):
            voice_warps(bad)


def test_fsdd_strings_with_six_unseen_voices():
    opts = {"heldout_speakers": ["jackson", "theo"], "voice_warps": [0.85, 1.0, 1.15],
            "n_sequences": 24}
    data = load_data(DataConfig(source="fsdd-strings", seed=0, options=opts))
    names = data.meta["speakers"]
    assert len(names) == 18 and data.meta["heldout_speakers"] == [
        "jackson@0.85", "jackson@1", "jackson@1.15", "theo@0.85", "theo@1", "theo@1.15"]
    test_voices = set(np.unique(data.test.extras["speaker"]).tolist())
    train_voices = set(np.unique(data.extras["speaker"]).tolist())
    assert len(test_voices) == 6 and not test_voices & train_voices
    assert {names[v].split("@")[0] for v in test_voices} == {"jackson", "theo"}
    assert {names[v].split("@")[0] for v in train_voices} <= {"george", "lucas", "nicolas",
                                                               "yweweler"}
