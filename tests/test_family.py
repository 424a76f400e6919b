"""The classic family (ae, vae, gan, aae, vaegan, timegan, dann): backbones, each model's maths
and update rules on tiny inputs, and a short end-to-end CLI run of every model."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from factorseq.config import build
from factorseq.errors import FactorseqError, ShapeError
from factorseq.models.aae import AAE, AAEConfig
from factorseq.models.ae import AE, AEConfig
from factorseq.models.base import gaussian_kl, reparameterize
from factorseq.models.dann import DANN, DANNConfig, DomainBalancedBatches, reversal_lambda
from factorseq.models.gan import GAN, GANConfig
from factorseq.models.timegan import TimeGAN, TimeGANConfig, moment_loss, phase_epochs
from factorseq.models.vae import VAE, VAEConfig
from factorseq.models.vaegan import VAEGAN, VAEGANConfig
from factorseq.nn.adversarial import generator_loss
from factorseq.nn.backbones import SeqDecoder, SeqEncoder, StepNet, one_hot_condition

T, D = 6, 2


def backward(loss):
    loss.backward()


def adams(model, lr=1e-2):
    return {k: torch.optim.Adam(v, lr=lr) for k, v in model.optimizer_groups().items()}


def snap(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def moved(before, module):
    return any(not torch.equal(before[k], v) for k, v in module.state_dict().items())


def xb(n=5, seed=0):
    return torch.rand(n, T, D, generator=torch.Generator().manual_seed(seed))


# ------------------------------------------------------------------------------- backbones

@settings(max_examples=15, deadline=None)
@given(seq_len=st.integers(1, 30), layers=st.integers(1, 3), cell=st.sampled_from(
    ["gru", "lstm", "conv"]))
def test_encoder_decoder_shapes_for_any_length(seq_len, layers, cell):
    enc = SeqEncoder(3, 4, 5, layers, cell, seq_len=seq_len)
    dec = SeqDecoder(5, 4, 3, seq_len, layers, cell)
    z = enc(torch.rand(2, seq_len, 3))
    assert z.shape == (2, 5)
    assert dec(z).shape == (2, seq_len, 3)  # transposed convs retrace the lengths exactly


@pytest.mark.parametrize("cell", ["gru", "lstm", "conv"])
def test_step_net_is_per_step(cell):
    net = StepNet(3, 4, 2, layers=2, cell=cell, activation="sigmoid")
    x = torch.rand(2, 7, 3)
    y = net(x)
    assert y.shape == (2, 7, 2) and bool(((y > 0) & (y < 1)).all())
    assert net.features(x).shape == (2, 7, 4)


def test_one_hot_condition_zeroes_unknown_labels():
    c = one_hot_condition(torch.tensor([1, 0, 2]), torch.tensor([True, False, True]), 3, 3,
                          torch.device("cpu"))
    assert torch.equal(c, torch.tensor([[0.0, 1, 0], [0, 0, 0], [0, 0, 1]]))


def test_backbone_config_is_validated():
    with pytest.raises(FactorseqError, match="backbone"):
        build(AEConfig, {"backbone": "transformer"})
    with pytest.raises(FactorseqError, match="layers >= 2"):
        build(TimeGANConfig, {"layers": 1})
    with pytest.raises(FactorseqError, match="backbone"):
        build(TimeGANConfig, {"backbone": "conv"})


# ------------------------------------------------------------------------------------- ae

def test_ae_fits_the_code_gaussian_and_samples_from_it():
    torch.manual_seed(0)
    ae = AE(AEConfig(seq_len=T, n_features=D, hidden=8, latent_dim=3, layers=1))
    x = torch.rand(40, T, D)
    ae.on_fit_end([{"x": x[:25]}, {"x": x[25:]}])
    with torch.no_grad():
        z = ae.encode(x)["z"].double()
    assert torch.allclose(ae.code_mean.double(), z.mean(0), atol=1e-5)
    cov = ae.code_chol.double() @ ae.code_chol.double().T
    assert torch.allclose(cov, torch.cov(z.T), atol=1e-4)
    g = lambda: torch.Generator().manual_seed(7)  # noqa: E731
    with torch.no_grad():
        s = ae.sample(4, generator=g())
        eps = torch.randn(4, 3, generator=g())
        want = ae.decode(ae.code_mean + eps @ ae.code_chol.T)
    assert torch.allclose(s, want)
    assert set(ae.state_dict()) >= {"code_mean", "code_chol"}  # saved with the weights


def test_ae_loss_is_the_summed_squared_error():
    torch.manual_seed(0)
    ae = AE(AEConfig(seq_len=T, n_features=D, hidden=8, latent_dim=3, layers=1))
    x = xb()
    with torch.no_grad():
        want = ((x - ae.decode(ae.encode(x))) ** 2).sum((1, 2)).mean()
        assert torch.allclose(ae.loss({"x": x})["loss"], want)
    with pytest.raises(FactorseqError, match="cannot do 'conditional'"):
        ae.sample(2, y=1)


# ------------------------------------------------------------------------------------ vae

@pytest.mark.parametrize("backbone", ["gru", "conv"])
def test_vae_loss_is_the_negative_elbo(backbone):
    torch.manual_seed(0)
    vae = VAE(VAEConfig(seq_len=T, n_features=D, hidden=8, latent_dim=3, layers=1,
                        backbone=backbone, recon_weight=2.0, beta=0.5))
    x = xb()
    torch.manual_seed(1)
    out = vae.loss({"x": x})
    torch.manual_seed(1)
    mean, logvar = vae.posterior(x)
    x_hat = vae.decode(reparameterize(mean, logvar))
    recon = ((x - x_hat) ** 2).sum((1, 2)).mean()
    kl = (0.5 * (logvar.exp() + mean ** 2 - 1 - logvar)).sum(1).mean()
    assert torch.allclose(out["loss"], 2.0 * recon + 0.5 * kl)
    assert torch.allclose(out["kl"], gaussian_kl(mean, logvar).mean())


# ------------------------------------------------------------------------------------ gan

def tiny_gan(**kw):
    torch.manual_seed(0)
    return GAN(GANConfig(seq_len=T, n_features=D, hidden=8, latent_dim=3, **kw))


def test_gan_read_out_and_adam_betas_follow_the_config():
    linear, squashed = tiny_gan(), tiny_gan(output="sigmoid")
    assert linear.generator.activation is None  # default: no saturating tail to collapse into
    x = squashed.sample(4, generator=torch.Generator().manual_seed(0))
    assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0
    assert linear.optimizer_config("gen")["betas"] == (0.5, 0.999)
    assert tiny_gan(beta1=0.9, disc_lr=1e-4).optimizer_config("disc") == {
        "lr": 1e-4, "betas": (0.9, 0.999)}
    for bad in ({"output": "tanh"}, {"beta1": 1.0}):
        with pytest.raises(ValueError):
            GANConfig(seq_len=T, n_features=D, **bad)


def test_gan_alternates_d_steps_and_g_steps():
    gan = tiny_gan(d_steps=2, g_steps=1)
    opts = adams(gan)
    b = {"x": xb()}
    who = []
    for step in range(6):
        g0, d0 = snap(gan.generator), snap(gan.discriminator)
        terms = gan.training_step(b, opts, backward, step)
        who.append(("G" if moved(g0, gan.generator) else "")
                   + ("D" if moved(d0, gan.discriminator) else ""))
        assert all(math.isfinite(float(v)) for v in terms.values())
    assert who == ["D", "D", "G", "D", "D", "G"]


def test_gan_discriminator_loss_is_per_step_cross_entropy():
    gan = tiny_gan()
    x = xb()
    torch.manual_seed(3)
    d = gan._d_loss(x, None)
    torch.manual_seed(3)
    fake = gan.fake(gan.noise(len(x)))
    real_logits, fake_logits = gan.discriminate(x), gan.discriminate(fake)
    assert real_logits.shape == (5, T, 1)  # one logit per step, averaged (RCGAN)
    want = (F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean())
    assert torch.allclose(d, want, atol=1e-6)


def test_conditional_gan_samples_the_asked_label_and_checks_it():
    gan = tiny_gan(conditional=True, n_classes=3)
    b = {"x": xb(), "y": torch.tensor([0, 1, 2, 1, 0]), "y_mask": torch.ones(5, dtype=bool)}
    gan.training_step(b, adams(gan), backward, 0)
    with torch.no_grad():
        a = gan.sample(4, generator=torch.Generator().manual_seed(0), y=2)
        z = gan.noise(4, torch.Generator().manual_seed(0))
        want = gan.fake(z, F.one_hot(torch.full((4,), 2), 3).float())
    assert torch.allclose(a, want)
    with pytest.raises(FactorseqError, match="label"):
        gan.sample(2, y=5)
    with pytest.raises(FactorseqError, match="out of range"):
        gan.loss({"x": xb(), "y": torch.tensor([0, 1, 7, 1, 0])})
    gan.on_fit_end([b])
    assert torch.allclose(gan.label_freq, torch.tensor([0.4, 0.4, 0.2]))
    with pytest.raises(FactorseqError, match="cannot do 'conditional'"):
        tiny_gan().sample(2, y=1)
    with pytest.raises(FactorseqError, match="n_classes"):
        build(GANConfig, {"conditional": True, "n_classes": 1})


# ------------------------------------------------------------------------------------ aae

def test_aae_phases_update_the_right_networks():
    torch.manual_seed(0)
    aae = AAE(AAEConfig(seq_len=T, n_features=D, hidden=8, latent_dim=3, layers=1,
                        disc_hidden=8))
    groups = aae.optimizer_groups()
    assert {id(p) for p in groups["gen"]} == {id(p) for p in aae.encoder.parameters()}
    opts = adams(aae)
    opts["ae"] = torch.optim.SGD(groups["ae"], lr=0.0)  # freeze the reconstruction phase
    e0, dec0, d0 = snap(aae.encoder), snap(aae.decoder), snap(aae.discriminator)
    terms = aae.training_step({"x": xb()}, opts, backward, 0)
    # the regularisation phase moves D and the encoder (as generator of codes), never the
    # decoder
    assert moved(d0, aae.discriminator) and moved(e0, aae.encoder)
    assert not moved(dec0, aae.decoder)
    assert set(terms) == {"loss", "recon", "d_loss", "g_loss"}


@pytest.mark.parametrize("posterior", ["gaussian", "deterministic"])
def test_aae_code_discriminator_sees_prior_vs_codes(posterior):
    torch.manual_seed(0)
    aae = AAE(AAEConfig(seq_len=T, n_features=D, hidden=8, latent_dim=3, layers=1,
                        prior_std=2.0, posterior=posterior))
    torch.manual_seed(5)
    t = aae._terms(xb())
    torch.manual_seed(5)
    h = aae.encoder(xb())
    if posterior == "gaussian":
        mean, logvar = h.chunk(2, -1)
        z = mean + torch.randn(5, 3) * torch.exp(0.5 * logvar)
        assert torch.allclose(aae.encode(xb())["z"], mean)
    else:
        z = h
    zp = 2.0 * torch.randn(5, 3)
    want = F.softplus(-aae.discriminator(zp)).mean() + F.softplus(aae.discriminator(z)).mean()
    assert torch.allclose(t["d_loss"], want, atol=1e-6)
    assert torch.allclose(t["g_loss"], generator_loss(aae.discriminator(z)), atol=1e-6)


# --------------------------------------------------------------------------------- vaegan

def test_vaegan_gives_encoder_and_decoder_their_own_gradients():
    """Larsen's Algorithm 1: Enc <- L_prior + L_llike; Dec <- gamma L_llike - L_GAN."""
    torch.manual_seed(0)
    m = VAEGAN(VAEGANConfig(seq_len=T, n_features=D, hidden=8, latent_dim=3, layers=1,
                            disc_hidden=6, gamma=0.3))
    x = xb()
    torch.manual_seed(2)
    m.zero_grad()
    m._gen_terms(x)["gen"].backward()
    got_enc = [p.grad.clone() for p in m.encoder.parameters()]
    got_dec = [p.grad.clone() for p in m.decoder.parameters()]

    torch.manual_seed(2)
    mean, logvar = m.posterior(x)
    z = reparameterize(mean, logvar)
    f_real = m.dis(x)[0].detach()
    x_t = m.decoder(z)
    f_t, logit_t = m.dis(x_t)
    llike = 0.5 * ((f_t - f_real) ** 2).sum((1, 2)).mean()
    x_p = m.decoder(torch.randn_like(mean))
    gan_g = generator_loss(logit_t, m.dis(x_p)[1])
    kl = gaussian_kl(mean, logvar).mean()
    want_enc = torch.autograd.grad(kl + llike, list(m.encoder.parameters()),
                                   retain_graph=True)
    want_dec = torch.autograd.grad(0.3 * llike + gan_g, list(m.decoder.parameters()))
    for a, b in zip(got_enc, want_enc, strict=True):
        assert torch.allclose(a, b, atol=1e-5)
    for a, b in zip(got_dec, want_dec, strict=True):
        assert torch.allclose(a, b, atol=1e-5)


