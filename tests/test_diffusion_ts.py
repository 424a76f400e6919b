"""Maths of ``diffusion_ts`` (Diffusion-TS) against hand computation, plus a tiny CLI run.

Windows are (batch, time, features) throughout.
"""
from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from clihelp import cli, user_error
from factorseq.config import build
from factorseq.errors import FactorseqError
from factorseq.models.diffusion_ts import PAPER_PRESETS, DiffusionTS, DiffusionTSConfig
from factorseq.nn.diffusion import (
    GaussianDiffusion,
    cosine_betas,
    diffusion_ts_loss,
    sampling_times,
)
from factorseq.nn.diffusion_ts_blocks import top_k_frequencies

BETAS = np.array([0.1, 0.2, 0.3])
TINY = dict(d_model=8, enc_layers=1, dec_layers=2, heads=2, timesteps=20)


def tiny(**kw) -> DiffusionTS:
    torch.manual_seed(0)
    return DiffusionTS(DiffusionTSConfig(**{"seq_len": 6, "n_features": 2, **TINY, **kw}))


def test_forward_process_is_the_product_of_the_steps():
    """q(x_t | x_0) in closed form vs chaining x_s = sqrt(1 - b_s) x_{s-1} + sqrt(b_s) e_s."""
    diff = GaussianDiffusion(3, betas=BETAS)
    x0 = torch.tensor([[[0.7], [-0.4]]])
    mean_scale, var = 1.0, 0.0
    for t, b in enumerate(BETAS):
        mean_scale *= np.sqrt(1 - b)  # mean of x_t = prod sqrt(1 - b_s) x0
        var = (1 - b) * var + b  # Var(sqrt(1 - b) x + sqrt(b) e) = (1 - b) Var(x) + b
        mean, v = diff.q_mean_var(x0, torch.tensor([t]))
        assert torch.allclose(mean, x0 * mean_scale, atol=1e-6)
        assert v.item() == pytest.approx(var, rel=1e-6)
    # hand values of the last step: abar = 0.9 * 0.8 * 0.7
    assert diff.alpha_bar[2].item() == pytest.approx(0.504, rel=1e-6)
    assert var == pytest.approx(1 - 0.504)


def test_posterior_is_bayes_rule_on_gaussians():
    """q(x_{t-1} | x_t, x_0): prior N(sqrt(abar_{t-1}) x0, 1 - abar_{t-1}) times the
    likelihood N(x_t; sqrt(a_t) x_{t-1}, b_t), normalised."""
    diff = GaussianDiffusion(3, betas=BETAS)
    x0, xt = torch.tensor([[[0.5]]]), torch.tensor([[[-0.3]]])
    abar = np.cumprod(1 - BETAS)
    for t in (1, 2):
        prior_mean, prior_var = np.sqrt(abar[t - 1]) * 0.5, 1 - abar[t - 1]
        a, b = 1 - BETAS[t], BETAS[t]
        precision = 1 / prior_var + a / b
        mean = (prior_mean / prior_var + np.sqrt(a) * -0.3 / b) / precision
        m, v, logv = diff.posterior(x0, xt, torch.tensor([t]))
        assert m.item() == pytest.approx(mean, rel=1e-5)
        assert v.item() == pytest.approx(1 / precision, rel=1e-5)
        assert logv.item() == pytest.approx(np.log(1 / precision), rel=1e-5)
    # t = 0: the posterior is the point x0 (variance 0, mean x0)
    m, v, _ = diff.posterior(x0, xt, torch.tensor([0]))
    assert m.item() == pytest.approx(0.5) and v.item() == 0.0


def test_cosine_schedule_endpoints():
    betas = cosine_betas(500)
    abar = np.cumprod(1 - betas)
    assert betas[-1] == pytest.approx(0.999) and 0 < betas[0] < 1e-3
    assert abar[0] > 0.999 and abar[-1] < 1e-6 and np.all(np.diff(betas) > 0)


