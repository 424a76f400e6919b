"""fsdd-strings' ``validation_strings`` option: the validation set benchmarks/fhvae_invariance.py
registered as its own data set (``fsdd-strings-validation``), now loadable by the CLI."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from factorseq.data import DataConfig, load_data
from factorseq.errors import FactorseqError

# --- the reference: the earlier benchmarks/fhvae_invariance.py loader, copied as it was ---
VAL_PER_SPEAKER = 8


def _renumber(data):
    """seq_id as 0..S-1 in order of first appearance; meta n_sequences = S."""
    _, inv = np.unique(data.seq_id, return_inverse=True)
    return dataclasses.replace(data, seq_id=inv.astype(np.int64),
                               meta={**data.meta, "n_sequences": int(inv.max()) + 1})


def _validation_loader(cfg):
    """fsdd-strings' training split without 8 strings per speaker, which become ``.test``."""
    from factorseq.data.split import sequences_per_group, split_sequences
    base = load_data(dataclasses.replace(DataConfig(source="fsdd-strings"), seed=cfg.seed))
    held = sequences_per_group(base.seq_id, base.extras["speaker"], VAL_PER_SPEAKER, 12345)
    train, val = (_renumber(d) for d in split_sequences(base, held))
    train.test = val
    return train
# --- end of the reference ---


def _same(a, b, ignore=("split",)):
    np.testing.assert_array_equal(np.asarray(a.x), np.asarray(b.x))
    np.testing.assert_array_equal(a.seq_id, b.seq_id)
    assert a.extras.keys() == b.extras.keys()
    for k in a.extras:
        np.testing.assert_array_equal(a.extras[k], b.extras[k])
    assert ({k: v for k, v in a.meta.items() if k not in ignore}
            == {k: v for k, v in b.meta.items() if k not in ignore})


def test_validation_strings_are_the_earlier_scripts_validation_set():
    opts = {"validation_strings": 8, "validation_seed": 12345}
    new = load_data(DataConfig(source="fsdd-strings", seed=0, options=opts))
    old = _validation_loader(DataConfig(source="fsdd-strings-validation"))
    _same(new, old)
    # the earlier .test was cut from the loaded set, which carries the set's scaler preference
    _same(new.test, old.test, ignore=("split", "scaler"))
    assert new.meta["n_sequences"] == 402 and new.test.meta["n_sequences"] == 48
    assert (new.meta["split"], new.test.meta["split"]) == ("train", "validation")
    spk = new.test.extras["speaker"]  # 8 strings of each of the six speakers
    assert [len(np.unique(new.test.seq_id[spk == s])) for s in range(6)] == [8] * 6


def test_validation_strings_need_a_training_string_left():
    with pytest.raises(FactorseqError, match="validation_strings"):
        load_data(DataConfig(source="fsdd-strings", seed=0,
                             options={"n_sequences": 12, "validation_strings": 2}))
    with pytest.raises(FactorseqError, match="validation_strings"):
        load_data(DataConfig(source="fsdd-strings", options={"validation_strings": 0}))
