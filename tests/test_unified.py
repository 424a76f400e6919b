"""Hu et al.'s transferred techniques: the importance weights of ``iwgan`` and the discriminator
weights of ``aavae`` against hand computation, where their gradients flow, the ablation
settings that give ``gan`` and ``vae`` back, and a short CLI run of each."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from clihelp import sine_windows_npz
from factorseq.models.aavae import AAVAE, AAVAEConfig
from factorseq.models.gan import GAN, GANConfig
from factorseq.models.iwgan import IWGAN, IWGANConfig
from factorseq.models.vae import VAE, VAEConfig
from factorseq.nn.adversarial import (
    discriminator_loss,
    generator_loss,
    importance_weights,
    realness,
    window_generator_loss,
    window_logits,
)

T, D, B = 6, 2, 5


def xb(n=B, seed=0):
    return torch.rand(n, T, D, generator=torch.Generator().manual_seed(seed))


def constant_discriminator(net, logit: float) -> None:
    """Make a StepNet discriminator output ``logit`` at every step of every window."""
    with torch.no_grad():
        net.head.weight.zero_()
        net.head.bias.fill_(logit)


def sharpen(net, factor: float = 30.0) -> None:
    """Spread a fresh discriminator's logits so that the weights are far from uniform."""
    with torch.no_grad():
        net.head.weight.mul_(factor)


def grads(loss, params):
    return torch.autograd.grad(loss, list(params), allow_unused=True, retain_graph=True)


# ---------------------------------------------------------------------------- the weights

def test_weights_are_uniform_when_the_discriminator_says_one_half():
    logits = torch.zeros(B, T, 1)  # D = 1/2 at every step: no sample is more real
    assert torch.allclose(importance_weights(logits), torch.full((B,), 1.0 / B))
    assert torch.allclose(realness(logits), torch.full((B,), 0.5))


def test_weights_are_the_normalised_density_ratio_by_hand():
    d = torch.tensor([0.5, 0.8, 0.2, 0.9])  # D(x_i) of four windows, constant over steps
    logits = torch.logit(d)[:, None, None].expand(4, T, 1)
    ratio = d / (1 - d)  # D / (1 - D) estimates p_data / p_g
    assert torch.allclose(importance_weights(logits), ratio / ratio.sum(), atol=1e-6)
    assert torch.allclose(realness(logits), d, atol=1e-6)
    # a per-step discriminator's window log-odds is the mean of its step logits
    steps = torch.tensor([[1.0, 3.0], [0.0, -2.0]])[..., None]
    assert torch.allclose(window_logits(steps), torch.tensor([2.0, -1.0]))


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(-8, 8), min_size=1, max_size=12), st.floats(-5, 5))
def test_weights_sum_to_one_in_a_batch(values, shift):
    logits = torch.tensor(values)[:, None, None]
    w = importance_weights(logits)
    assert float(w.sum()) == pytest.approx(1.0, abs=1e-5)
    assert bool((w >= 0).all())
    # self-normalised: a common factor on every ratio (a shift of every logit) cancels
    assert torch.allclose(importance_weights(logits + shift), w, atol=1e-5)


def test_weights_carry_no_gradient():
    logits = torch.randn(B, T, 1, requires_grad=True)
    assert not importance_weights(logits).requires_grad
    assert not realness(logits).requires_grad


def test_window_generator_loss_averages_to_the_gan_loss():
    logits = torch.randn(B, T, 1)
    per_window = window_generator_loss(logits)
    assert per_window.shape == (B,)
    assert torch.allclose(per_window.mean(), generator_loss(logits), atol=1e-6)
    assert torch.allclose(per_window[0], -F.logsigmoid(logits[0]).mean(), atol=1e-6)


# ----------------------------------------------------------------------------------- iwgan

def tiny_iwgan(**kw):
    torch.manual_seed(0)
    return IWGAN(IWGANConfig(seq_len=T, n_features=D, hidden=8, latent_dim=3, **kw))


def test_iwgan_generator_loss_by_hand():
    m = tiny_iwgan()
    torch.manual_seed(5)
    got = m._g_loss(B, None)
    torch.manual_seed(5)
    logits = m.discriminate(m.fake(m.noise(B)))
    w = torch.softmax(logits.mean((1, 2)), 0)  # D/(1-D) = e^logit, normalised in the batch
    want = (w * F.softplus(-logits).mean((1, 2))).sum()
    assert torch.allclose(got, want, atol=1e-6)
    assert 1.0 / B <= float(m._ess) <= 1.0


