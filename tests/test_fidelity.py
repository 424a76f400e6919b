"""Context-FID, its TS2Vec encoder, and the correlational score: maths against hand values."""
from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg
import torch

from factorseq.errors import FactorseqError, ShapeError
from factorseq.metrics import context_fid, correlational_score
from factorseq.metrics.fidelity import cross_correlation, frechet_distance
from factorseq.metrics.ts2vec import (
    TS2Vec,
    TS2VecEncoder,
    default_iterations,
    dilated_conv,
    hierarchical_contrastive_loss,
    instance_contrastive_loss,
    random_crops,
    temporal_contrastive_loss,
)

TINY = {"output_dims": 16, "hidden": 16, "depth": 3, "iterations": 60}


def sines(n: int, seed: int, t: int = 16, d: int = 2) -> np.ndarray:
    rng = np.random.default_rng(seed)
    steps = np.arange(t)[None, :, None]
    freq, phase = rng.uniform(0.1, 0.4, (n, 1, d)), rng.uniform(0, 2 * np.pi, (n, 1, d))
    return (0.5 + 0.5 * np.sin(freq * steps + phase)).astype(np.float32)


# ----------------------------------------------------------------------- Fréchet distance
def test_frechet_distance_matches_the_sqrtm_formula():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(400, 6))
    b = rng.normal(size=(300, 6)) @ rng.normal(size=(6, 6)) + 0.5
    s_a, s_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    want = (((a.mean(0) - b.mean(0)) ** 2).sum()
            + np.trace(s_a + s_b - 2 * scipy.linalg.sqrtm(s_a @ s_b).real))
    assert frechet_distance(a, b) == pytest.approx(want, rel=1e-9)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-9)


def test_frechet_distance_of_two_one_dimensional_gaussians_by_hand():
    # 1-D: (m1 - m2)^2 + (s1 - s2)^2 with sample std: a = {0, 2} (mean 1, var 2), b = {5, 9}
    # (mean 7, var 8): 36 + (sqrt 2 - sqrt 8)^2 = 36 + 2 = 38
    assert frechet_distance([[0.0], [2.0]], [[5.0], [9.0]]) == pytest.approx(38.0)
    with pytest.raises(ShapeError):
        frechet_distance(np.zeros((3, 2)), np.zeros((3, 3)))


# ------------------------------------------------------------------------ TS2Vec losses
# rows u0 = (1, 0), u1 = (0, 1) (view 1), u2 = (2, 0), u3 = (0, 0) (view 2); positives
# (u0, u2) and (u1, u3). Row u0: sims to u1, u2, u3 = 0, 2, 0 -> -log(e^2 / (e^2 + 2));
# u2 the same by symmetry; u1 and u3: all sims 0 -> log 3. Mean of the four rows:
HAND = (math.log(3) + math.log(math.e ** 2 + 2) - 2) / 2
VIEW1, VIEW2 = [[1.0, 0.0], [0.0, 1.0]], [[2.0, 0.0], [0.0, 0.0]]


def test_instance_contrastive_loss_by_hand():
    z1 = torch.tensor(VIEW1)[:, None, :]  # (batch 2, time 1, C 2)
    z2 = torch.tensor(VIEW2)[:, None, :]
    assert float(instance_contrastive_loss(z1, z2)) == pytest.approx(HAND, rel=1e-6)


def test_temporal_contrastive_loss_by_hand():
    z1 = torch.tensor(VIEW1)[None]  # (batch 1, time 2, C 2)
    z2 = torch.tensor(VIEW2)[None]
    assert float(temporal_contrastive_loss(z1, z2)) == pytest.approx(HAND, rel=1e-6)


def test_hierarchical_loss_by_hand():
    z1, z2 = torch.tensor(VIEW1)[None], torch.tensor(VIEW2)[None]
    # batch 1: the instance terms are 0 (the only other row is the positive); scale 0 gives
    # 0.5 * HAND, pooling to one step gives an instance term only: mean over 2 scales
    assert float(hierarchical_contrastive_loss(z1, z2)) == pytest.approx(HAND / 4, rel=1e-6)
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(3, 5, 4, generator=g), torch.randn(3, 5, 4, generator=g)
    pool = lambda z: torch.nn.functional.max_pool1d(z.transpose(1, 2), 2).transpose(1, 2)  # noqa: E731
    a2, b2, a1, b1 = pool(a), pool(b), pool(pool(a)), pool(pool(b))  # T: 5 -> 2 -> 1
    want = sum(0.5 * instance_contrastive_loss(x, y) + 0.5 * temporal_contrastive_loss(x, y)
               for x, y in ((a, b), (a2, b2))) + 0.5 * instance_contrastive_loss(a1, b1)
    assert float(hierarchical_contrastive_loss(a, b)) == pytest.approx(float(want) / 3, rel=1e-6)


