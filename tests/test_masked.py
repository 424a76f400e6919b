"""Training that leaves out what was never observed (``x_mask``, 1 = observed): the masked
losses against hand computation, an all-ones mask gives the unmasked loss, masked entries get
no gradient, models whose loss cannot honour the mask are refused, and the CLI end to end
(train with --impute mask, sample complete windows, evaluate against complete or imputed real
windows, report). Tensors are (batch, time, features)."""
from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch

from clihelp import cli, user_error
from factorseq import registry
from factorseq.config import build
from factorseq.data.container import SequenceData
from factorseq.errors import FactorseqError, ShapeError
from factorseq.metrics.gaps import fill_within_windows, real_windows
from factorseq.models.ae import sse
from factorseq.models.dsvae import dsvae_terms
from factorseq.models.fhvae import fhvae_terms
from factorseq.models.vae_base import timevae_reconstruction_loss
from factorseq.nn.masking import batch_mask, interpolate_missing, masked_mean, masked_sum
from factorseq.train.data import check_missing_support

T, D, B = 12, 3, 4
X = torch.tensor([[[1.0, 2.0], [3.0, 4.0]]])  # (1, 2, 2)
M = torch.tensor([[[1.0, 0.0], [1.0, 1.0]]])  # x[0, 0, 1] never observed

# tiny configs of the models whose loss honours the mask, and the module whose output holds
# the per-entry predictions (its gradient must vanish at masked entries)
SMALL = {
    "ae": ({"hidden": 8}, "decoder"), "vae": ({"hidden": 8}, "decoder"),
    "aae": ({"hidden": 8}, "decoder"),
    "vae_dense": ({"hidden_layer_sizes": [8, 16]}, "decoder"),
    "vae_conv": ({"hidden_layer_sizes": [8, 16]}, "decoder"),
    "timevae": ({"hidden_layer_sizes": [8, 16]}, "decoder"),
    "fhvae": ({"hidden": 8, "layers": 1, "z1_dim": 2, "z2_dim": 2, "sequences_per_round": 4},
              "dec_gauss"),
    "ssvae": ({"hidden": 8, "n_classes": 3}, "decoder"),
    "dsvae": ({"hidden": 8, "f_dim": 2, "z_dim": 2}, "decoder"),
    "diffusion_ts": ({"d_model": 8, "enc_layers": 1, "dec_layers": 1, "heads": 2,
                      "timesteps": 20}, "denoiser"),
    "flow_ts": ({"d_model": 8, "enc_layers": 1, "dec_layers": 1, "heads": 2}, "denoiser"),
}
MASKED = sorted(n for n in registry.available() if not n.startswith("_")
                and getattr(registry.get_model_class(n), "handles_missing", False))


def make(name: str, **overrides):
    cls = registry.get_model_class(name)
    torch.manual_seed(0)
    cfg = {"seq_len": T, "n_features": D, **SMALL.get(name, ({}, None))[0], **overrides}
    return cls(build(cls.Config, cfg))


def gappy_batch(labelled: bool = True) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    mask = (torch.rand(B, T, D, generator=g) > 0.3).float()
    mask[0, :, 1] = 0.0  # a channel never observed in a window
    mask[1, 3] = 0.0  # a step with no feature observed
    out = {"x": torch.rand(B, T, D, generator=g), "x_mask": mask,
           "seq_id": torch.arange(B) % 2}
    if labelled:
        out.update(y=torch.arange(B) % 3, y_mask=torch.arange(B) % 2 == 0)
    return out