def test_vaegan_training_step_updates_both_players():
    torch.manual_seed(0)
    m = VAEGAN(VAEGANConfig(seq_len=T, n_features=D, hidden=8, latent_dim=3, layers=1))
    d0, e0 = snap(m.discriminator), snap(m.encoder)
    terms = m.training_step({"x": xb()}, adams(m), backward, 0)
    assert moved(d0, m.discriminator) and moved(e0, m.encoder)
    assert {"d_loss", "kl", "llike", "g_loss"} <= set(terms)


# -------------------------------------------------------------------------------- timegan

def tiny_timegan(**kw):
    torch.manual_seed(0)
    return TimeGAN(TimeGANConfig(seq_len=T, n_features=D, hidden=6, layers=2, **kw))


def test_timegan_defaults_are_the_reference():
    c = TimeGANConfig()
    assert (c.backbone, c.layers, c.hidden, c.gamma, c.d_threshold) == ("gru", 3, 24, 1.0, 0.15)
    m = TimeGAN(TimeGANConfig(n_features=4))
    assert m.z_dim == 4 and m.supervisor.body.num_layers == 2
    assert len(m.optimizer_groups()) == 5  # E0, E, GS, G, D solvers


def test_timegan_phase_schedule():
    cfg = TimeGANConfig()
    assert phase_epochs(cfg, 4) == (1, 1)
    assert phase_epochs(cfg, 100) == (25, 25)
    assert phase_epochs(TimeGANConfig(embedding_epochs=3, supervised_epochs=2), 10) == (3, 2)
    with pytest.raises(FactorseqError, match="joint phase"):
        phase_epochs(cfg, 2)
    m = tiny_timegan()
    seen = []
    for epoch in range(8):
        m.on_train_epoch_start(epoch, 8)
        seen.append(m.phase)
    assert seen == ["embedding"] * 2 + ["supervised"] * 2 + ["joint"] * 4


