"""The ``known-factors`` corpus (seeded, every factor stored, acting on it changes only what
it says) and FSDD strings with held-out speakers."""
from __future__ import annotations

import numpy as np
import pytest

from clihelp import cli
from factorseq.data import DataConfig, load_data
from factorseq.data.known_factors import (
    CONTINUOUS,
    FACTORS,
    bin_of,
    random_action,
    regenerate,
    rows_of,
)
from factorseq.errors import FactorseqError

SMALL = {"speakers": 8, "sequences_per_speaker": 3, "test_speakers": 4}


def _load(seed: int = 0, **options) -> object:
    return load_data(DataConfig(source="known-factors", seed=seed, options={**SMALL, **options}))


def test_shapes_factors_and_roles():
    d = _load()
    assert d.x.shape[1:] == (20, 4) and d.x.dtype == np.float32
    assert d.meta["factors"] == FACTORS and d.meta["n_sequences"] == 24
    assert d.test.meta["n_sequences"] == 16 and d.test.meta["split"] == "test"
    lengths = np.bincount(d.seq_id)
    assert lengths.min() >= 8 and lengths.max() <= 12 and lengths.sum() == len(d.x)
    for name in FACTORS:
        assert d.extras[name].dtype == np.int64
    for name, (lo, hi) in CONTINUOUS.items():
        v = d.extras[name + "_value"]
        assert lo <= v.min() and v.max() <= hi
        assert np.array_equal(d.extras[name], bin_of(name, v, 4))
    assert set(np.unique(d.extras["amplitude"])) <= {0, 1, 2, 3}
    # sequence-level factors are constant along each sequence (and each speaker), the
    # segment-level ones change within sequences
    for name, role in FACTORS.items():
        per_seq = [len(np.unique(d.extras[name + ("_value" if name in CONTINUOUS else "")]
                                 [d.seq_id == s])) for s in range(24)]
        if role == "sequence":
            assert max(per_seq) == 1, name
            for k in range(8):
                assert len(np.unique(d.extras[name][d.extras["speaker"] == k])) == 1
        else:
            assert max(per_seq) > 1, name
    assert (np.diff(d.extras["segment_index"])[np.diff(d.seq_id) == 0] == 1).all()


def test_reproducible_from_its_seed_and_test_split_fixed():
    a, b, c = _load(0), _load(0), _load(1)
    assert np.array_equal(a.x, b.x) and np.array_equal(a.seq_id, b.seq_id)
    assert all(np.array_equal(a.extras[k], b.extras[k]) for k in a.extras)
    assert a.x.shape != c.x.shape or not np.array_equal(a.x, c.x)
    # the held-out speakers do not depend on the training seed, only on test_seed
    assert np.array_equal(a.test.x, c.test.x)
    assert not np.array_equal(a.test.x[:50], _load(0, test_seed=5).test.x[:50])
    # noise 0: windows are the noise-free render, and differ from the noisy ones
    clean = _load(0, noise=0)
    assert 0 < np.abs(clean.x - a.x).std() < 0.2


def test_regenerate_changes_only_what_it_says():
    d = _load(0, noise=0.3)
    seq = 5
    rows, same = regenerate(d, seq)
    assert np.array_equal(rows, rows_of(d, seq)) and np.array_equal(same, d.x[rows])
    # a segment-level factor of one segment: that window alone changes
    k = int(d.extras["segment_index"][rows[2]])
    old = int(d.extras["regime"][rows[2]])
    _, x = regenerate(d, seq, {"regime": (old + 1) % 4}, segment=k)
    changed = np.abs(x - d.x[rows]).max(axis=(1, 2)) > 1e-6
    assert changed.tolist() == [i == 2 for i in range(len(rows))]
    # a sequence-level factor: every window changes; amplitude scales the oscillation only
    # (regime part and noise fixed), so differences between amplitudes are proportional
    x1 = regenerate(d, seq, {"amplitude": 1.0})[1].astype(np.float64)
    x2 = regenerate(d, seq, {"amplitude": 1.5})[1].astype(np.float64)
    x3 = regenerate(d, seq, {"amplitude": 2.0})[1].astype(np.float64)
    assert (np.abs(x1 - d.x[rows]).max(axis=(1, 2)) > 1e-3).all()
    assert np.allclose(x3 - x1, 2 * (x2 - x1), atol=1e-5)
    # changing the value back restores the data exactly (same noise)
    v = float(d.extras["amplitude_value"][rows[0]])
    assert np.array_equal(regenerate(d, seq, {"amplitude": v})[1], d.x[rows])
    for bad, msg in [({"colour": 1}, "unknown factor"), ({"shape": 7}, "integer in"),
                     ({"amplitude": 9.0}, "must lie in")]:
        with pytest.raises(FactorseqError, match=msg):
            regenerate(d, seq, bad)
    with pytest.raises(FactorseqError, match="name the segment"):
        regenerate(d, seq, {"regime": 1})
    with pytest.raises(FactorseqError, match="sequence-level"):
        regenerate(d, seq, {"shape": 1}, segment=0)
    with pytest.raises(FactorseqError, match="no sequence"):
        regenerate(d, 999)


def test_random_action_rows_and_new_values():
    d = _load()
    rng = np.random.default_rng(0)
    for factor, role in FACTORS.items():
        seg = 1 if role == "segment" else None
        rows, x = random_action(d, 3, factor, rng, seg)
        assert len(rows) == (1 if seg is not None else len(rows_of(d, 3)))
        assert (np.abs(x - d.x[rows]).max(axis=(1, 2)) > 1e-3).all(), factor
    with pytest.raises(FactorseqError):
        regenerate(load_data(DataConfig(source="sines", options={"n": 10})), 0)


def test_listed_and_option_errors(capsys):
    assert cli("datasets") == 0
    assert "known-factors" in capsys.readouterr().out
    with pytest.raises(FactorseqError, match="max_segments"):
        _load(min_segments=5, max_segments=3)


def test_fsdd_strings_with_heldout_speakers():
    d = load_data(DataConfig(source="fsdd-strings",
                             options={"heldout_speakers": "jackson, theo"}))
    names = d.meta["speakers"]
    held = {names.index("jackson"), names.index("theo")}
    assert set(np.unique(d.test.extras["speaker"])) == held
    assert not set(np.unique(d.extras["speaker"])) & held
    assert d.meta["heldout_speakers"] == ["jackson", "theo"] and d.meta["n_sequences"] == 300
    # test strings may use every take of the unseen speakers
    assert d.test.meta["n_sequences"] == 2 * round(500 / 6)
    plain = load_data(DataConfig(source="fsdd-strings"))
    assert plain.meta["heldout_speakers"] == [] and plain.test.meta["n_sequences"] == 48
    with pytest.raises(FactorseqError, match="unknown FSDD speaker"):
        load_data(DataConfig(source="fsdd-strings", options={"heldout_speakers": ["bob"]}))
    with pytest.raises(FactorseqError, match="no speaker"):
        load_data(DataConfig(source="fsdd-strings", options={"heldout_speakers": names}))