def loss_of(model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    torch.manual_seed(1)  # the same reparameterisation noise for every call
    return model.loss(batch)["loss"]


# --------------------------------------------------------------------- the shared helper

def test_sse_with_a_mask_by_hand():
    zero = torch.zeros_like(X)
    assert float(sse(X, zero)) == 1 + 4 + 9 + 16
    assert float(sse(X, zero, M)) == 1 + 9 + 16  # the 2 was never observed


def test_timevae_reconstruction_loss_with_a_mask_by_hand():
    zero = torch.zeros_like(X)
    # unmasked: 30 + step means (1.5^2 + 3.5^2) = 30 + 14.5
    assert float(timevae_reconstruction_loss(X, zero)) == pytest.approx(44.5)
    # masked: 26 + step 0 has only feature 0 observed (mean 1), step 1 both (mean 3.5)
    assert float(timevae_reconstruction_loss(X, zero, M)) == pytest.approx(26 + 1 + 12.25)
    # a step with no observed feature adds nothing, not (0 - 0)/0
    m = torch.tensor([[[0.0, 0.0], [1.0, 1.0]]])
    assert float(timevae_reconstruction_loss(X, zero, m)) == pytest.approx(25 + 12.25)


def test_masked_helpers_and_a_bad_mask_shape():
    v = torch.tensor([[1.0, 2.0, float("inf")]])
    m = torch.tensor([[1.0, 1.0, 0.0]])
    assert float(masked_sum(v, m, 1)) == 3.0  # a masked inf cannot leak in as 0 * inf
    assert float(masked_mean(v, m, 1)) == 1.5
    assert float(masked_mean(v, torch.zeros_like(m), 1)) == 0.0
    assert batch_mask({"x": X}, X) is None
    with pytest.raises(ShapeError, match=r"x_mask has shape \(1, 2\)"):
        batch_mask({"x_mask": torch.ones(1, 2)}, X)


@pytest.mark.parametrize("fn", [sse, timevae_reconstruction_loss])
def test_masked_entries_get_no_gradient_in_the_loss_functions(fn):
    x = (X + 0.5).clone().requires_grad_(True)
    x_hat = torch.zeros_like(X, requires_grad=True)
    fn(x, x_hat, M).sum().backward()
    for g in (x.grad, x_hat.grad):
        assert g[0, 0, 1] == 0.0 and bool((g[M == 1] != 0).all())


def test_fhvae_log_likelihood_sums_over_observed_entries():
    x, mean, logvar = X, torch.zeros_like(X), torch.zeros_like(X)
    z = torch.zeros(1, 2)
    args = (z, z, z, z, z, torch.ones(1), z, torch.zeros(1, dtype=torch.long))
    got = fhvae_terms(x, mean, logvar, *args, x_mask=M)["log_px_z"]
    want = sum(-0.5 * (math.log(2 * math.pi) + v * v) for v in (1.0, 3.0, 4.0))
    assert float(got) == pytest.approx(want)


def test_dsvae_log_likelihood_sums_over_observed_entries():
    mean, logvar = torch.zeros_like(X), torch.tensor([0.0, math.log(2.0)])
    f, z = torch.zeros(1, 2), torch.zeros(1, 2, 2)
    got = dsvae_terms(X, mean, logvar, f, f, z, z, z, z, x_mask=M)["log_px"]
    # observed: x=1 and x=3 in feature 0 (s^2 = 1), x=4 in feature 1 (s^2 = 2)
    want = (-0.5 * (math.log(2 * math.pi) + 1.0) - 0.5 * (math.log(2 * math.pi) + 9.0)
            - 0.5 * (math.log(2 * math.pi) + math.log(2.0) + 16.0 / 2.0))
    assert float(got) == pytest.approx(want)
    moved = torch.where(M == 1, X, torch.full_like(X, 1e6))  # a placeholder changes nothing
    assert float(dsvae_terms(moved, mean, logvar, f, f, z, z, z, z, x_mask=M)["log_px"]) \
        == pytest.approx(want)
    unmasked = dsvae_terms(X, mean, logvar, f, f, z, z, z, z)["log_px"]
    assert float(unmasked) == pytest.approx(want - 0.5 * (math.log(2 * math.pi)
                                                           + math.log(2.0) + 4.0 / 2.0))


def test_dsvae_likelihood_variance_from_observed_entries_only():
    model = make("dsvae", seq_len=2, n_features=2)
    zero = torch.zeros_like(X)
    # the mean squared residual per feature: feature 0 (1 + 9) / 2, feature 1 16 (the 2 left
    # out), against (4 + 16) / 2 unmasked
    got = model.likelihood_logvar(X, zero, M)
    torch.testing.assert_close(got, torch.tensor([math.log(5.0), math.log(16.0)]))
    torch.testing.assert_close(model.likelihood_logvar(X, zero),
                               torch.tensor([math.log(5.0), math.log(10.0)]))
    moved = torch.where(M == 1, X, torch.full_like(X, 1e6))
    torch.testing.assert_close(model.likelihood_logvar(moved, zero, M), got)
    # a feature never observed in the batch: the floor (and it adds nothing to log_px)
    none = torch.tensor([[[1.0, 0.0], [1.0, 0.0]]])
    floor = model.likelihood_logvar(X, zero, none)
    assert float(floor[1]) == model.config.min_logvar


@pytest.mark.parametrize("likelihood", ["gaussian", "bernoulli"])
def test_ssvae_log_px_by_hand(likelihood):
    model = make("ssvae", seq_len=2, n_features=2, likelihood=likelihood)
    x = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])
    params = torch.tensor([[[0.5, -1.0], [2.0, 0.0]]])
    if likelihood == "gaussian":  # obs_logvar starts at 0: -0.5 (log 2 pi + (x - mu)^2)
        per = -0.5 * (math.log(2 * math.pi) + (x - params) ** 2)
    else:  # log sigmoid(l) for x = 1, log sigmoid(-l) for x = 0
        per = torch.where(x == 1, torch.nn.functional.logsigmoid(params),
                          torch.nn.functional.logsigmoid(-params))
    got = model.log_px(x, params, M).detach()
    assert float(got) == pytest.approx(float(per[M == 1].sum()), rel=1e-6)
    assert float(model.log_px(x, params).detach()) == pytest.approx(float(per.sum()), rel=1e-6)