def test_iwgan_gradient_treats_the_weights_as_constants():
    """The generator's gradient is sum_i w~_i grad(-log D(x_i)) with w~ fixed (Hu et al.):
    it differs from the gradient of the same expression with w~ differentiated."""
    m = tiny_iwgan()
    sharpen(m.discriminator)
    gen = list(m.generator.parameters())
    torch.manual_seed(5)
    got = grads(m._g_loss(B, None), gen)
    torch.manual_seed(5)
    logits = m.discriminate(m.fake(m.noise(B)))
    per_window = F.softplus(-logits).mean((1, 2))
    w = torch.softmax(logits.mean((1, 2)), 0)
    fixed = grads((w.detach() * per_window).sum(), gen)
    through = grads((w * per_window).sum(), gen)
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(got, fixed, strict=True))
    assert not all(torch.allclose(a, b, atol=1e-6) for a, b in zip(got, through, strict=True))


def test_iwgan_is_the_gan_when_d_says_one_half_or_weights_are_off():
    for kw, logit in (({}, 0.0), ({"importance_weights": False}, 1.7)):
        m = tiny_iwgan(**kw)
        torch.manual_seed(0)
        g = GAN(GANConfig(seq_len=T, n_features=D, hidden=8, latent_dim=3))
        constant_discriminator(m.discriminator, logit)
        constant_discriminator(g.discriminator, logit)
        torch.manual_seed(2)
        a = m._g_loss(B, None)
        torch.manual_seed(2)
        b = g._g_loss(B, None)
        assert torch.allclose(a, b, atol=1e-6)
        ga, gb = grads(a, m.generator.parameters()), grads(b, g.generator.parameters())
        assert all(torch.allclose(u, v, atol=1e-6) for u, v in zip(ga, gb, strict=True))


def test_iwgan_training_round_logs_the_effective_sample_size():
    m = tiny_iwgan()
    opts = {k: torch.optim.Adam(v, lr=1e-2) for k, v in m.optimizer_groups().items()}
    d = m.training_step({"x": xb()}, opts, lambda loss: loss.backward(), 0)
    g = m.training_step({"x": xb()}, opts, lambda loss: loss.backward(), 1)
    assert "d_loss" in d and "iw_ess" not in d
    assert 1.0 / B <= float(g["iw_ess"]) <= 1.0 and math.isfinite(float(g["g_loss"]))


# ----------------------------------------------------------------------------------- aavae

def tiny_aavae(**kw):
    torch.manual_seed(0)
    return AAVAE(AAVAEConfig(seq_len=T, n_features=D, hidden=8, latent_dim=3, layers=1,
                             disc_hidden=8, recon_weight=2.0, beta=0.5, **kw))


def hand_terms(m, x, seed):
    """The AAVAE objective written out, drawing random numbers in the model's order:
    prior samples, then the real and the generated windows' reparameterisations."""
    torch.manual_seed(seed)
    with torch.no_grad():
        xf = m.decoder(torch.randn(len(x), m.config.latent_dim))
    parts = {}
    for name, v in (("real", x), ("fake", xf)):
        mean, logvar = m.posterior(v)
        x_hat = m.decoder(mean + torch.randn_like(mean) * torch.exp(0.5 * logvar))
        kl = (0.5 * (logvar.exp() + mean ** 2 - 1 - logvar)).sum(1)
        parts[name] = 2.0 * ((v - x_hat) ** 2).sum((1, 2)) + 0.5 * kl
    lr_, lf = m.discriminator(x), m.discriminator(xf)
    return parts, lr_, lf, xf


def test_aavae_loss_by_hand():
    m, x = tiny_aavae(), xb()
    torch.manual_seed(4)
    out = m.loss({"x": x})
    parts, lr_, lf, xf = hand_terms(m, x, 4)
    d_real, d_fake = torch.sigmoid(lr_.mean((1, 2))), torch.sigmoid(lf.mean((1, 2)))
    d = F.softplus(-lr_).mean() + F.softplus(lf).mean()
    want = (d_real * parts["real"]).mean() + (d_fake * parts["fake"]).mean() + d
    assert torch.allclose(out["loss"], want, atol=1e-5)
    assert torch.allclose(out["w_real"], d_real.mean()) and not xf.requires_grad


