"""Disentangled Sequential Autoencoder (Li & Mandt, ICML 2018), ``dsvae``.

All tensors are ``(batch, time, features)``. Generative model of a window ``x_{1:T}``:
``f ~ N(0, I)`` (static: one code for the whole window), ``z_t | z_<t ~ N(mu_t, sigma_t^2)``
with ``(mu_t, log sigma_t^2) = head(LSTM(z_{t-1}, h_{t-1}))`` and ``z_0 = 0`` (the learned
dynamic prior), ``x_t ~ N(dec(z_t, f), diag(s^2))`` (each frame from its own z_t and f).

Inference: ``q(f | x_{1:T})`` from the final states of a bidirectional LSTM over the window;
``q(z_t | x_{1:T}, f)`` ("full", the paper's default): a bidirectional LSTM over ``[x_t; f]``
whose outputs feed a forward RNN, one Gaussian per step; ``q(z_t | x_t)`` ("factorized"): a
per-frame MLP. The loss is the negative ELBO per window, averaged over the batch:
``-sum_t E_q[log p(x_t|z_t,f)] + KL(q(f)||N(0,I)) + sum_t KL(q(z_t|.)||p(z_t|z_<t))``, the
last with the prior's parameters computed from the posterior sample ``z_<t`` (one-sample
estimate of the expectation over ``z_<t``).

Likelihood variance: one per feature, shared by all frames, by default the one that maximises
the batch's likelihood given the decoder's means, in closed form: each feature's mean squared
residual (Rybkin et al. 2021's optimal-sigma decoder, here per feature). It is a learned
variance at its optimum rather than a parameter crawling there by Adam steps: on fsdd-strings
(standard scaled) a variance parameter started at 1 stood at 0.28 after 18 epochs while the
residuals' mean square was ~0.11, so the reconstruction term stayed weaker against the KL
terms than the data warrant. Its gradient to the networks equals a learned variance's at the
optimum (the derivative in the variance is 0 there), so it is computed without gradient.
Validation batches use their own optimum too (one variance per feature fit on the batch's
frames, 80 on 2,560 for fsdd-strings in batches of 128: a slightly optimistic held-out
likelihood, alike at every epoch, so early stopping compares like with like).
``likelihood_std`` fixes s instead. It is not predicted per frame (as FHVAE's decoder does) so
that the decoder cannot explain its errors away as noise where it is unsure.

Frames: ``frame_net`` ``conv`` (sequences of images; ``frame_shape`` [C, H, W] from the data's
meta) puts a 2-D conv net in front of both encoders (each frame to ``hidden`` features, computed
once and read by both) and a transposed-conv net as the decoder p(x_t | z_t, f), as the paper's
Sprites model; ``mlp`` (default) reads the flat features (:mod:`factorseq.nn.frames`).

Windows and sequences: as in the paper's audio experiment (200 ms TIMIT segments), f is
inferred per window (a segment); the model never reads ``seq_id`` and trains on any windows.
A whole sequence's static code is the mean of f over its windows (``sequence_codes``, the base
default); ``z_mean``, the time-average of the dynamic codes, is a per-window summary of the
dynamics for metrics (not decoded).

Contrastive variant (C-DSVAE, Bai, Wang & Gomes 2021; off by default): ``contrastive_weight``
> 0 subtracts from the loss that weight times InfoNCE bounds on I(f(x); f(shuffled x)) and
I(z(x); z(affine x)), ``mi_weight`` > 0 adds that weight times max(0, estimate of I(f; z))
(maths and views in :mod:`factorseq.nn.contrastive`).
"""
from __future__ import annotations

import dataclasses
import math

import torch
from torch import nn

from ..config import require
from ..nn.contrastive import (
    channel_colour,
    feature_affine,
    info_nce_codes,
    mutual_information_mss,
    shuffle_time,
)
from ..nn.densities import log_gauss
from ..nn.frames import FrameDecoder, FrameEncoder, check_frame_net
from ..nn.masking import batch_mask, masked_mean, masked_sum
from ..registry import register
from .base import (
    DECODES,
    ENCODES,
    FACTORS,
    GENERATES,
    ModelConfig,
    SequenceModel,
    gaussian_kl,
    reparameterize,
)
from .outputs import CodeSpec, Factor


