"""DSVAE (Li & Mandt 2018): the bound's terms by hand, the learned prior's causality and its
ancestral sampling, the two posteriors, generation by factor, and a tiny CLI run."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from clihelp import cli, user_error
from factorseq.config import build
from factorseq.errors import FactorseqError
from factorseq.io import read_windows
from factorseq.models.base import reparameterize
from factorseq.models.dsvae import DSVAE, DSVAEConfig, dsvae_terms

T, D = 6, 3


def make(**kw) -> DSVAE:
    torch.manual_seed(0)
    cfg = dict(seq_len=T, n_features=D, f_dim=2, z_dim=2, hidden=8)
    return DSVAE(build(DSVAEConfig, {**cfg, **kw})).eval()


def kl_1d(mq: float, vq: float, mp: float, vp: float) -> float:
    """KL(N(mq, vq) || N(mp, vp)) in one dimension."""
    return 0.5 * math.log(vp / vq) + (vq + (mq - mp) ** 2) / (2 * vp) - 0.5


def test_bound_terms_of_a_two_step_toy_by_hand():
    t = lambda v: torch.tensor(v, dtype=torch.float64)  # noqa: E731
    x, x_mean = t([[1.0], [2.0]]), t([[0.5], [2.5]])  # one window, 2 steps, 1 feature
    x_logvar = t(math.log(4.0))
    f_mean, f_logvar = t([0.3, -1.0]), t([math.log(0.5), 0.0])
    z_mean, z_logvar = t([[0.2], [-0.4]]), t([[math.log(0.5)], [math.log(2.0)]])
    p_mean, p_logvar = t([[0.0], [0.1]]), t([[0.0], [math.log(0.25)]])  # p(z_1), p(z_2|z_1)
    got = dsvae_terms(x[None], x_mean[None], x_logvar, f_mean[None], f_logvar[None],
                      z_mean[None], z_logvar[None], p_mean[None], p_logvar[None])
    log_px = 2 * (-0.5 * (math.log(2 * math.pi) + math.log(4.0) + 0.25 / 4.0))
    kl_f = kl_1d(0.3, 0.5, 0.0, 1.0) + kl_1d(-1.0, 1.0, 0.0, 1.0)
    kl_z = kl_1d(0.2, 0.5, 0.0, 1.0) + kl_1d(-0.4, 2.0, 0.1, 0.25)
    assert got["log_px"].item() == pytest.approx(log_px)
    assert got["kl_f"].item() == pytest.approx(kl_f)
    assert got["kl_z"].item() == pytest.approx(kl_z)
    assert got["elbo"].item() == pytest.approx(log_px - kl_f - kl_z)


def test_loss_is_the_negative_elbo_of_the_models_own_draws():
    model = make()
    x = torch.randn(4, T, D, generator=torch.Generator().manual_seed(1))
    torch.manual_seed(5)
    out = model.loss({"x": x})
    torch.manual_seed(5)  # the same reparameterisation draws, wired by hand
    f_mean, f_logvar = model.q_f(x)
    f = reparameterize(f_mean, f_logvar)
    z_mean, z_logvar = model.q_z(x, f)
    z = reparameterize(z_mean, z_logvar)
    p_mean, p_logvar = model.prior_z(z)
    x_mean = model.p_x(z, f)
    want = dsvae_terms(x, x_mean, ((x - x_mean) ** 2).mean((0, 1)).log(), f_mean, f_logvar,
                       z_mean, z_logvar, p_mean, p_logvar)
    assert out["loss"].item() == pytest.approx(-want["elbo"].mean().item(), rel=1e-5)
    assert out["loss"].item() == pytest.approx(
        -(out["log_px"] - out["kl_f"] - out["kl_z"]).item(), rel=1e-5)


def test_the_learned_prior_of_z_t_reads_only_z_before_t():
    model = make()
    z = torch.randn(3, T, 2, generator=torch.Generator().manual_seed(0))
    m0, v0 = model.prior_z(z)
    z2 = z.clone()
    z2[:, 2] += 1.0
    m1, v1 = model.prior_z(z2)
    assert torch.allclose(m0[:, :3], m1[:, :3]) and torch.allclose(v0[:, :3], v1[:, :3])
    assert not torch.allclose(m0[:, 3], m1[:, 3])
    # p(z_1) = p(z_1 | z_0 = 0) is the same for every window
    assert torch.allclose(m0[:, 0], m0[:1, 0].expand(3, -1))


def test_ancestral_sampling_follows_the_teacher_forced_prior():
    """z_t = mean_t + std_t * eps_t with the prior's parameters of the path itself and eps the
    generator's normal draws in order: step-by-step sampling and prior_z agree."""
    model = make()
    z = model.sample_z(4, torch.Generator().manual_seed(3))
    mean, logvar = model.prior_z(z)
    eps = (z - mean) / torch.exp(0.5 * logvar)
    g = torch.Generator().manual_seed(3)
    want = torch.cat([torch.randn(4, 1, 2, generator=g) for _ in range(T)], 1)
    assert torch.allclose(eps, want, atol=1e-4)