def test_aavae_gradients_flow_only_where_the_paper_says():
    """Encoder and decoder: gradient of sum D(x) l(x) with D(x) and the generated windows held
    fixed; discriminator: gradient of its cross-entropy only."""
    m, x = tiny_aavae(), xb()
    sharpen(m.discriminator)
    vae_params = list(m.encoder.parameters()) + list(m.decoder.parameters())
    disc = list(m.discriminator.parameters())
    torch.manual_seed(4)
    loss = m.loss({"x": x})["loss"]
    got_vae, got_disc = grads(loss, vae_params), grads(loss, disc)
    parts, lr_, lf, _ = hand_terms(m, x, 4)
    wr, wf = torch.sigmoid(lr_.mean((1, 2))), torch.sigmoid(lf.mean((1, 2)))
    fixed = (wr.detach() * parts["real"]).mean() + (wf.detach() * parts["fake"]).mean()
    assert all(torch.allclose(a, b, atol=1e-5)
               for a, b in zip(got_vae, grads(fixed, vae_params), strict=True))
    d_only = grads(discriminator_loss(lr_, lf), disc)
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(got_disc, d_only, strict=True))
    # the alternative (D's weights differentiated) would move the discriminator differently
    through = (wr * parts["real"]).mean() + (wf * parts["fake"]).mean() + discriminator_loss(
        lr_, lf)
    assert not all(torch.allclose(a, b, atol=1e-5)
                   for a, b in zip(got_disc, grads(through, disc), strict=True))


def test_aavae_with_a_perfect_discriminator_is_the_vae():
    """adversary=false: no discriminator, the VAE's initialisation, loss and gradients."""
    m = tiny_aavae(adversary=False)
    torch.manual_seed(0)
    v = VAE(VAEConfig(seq_len=T, n_features=D, hidden=8, latent_dim=3, layers=1,
                      recon_weight=2.0, beta=0.5))
    assert not hasattr(m, "discriminator")
    sm, sv = m.state_dict(), v.state_dict()
    assert sm.keys() == sv.keys() and all(torch.equal(sm[k], sv[k]) for k in sm)
    x = xb()
    torch.manual_seed(1)
    a = m.loss({"x": x})
    torch.manual_seed(1)
    b = v.loss({"x": x})
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_aavae_validation_loss_is_the_unweighted_elbo():
    m, x = tiny_aavae(), xb()
    constant_discriminator(m.discriminator, -3.0)  # weights ~0.05 must not reach validation
    torch.manual_seed(1)
    val = m.validation_loss({"x": x})
    torch.manual_seed(1)
    recon, kl = m.window_terms(x)
    assert torch.allclose(val["loss"], 2.0 * recon.mean() + 0.5 * kl.mean())
    torch.manual_seed(1)
    train = m.loss({"x": x})
    assert float(train["w_real"]) == pytest.approx(1 / (1 + math.exp(3.0)), rel=1e-5)


# ------------------------------------------------------------------------------------ CLI

@pytest.fixture(scope="module")
def windows(tmp_path_factory):
    root = tmp_path_factory.mktemp("unified")
    return root, sine_windows_npz(root, 96)


@pytest.mark.parametrize("name, tiny", [
    ("iwgan", ["hidden=8"]),
    ("aavae", ["hidden=8", "latent_dim=3", "layers=1", "disc_hidden=8"]),
])
def test_cli_train_sample_evaluate(name, tiny, windows):
    from factorseq.cli import main
    root, path = windows
    run, out = root / f"run_{name}", root / f"s_{name}.npz"
    sets = [a for kv in ["train.tensorboard=false", *tiny] for a in ("--set", kv)]
    assert main(["train", name, "--data", str(path), "--out", str(run), "--epochs", "2",
                 "--batch-size", "32", *sets]) == 0
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["status"] == "trained" and cfg["model"] == name
    logged = (run / "logs" / "metrics.csv").read_text().splitlines()[0]
    assert ("train_iw_ess" if name == "iwgan" else "train_w_fake") in logged
    assert main(["sample", str(run), "--n", "20", "--out", str(out)]) == 0
    assert np.load(out)["data"].shape == (20, 12, 2)
    metrics = root / f"m_{name}.json"
    assert main(["evaluate", str(run), "--out", str(metrics), "--samples", str(out),
                 "--repeats", "1", "--set", "disc_iterations=5",
                 "--set", "pred_iterations=5"]) == 0
    assert "discriminative" in json.loads(metrics.read_text())