def test_timegan_moment_loss_by_hand():
    x = torch.tensor([[[0.0]], [[2.0]]])  # per-step mean 1, population std 1
    x_hat = torch.tensor([[[1.0]], [[1.0]]])  # mean 1, std 0
    want = abs(math.sqrt(1e-6) - math.sqrt(1 + 1e-6)) + 0.0
    assert math.isclose(float(moment_loss(x_hat, x)), want, rel_tol=1e-6)
    assert float(moment_loss(x, x)) == 0.0


def test_timegan_phases_update_only_their_networks():
    m = tiny_timegan()
    opts = adams(m)
    nets = ["embedder", "recovery", "generator", "supervisor", "discriminator"]
    x = {"x": xb()}

    def step():
        before = {n: snap(getattr(m, n)) for n in nets}
        terms = m.training_step(x, opts, backward, 0)
        return {n for n in nets if moved(before[n], getattr(m, n))}, terms

    m.on_train_epoch_start(0, 4)
    assert step()[0] == {"embedder", "recovery"}
    m.on_train_epoch_start(1, 4)
    assert step()[0] == {"supervisor"}  # G_loss_S gives the generator no gradient
    m.on_train_epoch_start(2, 4)
    m.config.d_threshold = 0.0
    first, _ = step()  # joint batch 1: G then E
    second, terms = step()  # joint batch 2: + D, whose loss is above the threshold
    assert first == {"embedder", "recovery", "generator", "supervisor"}
    assert second == set(nets) and "d_loss" in terms
    m.config.d_threshold = 1e9  # D trains only while its loss exceeds the threshold
    step()
    third, terms = step()
    assert "discriminator" not in third and "d_loss" in terms