def test_factorized_posterior_reads_each_frame_alone_and_full_reads_the_window():
    x = torch.randn(2, T, D, generator=torch.Generator().manual_seed(0))
    x2 = x.clone()
    x2[:, 4] += 1.0
    for posterior, others_move in (("factorized", False), ("full", True)):
        model = make(posterior=posterior)
        f = torch.zeros(2, 2)
        a, b = model.q_z(x, f)[0], model.q_z(x2, f)[0]
        assert not torch.allclose(a[:, 4], b[:, 4])
        assert (not torch.allclose(a[:, :4], b[:, :4])) == others_move


def test_likelihood_variance_is_the_batch_optimum_or_fixed():
    model = make()
    g = torch.Generator().manual_seed(0)
    x, x_mean = torch.randn(4, T, D, generator=g), torch.randn(4, T, D, generator=g)
    logvar = model.likelihood_logvar(x, x_mean)
    assert torch.allclose(logvar, ((x - x_mean) ** 2).mean((0, 1)).log())
    zeros = lambda *s: torch.zeros(*s)  # noqa: E731
    rest = (zeros(4, 2), zeros(4, 2), zeros(4, T, 2), zeros(4, T, 2), zeros(4, T, 2),
            zeros(4, T, 2))
    best = dsvae_terms(x, x_mean, logvar, *rest)["log_px"].sum()
    for shift in (-0.1, 0.1):  # any other variance of a feature explains the batch worse
        for j in range(D):
            other = logvar.clone()
            other[j] += shift
            assert dsvae_terms(x, x_mean, other, *rest)["log_px"].sum() < best
    assert torch.allclose(model.likelihood_logvar(x, x), torch.full((D,), -6.0))  # the floor
    fixed = make(likelihood_std=0.5)
    assert torch.allclose(fixed.likelihood_logvar(x, x_mean), torch.full((D,), math.log(0.25)))
    for bad in ({"posterior": "nope"}, {"likelihood_std": 0.0}, {"f_dim": 0}):
        with pytest.raises(FactorseqError):
            make(**bad)


def test_codes_and_generation_by_factor():
    model = make()
    x = torch.randn(5, T, D, generator=torch.Generator().manual_seed(0))
    codes = model.encode(x)
    assert codes["f"].shape == (5, 2) and codes["z"].shape == (5, T, 2)
    assert torch.allclose(codes["z_mean"], codes["z"].mean(1))
    assert codes.specs["f"].role == "sequence" and not codes.specs["z_mean"].decoded
    # keep f of a one-sequence reference: its mean f; z drawn from the learned prior
    got = model.generate(3, reference=x, keep=["f"], generator=torch.Generator().manual_seed(1))
    z = model.sample_z(3, torch.Generator().manual_seed(1))
    want = model.p_x(z, codes["f"].mean(0, keepdim=True).expand(3, -1))
    assert torch.allclose(got, want, atol=1e-5)
    # keep z of each reference window: f ~ N(0, I)
    got = model.generate(5, reference=x, keep=["z"], generator=torch.Generator().manual_seed(2))
    f = torch.randn(5, 2, generator=torch.Generator().manual_seed(2))
    assert torch.allclose(got, model.p_x(codes["z"], f), atol=1e-5)
    assert torch.allclose(model.reconstruct(x), model.p_x(codes["z"], codes["f"]), atol=1e-5)


# --- end to end: a table with a sequence id (a 'machine' level per sequence) ----------------

TINY = ["--epochs", "1", "--batch-size", "16", "--set", "train.tensorboard=false",
        "--set", "hidden=8", "--set", "f_dim=3", "--set", "z_dim=2"]