def test_random_crops_overlap_on_the_same_steps():
    rng = np.random.default_rng(0)
    for _ in range(200):
        i1, i2, overlap = random_crops(4, 12, rng)
        assert 2 <= overlap <= 12 and i1.min() >= 0 and i2.max() < 12
        assert np.array_equal(i1[:, -overlap:], i2[:, :overlap])
        assert np.all(np.diff(i1, axis=1) == 1) and np.all(np.diff(i2, axis=1) == 1)


@pytest.mark.parametrize("dilation", [1, 4, 16])
def test_dilated_conv_equals_torch_conv1d(dilation):
    conv = torch.nn.Conv1d(3, 5, 3, padding=dilation, dilation=dilation)
    h = torch.randn(2, 9, 3)
    want = conv(h.transpose(1, 2)).transpose(1, 2)
    torch.testing.assert_close(dilated_conv(h, conv), want, rtol=1e-5, atol=1e-6)


def test_padded_batch_equals_each_window_alone():
    net = TS2VecEncoder(2, output_dims=6, hidden=4, depth=3).eval()
    a, b = torch.randn(1, 5, 2), torch.randn(1, 9, 2)
    padded = torch.cat([torch.nn.functional.pad(a, (0, 0, 0, 4)) + 7.0 * (torch.arange(9) >= 5)[
        None, :, None], b])  # junk in the padding must not matter
    out = net(padded, torch.tensor([5, 9]))
    torch.testing.assert_close(out[:1, :5], net(a), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(out[1:], net(b), rtol=1e-5, atol=1e-6)


def test_encoder_shapes_and_masking():
    net = TS2VecEncoder(3, output_dims=8, hidden=4, depth=2).eval()
    x = torch.randn(5, 11, 3)
    out = net(x)
    assert out.shape == (5, 11, 8)
    assert torch.equal(out, net(x))  # eval: no mask, no dropout
    net.train()
    assert not torch.equal(net(x), net(x))  # training: random masks


def test_ts2vec_loss_decreases_and_training_is_seeded():
    x = sines(200, 0)
    model = TS2Vec(2, output_dims=16, hidden=16, depth=3, seed=1)
    losses = model.fit(x, 150)
    assert len(losses) == 150
    # the loss is noisy (random crop lengths): means of 30 iterations, 2.05 -> 1.79 measured
    assert np.mean(losses[-30:]) < 0.92 * np.mean(losses[:30])
    one, two = (TS2Vec(2, output_dims=16, hidden=16, depth=3, seed=5) for _ in range(2))
    one.fit(x, 10)
    two.fit(x, 10)
    emb = one.encode(x)
    assert emb.shape == (200, 16)
    assert np.array_equal(emb, two.encode(x))
    assert default_iterations(x) == 200 and default_iterations(np.zeros((2000, 24, 3))) == 600


# ------------------------------------------------------------------------ Context-FID
def test_context_fid_is_small_for_real_vs_real_and_large_for_noise():
    x = sines(600, 0)
    noise = np.random.default_rng(1).uniform(size=(300, 16, 2)).astype(np.float32)
    same = context_fid(x[:300], x[300:], seed=0, **TINY)
    far = context_fid(x[:300], noise, seed=0, **TINY)
    assert same < 0.1 * far
    assert same == context_fid(x[:300], x[300:], seed=0, **TINY)  # seeded
    with pytest.raises(ShapeError):
        context_fid(x, x[:, :, :1], **TINY)


# ------------------------------------------------------------------------ correlational
def test_correlational_is_zero_for_identical_sets():
    x = sines(50, 3, d=4)
    assert correlational_score(x, x.copy()) == 0.0


def test_correlational_two_channels_by_hand():
    up = np.array([1.0, 2.0, 3.0, 4.0])
    real = np.stack([up, up], -1)[None]  # 1 window, 4 steps, 2 channels
    synthetic = np.stack([up, up[::-1]], -1)[None]
    # standardised with the unbiased std sqrt(5/3): sum z^2 = 3 over 4 steps -> diagonal 0.75
    # in both; off-diagonal +0.75 (real) vs -0.75 (synthetic): L1 = 1.5, over 10 = 0.15
    np.testing.assert_allclose(cross_correlation(real), [0.75, 0.75, 0.75])
    assert correlational_score(real, synthetic) == pytest.approx(0.15)


def test_correlational_subsets_are_seeded_draws():
    rng = np.random.default_rng(0)
    base = rng.normal(size=(400, 8, 1))
    real = np.concatenate([base, base + 0.3 * rng.normal(size=base.shape)], -1)
    synthetic = rng.normal(size=(400, 8, 2))
    a = correlational_score(real, synthetic, seed=0, size=80)
    assert a == correlational_score(real, synthetic, seed=0, size=80)
    assert a != correlational_score(real, synthetic, seed=1, size=80)
    full = correlational_score(real, synthetic)  # corr ~0.96 vs ~0: about 0.096
    assert 0.08 < full < 0.11
    with pytest.raises(FactorseqError):
        correlational_score(real, synthetic, size=1)