def test_timegan_generator_loss_composition():
    m = tiny_timegan(gamma=0.5)
    x = xb()
    torch.manual_seed(4)
    g = m.generator_losses(x)
    want = (g["g_loss_u"] + 0.5 * g["g_loss_u_e"] + 100 * torch.sqrt(g["g_loss_s"])
            + 100 * g["g_loss_v"])
    assert torch.allclose(g["g_loss"], want)
    e = m.embedding_losses(x)
    assert torch.allclose(e["e_loss"], 10 * torch.sqrt(e["e_loss_t0"]) + 0.1 * e["g_loss_s"])
    with torch.no_grad():
        s = m.sample(3, generator=torch.Generator().manual_seed(0))
    assert s.shape == (3, T, D) and bool(((s > 0) & (s < 1)).all())
    with pytest.raises(ShapeError):
        m.decode(torch.rand(2, T, 5))


# ----------------------------------------------------------------------------------- dann

def tiny_dann(**kw):
    torch.manual_seed(0)
    return DANN(DANNConfig(seq_len=T, n_features=D, hidden=8, layers=1, feature_dim=6,
                           head_hidden=8, n_classes=3, dropout=0.0, **kw))


def dann_batch():
    return {"x": xb(6), "y": torch.tensor([0, 1, 2, 0, 1, 2]),
            "y_mask": torch.ones(6, dtype=torch.bool), "domain": torch.tensor([0, 0, 0, 1, 1, 1])}