@pytest.fixture(scope="module")
def table_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("dsvae")
    rng = np.random.default_rng(0)
    t = np.arange(40)
    pd.concat([pd.DataFrame({"run": f"r{s}", "a": np.sin(t / 3 + s) + s % 3,
                             "b": rng.normal(size=40) + s % 3}) for s in range(8)]).to_csv(
        root / "m.csv", index=False)
    run = root / "run"
    assert cli("train", "dsvae", "--data", root / "m.csv", "--id-column", "run", "--window", 8,
               "--stride", 4, "--out", run, *TINY) == 0
    return root, run


def test_cli_train_sample_encode(table_run):
    root, run = table_run
    assert cli("sample", run, "--n", 3, "--out", root / "s.npz") == 0
    assert read_windows(root / "s.npz").shape == (3, 8, 2)
    assert cli("encode", run, "--out", root / "codes.csv") == 0
    df = pd.read_csv(root / "codes.csv")
    assert {"seq_id", "f_0", "f_2", "f_seq_0", "z_t00_0", "z_t07_1", "z_mean_1"} <= set(df)
    one = df[df["seq_id"] == 3]  # the sequence value of f is the mean over its windows
    assert np.allclose(one["f_seq_0"], one["f_0"].mean(), atol=1e-5)


def test_cli_generate_with_a_kept_factor(table_run, capsys):
    root, run = table_run
    assert cli("generate", run, "--reference", root / "m.csv", "--reference-seq", "3",
               "--keep", "f", "--n", 4, "--out", root / "voice.npz") == 0
    assert read_windows(root / "voice.npz").shape == (4, 8, 2)
    assert cli("generate", run, "--reference", root / "m.csv", "--reference-index", 2,
               "--keep", "z", "--n", 2, "--out", root / "content.npz") == 0
    assert "rows" in user_error(capsys, "generate", run, "--reference", root / "m.csv",
                                "--reference-index", 1, "--reference-index", 2, "--keep", "z",
                                "--n", 3, "--out", root / "bad.npz")


# --- the contrastive variant (C-DSVAE, nn/contrastive.py) -----------------------------------

def test_contrastive_loss_adds_the_weighted_terms_to_the_same_draws():
    x = torch.randn(6, T, D, generator=torch.Generator().manual_seed(1))
    torch.manual_seed(5)
    plain = make().loss({"x": x})
    assert not {"nce_static", "nce_dynamic", "mi_fz"} & set(plain)  # weight 0: today's model
    torch.manual_seed(5)  # the same reparameterisation draws come first, then the views
    out = make(contrastive_weight=2.0, mi_weight=0.5).loss({"x": x})
    for k in ("log_px", "kl_f", "kl_z"):
        assert out[k].item() == pytest.approx(plain[k].item(), rel=1e-6)
    want = (plain["loss"] - 2.0 * (out["nce_static"] + out["nce_dynamic"])
            + 0.5 * out["mi_fz"].clamp(min=0))
    assert out["loss"].item() == pytest.approx(want.item(), rel=1e-5)
    for k in ("nce_static", "nce_dynamic"):  # InfoNCE bounds lie in [-inf, log B]
        assert out[k].item() <= math.log(6) + 1e-6 and out[k].item() != 0.0
    only_mi = make(mi_weight=1.0).loss({"x": x})
    assert only_mi["nce_static"].item() == 0.0 and only_mi["mi_fz"].item() != 0.0
    for bad in ({"contrastive_weight": -1.0}, {"temperature": 0.0}, {"view_noise": -0.1}):
        with pytest.raises(FactorseqError):
            make(**bad)


def test_contrastive_variant_trains_and_logs_its_terms(table_run):
    root, _ = table_run
    run = root / "run_contrastive"
    assert cli("train", "dsvae", "--data", root / "m.csv", "--id-column", "run", "--window", 8,
               "--stride", 4, "--out", run, *TINY, "--epochs", "2", "--set",
               "contrastive_weight=1", "--set", "mi_weight=1", "--set", "view_noise=0.1") == 0
    log = pd.read_csv(run / "logs" / "metrics.csv")
    for part in ("train", "val"):
        for term in ("nce_static", "nce_dynamic", "mi_fz"):
            values = log[f"{part}_{term}"].dropna()
            assert len(values) == 2 and np.isfinite(values).all()