@dataclasses.dataclass
class DSVAEConfig(ModelConfig):
    """DSVAE hyper-parameters.

    - ``f_dim`` / ``z_dim``: sizes of the static code f and of each step's dynamic code z_t.
    - ``hidden``: units of every LSTM/RNN (encoders, prior) and of the decoder MLP.
    - ``posterior``: ``full`` q(z_t | x_{1:T}, f) (the paper's default) or ``factorized``
      q(z_t | x_t).
    - ``likelihood_std``: None = per-feature std of p(x_t | z_t, f) at its maximum-likelihood
      value for each batch (closed form); a number = fixed.
    - ``min_logvar``: floor of that log-variance (a feature the decoder reproduces exactly
      cannot drive the likelihood to infinity).
    - ``frame_net``: ``mlp`` (flat features) or ``conv`` (each step is an image of
      ``frame_shape`` [C, H, W], filled from the data's meta); ``frame_channels``: channels of
      the conv net's first stage (doubled at each stage).
    - ``contrastive_weight``: weight of C-DSVAE's InfoNCE terms (0 = plain DSVAE): f of a
      window against f of its time-shuffled view, z against z of a view with a random positive
      gain per feature (log-gain ~ U(-``view_scale``, ``view_scale``)) and noise of std
      ``view_noise``; cosine scores over ``temperature``.
    - ``dynamic_view``: the view for z: ``affine`` (above), ``colour`` (image frames: colour
      channels permuted and rescaled per window, C-DSVAE's colour distortion; needs
      ``frame_net`` conv) or ``auto`` (colour for conv frames, else affine).
    - ``mi_weight``: weight of the penalty on I(f; z) (minibatch estimate, N -> infinity).
    """

    seq_len: int = 20
    n_features: int = 80
    f_dim: int = 32
    z_dim: int = 16
    hidden: int = 256
    posterior: str = "full"
    likelihood_std: float | None = None
    min_logvar: float = -6.0
    frame_net: str = "mlp"
    frame_shape: tuple[int, int, int] | None = None
    frame_channels: int = 32
    contrastive_weight: float = 0.0
    mi_weight: float = 0.0
    temperature: float = 0.5
    view_scale: float = 0.5
    view_noise: float = 0.0
    dynamic_view: str = "auto"

    def __post_init__(self) -> None:
        super().__post_init__()
        check_frame_net(self.frame_net, self.frame_shape, self.n_features, self.frame_channels)
        for name in ("f_dim", "z_dim", "hidden"):
            require(getattr(self, name) >= 1, f"{name} must be >= 1, got {getattr(self, name)}")
        require(self.posterior in ("full", "factorized"),
                f"posterior must be full or factorized, got {self.posterior!r}")
        require(self.likelihood_std is None or self.likelihood_std > 0,
                f"likelihood_std must be > 0 or null (learned), got {self.likelihood_std}")
        for name in ("contrastive_weight", "mi_weight", "view_scale", "view_noise"):
            require(getattr(self, name) >= 0, f"{name} must be >= 0, got {getattr(self, name)}")
        require(self.temperature > 0, f"temperature must be > 0, got {self.temperature}")
        require(self.dynamic_view in ("auto", "affine", "colour"),
                f"dynamic_view must be auto, affine or colour, got {self.dynamic_view!r}")
        require(self.dynamic_view != "colour" or self.frame_net == "conv",
                "dynamic_view colour needs image frames (frame_net conv)")


