"""``vae``: the plain sequence VAE (Kingma & Welling 2014) on the family's shared backbone.

q(z|x) = N(mu(x), diag sigma^2(x)) from a sequence encoder (GRU, LSTM or strided conv), prior
p(z) = N(0, I), decoder p(x|z) = N(g(z), s^2 I) with a fixed variance. Per window the loss is
the negative ELBO up to a constant::

    recon_weight * sum_{t,d} (x - g(z))^2 + beta * KL(q(z|x) || N(0, I))

where recon_weight = 1 / (2 s^2) (3.0, TimeVAE's reconstruction weight, means s ~ 0.41 on
[0, 1]-scaled data) and beta = 1 is the plain VAE. In Hu et al.'s (2017) reading the VAE is
the adversarial family's member whose discriminator is perfect and fixed (y = "generated"
always), which turns the adversarial game into the KL term.
"""
from __future__ import annotations

import dataclasses

import torch

from ..config import require
from ..nn.masking import batch_mask
from ..registry import register
from .ae import AEConfig, CodeAutoencoder, sse
from .base import gaussian_kl, reparameterize


@dataclasses.dataclass
class VAEConfig(AEConfig):
    """AEConfig plus the likelihood weights.

    - ``recon_weight``: 1 / (2 s^2) of the Gaussian decoder (3.0).
    - ``beta``: weight of the KL term (1.0 = the plain VAE).
    """

    recon_weight: float = 3.0
    beta: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        require(self.recon_weight > 0, f"recon_weight must be > 0, got {self.recon_weight}")
        require(self.beta >= 0, f"beta must be >= 0, got {self.beta}")


class GaussianCodeAutoencoder(CodeAutoencoder):
    """Encoder to (mean, log-variance) of q(z|x); shared by ``vae`` and ``vaegan``."""

    def __init__(self, config: VAEConfig) -> None:
        super().__init__(config, 2 * config.latent_dim)

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (batch, time, features) -> (mean, logvar), each (batch, latent_dim)."""
        self.check_input(x)
        mean, logvar = self.encoder(x).chunk(2, dim=-1)
        return mean, logvar.clamp(-20.0, 10.0)  # keeps exp(logvar) finite

    def _encode(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Posterior means z (batch, latent_dim) of windows (batch, time, features)."""
        return {"z": self.posterior(x)[0]}

    def _sample(self, n: int, y: torch.Tensor | None,
                generator: torch.Generator | None) -> torch.Tensor:
        """n windows (n, time, features) decoded from the prior z ~ N(0, I)."""
        z = torch.randn(n, self.config.latent_dim, generator=generator, device=self.device)
        return self.decoder(z)


@register("vae")
class VAE(GaussianCodeAutoencoder):
    """Plain sequence VAE: Gaussian encoder and decoder, N(0, I) prior."""

    Config = VAEConfig
    handles_missing = True  # the Gaussian likelihood sums over observed entries only

    def window_terms(self, x: torch.Tensor, mask: torch.Tensor | None = None
                     ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-window (recon, kl), each (batch,), of windows x (batch, time, features): the
        squared error of a reparameterised reconstruction over the observed entries (``mask``
        (batch, time, features), 1 = observed; None = all) and KL(q(z|x) || N(0, I))."""
        mean, logvar = self.posterior(x)
        x_hat = self.decoder(reparameterize(mean, logvar))
        return sse(x, x_hat, mask), gaussian_kl(mean, logvar)

    def loss(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        x = batch["x"]
        recon, kl = (t.mean() for t in self.window_terms(x, batch_mask(batch, x)))
        loss = self.config.recon_weight * recon + self.config.beta * kl
        return {"loss": loss, "recon": recon, "kl": kl}
