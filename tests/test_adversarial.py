"""The shared adversarial helpers (nn/adversarial.py): gradient reversal, the one update helper,
the label-y losses and ``frozen``."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from factorseq.models.gan import GAN, GANConfig
from factorseq.nn.adversarial import (
    bce_logits,
    discriminator_loss,
    frozen,
    generator_loss,
    grad_reverse,
    optimizer_step,
)


def backward(loss: torch.Tensor) -> None:
    loss.backward()


@pytest.mark.parametrize("lambd", [1.0, 0.5, 3.0])
def test_grad_reverse_is_identity_forward_and_flips_the_gradient(lambd):
    x = torch.randn(4, 3, requires_grad=True)
    w = torch.randn(4, 3)
    y = grad_reverse(x, lambd)
    assert torch.equal(y, x)
    (w * y).sum().backward()
    assert torch.allclose(x.grad, -lambd * w)


def test_grad_reverse_flips_the_sign_of_a_real_network_gradient():
    torch.manual_seed(0)
    f, d = nn.Linear(3, 5), nn.Linear(5, 1)
    x = torch.randn(8, 3)
    plain = torch.autograd.grad(d(f(x)).pow(2).mean(), list(f.parameters()))
    rev = torch.autograd.grad(d(grad_reverse(f(x), 1.0)).pow(2).mean(), list(f.parameters()))
    for a, b in zip(plain, rev, strict=True):
        assert torch.allclose(a, -b)
    # the discriminator's own gradient is not reversed
    gd = torch.autograd.grad(d(grad_reverse(f(x))).pow(2).mean(), list(d.parameters()))
    gd0 = torch.autograd.grad(d(f(x)).pow(2).mean(), list(d.parameters()))
    assert all(torch.allclose(a, b) for a, b in zip(gd, gd0, strict=True))


def test_bce_and_the_label_losses_by_hand():
    zero = torch.zeros(3, 5, 1)
    assert math.isclose(float(bce_logits(zero, 1.0)), math.log(2), rel_tol=1e-6)
    real, fake = torch.full((2,), 2.0), torch.full((2,), -1.0)
    # D: -log sigma(2) - log(1 - sigma(-1)); G (non-saturating): -log sigma(-1)
    sig = lambda v: 1 / (1 + math.exp(-v))  # noqa: E731
    want_d = -math.log(sig(2.0)) - math.log(1 - sig(-1.0))
    assert math.isclose(float(discriminator_loss(real, fake)), want_d, rel_tol=1e-6)
    assert math.isclose(float(generator_loss(fake)), -math.log(sig(-1.0)), rel_tol=1e-6)
    # weighted second fake term (TimeGAN's gamma)
    w = float(discriminator_loss(real, fake, fake, weights=(1.0, 0.5)))
    assert math.isclose(w, want_d - 0.5 * math.log(1 - sig(-1.0)), rel_tol=1e-6)
    # the generator's loss is D's loss on its samples with the label flipped to "real"
    assert torch.isclose(generator_loss(fake), bce_logits(fake, 1.0))


def tiny_gan() -> GAN:
    torch.manual_seed(0)
    return GAN(GANConfig(seq_len=6, n_features=2, hidden=8, latent_dim=3, d_steps=1,
                         g_steps=1))


def snapshot(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def changed(before: dict[str, torch.Tensor], module: nn.Module) -> bool:
    return any(not torch.equal(before[k], v) for k, v in module.state_dict().items())


def test_discriminator_and_generator_steps_touch_only_their_own_parameters():
    gan = tiny_gan()
    opts = {k: torch.optim.Adam(v, lr=1e-2) for k, v in gan.optimizer_groups().items()}
    x = torch.rand(5, 6, 2)
    g0, d0 = snapshot(gan.generator), snapshot(gan.discriminator)
    # D step: its loss reaches G's graph only through detached samples; G must not move
    optimizer_step(opts["disc"], gan._d_loss(x, None), backward)
    assert changed(d0, gan.discriminator) and not changed(g0, gan.generator)
    # G step: the backward fills D's gradients too, but only G's optimiser steps
    g1, d1 = snapshot(gan.generator), snapshot(gan.discriminator)
    optimizer_step(opts["gen"], gan._g_loss(5, None), backward)
    assert changed(g1, gan.generator) and not changed(d1, gan.discriminator)
    # ... and D's stale gradients from G's backward are cleared before D's next step
    d2 = snapshot(gan.discriminator)
    lr0 = torch.optim.SGD(gan.discriminator.parameters(), lr=0.0)
    optimizer_step(lr0, gan._d_loss(x, None), backward)
    assert not changed(d2, gan.discriminator)


def test_optimizer_step_returns_the_loss_and_clips():
    lin = nn.Linear(3, 1)
    opt = torch.optim.SGD(lin.parameters(), lr=1.0)
    w0 = lin.weight.detach().clone()
    loss = (lin(torch.full((2, 3), 100.0)) ** 2).mean()
    value = optimizer_step(opt, loss, backward, clip_norm=1e-3)
    assert math.isclose(value, float(loss.detach()), rel_tol=1e-6)
    total = torch.sqrt(sum((p.grad ** 2).sum() for p in lin.parameters()))
    assert float(total) <= 1e-3 + 1e-9
    assert float((lin.weight.detach() - w0).abs().max()) <= 1e-3 + 1e-9


def test_frozen_passes_gradients_to_inputs_only_and_restores():
    torch.manual_seed(0)
    enc, dec = nn.Linear(3, 4), nn.Linear(4, 2)
    x = torch.randn(5, 3)
    with frozen(dec):
        assert not any(p.requires_grad for p in dec.parameters())
        dec(enc(x)).pow(2).sum().backward()
    assert all(p.grad is None for p in dec.parameters())
    assert all(p.grad is not None for p in enc.parameters())
    assert all(p.requires_grad for p in dec.parameters())
    with pytest.raises(RuntimeError), frozen(dec):
        raise RuntimeError("boom")
    assert all(p.requires_grad for p in dec.parameters())