def test_fourier_term_matches_numpy_fft_by_hand():
    rng = np.random.default_rng(0)
    pred, target = rng.normal(size=(2, 4, 3)), rng.normal(size=(2, 4, 3))
    weight = np.array([0.5, 2.0])
    out = diffusion_ts_loss(torch.tensor(pred), torch.tensor(target), torch.tensor(weight),
                            kind="l1", fourier_weight=0.7)
    recon, four = np.zeros(2), np.zeros(2)
    for b in range(2):
        recon[b] = np.abs(pred[b] - target[b]).mean()
        for d in range(3):  # the reference: FFT of each series (norm="forward" = 1/T), L1
            fp = np.fft.fft(pred[b, :, d]) / 4
            ft = np.fft.fft(target[b, :, d]) / 4
            four[b] += (np.abs(fp.real - ft.real) + np.abs(fp.imag - ft.imag)).sum()
        four[b] /= 4 * 3  # mean over (frequency, feature)
    assert out["reconstruction"].item() == pytest.approx(recon.mean(), rel=1e-6)
    assert out["fourier"].item() == pytest.approx(four.mean(), rel=1e-6)
    assert out["loss"].item() == pytest.approx(np.mean(weight * (recon + 0.7 * four)),
                                               rel=1e-6)


def test_all_ones_mask_gives_the_unmasked_loss_and_masked_entries_get_no_gradient():
    g = torch.Generator().manual_seed(0)
    pred = torch.randn(3, 6, 2, generator=g, requires_grad=True)
    target, weight = torch.randn(3, 6, 2, generator=g), torch.rand(3, generator=g)
    plain = diffusion_ts_loss(pred, target, weight, fourier_weight=1.0)["loss"]
    ones = diffusion_ts_loss(pred, target, weight, fourier_weight=1.0,
                             mask=torch.ones(3, 6, 2))["loss"]
    assert torch.allclose(plain, ones)
    mask = (torch.rand(3, 6, 2, generator=g) > 0.3).float()
    loss = diffusion_ts_loss(pred, target, weight, fourier_weight=1.0, mask=mask)["loss"]
    (grad,) = torch.autograd.grad(loss, pred)
    assert torch.all(grad[mask == 0] == 0) and grad[mask == 1].abs().sum() > 0


def test_model_loss_ignores_missing_values():
    model = tiny()
    x = torch.rand(4, 6, 2)
    mask = torch.ones(4, 6, 2)
    mask[:, 2, 1] = 0
    x_nan = x.clone()
    x_nan[:, 2, 1] = float("nan")  # whatever sits at a missing entry
    loss = lambda b: model.loss(b, generator=torch.Generator().manual_seed(1))["loss"]  # noqa
    plain = loss({"x": x})
    assert torch.allclose(plain, loss({"x": x, "x_mask": torch.ones(4, 6, 2)}))
    masked = loss({"x": x_nan.requires_grad_(True), "x_mask": mask})
    assert torch.isfinite(masked)
    (grad,) = torch.autograd.grad(masked, x_nan)
    assert torch.all(grad[:, 2, 1] == 0) and grad.abs().sum() > 0
    assert torch.allclose(masked, loss({"x": x, "x_mask": mask}))


def test_decomposition_sums_to_the_reconstruction():
    model = tiny().eval()
    x = torch.rand(3, 6, 2)
    d = model.decompose(x)
    parts = {**d.parts, "output": d.output}
    assert set(parts) == {"level", "trend", "seasonal", "residual", "output"}
    total = parts["level"] + parts["trend"] + parts["seasonal"] + parts["residual"]
    assert torch.allclose(total, parts["output"], atol=1e-6)
    with torch.no_grad():
        x0 = model.net(2 * x - 1, torch.zeros(3, dtype=torch.long))
    assert torch.allclose(parts["output"], (x0 + 1) / 2, atol=1e-6)
    assert torch.allclose(parts["level"], parts["level"][:, :1].expand_as(x))  # constant
    assert torch.allclose(parts["residual"].mean(1), torch.zeros(3, 2), atol=1e-6)


def test_skip_preconditioning_by_hand_and_decomposition_with_skip():
    diff = GaussianDiffusion(3, betas=BETAS)
    abar = np.cumprod(1 - BETAS)[1]
    var = (1 - abar) / abar  # sigma^2 of x_t / sqrt(abar)
    c_skip, c_out = diff.skip_scales(torch.tensor([1]), 0.5)
    assert c_skip.item() == pytest.approx(0.25 / (var + 0.25) / np.sqrt(abar), rel=1e-5)
    assert c_out.item() == pytest.approx(np.sqrt(var) * 0.5 / np.sqrt(var + 0.25), rel=1e-5)
    model = tiny(skip=True).eval()
    x = torch.rand(3, 6, 2)
    with torch.no_grad():
        parts = model.parts_at(x, t=7)
    parts["output"] = sum(parts.values())
    assert "skip" in parts
    total = sum(v for k, v in parts.items() if k != "output")
    assert torch.allclose(total, parts["output"], atol=1e-6)
    t = torch.full((3,), 7)
    c_skip, c_out = model.diffusion.skip_scales(t, 0.5)
    with torch.no_grad():
        x0 = c_skip * (2 * x - 1) + c_out * model.net(2 * x - 1, t)
    assert torch.allclose(parts["output"], (x0 + 1) / 2, atol=1e-6)