def test_interpolate_missing_by_hand():
    # one window, three features over 5 steps; 9 marks a placeholder
    x = torch.tensor([[[9.0, 9.0, 9.0], [1.0, 2.0, 9.0], [9.0, 9.0, 9.0], [9.0, 9.0, 9.0],
                       [4.0, 9.0, 9.0]]])
    m = (x != 9.0).float()
    got = interpolate_missing(x, m)
    # feature 0: 1 at t=1 and 4 at t=4 -> 2, 3 between; the 1 repeated before the first
    assert got[0, :, 0].tolist() == [1.0, 1.0, 2.0, 3.0, 4.0]
    # feature 1: one observation, repeated both ways
    assert got[0, :, 1].tolist() == [2.0] * 5
    # feature 2: nothing observed in the window (nor the batch) -> 0
    assert got[0, :, 2].tolist() == [0.0] * 5
    # a second window observes feature 2 (values 6 and 8): the batch's mean 7 fills window 0
    x2 = torch.cat([x, torch.full_like(x, 9.0)])
    x2[1, 0, 2], x2[1, 3, 2] = 6.0, 8.0
    got2 = interpolate_missing(x2, (x2 != 9.0).float())
    assert got2[0, :, 2].tolist() == [7.0] * 5
    assert got2[1, :, 2].tolist() == pytest.approx([6.0, 6.0 + 2 / 3, 6.0 + 4 / 3, 8.0, 8.0])
    assert torch.equal(got2[0], got[0].where(torch.arange(3) != 2, 7.0))
    # observed entries come back unchanged, and a full mask is the identity
    assert torch.equal(got[m == 1], x[m == 1])
    assert torch.equal(interpolate_missing(x, torch.ones_like(x)), x)


@pytest.mark.parametrize("fill", ["linear", "zero"])
def test_diffusion_ts_input_ignores_the_placeholders(fill):
    # the denoiser's input at a hole is the fill (interpolated or 0), never the placeholder,
    # so what the data layer put there changes nothing
    model = make("diffusion_ts", missing_fill=fill)
    batch = gappy_batch(labelled=False)
    moved = dict(batch, x=torch.where(batch["x_mask"] == 1, batch["x"], torch.full_like(
        batch["x"], 1e3)))
    assert float(loss_of(model, moved).detach()) == float(loss_of(model, batch).detach())


def test_diffusion_ts_denoiser_sees_interpolated_holes():
    # at the smallest step the noised input is ~ the filled window: the holes of a straight
    # line hold the line (linear) or the mid-range 0 (zero), not the placeholder
    seen = {}
    for fill in ("linear", "zero"):
        model = make("diffusion_ts", missing_fill=fill, seq_len=4, n_features=1)
        model.diffusion.q_sample = lambda x0, t, noise: x0  # look at x0 itself
        model.predict_x0 = lambda net, x_t, t, fill=fill: seen.setdefault(fill, x_t)
        x = torch.tensor([[[0.25], [0.3], [0.3], [0.75]]])  # a line in [-1, 1]: -.5 .. .5
        mask = torch.tensor([[[1.0], [0.0], [0.0], [1.0]]])
        model.loss({"x": x, "x_mask": mask})  # the "prediction" is the input: a finite loss
    torch.testing.assert_close(seen["linear"][0, :, 0], torch.tensor([-0.5, -1 / 6, 1 / 6,
                                                                        0.5]))
    torch.testing.assert_close(seen["zero"][0, :, 0], torch.tensor([-0.5, 0.0, 0.0, 0.5]))


# ------------------------------------------------------------------------- every model

def test_the_models_that_honour_the_mask():
    # adversarial models stay out: their discriminators would learn the placeholders
    assert {"ae", "vae", "aae", "vae_dense", "vae_conv", "timevae", "fhvae", "ssvae",
            "diffusion_ts", "dsvae"} <= set(MASKED)
    assert not {"gan", "timegan", "vaegan", "dann"} & set(MASKED)