def test_dann_never_uses_target_labels():
    m = tiny_dann()
    b1, b2 = dann_batch(), dann_batch()
    b2["y"] = torch.tensor([0, 1, 2, 2, 2, 0])  # different target labels, marked as known
    t1, t2 = m.loss(b1), m.loss(b2)
    for k in ("class_loss", "domain_loss"):
        assert torch.equal(t1[k], t2[k])
    # and the class loss is the cross-entropy over the labelled source rows only
    logits = m.classifier(b1["x"])[1]
    assert torch.allclose(t1["class_loss"], F.cross_entropy(logits[:3], b1["y"][:3]))
    b3 = dann_batch()
    b3["y_mask"] = torch.tensor([True, False, False, True, True, True])
    assert torch.allclose(m.loss(b3)["class_loss"], F.cross_entropy(logits[:1], b1["y"][:1]))


def test_dann_reversal_makes_features_ascend_the_domain_loss():
    m = tiny_dann()
    b = dann_batch()
    params = list(m.classifier.features.parameters())
    f, _ = m.classifier(b["x"])
    dom = (b["domain"] != 0).float()
    plain = torch.autograd.grad(F.binary_cross_entropy_with_logits(
        m.domain_classifier(f).squeeze(-1), dom), params)
    m.zero_grad()
    t = m._terms(b, 0.7)
    rev = torch.autograd.grad(t["domain_loss"], params)
    for a, r in zip(plain, rev, strict=True):
        assert torch.allclose(-0.7 * a, r, atol=1e-6)


