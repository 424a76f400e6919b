"""Maths of the TimeVAE family (vae_dense, vae_conv, timevae) on tiny inputs.

Windows are (batch, time, features) throughout.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.distributions import Normal, kl_divergence

from factorseq.config import build, parse_sets, to_dict
from factorseq.errors import FactorseqError, ShapeError
from factorseq.models.timevae import TimeVAE, TimeVAEConfig
from factorseq.nn.timevae_blocks import SameConv1d, SameConvTranspose1d
from factorseq.registry import get_model_class

TINY = dict(latent_dim=3, hidden_layer_sizes=(4, 6))


def tiny(name: str, seq_len: int = 6, n_features: int = 2, **kw):
    cls = get_model_class(name)
    torch.manual_seed(0)
    return cls(cls.Config(seq_len=seq_len, n_features=n_features, **{**TINY, **kw}))


def timevae(**kw) -> TimeVAE:
    torch.manual_seed(0)
    return TimeVAE(TimeVAEConfig(**{"seq_len": 12, "n_features": 2, **TINY, **kw}))


@pytest.mark.parametrize("name", ["vae_dense", "vae_conv", "timevae"])
def test_loss_matches_hand_computation(name):
    model = tiny(name, seq_len=5, n_features=2, custom_seas=[[2, 2]]) if name == "timevae" \
        else tiny(name, seq_len=5, n_features=2)
    x = torch.rand(3, 5, 2)
    out = model.loss({"x": x}, generator=torch.Generator().manual_seed(7))

    mean, logvar = (t.detach().double().numpy() for t in model.posterior(x))
    eps = torch.randn(mean.shape, generator=torch.Generator().manual_seed(7)).double().numpy()
    z = mean + eps * np.exp(0.5 * logvar)
    x_hat = model.decode(torch.tensor(z, dtype=torch.float32)).detach().double().numpy()
    xn = x.double().numpy()
    recon, kl = np.zeros(3), np.zeros(3)
    for b in range(3):
        for t in range(5):
            for d in range(2):
                recon[b] += (xn[b, t, d] - x_hat[b, t, d]) ** 2
            recon[b] += (xn[b, t].mean() - x_hat[b, t].mean()) ** 2  # the axis=[2] term
        # the reference's closed form: -0.5 * sum(1 + logvar - mean^2 - exp(logvar))
        kl[b] = -0.5 * np.sum(1 + logvar[b] - mean[b] ** 2 - np.exp(logvar[b]))
    loss = np.mean(3.0 * recon + kl)
    assert out["reconstruction"].item() == pytest.approx(recon.mean(), rel=1e-5)
    assert out["kl"].item() == pytest.approx(kl.mean(), rel=1e-5)
    assert out["loss"].item() == pytest.approx(loss, rel=1e-5)


def test_kl_term_is_the_closed_form_gaussian_kl():
    model = tiny("vae_conv")
    # make the posterior non-trivial: random heads so mean != 0 and logvar != 0
    with torch.no_grad():
        for head in (model.encoder.mean, model.encoder.logvar):
            head.bias.copy_(torch.randn_like(head.bias))
    x = torch.rand(4, 6, 2)
    mean, logvar = model.posterior(x)
    q = Normal(mean, torch.exp(0.5 * logvar))
    expected = kl_divergence(q, Normal(torch.zeros_like(mean), torch.ones_like(mean))).sum(-1)
    got = model.loss({"x": x})["kl"]
    assert got.item() == pytest.approx(expected.mean().item(), rel=1e-5)


def test_trend_is_quadratic_in_t_over_T_with_dense_coefficients():
    model = timevae(trend_poly=2)
    block = model.decoder.trend
    z = torch.randn(4, 3)
    trend = block(z).detach().numpy()  # (B, T, D)
    lin1, _, lin2 = block.net
    h = torch.relu(z @ lin1.weight.T + lin1.bias) @ lin2.weight.T + lin2.bias
    a = h.detach().view(4, 2, 2).numpy()  # (B, D, P), Keras Reshape order
    u = np.arange(12) / 12.0
    for b in range(4):
        for d in range(2):
            expected = a[b, d, 0] * u + a[b, d, 1] * u ** 2
            np.testing.assert_allclose(trend[b, :, d], expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(block.coefficients(z).detach().numpy(), a, rtol=1e-6)
    assert np.allclose(trend[:, 0, :], 0.0)  # no constant term: that is the level's job


def test_level_is_constant_over_time():
    model = timevae()
    level = model._decompose_codes({"z": torch.randn(3, 3)}).parts["level"]
    assert level.shape == (3, 12, 2)
    assert torch.allclose(level, level[:, :1, :].expand_as(level))


@pytest.mark.parametrize("num_seasons,len_per_season", [(3, 2), (4, 1), (5, 3)])
def test_seasonal_block_period_and_within_season_constant(num_seasons, len_per_season):
    T = 17
    model = timevae(seq_len=T, custom_seas=[[num_seasons, len_per_season]])
    z = torch.randn(2, 3)
    seas = model._decompose_codes({"z": z}).details["seasonal_blocks"][0].detach()
    values = model.decoder.seasonal[0].season_values(z).detach()  # (B, D, S)
    period = num_seasons * len_per_season
    for t in range(T):
        season = (t // len_per_season) % num_seasons
        assert torch.allclose(seas[:, t, :], values[:, :, season])
        if t + period < T:
            assert torch.allclose(seas[:, t], seas[:, t + period])
        if t % len_per_season != 0:  # same season as the previous step
            assert torch.allclose(seas[:, t], seas[:, t - 1])


def test_decompose_sums_to_decode_for_x_and_z():
    model = timevae(trend_poly=2, custom_seas=[[3, 2], [4, 1]])
    z = torch.randn(5, 3)
    d = model._decompose_codes({"z": z})
    blocks = d.details["seasonal_blocks"]
    assert len(blocks) == 2 and list(d.parts) == ["level", "trend", "seasonal", "residual"]
    assert torch.allclose(d.parts["seasonal"], blocks[0] + blocks[1])
    assert torch.allclose(sum(d.parts.values()), d.output, atol=1e-6)
    assert torch.allclose(d.output, model.decode(z), atol=1e-6)
    x = torch.rand(2, 12, 2)
    from_x = model.decompose(x)
    assert torch.allclose(from_x.output, model.reconstruct(x), atol=1e-6)
    for part in (*from_x.parts.values(), from_x.output):
        assert part.shape == x.shape


def test_absent_blocks_are_zero():
    model = timevae(trend_poly=0, custom_seas=[], use_residual_conn=False)
    d = model._decompose_codes({"z": torch.randn(2, 3)})
    assert d.details["seasonal_blocks"] == []
    for key in ("trend", "seasonal", "residual"):
        assert torch.count_nonzero(d.parts[key]) == 0
    assert torch.allclose(d.output, d.parts["level"])


def test_generation_by_parts_keeps_trend_and_level_and_scales_the_season():
    model = timevae(trend_poly=2, custom_seas=[[3, 2]])
    ref = torch.rand(1, 12, 2)
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    out = model.generate(4, reference=ref, keep=["level", "trend"], scale={"seasonal": 2.0},
                         generator=g())
    ref_parts = model.decompose(ref).parts
    z = torch.randn(4, 3, generator=g())  # the same prior draw as generate's
    new = model._decompose_codes({"z": z}).parts
    want = (ref_parts["level"] + ref_parts["trend"] + 2.0 * new["seasonal"] + new["residual"])
    assert torch.allclose(out, want, atol=1e-5)


@pytest.mark.parametrize("name", ["vae_dense", "vae_conv", "timevae"])
def test_shape_errors_name_the_tensor(name):
    model = tiny(name)
    with pytest.raises(ShapeError, match=r"x has 3 features.*\(2, 6, 3\)"):
        model.encode(torch.zeros(2, 6, 3))
    with pytest.raises(ShapeError, match=r"x has 5 time steps"):
        model.loss({"x": torch.zeros(2, 5, 2)})
    with pytest.raises(ShapeError, match=r"x must have 3 dimensions"):
        model.reconstruct(torch.zeros(6, 2))
    with pytest.raises(ShapeError, match=r"code 'z' must have shape \(4, 3\).*\(4, 2\)"):
        model.decode(torch.zeros(4, 2))


@pytest.mark.parametrize("name", ["vae_dense", "vae_conv", "timevae"])
def test_sampling_is_seeded(name):
    model = tiny(name)
    a = model.sample(4, generator=torch.Generator().manual_seed(3))
    b = model.sample(4, generator=torch.Generator().manual_seed(3))
    c = model.sample(4, generator=torch.Generator().manual_seed(4))
    assert a.shape == (4, 6, 2)
    assert torch.equal(a, b) and not torch.equal(a, c)
    with pytest.raises(FactorseqError):
        model.sample(0)


@pytest.mark.parametrize("name", ["vae_dense", "vae_conv", "timevae"])
@pytest.mark.parametrize("seq_len", [2, 7, 25])
def test_defaults_work_for_any_length(name, seq_len):
    cls = get_model_class(name)
    model = cls(cls.Config(seq_len=seq_len, n_features=1))
    x = torch.rand(2, seq_len, 1)
    assert model.reconstruct(x).shape == x.shape
    assert torch.isfinite(model.loss({"x": x})["loss"])


def test_conv_encoder_lengths_follow_keras_same():
    # ceil(L / 2) per layer: 25 -> 13 -> 7 -> 4
    model = tiny("vae_conv", seq_len=25, hidden_layer_sizes=(4, 5, 6))
    assert model.encoder.out_len == 4 and model.encoder.flat_dim == 4 * 6


@pytest.mark.parametrize("length", [4, 5])
def test_same_conv_matches_keras_padding(length):
    conv = SameConv1d(1, 1, 3, 2)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([[[1.0, 10.0, 100.0]]]))
        conv.bias.zero_()
    x = torch.arange(1.0, length + 1).view(1, 1, -1)
    # TensorFlow "same": total pad (out-1)*2 + 3 - L, left = total // 2 (0 if L even, 1 if odd)
    out_len = -(-length // 2)
    left = ((out_len - 1) * 2 + 3 - length) // 2
    xp = np.pad(x.view(-1).numpy(), (left, 3))
    expected = [xp[2 * o] + 10 * xp[2 * o + 1] + 100 * xp[2 * o + 2] for o in range(out_len)]
    np.testing.assert_allclose(conv(x).view(-1).detach().numpy(), expected)


def test_same_conv_transpose_matches_keras_padding():
    deconv = SameConvTranspose1d(1, 1, 3, 2)
    with torch.no_grad():
        deconv.weight.copy_(torch.tensor([[[1.0, 10.0, 100.0]]]))
        deconv.bias.zero_()
    x = torch.tensor([[[1.0, 2.0, 3.0]]])
    # transpose of the "same" conv of a length-6 input (left pad 0): input o feeds 2*o + k
    expected = np.zeros(7)
    for o, v in enumerate([1.0, 2.0, 3.0]):
        for k, w in enumerate([1.0, 10.0, 100.0]):
            expected[2 * o + k] += v * w
    np.testing.assert_allclose(deconv(x).view(-1).detach().numpy(), expected[:6])


def test_custom_seas_from_set_and_json_round_trip():
    cfg = build(TimeVAEConfig, parse_sets(["custom_seas=[[7,1],[4,6]]", "trend_poly=3"]))
    assert cfg.custom_seas == ((7, 1), (4, 6)) and cfg.trend_poly == 3
    assert build(TimeVAEConfig, to_dict(cfg)) == cfg
    assert build(TimeVAEConfig, parse_sets(["custom_seas=[7,1]"])).custom_seas == ((7, 1),)
    assert TimeVAEConfig().custom_seas == () and TimeVAEConfig().trend_poly == 2
    for bad in ("custom_seas=[[7,0]]", "custom_seas=[[7,1,2]]", "trend_poly=-1",
                "hidden_layer_sizes=[]"):
        with pytest.raises(FactorseqError):
            build(TimeVAEConfig, parse_sets([bad]))


def test_state_dict_round_trip():
    model = timevae(custom_seas=[[3, 2]])
    state = model.state_dict()
    assert not any(k.endswith(("basis", "season_index")) for k in state)  # derived, not saved
    torch.manual_seed(1)
    other = TimeVAE(model.config)
    other.load_state_dict(state)
    z = torch.randn(2, 3)
    assert torch.equal(model.decode(z), other.decode(z))


def test_training_reduces_loss():
    model = timevae(custom_seas=[[4, 3]])
    t = torch.arange(12.0)
    x = 0.5 + 0.3 * torch.sin(2 * np.pi * t / 12)[None, :, None] * torch.rand(16, 1, 2)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for step in range(60):
        out = model.loss({"x": x}, generator=torch.Generator().manual_seed(step))
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        losses.append(out["loss"].item())
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5])


def test_report_figures():
    model = timevae(custom_seas=[[3, 2]])
    figs = model.report_figures(torch.rand(10, 12, 2))
    assert len(figs) == 1
    title, fig = figs[0]
    assert "TimeVAE" in title and len(fig.axes) == 6
    assert tiny("vae_conv").report_figures(torch.rand(3, 6, 2)) == []


@pytest.mark.parametrize("k,s,length", [(3, 2, 3), (3, 2, 1), (5, 2, 4), (3, 3, 5), (2, 2, 6),
                                        (1, 1, 4), (4, 1, 3)])
def test_polyphase_transposed_conv_equals_torch(k, s, length):
    """The polyphase forward equals torch's conv_transpose1d with TF-'same' cropping."""
    from factorseq.nn.timevae_blocks import SameConvTranspose1d

    torch.manual_seed(0)
    m = SameConvTranspose1d(7, 5, k, s)
    x = torch.randn(4, 7, length, requires_grad=True)
    full = torch.nn.functional.conv_transpose1d(x, m.weight, m.bias, stride=s)
    left = max(k - s, 0) // 2
    ref = full[..., left:left + length * s]
    out = m(x)
    assert out.shape == (4, 5, length * s)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    g_out, = torch.autograd.grad(out.sum(), x)
    g_ref, = torch.autograd.grad(ref.sum(), x)
    torch.testing.assert_close(g_out, g_ref, rtol=1e-5, atol=1e-5)


