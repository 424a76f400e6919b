"""``aae``: adversarial autoencoder (Makhzani et al. 2016) for sequences.

An encoder q(z|x) (the shared sequence encoder) and decoder p(x|z) are trained to
reconstruct; in place of the VAE's KL term, a discriminator D(z) learns to tell codes of real
windows (y = 0) from samples of the prior p(z) = N(0, prior_std^2 I) (y = 1), and the encoder,
acting as the generator of codes, learns to fool it, so that the aggregated posterior
q(z) = E_x q(z|x) matches p(z). Each mini-batch runs the paper's two phases: the reconstruction
phase (encoder + decoder on the reconstruction error), then the regularisation phase (first D,
then the encoder on the flipped-label loss), each update with its own Adam. Sampling decodes
prior draws.

q(z|x) is one of the paper's first two choices: ``gaussian`` (z = mu(x) + sigma(x) eps,
reparameterised; the default) or ``deterministic`` (z = f(x)). The encoder's adversarial step
uses a 10x smaller learning rate than the discriminator (``gen_lr`` 1e-4). Both defaults come
from runs on sines: with a deterministic code or equal rates, the encoder collapsed every code
into a tiny cluster that chased the discriminator around code space (codes' std 0.02 against
the prior's 1), and decoded prior draws were far off the data; with the defaults the decoded
prior draws matched the data's spread across windows and over time.

Hu et al. (2017): the adversarial game of a GAN moved to code space; the "generator" is the
inference network q(z|x), the discriminator's y says prior sample / code.
"""
from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import torch

from ..config import require
from ..nn.adversarial import discriminator_loss, generator_loss, optimizer_step
from ..nn.backbones import mlp
from ..nn.masking import batch_mask
from ..registry import register
from .ae import AEConfig, CodeAutoencoder, sse
from .base import reparameterize
from .gan import adversarial_lrs


@dataclasses.dataclass
class AAEConfig(AEConfig):
    """AEConfig plus the code discriminator.

    - ``disc_hidden``/``disc_layers``: the dense code discriminator (Makhzani: 2 x 1000; here
      2 x 64 for sequence codes of size 8).
    - ``prior_std``: p(z) = N(0, prior_std^2 I).
    - ``posterior``: ``gaussian`` (default) or ``deterministic`` q(z|x).
    - ``gen_lr``/``disc_lr``: learning rates of the regularisation phase: the encoder's
      adversarial step (1e-4) and the discriminator (None = train.lr, 1e-3 by default).
    """

    disc_hidden: int = 64
    disc_layers: int = 2
    prior_std: float = 1.0
    posterior: str = "gaussian"
    gen_lr: float | None = 1e-4
    disc_lr: float | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        require(self.posterior in ("gaussian", "deterministic"),
                f"posterior must be gaussian or deterministic, got {self.posterior!r}")
        require(self.disc_hidden >= 1 and self.disc_layers >= 1,
                "disc_hidden and disc_layers must be >= 1")
        require(self.prior_std > 0, f"prior_std must be > 0, got {self.prior_std}")


@register("aae")
class AAE(CodeAutoencoder):
    """Deterministic autoencoder whose code distribution is matched to N(0, s^2 I) by a
    discriminator."""

    Config = AAEConfig
    manual_optimization: ClassVar[bool] = True
    monitor_early_stopping: ClassVar[bool] = False
    # the reconstruction sums over observed entries; the discriminator sees codes and prior
    # draws, never windows, so no placeholder can reach it
    handles_missing: ClassVar[bool] = True
    # runs saved before ``posterior`` existed have a deterministic encoder (latent_dim outputs)
    legacy_config: ClassVar[dict[str, Any]] = {"posterior": "deterministic"}

    def __init__(self, config: AAEConfig) -> None:
        k = config.latent_dim
        super().__init__(config, 2 * k if config.posterior == "gaussian" else k)
        self.discriminator = mlp(k, config.disc_hidden, 1, config.disc_layers)

    def code(self, x: torch.Tensor, sample: bool = True) -> torch.Tensor:
        """A draw z ~ q(z|x) (or its mean), (batch, latent_dim), of x (batch, time,
        features)."""
        h = self.encoder(x)
        if self.config.posterior == "deterministic":
            return h
        mean, logvar = h.chunk(2, dim=-1)
        return reparameterize(mean, logvar.clamp(-20.0, 10.0)) if sample else mean

    def _encode(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Windows (batch, time, features) -> codes z (batch, latent_dim): the posterior
        mean."""
        return {"z": self.code(x, sample=False)}

    def prior(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.config.prior_std * torch.randn(n, self.config.latent_dim,
                                                   generator=generator, device=self.device)

    def _sample(self, n: int, y: torch.Tensor | None,
                generator: torch.Generator | None) -> torch.Tensor:
        """n windows (n, time, features) decoded from prior draws."""
        return self.decoder(self.prior(n, generator))

    def optimizer_groups(self) -> dict[str, list[torch.nn.Parameter]]:
        # "ae": reconstruction phase; "gen": the encoder as generator of codes (same weights,
        # its own optimiser as in the paper); "disc": the code discriminator
        return {"ae": list(self.encoder.parameters()) + list(self.decoder.parameters()),
                "gen": list(self.encoder.parameters()),
                "disc": list(self.discriminator.parameters())}

    def optimizer_config(self, name: str) -> dict[str, float]:
        return adversarial_lrs(self.config, name) if name != "ae" else {}

    def _terms(self, x: torch.Tensor, mask: torch.Tensor | None = None
               ) -> dict[str, torch.Tensor]:
        z = self.code(x)
        recon = sse(x, self.decoder(z), mask).mean()
        d = discriminator_loss(self.discriminator(self.prior(len(x))),
                               self.discriminator(z.detach()))
        g = generator_loss(self.discriminator(z))
        return {"recon": recon, "d_loss": d, "g_loss": g}

    def loss(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Validation: ``loss`` is the reconstruction error (per window, summed)."""
        x = batch["x"]
        self.check_input(x)
        t = self._terms(x, batch_mask(batch, x))
        return {"loss": t["recon"], **t}

    def training_step(self, batch: dict[str, torch.Tensor], optimizers: dict[str, Any],
                      backward: Any, step: int) -> dict[str, Any]:
        """Reconstruction phase, then regularisation phase (D, then the encoder)."""
        x = batch["x"]
        self.check_input(x)
        recon = sse(x, self.decoder(self.code(x)), batch_mask(batch, x)).mean()
        optimizer_step(optimizers["ae"], recon, backward)
        z = self.code(x)
        d = discriminator_loss(self.discriminator(self.prior(len(x))),
                               self.discriminator(z.detach()))
        optimizer_step(optimizers["disc"], d, backward)
        g = generator_loss(self.discriminator(z))
        optimizer_step(optimizers["gen"], g, backward)
        return {"loss": recon.detach(), "recon": recon.detach(), "d_loss": d.detach(),
                "g_loss": g.detach()}
