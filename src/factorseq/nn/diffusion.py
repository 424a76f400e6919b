"""Gaussian diffusion maths (Ho et al. 2020; Nichol & Dhariwal 2021; Song et al. 2021 DDIM) for
a denoiser that predicts x0, as in Diffusion-TS (Yuan & Qiao, ICLR 2024).

Tensors are windows (batch, time, features); ``t`` is a (batch,) int64 step in ``0..T-1``
(step t has noise level ``alpha_bar[t]``; x_{-1} is the data x0). With
``alpha_t = 1 - beta_t`` and ``alpha_bar_t = prod_{s<=t} alpha_s``:

- forward process  q(x_t | x_0) = N(sqrt(alpha_bar_t) x_0, (1 - alpha_bar_t) I);
- posterior        q(x_{t-1} | x_t, x_0) = N(c1_t x_0 + c2_t x_t, beta~_t I) with
  c1 = beta_t sqrt(alpha_bar_{t-1}) / (1 - alpha_bar_t),
  c2 = (1 - alpha_bar_{t-1}) sqrt(alpha_t) / (1 - alpha_bar_t),
  beta~ = beta_t (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t);
- ancestral sampling draws x_{t-1} from the posterior with x_0 replaced by the denoiser's
  prediction; DDIM (eta in [0, 1]) jumps between any two steps, eta = 0 deterministically.
"""
from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from ..errors import FactorseqError

Denoiser = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (x_t, t) -> x0 prediction


def cosine_betas(steps: int, s: float = 0.008) -> np.ndarray:
    """Nichol & Dhariwal's cosine schedule: alpha_bar(u) = cos((u + s) / (1 + s) * pi / 2)^2
    normalised to alpha_bar(0) = 1, betas = 1 - alpha_bar_t / alpha_bar_{t-1}, clipped to
    0.999 (the last step would otherwise be 1)."""
    u = np.linspace(0.0, 1.0, steps + 1, dtype=np.float64)
    f = np.cos((u + s) / (1 + s) * math.pi / 2) ** 2
    abar = f / f[0]
    return np.clip(1.0 - abar[1:] / abar[:-1], 0.0, 0.999)


def linear_betas(steps: int) -> np.ndarray:
    """Ho et al.'s linear schedule 1e-4 .. 0.02 for 1000 steps, rescaled by 1000 / steps."""
    scale = 1000.0 / steps
    return np.linspace(scale * 1e-4, scale * 0.02, steps, dtype=np.float64)


SCHEDULES = {"cosine": cosine_betas, "linear": linear_betas}


def sampling_times(steps: int, n: int, spacing: str = "linear") -> list[int]:
    """``n`` decreasing steps from ``steps - 1`` to 0 for a DDIM-style sampler: evenly spaced
    (``linear``) or denser near the data (``quadratic``: t ~ (i / n)^2, DDIM's CIFAR choice).
    ``n == steps`` gives every step."""
    if not 1 <= n <= steps:
        raise FactorseqError(f"sampling steps must be in 1..{steps}, got {n}")
    grid = np.linspace(0.0, 1.0, n)
    if spacing == "quadratic":
        grid = grid ** 2
    elif spacing != "linear":
        raise FactorseqError(f"unknown sampling spacing {spacing!r}; use linear or quadratic")
    times = sorted({int(round(g * (steps - 1))) for g in grid}, reverse=True)
    # rounding may merge two quadratic points near 0: top up with the largest unused steps
    unused = sorted(set(range(steps)) - set(times), reverse=True)
    times = sorted(times + unused[: n - len(times)], reverse=True)
    return times


