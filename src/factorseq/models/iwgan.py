"""``iwgan``: importance-weighted GAN (Hu, Yang, Salakhutdinov & Xing, ICLR 2018: IWGAN).

In Hu et al.'s reading a GAN's generator step is the sleep phase of wake-sleep: it fits
p_theta(x | y=0) to the flipped discriminator q^r_phi(x | y), minimising a KL with the model in
the first argument. IWGAN borrows the importance weighting of IWAE (Burda et al. 2016) for this
step: k generated samples x_i = G(z_i) are weighted by the density ratio that the
discriminator estimates, w_i = q^r_phi(y|x_i) / q_phi(y|x_i) = D(x_i) / (1 - D(x_i)), normalised
over the k samples, and the generator follows::

    grad_theta L = E_{z_1..k} [ sum_i w~_i grad_theta log D(G(z_i)) ],  w~_i = w_i / sum_j w_j

with the weights held constant (no gradient through w). Samples the discriminator already
takes for real count more; the k samples are the generator's batch. With D = 1/2 everywhere
the weights are uniform and this is the GAN. Here: ``gan`` (RCGAN) with exactly that change
in the generator's loss; the per-step discriminator's window log-odds is the mean of its step
logits (``nn.adversarial.window_logits``), so w~ = softmax over the batch of those log-odds.
The discriminator's loss is the GAN's. ``--set importance_weights=false`` is ``gan``.
"""
from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import torch

from ..nn.adversarial import importance_weights, window_generator_loss
from ..registry import register
from .gan import GAN, GANConfig


@dataclasses.dataclass
class IWGANConfig(GANConfig):
    """GANConfig plus ``importance_weights`` (True): weight the generator's samples by D's
    self-normalised density ratio; False is the plain ``gan`` (the ablation)."""

    importance_weights: bool = True


@register("iwgan")
class IWGAN(GAN):
    """RCGAN whose generator loss weights its samples by D / (1 - D), normalised in the batch."""

    Config = IWGANConfig
    legacy_config: ClassVar[dict[str, Any]] = {}  # every iwgan run writes all its keys

    def __init__(self, config: IWGANConfig) -> None:
        super().__init__(config)
        self._ess = torch.tensor(1.0)  # effective sample size / batch of the last G batch

    def _g_loss(self, n: int, c: torch.Tensor | None) -> torch.Tensor:
        """sum_i w~_i (-log D(G(z_i))), w~ = softmax of D's window log-odds (constants)."""
        if not self.config.importance_weights:
            return super()._g_loss(n, c)
        logits = self.discriminate(self.fake(self.noise(n), c), c)
        w = importance_weights(logits)
        self._ess = 1.0 / (w.pow(2).sum() * n)  # 1 when uniform, 1/n when one sample has all
        return (w * window_generator_loss(logits)).sum()

    def training_step(self, batch: dict[str, torch.Tensor], optimizers: dict[str, Any],
                      backward: Any, step: int) -> dict[str, Any]:
        """The GAN's round; generator batches also log ``iw_ess``, the weights' effective
        sample size as a fraction of the batch (1 / (n sum w~^2))."""
        terms = super().training_step(batch, optimizers, backward, step)
        if "g_loss" in terms and self.config.importance_weights:
            terms["iw_ess"] = self._ess.detach()
        return terms