def dsvae_terms(x: torch.Tensor, x_mean: torch.Tensor, x_logvar: torch.Tensor,
                f_mean: torch.Tensor, f_logvar: torch.Tensor, z_mean: torch.Tensor,
                z_logvar: torch.Tensor, prior_mean: torch.Tensor, prior_logvar: torch.Tensor,
                x_mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Per-window terms of the DSVAE bound, each (batch,).

    x, x_mean: (batch, time, features), x_logvar broadcastable to them; f_*: (batch, f_dim);
    z_* and prior_*: (batch, time, z_dim), the posterior and the prior p(z_t | z_<t) per step;
    x_mask: like x, 1 = observed: log_px is then the log-likelihood of the observed entries
    (:mod:`factorseq.nn.masking`). ``elbo = log_px - kl_f - kl_z``."""
    log_px = masked_sum(log_gauss(x, x_mean, x_logvar),
                        x_mask, (1, 2))
    kl_f = gaussian_kl(f_mean, f_logvar)
    kl_z = gaussian_kl(z_mean, z_logvar, prior_mean, prior_logvar).sum(1)
    return {"elbo": log_px - kl_f - kl_z, "log_px": log_px, "kl_f": kl_f, "kl_z": kl_z}


@register("dsvae")
class DSVAE(SequenceModel):
    """Disentangled Sequential Autoencoder on windows ``x`` (batch, time, features): a static
    code f per window and a dynamic code z_t per step with a learned LSTM prior."""

    Config = DSVAEConfig
    capabilities = frozenset({GENERATES, ENCODES, DECODES, FACTORS})
    scaler = "standard"
    handles_missing = True  # log p(x_t | z_t, f) and its variance read observed entries only

    def __init__(self, config: DSVAEConfig) -> None:
        super().__init__(config)
        c, h = config, config.hidden
        conv = c.frame_net == "conv"
        # per-frame features read by both encoders: a conv net per image, or the flat features
        self.frames = FrameEncoder(c.frame_shape, h, c.frame_channels) if conv else nn.Identity()
        d = h if conv else c.n_features
        self.f_rnn = nn.LSTM(d, h, batch_first=True, bidirectional=True)
        self.f_gauss = nn.Linear(2 * h, 2 * c.f_dim)
        if c.posterior == "full":
            self.z_birnn = nn.LSTM(d + c.f_dim, h, batch_first=True, bidirectional=True)
            self.z_rnn = nn.RNN(2 * h, h, batch_first=True)
            self.z_gauss = nn.Linear(h, 2 * c.z_dim)
        else:
            self.z_frame = nn.Sequential(nn.Linear(d, h), nn.ReLU(), nn.Linear(h, 2 * c.z_dim))
        self.prior_rnn = nn.LSTM(c.z_dim, h, batch_first=True)
        self.prior_gauss = nn.Linear(h, 2 * c.z_dim)
        self.decoder = (FrameDecoder(c.frame_shape, c.z_dim + c.f_dim, c.frame_channels) if conv
                        else nn.Sequential(nn.Linear(c.z_dim + c.f_dim, h), nn.ReLU(),
                                           nn.Linear(h, h), nn.ReLU(), nn.Linear(h, c.n_features)))

    # --- the networks ---------------------------------------------------------------------
    def q_f(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """q(f | x_{1:T}): mean, log-variance (batch, f_dim) from both directions' last
        states. ``x`` is the frames' features (``self.frames(windows)``; the windows
        themselves for ``frame_net`` mlp)."""
        _, (h, _) = self.f_rnn(x)
        return self.f_gauss(torch.cat([h[0], h[1]], -1)).chunk(2, -1)

    def q_z(self, x: torch.Tensor, f: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """q(z_t | x_{1:T}, f) (full) or q(z_t | x_t) (factorized): mean, log-variance
        (batch, time, z_dim); ``x`` the frames' features as in :meth:`q_f`."""
        if self.config.posterior == "factorized":
            return self.z_frame(x).chunk(2, -1)
        steps = torch.cat([x, f.unsqueeze(1).expand(-1, x.shape[1], -1)], -1)
        out, _ = self.z_rnn(self.z_birnn(steps)[0])
        return self.z_gauss(out).chunk(2, -1)

    def prior_z(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """p(z_t | z_<t) for every t given a whole path z (batch, time, z_dim): the LSTM reads
        z_0 = 0, z_1, ..., z_{T-1}; mean, log-variance (batch, time, z_dim)."""
        prev = torch.cat([torch.zeros_like(z[:, :1]), z[:, :-1]], 1)
        return self.prior_gauss(self.prior_rnn(prev)[0]).chunk(2, -1)

    def sample_z(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Ancestral sample of the dynamic prior, step by step: (n, time, z_dim)."""
        z = torch.zeros(n, 1, self.config.z_dim, device=self.device)
        state, steps = None, []
        for _ in range(self.config.seq_len):
            out, state = self.prior_rnn(z, state)
            mean, logvar = self.prior_gauss(out).chunk(2, -1)
            z = reparameterize(mean, logvar, generator)
            steps.append(z)
        return torch.cat(steps, 1)

    def p_x(self, z: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
        """Mean of p(x_t | z_t, f), (batch, time, features), each frame from its own z_t."""
        return self.decoder(torch.cat([z, f.unsqueeze(1).expand(-1, z.shape[1], -1)], -1))

    def likelihood_logvar(self, x: torch.Tensor, x_mean: torch.Tensor,
                          x_mask: torch.Tensor | None = None) -> torch.Tensor:
        """log s^2 per feature (features,): fixed, or the batch's mean squared residual of each
        feature (x, x_mean: (batch, time, features)), the variance maximising its likelihood;
        floored at ``min_logvar``. With ``x_mask`` (like x, 1 = observed) the mean runs over
        observed entries only, the maximiser of the observed entries' likelihood (a feature
        with none in the batch gets the floor and adds nothing to log_px)."""
        c = self.config
        if c.likelihood_std is not None:
            return torch.full((c.n_features,), 2.0 * math.log(c.likelihood_std), device=x.device)
        sq = (x - x_mean) ** 2
        if x_mask is None:
            msr = sq.mean((0, 1))
        else:  # the (batch, time) pairs as one axis: masked_mean reduces one dim
            msr = masked_mean(sq.flatten(0, 1), x_mask.flatten(0, 1), 0)
        return msr.detach().log().clamp(min=c.min_logvar)

    # --- objective ------------------------------------------------------------------------
    def loss(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Negative ELBO per window ``x`` (batch, time, features), batch mean; terms
        ``log_px``, ``kl_f``, ``kl_z`` (per window) are logged beside it. With gaps
        (``x_mask``, 1 = observed) log_px is the log-likelihood of the observed entries; the
        encoders see the placeholders, the loss never asks for them."""
        x = batch["x"]
        self.check_input(x)
        x_mask = batch_mask(batch, x)
        feats = self.frames(x)
        f_mean, f_logvar = self.q_f(feats)
        f = reparameterize(f_mean, f_logvar)
        z_mean, z_logvar = self.q_z(feats, f)
        z = reparameterize(z_mean, z_logvar)
        p_mean, p_logvar = self.prior_z(z)
        x_mean = self.p_x(z, f)
        terms = dsvae_terms(x, x_mean, self.likelihood_logvar(x, x_mean, x_mask), f_mean,
                            f_logvar, z_mean, z_logvar, p_mean, p_logvar, x_mask)
        out = {"loss": -terms["elbo"].mean(), **{k: v.mean().detach() for k, v in terms.items()
                                                 if k != "elbo"}}
        extra = self.contrastive_terms(x, f, f_mean, f_logvar, z, z_mean, z_logvar)
        if extra:  # maximise the InfoNCE bounds, penalise a positive estimate of I(f; z)
            cw, mw = self.config.contrastive_weight, self.config.mi_weight
            out["loss"] = (out["loss"] - cw * (extra["nce_static"] + extra["nce_dynamic"])
                           + mw * extra["mi_fz"].clamp(min=0.0))
        return {**out, **{k: v.detach() for k, v in extra.items()}}

    def contrastive_terms(self, x: torch.Tensor, f: torch.Tensor, f_mean: torch.Tensor,
                          f_logvar: torch.Tensor, z: torch.Tensor, z_mean: torch.Tensor,
                          z_logvar: torch.Tensor) -> dict[str, torch.Tensor]:
        """C-DSVAE's terms of windows x (batch, time, features) whose posterior (means, log-
        variances, samples) is given: ``nce_static`` (InfoNCE of the f means of x and of its
        time-shuffled view), ``nce_dynamic`` (of the z means, flattened over time, of x and of
        its per-feature affine view), ``mi_fz`` (estimate of I(f; z_t)); {} when both weights
        are 0 (the plain model, no extra draws)."""
        c, out = self.config, {}
        if c.contrastive_weight == 0 and c.mi_weight == 0:
            return out
        zero = x.new_zeros(())
        out["nce_static"] = out["nce_dynamic"] = out["mi_fz"] = zero
        if c.contrastive_weight > 0:
            # the views are of the windows; the encoders read their frames' features
            f_shuffled = self.q_f(self.frames(shuffle_time(x)))[0]
            view = self.frames(self.view_keeping_dynamics(x))
            z_view = self.q_z(view, self.q_f(view)[0])[0]
            out["nce_static"] = info_nce_codes(f_mean, f_shuffled, c.temperature)
            out["nce_dynamic"] = info_nce_codes(z_mean.flatten(1), z_view.flatten(1),
                                                c.temperature)
        if c.mi_weight > 0 and len(x) > 1:  # the aggregate posterior needs two windows
            out["mi_fz"] = mutual_information_mss(f, f_mean, f_logvar, z, z_mean, z_logvar)
        return out

    def view_keeping_dynamics(self, x: torch.Tensor) -> torch.Tensor:
        """The view of windows x (batch, time, features) that keeps their dynamics and changes
        their static factors (``dynamic_view`` in the config)."""
        c = self.config
        if c.dynamic_view == "colour" or (c.dynamic_view == "auto" and c.frame_net == "conv"):
            return channel_colour(x, c.frame_shape, c.view_scale)
        return feature_affine(x, c.view_scale, noise=c.view_noise)

    # --- the contract ---------------------------------------------------------------------
    def code_specs(self) -> list[CodeSpec]:
        c = self.config
        return [CodeSpec("f", c.f_dim, "sequence", description="static code of the window "
                         "(speaker, style); a sequence's value is its mean over the windows"),
                CodeSpec("z", c.z_dim, "steps", description="dynamic code of each step"),
                CodeSpec("z_mean", c.z_dim, "segment", decoded=False,
                         description="the dynamic codes averaged over the window's steps")]

    def factors(self) -> list[Factor]:
        return [Factor("f", "code", "sequence", "static code: kept from a reference, new "
                       "dynamics in its voice / style"),
                Factor("z", "code", "segment", "dynamic codes of each window: kept from a "
                       "reference, the same content with a new static code")]

    def _encode(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Posterior means: f (batch, f_dim), z (batch, time, z_dim) given the mean of f, and
        z_mean (batch, z_dim), z averaged over time."""
        feats = self.frames(x)
        f, _ = self.q_f(feats)
        z, _ = self.q_z(feats, f)
        return {"f": f, "z": z, "z_mean": z.mean(1)}

    def _decode(self, codes: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.p_x(codes["z"], codes["f"])

    def _sample_codes(self, n: int, given: dict[str, torch.Tensor],
                      generator: torch.Generator | None) -> dict[str, torch.Tensor]:
        """f ~ N(0, I) and z from the learned prior, unless given."""
        f = given.get("f")
        if f is None:
            f = torch.randn(n, self.config.f_dim, generator=generator, device=self.device)
        z = given.get("z")
        return {"f": f, "z": self.sample_z(n, generator) if z is None else z}

    def _sample(self, n: int, y: torch.Tensor | None,
                generator: torch.Generator | None) -> torch.Tensor:
        """Ancestral samples (n, time, features): decoder means of prior codes."""
        return self._decode(self._sample_codes(n, {}, generator))
