"""``aavae``: adversary-activated VAE (Hu, Yang, Salakhutdinov & Xing, ICLR 2018: AAVAE).

Hu et al. write the VAE over a mixture of real windows (y = real) and the model's own samples
(y = generated), with a *perfect, fixed* discriminator q_*(y|x): the flipped q^r_* gives every
real window the decoder's likelihood and every generated one the data distribution, which has
no parameters, so generated samples never reach the gradient. AAVAE replaces q_* by a learned
discriminator q_phi(y|x), trained as in a GAN (real vs. samples from the prior), and every
window's negative ELBO is weighted by D(x) = q_phi(real | x)::

    L = E_{x ~ data}[ D(x) l(x) ] + E_{x~ ~ p_theta0(x)}[ D(x~) l(x~) ],
    l(x) = recon_weight * sum_{t,d} (x - g(z))^2 + beta * KL(q(z|x) || N(0, I))

Generated windows x~ = g(z), z ~ N(0, I), come from the current decoder (theta_0) as
constants, and the weights D(.) are constants too: the encoder and decoder learn from the
samples the discriminator takes for real (and weight real windows it finds easy to tell, the
ones the generator cannot yet simulate, more), while D learns only from its cross-entropy. D is
the per-step discriminator of ``gan``/``vaegan``; a window's D is sigma of its mean step logit.

Training: the gradients of the weighted ELBO (encoder, decoder) and of D's cross-entropy (D)
touch disjoint parameters (weights and samples are detached), so one Adam step on their sum is
the two players' updates on the same batch, and the run keeps ``vae``'s schedule (plateau
learning-rate decay, early stopping). The validation loss is ``vae``'s unweighted negative
ELBO on real windows. ``--set adversary=false`` is ``vae`` exactly (the perfect q_*).
"""
from __future__ import annotations

import dataclasses
from typing import ClassVar

import torch

from ..config import require
from ..nn.adversarial import discriminator_loss, realness
from ..nn.backbones import StepNet
from ..registry import register
from .vae import VAE, VAEConfig


@dataclasses.dataclass
class AAVAEConfig(VAEConfig):
    """VAEConfig plus the discriminator.

    - ``adversary``: learn q_phi(y|x) and weight every window's ELBO by it (True); False is
      the plain ``vae`` (the ablation: the perfect, fixed discriminator).
    - ``disc_hidden``/``disc_layers``: the per-step discriminator (same backbone as the VAE).
    """

    adversary: bool = True
    disc_hidden: int = 64
    disc_layers: int = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        require(self.disc_hidden >= 1 and self.disc_layers >= 1,
                "disc_hidden and disc_layers must be >= 1")


@register("aavae")
class AAVAE(VAE):
    """VAE + a per-step discriminator whose belief that a window is real weights its ELBO."""

    Config = AAVAEConfig
    # its discriminator reads whole real windows: gaps would be placeholders to it (impute first)
    handles_missing: ClassVar[bool] = False

    def __init__(self, config: AAVAEConfig) -> None:
        super().__init__(config)
        c = config
        if c.adversary:  # built after the VAE's nets: adversary=false initialises as vae
            self.discriminator = StepNet(c.n_features, c.disc_hidden, 1, c.disc_layers,
                                         c.backbone)

    def nelbo(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per-window negative ELBO ``l`` and its ``recon``/``kl`` parts, each (batch,)."""
        recon, kl = self.window_terms(x)
        return {"l": self.config.recon_weight * recon + self.config.beta * kl,
                "recon": recon, "kl": kl}

    def generated(self, n: int) -> torch.Tensor:
        """n windows (n, time, features) of the current decoder from the prior, as data."""
        with torch.no_grad():
            return self._sample(n, None, None)

    def loss(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """``loss`` = D-weighted negative ELBO of real and generated windows + D's
        cross-entropy; also the real windows' ``recon``/``kl``, ``d_loss``, the mean weights
        ``w_real``/``w_fake`` and ``fake_nelbo``."""
        if not self.config.adversary:
            return super().loss(batch)
        x = batch["x"]
        xf = self.generated(len(x))
        real, fake = self.nelbo(x), self.nelbo(xf)
        logit_real, logit_fake = self.discriminator(x), self.discriminator(xf)
        w_real, w_fake = realness(logit_real), realness(logit_fake)
        weighted = (w_real * real["l"]).mean() + (w_fake * fake["l"]).mean()
        d = discriminator_loss(logit_real, logit_fake)
        return {"loss": weighted + d, "recon": real["recon"].mean(), "kl": real["kl"].mean(),
                "d_loss": d.detach(), "w_real": w_real.mean(), "w_fake": w_fake.mean(),
                "fake_nelbo": fake["l"].mean().detach()}

    def validation_loss(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """``vae``'s loss (unweighted negative ELBO of real windows): the stopping signal."""
        return VAE.loss(self, batch)
