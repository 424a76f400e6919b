"""Maths of ``flow_ts`` (rectified flow on the Diffusion-TS backbone) against hand computation:
the probability path, the loss's target, one Euler / Heun step on a hand-set velocity; plus a
tiny CLI run. Windows are (batch, time, features); time runs from noise (t = 0) to data (1)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from clihelp import cli, user_error
from factorseq.config import build
from factorseq.errors import FactorseqError
from factorseq.models.flow_ts import TIME_SCALE, FlowTS, FlowTSConfig
from factorseq.nn import flow

TINY = dict(d_model=8, enc_layers=1, dec_layers=1, heads=2)


def tiny(**kw) -> FlowTS:
    torch.manual_seed(0)
    return FlowTS(FlowTSConfig(**{"seq_len": 4, "n_features": 2, **TINY, **kw}))


def test_probability_path_by_hand():
    x0 = torch.tensor([[[1.0], [-2.0]], [[0.5], [0.0]]])  # noise
    x1 = torch.tensor([[[3.0], [2.0]], [[-0.5], [1.0]]])  # data
    t = torch.tensor([0.25, 1.0])
    got = flow.linear_path(x0, x1, t)
    # window 0 at t = .25: .75 * 1 + .25 * 3 = 1.5 and .75 * -2 + .25 * 2 = -1; window 1 at
    # t = 1 is the data
    torch.testing.assert_close(got, torch.tensor([[[1.5], [-1.0]], [[-0.5], [1.0]]]))
    torch.testing.assert_close(flow.linear_path(x0, x1, torch.zeros(2)), x0)
    # the target is the path's derivative: x1 - x0 = (2, 4) and (-1, 1)
    torch.testing.assert_close(flow.velocity_target(x0, x1),
                               torch.tensor([[[2.0], [4.0]], [[-1.0], [1.0]]]))


def test_data_and_velocity_parametrisations_by_hand():
    x_t, t = torch.tensor([[[0.5]]]), torch.tensor([0.75])
    # x1 = x_t + (1 - t) v = .5 + .25 * 2 = 1
    assert float(flow.data_from_velocity(x_t, t, torch.tensor([[[2.0]]]))) == 1.0
    # v = (x1 - x_t) / (1 - t) = (1 - .5) / .25 = 2; at t = .99 the gap is floored at .05
    assert float(flow.velocity_from_data(x_t, t, torch.tensor([[[1.0]]]), 0.05)) == 2.0
    got = flow.velocity_from_data(x_t, torch.tensor([0.99]), torch.tensor([[[1.0]]]), 0.05)
    assert float(got) == pytest.approx(10.0)


def test_loss_regresses_the_velocity_x1_minus_x0():
    """With a velocity net held at 0 the l2 loss is mean((x1 - x0)^2) for the noise x0 the
    generator draws after the times; the net sees x_t on the straight line at those times."""
    model = tiny(seq_len=2, n_features=1)
    seen = {}

    def zero_velocity(net, x_t, t):
        seen.update(x_t=x_t, t=t)
        return torch.zeros_like(x_t)

    model.velocity = zero_velocity
    x = torch.tensor([[[0.75], [0.25]], [[1.0], [0.0]]])  # [-1, 1]: (.5, -.5), (1, -1)
    out = model.loss({"x": x}, generator=torch.Generator().manual_seed(5))
    g = torch.Generator().manual_seed(5)
    t, x0 = torch.rand(2, generator=g), torch.randn(2, 2, 1, generator=g)
    x1 = torch.tensor([[[0.5], [-0.5]], [[1.0], [-1.0]]])
    want = ((x1 - x0) ** 2).mean()
    assert float(out["loss"]) == pytest.approx(float(want), rel=1e-6)
    torch.testing.assert_close(seen["t"], t)
    torch.testing.assert_close(seen["x_t"], (1 - t.view(-1, 1, 1)) * x0 + t.view(-1, 1, 1) * x1)
    # the l1 loss of the same draw: mean |x1 - x0|
    model.config.loss = "l1"
    out = model.loss({"x": x}, generator=torch.Generator().manual_seed(5))
    assert float(out["loss"]) == pytest.approx(float((x1 - x0).abs().mean()), rel=1e-6)


def test_data_prediction_turns_into_a_velocity():
    """prediction=data: the net's output is x1_hat and v = (x1_hat - x_t) / (1 - t)."""
    model = tiny(prediction="data", seq_len=2, n_features=1)
    model.denoiser.forward = lambda x_t, steps: torch.full_like(x_t, 0.5)
    x_t, t = torch.tensor([[[0.0], [1.0]]]), torch.tensor([0.5])
    torch.testing.assert_close(model.velocity(model.denoiser, x_t, t),
                               torch.tensor([[[1.0], [-1.0]]]))