@pytest.mark.parametrize("name", MASKED)
def test_an_all_ones_mask_gives_the_unmasked_loss(name):
    model = make(name).train()
    batch = gappy_batch()
    plain = {k: v for k, v in batch.items() if k != "x_mask"}
    ones = {**plain, "x_mask": torch.ones_like(batch["x"])}
    torch.testing.assert_close(loss_of(model, ones), loss_of(model, plain), rtol=1e-6, atol=0)
    # and the mask is read: leaving entries out changes the loss
    assert not torch.allclose(loss_of(model, batch), loss_of(model, plain))


@pytest.mark.parametrize("name", sorted(SMALL))
def test_masked_entries_get_no_gradient(name):
    """The model's prediction of a never-observed entry receives no gradient from the loss;
    observed ones do. Unlabelled batch (ssvae: one decoder call, rows (S, B, K))."""
    model = make(name).train()
    batch = gappy_batch(labelled=False)
    outs = []
    module = getattr(model, SMALL[name][1])

    def keep(mod, inputs, out):  # returns None: the output is left as it is
        out.retain_grad()
        outs.append(out)

    hook = module.register_forward_hook(keep)
    try:
        loss_of(model, batch).backward()
    finally:
        hook.remove()
    grad = outs[0].grad
    if name == "fhvae":  # (B, T, 2D): the mean and the log-variance of each entry
        grads = list(grad.chunk(2, -1))
    elif name == "ssvae":  # (S * B * K, T, D), rows in (sample, window, class) order
        grads = [grad.reshape(-1, B, model.K, T, D).transpose(1, 2)]
    else:
        grads = [grad]
    mask = batch["x_mask"]
    for g in grads:
        assert bool((g * (1 - mask) == 0).all())  # broadcast over leading dims
        assert float((g * mask).abs().sum()) > 0


def test_ssvae_labelled_rows_use_the_mask_too():
    model = make("ssvae").train()
    batch = gappy_batch()
    batch["y_mask"] = torch.ones(B, dtype=torch.bool)  # supervised term only
    plain = {k: v for k, v in batch.items() if k != "x_mask"}
    assert not torch.allclose(loss_of(model, batch), loss_of(model, plain))


@pytest.mark.parametrize("name", sorted(n for n in registry.available()
                                        if not n.startswith("_") and n not in MASKED))
def test_models_that_cannot_honour_the_mask_are_refused(name):
    x = np.zeros((4, T, D), np.float32)
    mask = np.ones_like(x, dtype=bool)
    mask[0, 0, 0] = False
    with pytest.raises(FactorseqError, match="impute first with --impute linear, ffill or "
                                             "mean"):
        check_missing_support(registry.get_model_class(name), SequenceData(x, x_mask=mask))


# ---------------------------------------------------------------- real windows with gaps

def test_real_windows_complete_or_imputed_never_placeholders():
    x = np.arange(3 * 4 * 1, dtype=np.float32).reshape(3, 4, 1)
    mask = np.ones_like(x, dtype=bool)
    mask[1, 1:3, 0] = False  # filled linearly: 4, [5, 6], 7 as it was
    mask[2, :, 0] = False  # nothing observed: keeps the placeholder
    data = SequenceData(np.where(mask, x, 99.0), x_mask=mask)
    got, info = real_windows(data, "complete", min_complete=1)
    np.testing.assert_array_equal(got, x[:1])
    assert info == {"real_windows": "complete",
                    "real_counts": {"windows": 3, "complete": 1, "scored": 1}}
    got, info = real_windows(data, "complete", min_complete=2)  # too few: imputed, said so
    np.testing.assert_array_equal(got[:2], x[:2])
    np.testing.assert_array_equal(got[2], 99.0)
    assert info["real_windows"] == "imputed" and "only 1 of 3" in info["real_note"]
    assert real_windows(data, "imputed")[1]["real_counts"]["scored"] == 3
    np.testing.assert_array_equal(fill_within_windows(data.x, mask)[1, :, 0], [4, 5, 6, 7])
    filled = SequenceData(x, missing_rate={"f0": 0.2}, impute="linear")
    assert real_windows(filled)[1]["real_imputation"] == "linear"


# ------------------------------------------------------------------------- end to end

def _gappy_npz(tmp_path) -> str:
    rng = np.random.default_rng(0)
    t = np.arange(8)
    x = np.stack([np.sin(t[None] * rng.uniform(0.2, 0.6, (48, 1)) + rng.uniform(0, 3, (48, 1)))
                  for _ in range(2)], -1)
    x[::2, 2:5, 1] = np.nan  # half the windows have a gap in channel 1
    x[5, :, 0] = np.nan  # and one never sees channel 0
    path = tmp_path / "gappy.npz"
    np.savez(path, data=x)
    return str(path)


