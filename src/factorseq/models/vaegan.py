"""``vaegan``: VAE/GAN (Larsen, Sonderby, Larochelle & Winther 2016) for sequences.

A VAE whose decoder doubles as a GAN generator, with the reconstruction error measured in the
discriminator's hidden features Dis_l instead of in x. With x~ = Dec(z), z ~ Enc(x) and
x_p = Dec(z_p), z_p ~ N(0, I) (Larsen's Algorithm 1)::

    L_prior = KL(q(z|x) || N(0, I))
    L_llike = 1/2 sum_{t,h} (Dis_l(x~) - Dis_l(x))^2          # Gaussian in feature space
    L_GAN   = log Dis(x) + log(1 - Dis(x~)) + log(1 - Dis(x_p))

    Enc <- grad of L_prior + L_llike
    Dec <- grad of gamma * L_llike - L_GAN   (non-saturating: flipped labels on x~ and x_p)
    Dis <- grad of -L_GAN                    (Dis never sees L_llike)

Dis_l is the per-step hidden state (batch, time, hidden) of the recurrent (or conv)
discriminator, the sequence analogue of the paper's l-th convolutional feature map. Enc and Dec
receive different gradients from the same L_llike; one ``gen`` optimiser step reproduces that
exactly: the encoder's copy of L_llike runs through a frozen decoder (gradients reach z only)
and the decoder's copy starts from a detached z.

Hu et al. (2017): VAE (inference + generator, KL to the prior) and GAN (discriminator with
y = real/generated on both reconstructions and prior samples) in one model.
"""
from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import torch

from ..config import require
from ..nn.adversarial import discriminator_loss, frozen, generator_loss, optimizer_step
from ..nn.backbones import StepNet
from ..registry import register
from .base import gaussian_kl, reparameterize
from .gan import adversarial_lrs
from .vae import GaussianCodeAutoencoder, VAEConfig


@dataclasses.dataclass
class VAEGANConfig(VAEConfig):
    """VAEConfig plus the discriminator (recurrent/conv per-step, like the backbone).

    - ``gamma``: weight of L_llike against the GAN loss in the decoder's objective (1.0).
    - ``disc_hidden``/``disc_layers``: the discriminator's width and depth.
    - ``gen_lr``/``disc_lr``: per-optimiser learning rates (None = train.lr).
    ``recon_weight`` is unused by the loss (the likelihood lives in feature space) and kept for
    the shared config only.
    """

    gamma: float = 1.0
    disc_hidden: int = 64
    disc_layers: int = 1
    gen_lr: float | None = None
    disc_lr: float | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        require(self.gamma >= 0, f"gamma must be >= 0, got {self.gamma}")
        require(self.disc_hidden >= 1 and self.disc_layers >= 1,
                "disc_hidden and disc_layers must be >= 1")


@register("vaegan")
class VAEGAN(GaussianCodeAutoencoder):
    """VAE encoder/decoder + a per-step discriminator whose features measure reconstruction."""

    Config = VAEGANConfig
    manual_optimization: ClassVar[bool] = True
    monitor_early_stopping: ClassVar[bool] = False

    def __init__(self, config: VAEGANConfig) -> None:
        super().__init__(config)
        c = config
        self.discriminator = StepNet(c.n_features, c.disc_hidden, 1, c.disc_layers, c.backbone)

    def dis(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(features Dis_l (batch, time, disc_hidden), per-step logits (batch, time, 1))."""
        f = self.discriminator.features(x)
        return f, self.discriminator.head(f)

    def optimizer_groups(self) -> dict[str, list[torch.nn.Parameter]]:
        return {"gen": list(self.encoder.parameters()) + list(self.decoder.parameters()),
                "disc": list(self.discriminator.parameters())}

    def optimizer_config(self, name: str) -> dict[str, float]:
        return adversarial_lrs(self.config, name)

    @staticmethod
    def feature_nll(f_fake: torch.Tensor, f_real: torch.Tensor) -> torch.Tensor:
        """-log N(Dis_l(x) | Dis_l(x~), I) up to a constant, per window, batch mean."""
        return 0.5 * ((f_fake - f_real) ** 2).flatten(1).sum(1).mean()

    def _gen_terms(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        mean, logvar = self.posterior(x)
        z = reparameterize(mean, logvar)
        kl = gaussian_kl(mean, logvar).mean()
        f_real = self.dis(x)[0].detach()
        with frozen(self.decoder):  # encoder's copy: gradients pass the decoder to z only
            llike_enc = self.feature_nll(self.dis(self.decoder(z))[0], f_real)
        x_tilde = self.decoder(z.detach())  # decoder's copy: nothing reaches the encoder
        f_tilde, logit_tilde = self.dis(x_tilde)
        llike_dec = self.feature_nll(f_tilde, f_real)
        x_p = self.decoder(torch.randn_like(mean))
        gan_g = generator_loss(logit_tilde, self.dis(x_p)[1])
        gen = kl + llike_enc + self.config.gamma * llike_dec + gan_g
        return {"gen": gen, "kl": kl, "llike": llike_dec, "g_loss": gan_g}

    def _disc_loss(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            mean, logvar = self.posterior(x)
            x_tilde = self.decoder(reparameterize(mean, logvar))
            x_p = self.decoder(torch.randn_like(mean))
        return discriminator_loss(self.dis(x)[1], self.dis(x_tilde)[1], self.dis(x_p)[1])

    def training_step(self, batch: dict[str, torch.Tensor], optimizers: dict[str, Any],
                      backward: Any, step: int) -> dict[str, Any]:
        """Dis on L_GAN, then Enc + Dec on their own objectives (one step, exact split)."""
        x = batch["x"]
        self.check_input(x)
        d = self._disc_loss(x)
        optimizer_step(optimizers["disc"], d, backward)
        t = self._gen_terms(x)
        optimizer_step(optimizers["gen"], t["gen"], backward)
        return {"loss": t["gen"].detach(), "d_loss": d.detach(),
                **{k: v.detach() for k, v in t.items() if k != "gen"}}

    def loss(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Validation: ``loss`` = KL + L_llike + gamma L_llike + generator GAN loss."""
        x = batch["x"]
        self.check_input(x)
        t = self._gen_terms(x)
        recon = ((x - self.decoder(self.posterior(x)[0])) ** 2).flatten(1).sum(1).mean()
        return {"loss": t["gen"], "kl": t["kl"], "llike": t["llike"], "g_loss": t["g_loss"],
                "d_loss": self._disc_loss(x), "recon": recon}