def test_the_net_sees_time_on_the_step_scale():
    model = tiny()
    seen = {}

    def fake(x_t, steps):
        seen["steps"] = steps
        return x_t

    model.denoiser.forward = fake
    model.velocity(model.denoiser, torch.zeros(2, 4, 2), torch.tensor([0.0, 0.5]))
    torch.testing.assert_close(seen["steps"], torch.tensor([0.0, 0.5 * TIME_SCALE]))


def hand_velocity(x, t):  # dx/dt = -x + t, t (batch,)
    return -x + t.view(-1, 1, 1)


def test_one_euler_and_one_heun_step_by_hand():
    x = torch.tensor([[[1.0]]])
    # Euler from t = 0, h = .5: 1 + .5 * (-1 + 0) = .5
    assert float(flow.ode_step(hand_velocity, x, 0.0, 0.5, "euler")) == 0.5
    # Heun: v0 = -1, predictor .5, v1 = -.5 + .5 = 0, so 1 + .25 * (-1 + 0) = .75
    assert float(flow.ode_step(hand_velocity, x, 0.0, 0.5, "heun")) == 0.75
    # two Euler steps: .5, then at t = .5: .5 + .5 * (-.5 + .5) = .5
    assert float(flow.integrate(hand_velocity, x, 2)) == 0.5
    # backwards from t = 1 with h = -1: 1 - (-1 + 1) = 1
    assert float(flow.integrate(hand_velocity, x, 1, start=1.0, end=0.0)) == 1.0
    with pytest.raises(FactorseqError, match="ODE method"):
        flow.ode_step(hand_velocity, x, 0.0, 0.5, "rk4")