def test_cli_train_sample_evaluate_report_with_impute_mask(tmp_path, capsys):
    data, run = _gappy_npz(tmp_path), tmp_path / "run"
    assert cli("train", "timevae", "--data", data, "--impute", "mask", "--epochs", 1,
               "--batch-size", 8, "--out", run, "--set", "hidden_layer_sizes=[8,16]") == 0
    schema = json.loads((run / "config.json").read_text())["data_schema"]
    assert schema["impute"] == "mask"
    assert schema["missing_rate"]["f1"] == pytest.approx(24 * 3 / (48 * 8))
    assert cli("sample", run, "--n", 6, "--out", tmp_path / "s.npz") == 0
    with np.load(tmp_path / "s.npz") as z:
        s = z["data"]
    assert s.shape == (6, 8, 2) and np.isfinite(s).all()  # complete windows
    fast = ["--repeats", 1, "--set", "disc_iterations=2", "--set", "pred_iterations=2"]
    assert cli("evaluate", run, "--out", tmp_path / "m.json", *fast) == 0
    m = json.loads((tmp_path / "m.json").read_text())
    assert m["real_windows"] == "imputed" and "only 23 of 48" in m["real_note"]
    assert cli("evaluate", run, "--out", tmp_path / "c.json", *fast,
               "--set", "min_complete=20") == 0
    c = json.loads((tmp_path / "c.json").read_text())
    assert c["real_windows"] == "complete" and c["n_real"] == 23
    assert c["real_counts"] == {"windows": 48, "complete": 23, "scored": 23}
    msg = user_error(capsys, "evaluate", run, "--out", tmp_path / "x.json",
                     "--set", "real_windows=placeholders")
    assert "real_windows must be complete or imputed" in msg
    assert m["dcr"] is not None  # privacy: the run's split, gaps filled within windows
    from factorseq.checkpoint import load
    from factorseq.metrics.privacy import run_split
    train, val = run_split(load(run))
    gappy = load(run).load_data()
    mean_f1 = gappy.x[:, :, 1][~gappy.x_mask[:, :, 1]][0]  # channel 1's placeholder
    assert not np.isclose(np.concatenate([train, val])[:, :, 1], mean_f1).any()
    assert cli("report", run, "--out", tmp_path / "r.html", "--metrics", tmp_path / "c.json") == 0
    page = (tmp_path / "r.html").read_text()
    assert "Missing values" in page and "18.8%" in page  # f1: 72 of 384 values


def test_cli_dsvae_trains_on_gaps_and_samples_complete_windows(tmp_path):
    data, run = _gappy_npz(tmp_path), tmp_path / "run"
    assert cli("train", "dsvae", "--data", data, "--impute", "mask", "--epochs", 1,
               "--batch-size", 8, "--out", run, "--set", "hidden=8", "--set", "f_dim=2",
               "--set", "z_dim=2") == 0
    assert json.loads((run / "config.json").read_text())["data_schema"]["impute"] == "mask"
    log = pd.read_csv(run / "logs" / "metrics.csv")
    assert np.isfinite(log["val_log_px"].dropna()).all() and log["val_log_px"].notna().any()
    assert cli("sample", run, "--n", 4, "--out", tmp_path / "s.npz") == 0
    with np.load(tmp_path / "s.npz") as z:
        s = z["data"]
    assert s.shape == (4, 8, 2) and np.isfinite(s).all()


def test_cli_refuses_an_adversarial_model_on_gaps(tmp_path, capsys):
    msg = user_error(capsys, "train", "vaegan", "--data", _gappy_npz(tmp_path), "--impute",
                     "mask", "--out", tmp_path / "r")
    assert "vaegan cannot train on data with gaps" in msg and "impute first" in msg
    assert not (tmp_path / "r" / "config.json").exists()


def test_evaluate_with_data_reads_the_named_set_without_removal(tmp_path):
    """Values hidden on purpose (data.remove_rate) belong to the training data: --data names
    the real set to score against, read complete."""
    from factorseq.checkpoint import load

    path = tmp_path / "full.npz"
    np.savez(path, data=np.random.default_rng(0).random((40, 8, 2)))
    run = tmp_path / "run"
    assert cli("train", "vae_dense", "--data", path, "--impute", "mask", "--epochs", 1,
               "--batch-size", 8, "--out", run, "--set", "data.remove_rate=0.3",
               "--set", "hidden_layer_sizes=[8]") == 0
    r = load(run)
    assert r.load_data().x_mask is not None
    again = r.load_data(str(path))
    assert again.x_mask is None and again.missing_rate is None