class GaussianDiffusion(nn.Module):
    """Schedule buffers and closed forms of a ``steps``-step diffusion (``schedule`` by name,
    or explicit ``betas``); no learnable state.

    Buffers are derived from the schedule (not saved: the config rebuilds them), computed in
    float64 and stored in float32.
    """

    def __init__(self, steps: int, schedule: str = "cosine",
                 betas: np.ndarray | None = None) -> None:
        super().__init__()
        if betas is None:
            if schedule not in SCHEDULES:
                raise FactorseqError(f"unknown beta schedule {schedule!r}; use "
                                     f"{' or '.join(SCHEDULES)}")
            betas = SCHEDULES[schedule](steps)
        betas = np.asarray(betas, dtype=np.float64)
        steps = len(betas)
        alphas = 1.0 - betas
        abar = np.cumprod(alphas)
        abar_prev = np.concatenate([[1.0], abar[:-1]])
        post_var = betas * (1.0 - abar_prev) / (1.0 - abar)
        self.steps = steps
        for name, value in {
            "betas": betas, "alpha_bar": abar, "alpha_bar_prev": abar_prev,
            "posterior_var": post_var,
            # the variance is 0 at t = 0: clip its log (only used where noise is added)
            "posterior_logvar": np.log(np.maximum(post_var, 1e-20)),
            "posterior_c1": betas * np.sqrt(abar_prev) / (1.0 - abar),
            "posterior_c2": (1.0 - abar_prev) * np.sqrt(alphas) / (1.0 - abar),
            # Diffusion-TS's re-weighting of the x0 loss: sqrt(alpha_t (1 - abar_t)) / beta_t /
            # 100, i.e. roughly the weight that makes an x0 error an epsilon error
            "loss_weight": np.sqrt(alphas) * np.sqrt(1.0 - abar) / betas / 100.0,
        }.items():
            self.register_buffer(name, torch.tensor(value, dtype=torch.float32),
                                 persistent=False)

    @staticmethod
    def _at(values: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """values[t] shaped (batch, 1, 1) to broadcast over (batch, time, features)."""
        return values[t].view(-1, 1, 1)

    # --- closed forms ---------------------------------------------------------------------
    def q_mean_var(self, x0: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean (batch, time, features) and variance (batch, 1, 1) of q(x_t | x_0)."""
        abar = self._at(self.alpha_bar, t)
        return abar.sqrt() * x0, 1.0 - abar

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) noise."""
        mean, var = self.q_mean_var(x0, t)
        return mean + var.sqrt() * noise

    def posterior(self, x0: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Mean, variance and clipped log-variance of q(x_{t-1} | x_t, x_0)."""
        mean = self._at(self.posterior_c1, t) * x0 + self._at(self.posterior_c2, t) * x_t
        return mean, self._at(self.posterior_var, t), self._at(self.posterior_logvar, t)

    def eps_from_x0(self, x_t: torch.Tensor, t: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
        """The noise that takes x0 to x_t: (x_t - sqrt(abar_t) x0) / sqrt(1 - abar_t)."""
        abar = self._at(self.alpha_bar, t)
        return (x_t - abar.sqrt() * x0) / (1.0 - abar).sqrt()

    def skip_scales(self, t: torch.Tensor, sigma_data: float
                    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Karras et al.'s (EDM) pre-conditioning of an x0 predictor, in VP form:
        x0_hat = c_skip x_t / sqrt(abar_t) + c_out F(x_t, t) with sigma^2 = (1 - abar) / abar,
        c_skip = sd^2 / (sigma^2 + sd^2), c_out = sigma sd / sqrt(sigma^2 + sd^2), sd =
        ``sigma_data``: the net F only adds a correction when the input is nearly clean and
        carries the prediction when it is noise. Both (batch, 1, 1)."""
        abar = self._at(self.alpha_bar, t)
        var = (1.0 - abar) / abar
        sd2 = sigma_data ** 2
        return sd2 / (var + sd2) / abar.sqrt(), (var * sd2 / (var + sd2)).sqrt()

    # --- samplers -------------------------------------------------------------------------
    @staticmethod
    def _predict(denoise: Denoiser, x: torch.Tensor, t: int, clip: float | None
                 ) -> torch.Tensor:
        x0 = denoise(x, torch.full((x.shape[0],), t, dtype=torch.long, device=x.device))
        return x0.clamp(-clip, clip) if clip is not None else x0

    def ancestral(self, denoise: Denoiser, x_T: torch.Tensor, *, clip: float | None = 1.0,
                  generator: torch.Generator | None = None) -> torch.Tensor:
        """The full reverse process from x_T (batch, time, features): for t = T-1 .. 0,
        x_{t-1} ~ q(x_{t-1} | x_t, x0_hat) with x0_hat = denoise(x_t, t) clipped to
        [-clip, clip] (no noise at t = 0, where the posterior is the point x0_hat)."""
        x = x_T
        for t in range(self.steps - 1, -1, -1):
            x0 = self._predict(denoise, x, t, clip)
            tt = torch.full((x.shape[0],), t, dtype=torch.long, device=x.device)
            mean, _, logvar = self.posterior(x0, x, tt)
            if t > 0:
                noise = torch.randn(x.shape, generator=generator, device=x.device)
                x = mean + (0.5 * logvar).exp() * noise
            else:
                x = mean
        return x

    def ddim_step(self, x_t: torch.Tensor, x0: torch.Tensor, t: int, t_next: int, eta: float,
                  noise: torch.Tensor | None) -> torch.Tensor:
        """One DDIM jump t -> t_next < t (Song et al. eq. 12):
        x_next = sqrt(abar_next) x0 + sqrt(1 - abar_next - sigma^2) eps + sigma noise,
        sigma = eta sqrt((1 - abar_next) / (1 - abar_t) (1 - abar_t / abar_next)),
        eps the noise implied by (x_t, x0). eta = 1 with t_next = t - 1 is ancestral."""
        a, a_next = self.alpha_bar[t], self.alpha_bar[t_next]
        eps = (x_t - a.sqrt() * x0) / (1.0 - a).sqrt()
        sigma = eta * ((1 - a_next) / (1 - a) * (1 - a / a_next)).clamp(min=0).sqrt()
        x = a_next.sqrt() * x0 + (1 - a_next - sigma ** 2).clamp(min=0).sqrt() * eps
        return x + sigma * noise if noise is not None and eta > 0 else x

    def ddim(self, denoise: Denoiser, x_T: torch.Tensor, n_steps: int, *, eta: float = 0.0,
             spacing: str = "linear", clip: float | None = 1.0,
             generator: torch.Generator | None = None) -> torch.Tensor:
        """DDIM sampling from x_T over ``n_steps`` denoiser calls (``sampling_times``); the last
        call's x0 prediction is the sample. eta = 0 is deterministic given x_T."""
        times = sampling_times(self.steps, n_steps, spacing)
        x = x_T
        for i, t in enumerate(times):
            x0 = self._predict(denoise, x, t, clip)
            if i == len(times) - 1:
                return x0
            noise = (torch.randn(x.shape, generator=generator, device=x.device)
                     if eta > 0 else None)
            x = self.ddim_step(x, x0, t, times[i + 1], eta, noise)
        return x

    def ddim_invert(self, denoise: Denoiser, x0: torch.Tensor, n_steps: int, *,
                    spacing: str = "linear") -> torch.Tensor:
        """Deterministic DDIM encoding x0 -> x_T (the eta = 0 ODE run forward): each jump
        t -> t' > t re-noises the x0 estimate at step t with the noise it implies,
        x_t' = sqrt(abar_t') x0_hat + sqrt(1 - abar_t') eps_hat. At the first step the estimate
        is the data itself with zero noise (an x0-predicting net's implied noise is
        ill-conditioned there: it divides by sqrt(1 - abar_0) ~ 0)."""
        times = sampling_times(self.steps, n_steps, spacing)[::-1]
        x0_hat, eps = x0, torch.zeros_like(x0)
        x = x0
        for i, t in enumerate(times):
            a = self.alpha_bar[t]
            x = a.sqrt() * x0_hat + (1 - a).sqrt() * eps
            if i < len(times) - 1:
                tt = torch.full((x.shape[0],), t, dtype=torch.long, device=x.device)
                x0_hat = denoise(x, tt) if i > 0 else x0
                eps = self.eps_from_x0(x, tt, x0_hat) if i > 0 else eps
        return x


def fourier_residual(pred: torch.Tensor, target: torch.Tensor,
                     mask: torch.Tensor | None = None) -> torch.Tensor:
    """FFT over time (``norm="forward"``: divided by the window length) of the residual
    ``mask * (pred - target)``, (batch, time, features) complex. By linearity this is
    FFT(pred) - FFT(target) when nothing is masked; a masked entry contributes nothing."""
    diff = pred - target
    if mask is not None:
        diff = diff * mask
    return torch.fft.fft(diff, dim=1, norm="forward")


def elementwise(kind: str, diff: torch.Tensor) -> torch.Tensor:
    """|diff| (``l1``) or diff^2 (``l2``), elementwise."""
    return diff.abs() if kind == "l1" else diff.pow(2)


def diffusion_ts_loss(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor, *,
                      kind: str = "l1", fourier_weight: float = 0.0,
                      mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Diffusion-TS's training objective on x0 predictions (batch, time, features).

    Per window b: ``w_b * mean_{observed}(e(pred - target) + lambda * (e(Re F) + e(Im F)))``
    with e = |.| or (.)^2, F the time FFT of the residual (``fourier_residual``), lambda =
    ``fourier_weight`` and ``w_b`` the schedule's weight of the window's step; the loss is the
    mean over windows. With ``mask`` (1 = observed) both terms average over the window's
    observed entries only (the Fourier term sums over all T frequencies of the masked residual
    and divides by the same count) and masked entries get no gradient; an all-ones mask gives
    the unmasked loss. Returns ``loss``, ``reconstruction`` and ``fourier`` (unweighted means).
    """
    m = torch.ones_like(pred) if mask is None else mask.to(pred.dtype)
    count = m.sum(dim=(1, 2)).clamp(min=1.0)
    recon = (elementwise(kind, pred - target) * m).sum(dim=(1, 2)) / count
    if fourier_weight:
        f = fourier_residual(pred, target, m)
        four = (elementwise(kind, f.real) + elementwise(kind, f.imag)).sum(dim=(1, 2)) / count
    else:
        four = torch.zeros_like(recon)
    total = weight * (recon + fourier_weight * four)
    return {"loss": total.mean(), "reconstruction": recon.mean(), "fourier": four.mean()}