def test_top_k_frequencies_is_the_projection_on_the_strongest_sinusoids():
    t = torch.arange(24, dtype=torch.float32)
    wave = 2 * torch.cos(2 * np.pi * 3 * t / 24 + 0.4) + 0.5 * torch.sin(2 * np.pi * 5 * t / 24)
    h = (wave + 1.5 + 0.1 * torch.cos(2 * np.pi * 7 * t / 24)).view(1, 24, 1)
    kept = top_k_frequencies(h, 2)  # drops the mean 1.5 and the weakest wave (0.1)
    assert torch.allclose(kept.view(-1), wave, atol=1e-5)


def denoiser_fn(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """A fixed, t-dependent stand-in for a trained denoiser."""
    return torch.tanh(x) * (0.5 + 0.01 * t.view(-1, 1, 1))


def test_ddim_eta0_is_deterministic_and_all_steps_eta1_is_ancestral():
    diff = GaussianDiffusion(30)
    x_T = torch.randn(4, 6, 2, generator=torch.Generator().manual_seed(0))
    a = diff.ddim(denoiser_fn, x_T, 10, eta=0.0, generator=torch.Generator().manual_seed(1))
    b = diff.ddim(denoiser_fn, x_T, 10, eta=0.0, generator=torch.Generator().manual_seed(2))
    assert torch.equal(a, b)
    anc = diff.ancestral(denoiser_fn, x_T, generator=torch.Generator().manual_seed(5))
    ddim = diff.ddim(denoiser_fn, x_T, 30, eta=1.0, generator=torch.Generator().manual_seed(5))
    assert torch.allclose(anc, ddim, atol=1e-5)
    other = diff.ddim(denoiser_fn, x_T, 30, eta=1.0, generator=torch.Generator().manual_seed(6))
    assert not torch.allclose(anc, other, atol=1e-3)


def test_ddim_step_from_the_exact_x0_lands_on_the_forward_marginal():
    """With x0 known, eta = 0 maps x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) e to the point of
    step t' with the same e: the DDIM jump follows q(x_t' | x0)."""
    diff = GaussianDiffusion(50)
    x0, e = torch.rand(2, 6, 2), torch.randn(2, 6, 2)
    xt = diff.q_sample(x0, torch.tensor([40, 40]), e)
    nxt = diff.ddim_step(xt, x0, 40, 12, 0.0, None)
    assert torch.allclose(nxt, diff.q_sample(x0, torch.tensor([12, 12]), e), atol=1e-5)


def test_sampling_times():
    assert sampling_times(10, 10) == list(range(9, -1, -1))
    assert sampling_times(100, 5) == [99, 74, 50, 25, 0]
    quad = sampling_times(100, 20, "quadratic")
    assert len(quad) == 20 and quad[0] == 99 and quad[-1] == 0
    assert len(set(quad)) == 20 and np.diff(quad[::-1])[0] <= np.diff(quad[::-1])[-1]
    with pytest.raises(FactorseqError):
        sampling_times(10, 11)


def test_config_presets_and_validation():
    paper = DiffusionTSConfig(seq_len=24, n_features=28, preset="energy")
    assert (paper.d_model, paper.enc_layers, paper.dec_layers, paper.timesteps) == \
        (96, 4, 3, 1000)
    assert paper.sampler == "ancestral" and paper.sampling_steps == 1000
    assert paper.fourier_weight == pytest.approx(np.sqrt(24) / 5)
    mine = DiffusionTSConfig(seq_len=24, n_features=5, preset="sines", d_model=32)
    assert mine.d_model == 32 and mine.enc_layers == PAPER_PRESETS["sines"]["enc_layers"]
    short = DiffusionTSConfig(timesteps=10)
    assert short.sampling_steps == 10 and short.encode_steps == 10
    for bad in ({"preset": "nope"}, {"d_model": 10, "heads": 4}, {"sampler": "x"},
                {"timesteps": 10, "sampling_steps": 11}, {"eta": 2.0}, {"loss": "l3"}):
        with pytest.raises(FactorseqError):
            build(DiffusionTSConfig, bad)


def test_ema_update_and_sampling_weights():
    model = tiny(ema_every=2, ema_decay=0.5)
    assert model.net is model.denoiser  # no EMA update yet
    with torch.no_grad():
        for p in model.denoiser.parameters():
            p.add_(1.0)
    before = [p.clone() for p in model.ema.parameters()]
    model.on_optimizer_step(1)  # not a multiple of ema_every: nothing
    assert all(torch.equal(a, b) for a, b in zip(before, model.ema.parameters(), strict=True))
    model.on_optimizer_step(2)  # first update: decay min(0.5, 1/10) = 0.1
    for old, new, live in zip(before, model.ema.parameters(), model.denoiser.parameters(),
                              strict=True):
        assert torch.allclose(new, 0.1 * old + 0.9 * live)
    assert model.net is model.ema and int(model.ema_updates) == 1
    assert all(not p.requires_grad for p in model.ema.parameters())
    assert {id(p) for p in model.optimizer_groups()["all"]} == \
        {id(p) for p in model.denoiser.parameters()}


def test_ddim_inversion_inverts_ddim_for_an_exact_denoiser():
    """A denoiser that knows x0 (a point mass at x0) keeps the implied noise constant along
    the eta = 0 path, so DDIM after DDIM inversion returns x0 exactly."""
    diff = GaussianDiffusion(40)
    x0 = torch.rand(2, 6, 2) * 2 - 1
    oracle = lambda x, t: x0  # noqa: E731
    z = diff.ddim_invert(oracle, x0, 8)
    assert torch.allclose(diff.ddim(oracle, z, 8, clip=None), x0, atol=1e-5)


def test_model_encode_decode_is_deterministic():
    model = tiny(timesteps=50, encode_steps=10).eval()
    x = torch.rand(2, 6, 2)
    z = model.encode(x)["x_T"]
    assert z.shape == x.shape and torch.isfinite(z).all()
    assert torch.equal(model.decode(z), model.decode(z.clone()))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("dts") / "run"
    assert cli("train", "diffusion_ts", "--data", "sines", "--out", out, "--epochs", 1,
               "--batch-size", 32, "--set", "data.options={n: 96}",
               "--set", "d_model=8", "--set", "enc_layers=1", "--set", "dec_layers=1",
               "--set", "heads=2", "--set", "timesteps=10", "--set", "sampling_steps=3",
               "--set", "train.warmup_steps=2", "--set", "train.progress=false",
               "--set", "train.lr_schedule=cosine", "--set", "skip=true",
               "--set", "ema_every=1") == 0
    return out


def test_cli_train_sample_evaluate(trained, tmp_path, capsys):
    cfg = json.loads((trained / "config.json").read_text())
    assert cfg["model"] == "diffusion_ts" and cfg["status"] == "trained"
    from factorseq.checkpoint import load
    model = load(trained).model  # 86 training windows in batches of 32: 3 EMA updates
    assert int(model.ema_updates) == 3 and model.net is model.ema
    assert cli("sample", trained, "--out", tmp_path / "s.npz", "--n", 7) == 0
    with np.load(tmp_path / "s.npz") as z:
        assert next(iter(z.values())).shape == (7, 24, 5)
    assert cli("evaluate", trained, "--out", tmp_path / "m.json", "--repeats", 1,
               "--set", "disc_iterations=2", "--set", "pred_iterations=2") == 0
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert 0 <= metrics["discriminative"]["mean"] <= 0.5
    assert "timesteps must be" in user_error(
        capsys, "train", "diffusion_ts", "--data", "sines", "--out", tmp_path / "bad",
        "--set", "timesteps=0")


def test_trainer_warms_the_learning_rate_up():
    from factorseq.train.adapter import LitAdapter
    from factorseq.train.config import TrainConfig

    model = tiny()
    adapter = LitAdapter(model, TrainConfig(lr=0.01, warmup_steps=4))
    opt = torch.optim.Adam(model.denoiser.parameters(), lr=0.01)
    adapter.on_before_optimizer_step(opt)  # global step 0 (no trainer): lr / 4
    assert opt.param_groups[0]["lr"] == pytest.approx(0.0025)
    cosine = LitAdapter(model, TrainConfig(lr=0.01, min_lr=0.001, warmup_steps=2,
                                           lr_schedule="cosine"))
    cosine._trainer = SimpleNamespace(global_step=6, estimated_stepping_batches=10)
    cosine.on_before_optimizer_step(opt)  # half way through the 8 steps after warm-up
    assert opt.param_groups[0]["lr"] == pytest.approx(0.001 + 0.009 * 0.5)


def test_report_draws_the_decomposition(trained):
    from factorseq.checkpoint import load
    run = load(trained)
    figs = run.model.report_figures(torch.rand(5, 24, 5))
    assert len(figs) == 1 and "decomposition" in figs[0][0]
