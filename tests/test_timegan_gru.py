"""The protocol's post-hoc GRU as TimeGAN's code builds it (TF1 GRUCell), checked against one
step computed by hand; and the Keras/PyTorch cell it differs from (issue #22, part 6)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from factorseq.errors import FactorseqError
from factorseq.metrics.timegan import _PostHocGRUs, discriminative_scores


def sig(v):
    return 1 / (1 + np.exp(-v))


def net_with(cell, w_in, w_rec, b_in, b_rec):
    net = _PostHocGRUs(2, 2, per_step=True, generators=[torch.Generator().manual_seed(0)],
                       cell=cell)
    with torch.no_grad():
        for p, v in ((net.w_in, w_in), (net.w_rec, w_rec), (net.b_in, b_in), (net.b_rec, b_rec)):
            p.copy_(torch.tensor(v, dtype=torch.float32)[None].reshape(p.shape))
        net.w_out.copy_(torch.tensor([[[1.0], [0.0]]]))  # read out h[0]
        net.b_out.zero_()
    return net


def two_steps_by_hand(cell, x, w_in, w_rec, b_in, b_rec):
    h = np.zeros(2)
    outs = []
    for xt in x:
        gi = xt @ w_in + b_in
        if cell == "tf1":  # r, z = sig(W_x x + W_h h + b); n = tanh(W_xn x + W_hn (r h) + b_n)
            r, z = np.split(sig(gi[:4] + h @ w_rec[:, :4]), 2)
            n = np.tanh(gi[4:] + (r * h) @ w_rec[:, 4:])
        else:  # r, z = sig(.. + W_h h + b_h); n = tanh(W_xn x + b_n + r (W_hn h + b_hn))
            gr = h @ w_rec + b_rec
            r, z = np.split(sig(gi[:4] + gr[:4]), 2)
            n = np.tanh(gi[4:] + r * gr[4:])
        h = (1 - z) * n + z * h
        outs.append(h[0])
    return np.array(outs)


@pytest.mark.parametrize("cell", ["tf1", "keras"])
def test_two_steps_match_the_hand_computation(cell):
    rng = np.random.default_rng(1)
    w_in, w_rec = rng.normal(size=(2, 6)), rng.normal(size=(2, 6))
    b_in, b_rec = rng.normal(size=6), rng.normal(size=6)
    x = rng.normal(size=(2, 2))
    net = net_with(cell, w_in, w_rec, b_in, b_rec)
    got = net(torch.tensor(x, dtype=torch.float32)[None, None])[0, 0, :, 0].detach().numpy()
    np.testing.assert_allclose(got, two_steps_by_hand(cell, x, w_in, w_rec, b_in, b_rec),
                               rtol=1e-5)
    other = two_steps_by_hand("keras" if cell == "tf1" else "tf1", x, w_in, w_rec, b_in, b_rec)
    assert np.abs(got - other).max() > 1e-3  # the two cells differ on these numbers


def test_tf1_initialisation_and_single_bias():
    h, n_in = 3, 4
    net = _PostHocGRUs(n_in, h, per_step=False, generators=[torch.Generator().manual_seed(0)],
                       cell="tf1")
    assert torch.equal(net.b_in[0, 0, :2 * h], torch.ones(2 * h))  # TF1: gate bias 1
    assert torch.equal(net.b_in[0, 0, 2 * h:], torch.zeros(h))
    assert not net.b_rec.requires_grad and torch.equal(net.b_rec, torch.zeros_like(net.b_rec))
    bound = np.sqrt(6 / (n_in + h + 2 * h))  # Glorot over the stacked [x; h] gate kernel
    gates = torch.cat([net.w_in[0, :, :2 * h], net.w_rec[0, :, :2 * h]])
    assert gates.abs().max() <= bound and gates.abs().max() > 0.5 * bound


def test_the_score_runs_with_either_cell_and_refuses_others():
    rng = np.random.default_rng(0)
    real = rng.random((40, 6, 2)).astype(np.float32)
    fake = (rng.random((40, 6, 2)) * 0.1).astype(np.float32)  # easy to tell apart
    for cell in ("tf1", "keras"):
        (score,) = discriminative_scores(real, fake, seeds=[0], iterations=200, cell=cell)
        assert score > 0.3
    with pytest.raises(FactorseqError, match="tf1"):
        discriminative_scores(real, fake, seeds=[0], iterations=1, cell="lstm")