def test_dann_training_step_and_its_source_only_baseline():
    m = tiny_dann()
    c0, d0 = snap(m.classifier), snap(m.domain_classifier)
    terms = m.training_step(dann_batch(), adams(m), backward, 0)
    assert moved(c0, m.classifier) and moved(d0, m.domain_classifier)
    assert {"class_loss", "domain_loss", "lambda"} <= set(terms)
    assert not m.has("generates") and m.has("classifies") and m.evaluator == "classifier"
    with pytest.raises(FactorseqError, match="cannot do 'generates'"):
        m.sample(2)
    # lambda_max=0 is the source-only baseline: the domain loss sends no gradient to the
    # features (the domain classifier still learns, as a probe)
    base = tiny_dann(lambda_max=0.0)
    t = base._terms(dann_batch(), 0.0)
    grads = torch.autograd.grad(t["domain_loss"], list(base.classifier.parameters()),
                                allow_unused=True)
    assert all(g is None or torch.count_nonzero(g) == 0 for g in grads)
    with pytest.raises(FactorseqError, match="domain"):
        m.loss({"x": xb(), "y": torch.zeros(5, dtype=torch.long)})


def test_dann_lambda_schedule_and_progress():
    assert reversal_lambda(0.0) == 0.0
    assert math.isclose(reversal_lambda(1.0), 2 / (1 + math.exp(-10)) - 1)
    assert math.isclose(reversal_lambda(0.5, scale=0.5), 0.5 * (2 / (1 + math.exp(-5)) - 1))
    m = tiny_dann()
    m.on_train_epoch_start(0, 4)
    for _ in range(10):
        m.schedule.add("batch")
    m.on_train_epoch_start(1, 4)  # now an epoch is known to be 10 batches
    m.schedule.set("batch", 5)
    assert math.isclose(m.progress(), 1.5 / 4)


def test_domain_balanced_batches():
    domain = np.array([0] * 10 + [1] * 3)
    s = DomainBalancedBatches(domain, batch_size=4, seed=0)
    batches = list(s)
    assert len(batches) == len(s) == 5
    for b in batches:
        d = domain[b]
        assert (d == 0).sum() == (d == 1).sum() == 2
    assert sorted(i for b in batches for i in b if domain[i] == 0) == list(range(10))
    assert list(s) != batches  # re-drawn every epoch
    with pytest.raises(FactorseqError, match="both domains"):
        DomainBalancedBatches(np.zeros(5, dtype=int), 4, 0)


# ----------------------------------------------------------------------- end to end (CLI)

FAMILY = ["ae", "vae", "gan", "aae", "vaegan", "timegan"]
TINY = {"ae": ["hidden=8", "latent_dim=3", "layers=1"],
        "vae": ["hidden=8", "latent_dim=3", "layers=1", "backbone=conv"],
        "gan": ["hidden=8", "d_steps=1"],
        "aae": ["hidden=8", "latent_dim=3", "layers=1", "disc_hidden=8"],
        "vaegan": ["hidden=8", "latent_dim=3", "layers=1", "disc_hidden=8"],
        "timegan": ["hidden=6", "layers=2"]}


def sets(items):
    return [a for kv in items for a in ("--set", kv)]


@pytest.fixture(scope="module")
def windows(tmp_path_factory):
    root = tmp_path_factory.mktemp("family")
    rng = np.random.default_rng(0)
    t = np.arange(12)
    x = np.sin(t[None, :, None] * rng.uniform(0.2, 0.6, (96, 1, 2)) + rng.uniform(0, 3,
                                                                                   (96, 1, 2)))
    path = root / "w.npz"
    np.savez(path, data=x.astype(np.float32))
    return root, path


@pytest.mark.parametrize("name", FAMILY)
def test_cli_train_sample_evaluate(name, windows):
    from factorseq.cli import main
    root, path = windows
    run, out = root / f"run_{name}", root / f"s_{name}.npz"
    assert main(["train", name, "--data", str(path), "--out", str(run), "--epochs", "3",
                 "--batch-size", "32", *sets(["train.tensorboard=false", *TINY[name]])]) == 0
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["status"] == "trained" and cfg["model"] == name
    assert main(["sample", str(run), "--n", "20", "--out", str(out)]) == 0
    metrics = root / f"m_{name}.json"
    assert main(["evaluate", str(run), "--out", str(metrics), "--samples", str(out),
                 "--repeats", "1", "--set", "disc_iterations=5",
                 "--set", "pred_iterations=5", "--set", "ts2vec_iterations=2"]) == 0
    m = json.loads(metrics.read_text())
    assert any("discriminative" in k for k in m) and any("predictive" in k for k in m)