class ZeroDecoder(torch.nn.Module):
    """A decoder whose mean is 0: the residuals are the data themselves."""

    def __init__(self, t: int, d: int) -> None:
        super().__init__()
        self.t, self.d = t, d

    def forward(self, z):
        return torch.zeros(len(z), self.t, self.d)


@pytest.mark.parametrize("kind", ["diagonal", "full"])
def test_observation_noise_is_the_gaussian_of_the_residuals(kind):
    model = tiny("vae_conv", observation_noise=kind)
    g = torch.Generator().manual_seed(0)
    A = torch.tensor([[1.0, 0.0], [0.8, 0.3]])  # two correlated channels
    noise = torch.randn(400, 6, 2, generator=g) @ A.T + torch.tensor([0.5, -0.2])
    model.decoder = ZeroDecoder(6, 2)
    model.on_fit_end([{"x": noise[:150]}, {"x": noise[150:]}])  # residual = x
    rows = noise.reshape(-1, 2).double()
    cov = torch.cov(rows.T)
    want = torch.diag(cov.diagonal()) if kind == "diagonal" else cov
    got = (model.noise_chol @ model.noise_chol.T).double()
    assert torch.allclose(got, want, atol=1e-4)
    assert torch.allclose(model.noise_mean.double(), rows.mean(0), atol=1e-5)
    # samples are decoder means plus that noise, drawn after the code from the same generator
    s = model.sample(3, generator=torch.Generator().manual_seed(1))
    g2 = torch.Generator().manual_seed(1)
    torch.randn(3, model.config.latent_dim, generator=g2)
    eps = torch.randn(3, 6, 2, generator=g2)
    assert torch.allclose(s, model.noise_mean + eps @ model.noise_chol.T, atol=1e-6)


def test_identical_channels_get_identical_noise():
    model = tiny("vae_conv", observation_noise="full")
    x = torch.rand(60, 6, 2, generator=torch.Generator().manual_seed(0))
    x[..., 1] = x[..., 0]  # one noise source in two columns: a singular covariance
    model.decoder = ZeroDecoder(6, 2)
    model.on_fit_end([{"x": x}])
    s = model.sample(200, generator=torch.Generator().manual_seed(2))
    assert (s[..., 0] - s[..., 1]).abs().max() < 1e-2 * s[..., 0].std()
