"""InfoGAN for sequences: L_I's cross-entropy and Gaussian NLL by hand, where L_I's gradient
goes (G, Q and the body Q shares with D; never D's real/fake head), which player each step
moves, codes in and out, and a tiny CLI run."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from clihelp import cli, user_error
from factorseq.config import build
from factorseq.errors import FactorseqError, ShapeError
from factorseq.io import read_windows
from factorseq.models.infogan import InfoGAN, InfoGANConfig, information_terms

T, D = 8, 2
LOG_2PI = math.log(2 * math.pi)


def make(**kw) -> InfoGAN:
    torch.manual_seed(0)
    cfg = dict(seq_len=T, n_features=D, hidden=8, latent_dim=3, n_categories=3,
               n_continuous=2, q_hidden=8)
    return InfoGAN(build(InfoGANConfig, {**cfg, **kw})).eval()


Q_OUT = torch.tensor([[2.0, 0.0, -1.0, 0.5, -0.5, 0.0, math.log(4.0)],
                      [0.0, 1.0, 0.0, 0.0, 0.2, math.log(0.5), 0.0]])
C_CAT, C_CONT = torch.tensor([0, 2]), torch.tensor([[0.3, -0.1], [0.9, -0.6]])


def test_categorical_cross_entropy_by_hand():
    t = information_terms(Q_OUT[:, :3], C_CAT, None, 3, 0, False)
    ce0 = -2.0 + math.log(math.exp(2) + math.exp(0) + math.exp(-1))
    ce1 = -0.0 + math.log(1 + math.e + 1)
    assert t["cat_ce"].item() == pytest.approx((ce0 + ce1) / 2, rel=1e-6)
    assert t["cont_nll"].item() == 0.0


def test_gaussian_nll_by_hand_fixed_and_learned_variance():
    fixed = information_terms(Q_OUT[:, :5], C_CAT, C_CONT, 3, 2, False)
    nll = lambda c, m, v: 0.5 * (LOG_2PI + math.log(v) + (c - m) ** 2 / v)  # noqa: E731
    want = (nll(0.3, 0.5, 1) + nll(-0.1, -0.5, 1) + nll(0.9, 0.0, 1) + nll(-0.6, 0.2, 1)) / 2
    assert fixed["cont_nll"].item() == pytest.approx(want, rel=1e-6)
    learned = information_terms(Q_OUT, C_CAT, C_CONT, 3, 2, True)
    want = (nll(0.3, 0.5, 1.0) + nll(-0.1, -0.5, 4.0) + nll(0.9, 0.0, 0.5)
            + nll(-0.6, 0.2, 1.0)) / 2
    assert learned["cont_nll"].item() == pytest.approx(want, rel=1e-6)


def test_information_loss_weights_each_code_type_and_bounds_the_mi():
    model = make(lambda_cat=1.0, lambda_cont=0.1)
    codes = {"c_cat": torch.nn.functional.one_hot(C_CAT, 3).float(), "c_cont": C_CONT}
    loss, t = model.information_loss(Q_OUT[:, :5], codes)
    assert loss.item() == pytest.approx(t["cat_ce"].item() + 0.1 * t["cont_nll"].item())
    entropy = math.log(3) + 2 * math.log(2)  # H(c): uniform category, two U(-1, 1) codes
    assert t["mi"].item() == pytest.approx(entropy - t["cat_ce"].item() - t["cont_nll"].item())


def _grads(module: torch.nn.Module) -> float:
    return sum(float(p.grad.abs().sum()) for p in module.parameters() if p.grad is not None)


def test_information_gradient_reaches_g_q_and_the_shared_body_not_the_real_fake_head():
    model = make().train()
    codes = model.prior_codes(6)
    _, q = model.judge(model._decode(codes))
    model.information_loss(q, codes)[0].backward()
    assert _grads(model.generator) > 0 and _grads(model.q_head) > 0
    assert _grads(model.discriminator.body) > 0  # Q shares D's body (Chen et al.)
    assert _grads(model.discriminator.head) == 0


def test_each_step_moves_only_its_player():
    model = make().train()
    opts = {k: torch.optim.Adam(v, lr=1e-2) for k, v in model.optimizer_groups().items()}
    x = torch.rand(6, T, D, generator=torch.Generator().manual_seed(0))
    nets = {"G": model.generator, "D": model.discriminator, "Q": model.q_head}
    for step, moved in ((0, {"D", "Q"}), (1, {"G"})):  # d_steps = g_steps = 1: D, then G
        before = {k: [p.clone() for p in m.parameters()] for k, m in nets.items()}
        model.training_step({"x": x}, opts, lambda loss: loss.backward(), step)
        changed = {k for k, m in nets.items() if any(
            not torch.equal(a, b) for a, b in zip(before[k], m.parameters(), strict=True))}
        assert changed == moved


def test_codes_out_and_in():
    model = make()
    x = torch.rand(4, T, D, generator=torch.Generator().manual_seed(0))
    codes = model.encode(x)
    assert codes["c_cat"].shape == (4, 3) and codes["c_cont"].shape == (4, 2)
    assert torch.allclose(codes["c_cat"].sum(1), torch.ones(4))
    g = lambda: torch.Generator().manual_seed(1)  # noqa: E731
    got = model.generate(4, values={"c_cat": 2}, generator=g())
    want = model.prior_codes(4, g())
    want["c_cat"] = torch.nn.functional.one_hot(torch.full((4,), 2), 3).float()
    assert torch.allclose(got, model._decode(want), atol=1e-6)
    # a row over the categories is read as its most likely category
    row = model.generate(4, values={"c_cat": [[0.1, 0.2, 0.7]]}, generator=g())
    assert torch.allclose(row, got, atol=1e-6)
    kept = model.generate(4, reference=x, keep=["c_cont"], generator=g())
    want = model.prior_codes(4, g())
    want["c_cont"] = codes["c_cont"]
    assert torch.allclose(kept, model._decode(want), atol=1e-6)
    with pytest.raises(FactorseqError, match="0..2"):
        model.generate(2, values={"c_cat": 3})
    with pytest.raises(ShapeError, match="c_cont"):
        model.generate(2, values={"c_cont": [[0.1, 0.2, 0.3]]})


def test_config_checks_and_codes_of_one_type():
    for bad in ({"conditional": True}, {"n_categories": 1}, {"n_categories": 0,
                                                             "n_continuous": 0},
                {"q_variance": "x"}, {"lambda_cont": -1.0}):
        with pytest.raises(FactorseqError):
            make(**bad)
    only = make(n_categories=0, n_continuous=1)
    assert [s.name for s in only.code_specs()] == ["c_cont"]
    assert only.generate(3, values={"c_cont": 0.5}).shape == (3, T, D)
    assert only.sample(2).shape == (2, T, D)


def test_window_noise_is_one_draw_per_window_fed_at_every_step():
    model = make(window_noise=4)
    assert model.generator.body.input_size == 3 + 3 + 2 + 4  # per-step noise, K, C, W
    codes = model.prior_codes(5, torch.Generator().manual_seed(0))
    assert codes["window"].shape == (5, 4)
    out = model._decode(codes)
    other = dict(codes, window=codes["window"] + 1.0)  # only the window noise changes
    assert not torch.allclose(model._decode(other), out)
    assert make().prior_codes(2)["window"].shape == (2, 0)  # default: none
    with pytest.raises(FactorseqError, match="window_noise"):
        make(window_noise=-1)


# --- end to end on a small table -----------------------------------------------------------

def test_cli_train_sample_encode_generate(tmp_path, capsys):
    rng = np.random.default_rng(0)
    t = np.arange(200)
    pd.DataFrame({"a": np.sin(t / 4) + 0.1 * rng.standard_normal(200),
                  "b": np.cos(t / 7)}).to_csv(tmp_path / "m.csv", index=False)
    run = tmp_path / "run"
    assert cli("train", "infogan", "--data", tmp_path / "m.csv", "--window", T, "--out", run,
               "--epochs", 1, "--batch-size", 32, "--set", "train.tensorboard=false",
               "--set", "hidden=8", "--set", "n_categories=4", "--set", "n_continuous=1") == 0
    assert cli("sample", run, "--n", 3, "--out", tmp_path / "s.npz") == 0
    assert read_windows(tmp_path / "s.npz").shape == (3, T, 2)
    assert cli("encode", run, "--out", tmp_path / "c.csv") == 0
    df = pd.read_csv(tmp_path / "c.csv")
    assert {"c_cat_0", "c_cat_3", "c_cont_0"} <= set(df) and len(df) == 200 - T + 1
    assert np.allclose(df[[f"c_cat_{i}" for i in range(4)]].sum(axis=1), 1.0, atol=1e-5)
    assert cli("generate", run, "--value", "c_cat=2", "--n", 5,
               "--out", tmp_path / "twos.npz") == 0
    assert read_windows(tmp_path / "twos.npz").shape == (5, T, 2)
    assert cli("generate", run, "--reference", tmp_path / "m.csv", "--reference-index", 7,
               "--keep", "c_cont", "--n", 2, "--out", tmp_path / "k.npz") == 0
    assert "0..3" in user_error(capsys, "generate", run, "--value", "c_cat=4",
                                "--out", tmp_path / "bad.npz")