def test_cli_gan_divergence_stops_and_keeps_the_last_good_checkpoint(windows, monkeypatch,
                                                                      capsys):
    from factorseq.cli import main
    root, path = windows
    original = GAN.training_step
    calls = {"n": 0}

    def diverging(self, *a, **kw):  # finite for two epochs (3 batches each), then NaN
        calls["n"] += 1
        out = original(self, *a, **kw)
        return {**out, "g_loss": float("nan")} if calls["n"] > 6 else out

    monkeypatch.setattr(GAN, "training_step", diverging)
    run = root / "run_nan"
    capsys.readouterr()
    assert main(["train", "gan", "--data", str(path), "--out", str(run), "--epochs", "4",
                 "--batch-size", "32", *sets(["train.tensorboard=false", *TINY["gan"]])]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "diverged" in err[0] and "g_loss" in err[0]
    assert "kept the last good checkpoint (epoch 2)" in err[0]
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["status"] == "diverged" and (run / "model.safetensors").is_file()
    assert main(["sample", str(run), "--n", "4", "--out", str(root / "nan_s.npz")]) == 0


def test_cli_data_smaller_than_the_batch_is_a_clear_error(tmp_path, capsys):
    from factorseq.cli import main
    path = tmp_path / "few.npz"
    np.savez(path, data=np.random.default_rng(0).random((10, 6, 2)).astype(np.float32))
    capsys.readouterr()
    assert main(["train", "timegan", "--data", str(path), "--out", str(tmp_path / "r"),
                 "--epochs", "3", "--batch-size", "32", "--set", "train.tensorboard=false"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "batch size" in err[0]
    assert main(["train", "timegan", "--data", str(path), "--out", str(tmp_path / "r2"),
                 "--epochs", "2", "--batch-size", "4", "--set", "train.tensorboard=false"]) == 2
    assert "joint phase" in capsys.readouterr().err


@pytest.fixture(scope="module")
def domain_data():
    """A tiny domain-adaptation set registered for the test: 3 classes of sine frequency;
    the target domain is shifted and rescaled; ``.test`` holds held-out windows of both."""
    from factorseq.data.container import SequenceData
    from factorseq.data.registry import _DATASETS, dataset

    def make(n_per, target, seed):
        rng = np.random.default_rng(seed)
        y = np.repeat(np.arange(3), n_per)
        t = np.arange(8)
        x = np.sin((0.4 + 0.5 * y[:, None, None]) * t[None, :, None]
                   + rng.uniform(0, 3, (len(y), 1, 3)))
        x = x + 0.1 * rng.standard_normal(x.shape)
        if target:
            x = 1.5 * x + 0.8
        return x.astype(np.float32), y

    @dataset("test-domains", description="tiny synthetic domain shift", citation="synthetic",
             licence="synthetic", scaler="standard")
    def _load(cfg):
        xs, ys = make(20, False, 0)
        xt, yt = make(10, True, 1)
        xst, yst = make(4, False, 2)
        xtt, ytt = make(6, True, 3)
        meta = {"n_classes": 3, "target_speaker": "t"}
        test = SequenceData(x=np.concatenate([xst, xtt]), y=np.concatenate([yst, ytt]),
                            domain=np.r_[np.zeros(len(yst)), np.ones(len(ytt))].astype(int),
                            meta=dict(meta), name="test-domains.test")
        return SequenceData(x=np.concatenate([xs, xt]), y=np.concatenate([ys, yt]),
                            domain=np.r_[np.zeros(len(ys)), np.ones(len(yt))].astype(int),
                            meta=meta, name="test-domains", test=test)

    yield "test-domains"
    _DATASETS.pop("test-domains", None)


def test_cli_dann_train_and_evaluate(domain_data, tmp_path, capsys):
    from factorseq.cli import main
    run, out = tmp_path / "dann", tmp_path / "m.json"
    assert main(["train", "dann", "--data", domain_data, "--out", str(run), "--epochs", "3",
                 "--batch-size", "16", *sets(["train.tensorboard=false", "hidden=8",
                                              "layers=1", "feature_dim=8", "head_hidden=8"])]) == 0
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["model_config"]["n_classes"] == 3 and cfg["scaler"]["kind"] == "standard"
    assert main(["evaluate", str(run), "--out", str(out)]) == 0
    m = json.loads(out.read_text())
    for k in ("accuracy", "target_accuracy", "source_test_accuracy",
              "domain_probe_accuracy"):
        assert 0.0 <= m[k] <= 1.0
    assert m["n_target_test"] == 18 and m["target_speaker"] == "t"
    base = tmp_path / "source_only"  # the baseline is its own run, composed at evaluation
    assert main(["train", "dann", "--data", domain_data, "--out", str(base), "--epochs", "3",
                 "--batch-size", "16", *sets(["train.tensorboard=false", "hidden=8",
                                              "layers=1", "feature_dim=8", "head_hidden=8",
                                              "lambda_max=0"])]) == 0
    assert main(["evaluate", str(run), "--out", str(out), "--force", "--set",
                 f"baseline={base}"]) == 0
    m = json.loads(out.read_text())
    assert m["adaptation_gain"] == pytest.approx(m["target_accuracy"]
                                                 - m["baseline_target_accuracy"])
    assert main(["report", str(run), "--out", str(tmp_path / "r.html"), "--metrics",
                 str(out)]) == 0
    html = (tmp_path / "r.html").read_text()
    assert "confusion" in html and "target_accuracy" in html
    capsys.readouterr()
    assert main(["sample", str(run), "--n", "3", "--out", str(tmp_path / "s.npz")]) == 2
    assert "cannot do 'generates'" in capsys.readouterr().err


def test_cli_conditional_gan_samples_a_label(windows, capsys):
    from factorseq.cli import main
    root, _ = windows
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 96)
    t = np.arange(12)
    x = np.sin(t[None, :, None] * (0.3 + 0.3 * y[:, None, None]) + rng.uniform(0, 3, (96, 1, 2)))
    path = root / "labelled.npz"
    np.savez(path, data=x.astype(np.float32), y=y)
    run = root / "run_cgan"
    assert main(["train", "gan", "--data", str(path), "--out", str(run), "--epochs", "2",
                 "--batch-size", "32", *sets(["train.tensorboard=false", *TINY["gan"],
                                              "conditional=true"])]) == 0
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["model_config"]["n_classes"] == 3 and cfg["model_config"]["conditional"]
    assert main(["sample", str(run), "--n", "5", "--label", "2",
                 "--out", str(root / "c.npz")]) == 0
    capsys.readouterr()
    assert main(["sample", str(run), "--n", "5", "--label", "7",
                 "--out", str(root / "c7.npz")]) == 2
    assert "label" in capsys.readouterr().err


@pytest.mark.parametrize("name, settings, dropped, check", [
    ("gan", ["output=sigmoid"], ("output", "d_steps", "beta1"),
     lambda m: m.config.output == "sigmoid" and m.generator.activation is not None),
    ("aae", ["posterior=deterministic"], ("posterior",),
     lambda m: m.config.posterior == "deterministic"),
])
def test_runs_saved_before_a_config_key_existed_load_as_trained(tmp_path, tiny_npz, name,
                                                                 settings, dropped, check):
    from factorseq import load
    from factorseq.cli import main

    run = tmp_path / "old"
    sets = [a for kv in ["hidden=8", *settings] for a in ("--set", kv)]
    assert main(["train", name, "--data", str(tiny_npz), "--out", str(run), "--epochs", "1",
                 "--batch-size", "32", *sets, "--set", "train.tensorboard=false"]) == 0
    cfg = json.loads((run / "config.json").read_text())
    for key in dropped:  # what a run of the earlier version wrote
        cfg["model_config"].pop(key)
    (run / "config.json").write_text(json.dumps(cfg))
    model = load(run).model  # weights of the old shape load into the old architecture
    assert check(model)
    x = model.sample(8, generator=torch.Generator().manual_seed(0))
    assert x.shape[0] == 8 and torch.isfinite(x).all()
    if name == "gan":
        assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0