def test_sampling_integrates_the_field_from_noise():
    """With a constant hand-set velocity c the ODE from x0 reaches x0 + c in any number of
    steps; the sample is (clip(x0 + c) + 1) / 2, with sampling_steps velocity calls."""
    model = tiny(sampling_steps=7)
    calls = []

    def const(net, x, t):
        calls.append(float(t[0]))
        return torch.full_like(x, 0.25)

    model.velocity = const
    got = model.sample(3, generator=torch.Generator().manual_seed(1))
    x0 = torch.randn(3, 4, 2, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(got, ((x0 + 0.25).clamp(-1, 1) + 1) / 2)
    assert calls == pytest.approx([k / 7 for k in range(7)])
    assert FlowTSConfig().sampling_steps <= 20  # few velocity calls by default
    # encode runs it backwards: x -> 2x - 1 - c, and decode undoes it
    x = torch.rand(2, 4, 2)
    z = model.encode(x)["x_0"]
    torch.testing.assert_close(z, 2 * x - 1 - 0.25)
    torch.testing.assert_close(model.decode(z), x)


def test_decomposition_of_a_velocity_net_holds_the_input():
    model = tiny(decompose_t=0.5).eval()
    x = torch.rand(3, 4, 2)
    d = model.decompose(x)
    assert set(d.parts) == {"skip", "level", "trend", "seasonal", "residual"}
    torch.testing.assert_close(d.parts["skip"], x - 0.5)  # x_t = 2x - 1, halved
    # the net's parts are those of (1 - t) v: the output is x_t + (1 - t) v, [0, 1]-scaled
    v = model.velocity(model.net, 2 * x - 1, torch.full((3,), 0.5))
    torch.testing.assert_close(d.output, (2 * x - 1 + 0.5 * v + 1) / 2, atol=1e-5, rtol=0)
    data = tiny(prediction="data").eval().decompose(x)
    assert "skip" not in data.parts
    torch.testing.assert_close(sum(data.parts.values()), data.output)


def test_compile_setting_compiles_the_trained_net_only():
    plain, compiled = tiny(), tiny(compile=True)
    assert compiled.denoiser._compiled_call_impl is not None  # compiled lazily, at first call
    assert plain.denoiser._compiled_call_impl is None and compiled.ema._compiled_call_impl is None
    assert plain.state_dict().keys() == compiled.state_dict().keys()  # runs load either way


@pytest.mark.parametrize("bad, match", [
    ({"sampling_steps": 0}, "sampling_steps"), ({"prediction": "noise"}, "prediction"),
    ({"sampler": "rk4"}, "sampler"), ({"decompose_t": 1.0}, "decompose_t"),
    ({"min_gap": 0.0}, "min_gap"), ({"d_model": 6, "heads": 4}, "multiple of heads")])
def test_config_is_checked(bad, match):
    with pytest.raises(FactorseqError, match=match):
        build(FlowTSConfig, bad)


def test_time_sampling_stays_inside_the_unit_interval():
    g = torch.Generator().manual_seed(0)
    for kind in ("uniform", "logit_normal"):
        t = flow.sample_times(1000, kind, g)
        assert t.shape == (1000,) and 0 < float(t.min()) and float(t.max()) < 1
    # logit-normal is symmetric about .5 and concentrated mid-path
    assert abs(float(t.mean()) - 0.5) < 0.02 and float(((t > .25) & (t < .75)).float().mean()) > 0.6


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("fts") / "run"
    assert cli("train", "flow_ts", "--data", "sines", "--out", out, "--epochs", 1,
               "--batch-size", 32, "--set", "data.options={n: 96}",
               "--set", "d_model=8", "--set", "enc_layers=1", "--set", "dec_layers=1",
               "--set", "heads=2", "--set", "sampling_steps=3", "--set", "encode_steps=3",
               "--set", "train.warmup_steps=2", "--set", "train.progress=false",
               "--set", "ema_every=1") == 0
    return out


def test_cli_train_sample_evaluate(trained, tmp_path, capsys):
    cfg = json.loads((trained / "config.json").read_text())
    assert cfg["model"] == "flow_ts" and cfg["status"] == "trained"
    from factorseq.checkpoint import load
    model = load(trained).model  # 86 training windows in batches of 32: 3 EMA updates
    assert int(model.ema_updates) == 3 and model.net is model.ema
    assert cli("sample", trained, "--out", tmp_path / "s.npz", "--n", 7) == 0
    with np.load(tmp_path / "s.npz") as z:
        assert next(iter(z.values())).shape == (7, 24, 5)
    assert cli("evaluate", trained, "--out", tmp_path / "m.json", "--repeats", 1,
               "--set", "disc_iterations=2", "--set", "pred_iterations=2") == 0
    metrics = json.loads((tmp_path / "m.json").read_text())
    # the generative protocol on the run's own windows, as many synthetic as real, one repeat
    assert metrics["evaluator"] == "generative" and metrics["n_synthetic"] == metrics["n_real"]
    assert len(metrics["discriminative"]["values"]) == 1 and metrics["repeats"] == 1
    assert "sampling_steps must be" in user_error(
        capsys, "train", "flow_ts", "--data", "sines", "--out", tmp_path / "bad",
        "--set", "sampling_steps=0")


def test_report_draws_the_decomposition(trained):
    from factorseq.checkpoint import load
    figs = load(trained).model.report_figures(torch.rand(4, 24, 5))
    assert len(figs) == 1 and figs[0][0].startswith("FM-TS decomposition")
