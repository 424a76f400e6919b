"""Disentanglement metrics (MIG, DCI, SAP, modularity), verification EER and symmetry on
constructed codes with known answers, and the ``disentanglement`` evaluator end to end."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from clihelp import cli, user_error
from factorseq.errors import FactorseqError, ShapeError
from factorseq.metrics.disentanglement import (
    dci,
    dci_scores,
    matched_accuracy,
    mig,
    mig_per_factor,
    modularity,
    mutual_information,
    sap,
)
from factorseq.metrics.symmetry import symmetry
from factorseq.metrics.verification import (
    cosine_trials,
    equal_error_rate,
    per_sequence,
    sequence_eer,
)


def _factors(n: int, k: int, values: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, values, (n, k))


def _perfect(f: np.ndarray, seed: int) -> np.ndarray:
    """Latent j = a monotone function of factor j (+ tiny noise): perfectly disentangled."""
    z = f + 0.05 * np.random.default_rng(seed).standard_normal(f.shape)
    z[:, 1] = np.exp(z[:, 1])
    return z[:, ::-1].copy()  # the order of latents must not matter


# --- hand-computable cases -------------------------------------------------------------------
def _two_binary_factors() -> np.ndarray:
    """Two independent balanced binary factors: every combination 25 times."""
    return np.array([(a, b) for a in (0, 1) for b in (0, 1)] * 25)


def test_mig_and_modularity_by_hand():
    f = _two_binary_factors()
    # latent 0 = factor 0; latent 1 = f0 + 2 f1 (four values: tells both factors fully)
    z = np.stack([f[:, 0], f[:, 0] + 2 * f[:, 1]], axis=1).astype(float)
    ln2 = math.log(2)
    assert np.allclose(mutual_information(z, f), [[ln2, 0.0], [ln2, ln2]])
    # factor 0: both latents hold ln 2 -> gap 0; factor 1: ln 2 - 0 over H = ln 2 -> 1
    assert np.allclose(mig_per_factor(z, f), [0.0, 1.0])
    assert mig(z, f) == pytest.approx(0.5)
    # latent 0 informs about one factor (1), latent 1 equally about two (1 - 1 = 0)
    assert modularity(z, f) == pytest.approx(0.5)
    # a latent equal to a factor, the other constant: the full gap
    assert mig(np.stack([f[:, 1], np.zeros(len(f))], 1).astype(float), f[:, 1:]) == 1.0


def test_dci_scores_by_hand():
    assert dci_scores(np.eye(3)) == pytest.approx((1.0, 1.0))
    assert dci_scores(np.ones((3, 3))) == pytest.approx((0.0, 0.0), abs=1e-9)
    # both latents explain factor 0 only: each latent is pure (D = 1), factor 0 is split
    # evenly over two latents (C = 1 - log_2 2 = 0), factor 1 has no weight
    assert dci_scores(np.array([[1.0, 0.0], [1.0, 0.0]])) == pytest.approx((1.0, 0.0), abs=1e-9)
    # one latent holds both factors equally, the other nothing: D = 0, C = 1
    assert dci_scores(np.array([[1.0, 1.0], [0.0, 0.0]])) == pytest.approx((0.0, 1.0), abs=1e-9)


def test_eer_by_hand():
    # four sequences, speakers A A B B, unit embeddings; cosine scores of the six pairs:
    # targets (A,A) 0.8 and (B,B) 0.8; non-targets 0.0, 0.6, 0.6, 0.96. Above 0.8 one of four
    # non-targets is accepted and both targets rejected; at 0.8 both are accepted: the
    # false-reject rate falls to 0 where false accepts are 1/4, so the EER is 1/4.
    emb = np.array([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [0.6, 0.8]])
    spk = np.array([0, 0, 1, 1])
    # two segments per sequence whose mean is the embedding (averaging is part of the metric)
    seg = np.concatenate([emb + [0.3, -0.3], emb - [0.3, -0.3]])
    seq = np.concatenate([np.arange(4), np.arange(4)])
    mean, lab = per_sequence(seg, seq, np.concatenate([spk, spk]))
    assert np.allclose(mean, emb) and lab.tolist() == [0, 0, 1, 1]
    assert sequence_eer(seg, seq, np.concatenate([spk, spk])) == pytest.approx(0.25)
    # speakers apart: 0; every sequence alike: chance (0.5); one speaker only: undefined
    assert sequence_eer(np.array([[1.0, 0], [1, 0.1], [0, 1], [0.1, 1]]), np.arange(4),
                        spk) == 0.0
    assert sequence_eer(np.ones((4, 2)), np.arange(4), spk) == pytest.approx(0.5)
    assert sequence_eer(emb, np.arange(4), np.zeros(4)) is None
    assert equal_error_rate(np.array([0.9, 0.1]), np.array([True, False])) == 0.0


# --- constructed codes: disentangled ~1, independent ~0 ---------------------------------------
@pytest.fixture(scope="module")
def factor_sets():
    return _factors(800, 4, 5, 0), _factors(500, 4, 5, 1)


def test_perfect_code_scores_high(factor_sets):
    f, ft = factor_sets
    z, zt = _perfect(f, 2), _perfect(ft, 3)
    assert mig(z, f) > 0.9 and modularity(z, f) > 0.95
    r = dci(z, f, zt, ft)
    assert r["dci_disentanglement"] > 0.95 and r["dci_completeness"] > 0.95
    assert r["dci_informativeness"] > 0.97
    assert np.argmax(np.asarray(r["dci_importance"]), axis=0).tolist() == [3, 2, 1, 0]
    assert sap(z, f, zt, ft) > 0.3  # one linear SVM on one latent cannot split 5 ordered values


def test_independent_and_entangled_codes_score_low(factor_sets):
    f, ft = factor_sets
    rng = np.random.default_rng(4)
    z, zt = rng.standard_normal((len(f), 4)), rng.standard_normal((len(ft), 4))
    assert mig(z, f) < 0.03
    r = dci(z, f, zt, ft)
    assert r["dci_disentanglement"] < 0.1 and r["dci_completeness"] < 0.1
    assert r["dci_informativeness"] < 0.3  # chance is 0.2
    assert sap(z, f, zt, ft) < 0.05
    # every latent the same mixture of all factors: informative but not disentangled
    mix = lambda g, s: g.sum(1, keepdims=True) + 0.01 * np.random.default_rng(s).standard_normal(  # noqa: E731
        (len(g), 4))
    e, et = mix(f, 5), mix(ft, 6)
    # modularity: squared MIs about equal per latent (sampling noise keeps it above 0)
    assert mig(e, f) < 0.05 and modularity(e, f) < 0.4
    r = dci(e, f, et, ft)
    assert r["dci_disentanglement"] < 0.3 and r["dci_completeness"] < 0.3


def test_matched_accuracy_by_hand():
    true = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2, 2])
    assert matched_accuracy((true + 1) % 3 + 5, true) == 1.0  # renamed categories
    assert matched_accuracy(np.zeros(10, int), true) == pytest.approx(0.5)  # one category
    # contingency rows = categories a, b: a = {0: 3, 2: 1}, b = {1: 2, 2: 4}; best a->0, b->2
    pred = np.array([0, 0, 0, 1, 1, 1, 1, 1, 1, 0])
    assert matched_accuracy(pred, true) == pytest.approx((3 + 4) / 10)
    with pytest.raises(ShapeError):
        matched_accuracy(pred[:3], true)


def test_metric_input_errors():
    with pytest.raises(ShapeError):
        mig(np.zeros((5, 2)), np.zeros((4, 1), dtype=int))
    with pytest.raises(FactorseqError):
        mig(np.zeros((5, 2)), np.zeros((5, 1)))  # float factors: not binned
    # a constant factor is left out of MIG (its entropy is 0)
    f = np.stack([np.arange(100) % 2, np.zeros(100, dtype=int)], 1)
    assert mig(f[:, :1].astype(float), f) == pytest.approx(1.0)


# --- symmetry on a toy world: windows that show their factors directly -----------------------
def _toy_world(n_seq: int = 30, n_seg: int = 5, seed: int = 0):
    """Windows (n, 1, 2): channel 0 = the sequence's factor, channel 1 = the segment's."""
    rng = np.random.default_rng(seed)
    seq_id = np.repeat(np.arange(n_seq), n_seg)
    seg_index = np.tile(np.arange(n_seg), n_seq)
    x = np.stack([rng.normal(size=n_seq)[seq_id], rng.normal(size=len(seq_id))], 1)[:, None]

    def act(seq, factor, g, segment):
        rows = np.flatnonzero(seq_id == seq)
        if factor == "level":
            new = x[rows].copy()
            new[:, 0, 0] = g.normal()
            return rows, new
        rows = rows[seg_index[rows] == segment]
        new = x[rows].copy()
        new[:, 0, 1] = g.normal()
        return rows, new

    return x, seq_id, seg_index, act


def test_symmetry_of_a_disentangled_and_an_entangled_encoder():
    x, seq_id, seg_index, act = _toy_world()
    factor_roles = {"level": "sequence", "regime": "segment"}
    roles = {"zs": "sequence", "zd": "segment"}

    def good(w):
        return {"zs": w[:, 0, :1], "zd": w[:, 0, 1:]}

    def mixed(w):
        both = w[:, 0, :1] + w[:, 0, 1:]
        return {"zs": both, "zd": both}

    res = symmetry(good, act, good(x), seq_id, seg_index, factor_roles, roles, actions=20)
    seq, seg = res["sequence_action"], res["segment_action"]
    assert seq["z_seg"] == 0.0 and seq["z_seq"] > 0.5 and seq["ratio"] > 1e4
    assert seg["z_seq"] == 0.0 and seg["z_seg"] > 0.5 and seg["ratio"] > 1e4
    assert seq["n_actions"] == 20 and set(seq["per_factor"]) == {"level"}
    res = symmetry(mixed, act, mixed(x), seq_id, seg_index, factor_roles, roles, actions=20)
    for kind in ("sequence_action", "segment_action"):
        assert res[kind]["ratio"] == pytest.approx(1.0, abs=1e-4)
    # a code without roles: its movement under each action, no ratio
    res = symmetry(lambda w: {"z": w[:, 0]}, act, {"z": x[:, 0]}, seq_id, seg_index,
                   factor_roles, {"z": "latent"}, actions=5)
    assert res["sequence_action"]["ratio"] is None and res["sequence_action"]["z_latent"] > 0


# --- the evaluator end to end (tiny models, 1 epoch) -----------------------------------------
TINY_DATA = "data.options={speakers: 10, sequences_per_speaker: 3, test_speakers: 6}"
TINY_EVAL = ["--evaluator", "disentanglement", "--set", "max_train=300", "--set", "actions=8",
             "--set", "pairs=200"]


@pytest.mark.parametrize("model,extra", [
    ("fhvae", ["--set", "hidden=8", "--set", "layers=1", "--set", "z1_dim=3",
               "--set", "z2_dim=3"]),
    ("vae", ["--set", "hidden=8", "--set", "latent_dim=4"]),
    ("dsvae", ["--set", "hidden=8", "--set", "f_dim=3", "--set", "z_dim=2"]),
    ("infogan", ["--set", "hidden=8", "--set", "n_categories=4", "--set", "n_continuous=2"])])
def test_disentanglement_evaluator_end_to_end(tmp_path, capsys, model, extra):
    run = tmp_path / "run"
    assert cli("train", model, "--data", "known-factors", "--out", run, "--epochs", 1,
               "--batch-size", 32, "--set", "train.tensorboard=false", "--set", TINY_DATA,
               *extra) == 0
    out = tmp_path / "m.json"
    assert cli("evaluate", run, "--out", out, *TINY_EVAL) == 0
    m = json.loads(out.read_text())
    for key in ("mig", "modularity", "dci_disentanglement", "dci_completeness",
                "dci_informativeness", "sap"):
        assert 0.0 <= m[key] <= 1.0, key
    assert set(m["seconds_per_metric"]) == {"encode", "mig", "modularity", "dci", "sap", "eer",
                                            "symmetry", "category"}
    assert m["n_test_sequences"] == 24 and m["eer_trials"] == 24 * 23 // 2
    sym = m["symmetry"]
    if model == "fhvae":
        assert m["code_parts"] == {"z1": ["segment", 3], "z2": ["sequence", 3]}
        assert 0 <= m["eer_static"] <= 1 and 0 <= m["eer_dynamic"] <= 1
        assert sym["sequence_action"]["ratio"] > 0 and sym["segment_action"]["ratio"] > 0
        assert set(m["importance_by_role"]["regime"]) == {"segment", "sequence"}
        # the static EER is the fhvae evaluator's: cosine of the closed-form mu2 per sequence
        import torch

        from factorseq.checkpoint import load
        r = load(run)
        test = r.load_data().test
        z2 = torch.as_tensor(r.encode(test.x)["z2"])
        _, mu2, _ = r.model.mu2_of(z2, torch.as_tensor(test.seq_id))
        spk = np.array([test.extras["speaker"][test.seq_id == s][0]
                        for s in np.unique(test.seq_id)])
        assert m["eer_static"] == pytest.approx(equal_error_rate(*cosine_trials(mu2.numpy(),
                                                                                spk)), abs=1e-9)
    elif model == "dsvae":  # the per-step z is not scored; f per sequence = its mean
        assert m["code_parts"] == {"f": ["sequence", 3], "z_mean": ["segment", 2]}
        from factorseq.checkpoint import load
        r = load(run)
        test = r.load_data().test
        f = r.encode(test.x)["f"]
        assert m["eer_static"] == pytest.approx(
            equal_error_rate(*cosine_trials(*per_sequence(f, test.seq_id,
                                                          test.extras["speaker"]))), abs=1e-9)
        assert sym["sequence_action"]["ratio"] > 0
    elif model == "infogan":  # Q's categorical code scored by matched accuracy
        assert m["code_parts"] == {"c_cat": ["probs", 4], "c_cont": ["latent", 2]}
        acc = m["category_accuracy"]["c_cat"]
        assert set(acc) == set(m["factors"]) and all(0 < v <= 1 for v in acc.values())
        assert m["category_accuracy_best"] == max(acc.values())
        assert 0 <= m["eer_latent"] <= 1 and "eer_static" not in m
    else:
        assert m["code_parts"] == {"z": ["latent", 4]} and "eer_static" not in m
        assert 0 <= m["eer_latent"] <= 1 and sym["sequence_action"]["ratio"] is None
    # a subset of metrics; bad options are one-line user errors
    assert cli("evaluate", run, "--out", tmp_path / "e.json", *TINY_EVAL,
               "--set", "metrics=[eer]") == 0
    assert set(json.loads((tmp_path / "e.json").read_text())["seconds_per_metric"]) == \
        {"encode", "eer"}
    assert "unknown metric" in user_error(capsys, "evaluate", run, "--out", tmp_path / "x.json",
                                          *TINY_EVAL, "--set", "metrics=[nope]")
    assert "not per-window extras" in user_error(
        capsys, "evaluate", run, "--out", tmp_path / "y.json", *TINY_EVAL,
        "--set", "factors={colour: sequence}")


def test_model_without_encoder_is_a_one_line_error(tmp_path, capsys):
    run = tmp_path / "gan"
    assert cli("train", "gan", "--data", "known-factors", "--out", run, "--epochs", 1,
               "--batch-size", 32, "--set", "train.tensorboard=false", "--set", TINY_DATA,
               "--set", "hidden=4") == 0
    msg = user_error(capsys, "evaluate", run, "--out", tmp_path / "m.json", *TINY_EVAL)
    assert "cannot do 'encodes'" in msg and not (tmp_path / "m.json").exists()
