"""Shared base of ``vae_dense``, ``vae_conv`` and ``timevae`` (Desai et al. 2021).

Mirrors the reference's ``vae_base.py`` (github.com/abudesai/timeVAE): the three models differ
only in their encoder/decoder networks; the config fields, Gaussian posterior, loss and sampling
from the N(0, I) prior live here. Not a registered model. Tensors are (batch, time, features).
"""
from __future__ import annotations

import dataclasses

import torch
from torch import nn

from ..config import require
from ..errors import FactorseqError
from ..nn.gaussian import MomentAccumulator, robust_cholesky
from ..nn.masking import batch_mask, masked_mean, masked_sum
from .base import (
    DECODES,
    ENCODES,
    GENERATES,
    ModelConfig,
    SequenceModel,
    gaussian_kl,
    reparameterize,
)
from .outputs import CodeSpec


@dataclasses.dataclass
class VAEConfig(ModelConfig):
    """Hyper-parameters of the TimeVAE family; defaults are the reference's
    ``config/hyperparameters.yaml``.

    - ``latent_dim``: size of z (8).
    - ``hidden_layer_sizes``: units (dense) or filters (conv) per encoder layer, reversed in the
      decoder ((50, 100, 200)).
    - ``reconstruction_wt``: weight of the reconstruction error against the KL term (3.0).
    - ``observation_noise``: what a sample is given its code z. ``none``: the decoder mean g(z)
      (the reference). ``diagonal`` / ``full``: g(z) + e, e ~ N(m, S) i.i.d. over time steps,
      where m and S are the maximum-likelihood Gaussian of the training residuals
      x - g(E[z|x]) fitted after training (``on_fit_end``): S diagonal (per-feature noise) or the
      channels' full covariance (noise correlated across channels, e.g. two sensors that share
      one noise source).
    """

    latent_dim: int = 8
    hidden_layer_sizes: tuple[int, ...] = (50, 100, 200)
    reconstruction_wt: float = 3.0
    observation_noise: str = "none"

    def __post_init__(self) -> None:
        super().__post_init__()
        require(isinstance(self.hidden_layer_sizes, (list, tuple)),
                f"hidden_layer_sizes must be a list of ints, got {self.hidden_layer_sizes!r}")
        self.hidden_layer_sizes = tuple(int(h) for h in self.hidden_layer_sizes)
        require(len(self.hidden_layer_sizes) >= 1, "hidden_layer_sizes must not be empty")
        require(all(h >= 1 for h in self.hidden_layer_sizes),
                f"hidden_layer_sizes must be >= 1, got {list(self.hidden_layer_sizes)}")
        require(self.latent_dim >= 1, f"latent_dim must be >= 1, got {self.latent_dim}")
        require(self.reconstruction_wt > 0,
                f"reconstruction_wt must be > 0, got {self.reconstruction_wt}")
        require(self.observation_noise in NOISES, f"observation_noise must be one of "
                f"{', '.join(NOISES)}, got {self.observation_noise!r}")


NOISES = ("none", "diagonal", "full")


def timevae_reconstruction_loss(x: torch.Tensor, x_hat: torch.Tensor,
                                mask: torch.Tensor | None = None) -> torch.Tensor:
    """Per-window reconstruction error of the reference, shape (batch,).

    ``sum_{t,d} (x - x_hat)^2 + sum_t (mean_d x - mean_d x_hat)^2``: the squared error plus the
    squared error of the per-time-step mean over features (the reference's ``axis=[2]`` term),
    for ``x``/``x_hat`` of shape (batch, time, features).

    With ``mask`` (same shape, 1 = observed) both sums run over observed entries only and the
    step means are means over the features observed at that step (x and x_hat averaged over
    the same features, so the term still compares like with like); a step with no observed
    feature adds nothing. See :mod:`factorseq.nn.masking` for why the sum is not rescaled.
    """
    err = masked_sum((x - x_hat).pow(2), mask, (1, 2))
    step = masked_mean(x, mask, 2) - masked_mean(x_hat, mask, 2)
    err_mean = step.pow(2).sum(dim=1)
    return err + err_mean


class GaussianVAE(SequenceModel):
    """Contract methods of the TimeVAE family: q(z|x) = N(mean, diag e^logvar), p(z) = N(0, I).

    Subclasses build ``self.encoder`` (x (batch, time, features) -> (mean, logvar)) and
    ``self.decoder`` (z (batch, latent_dim) -> (batch, time, features)).
    """

    Config = VAEConfig
    capabilities = frozenset({GENERATES, ENCODES, DECODES})
    handles_missing = True  # the reconstruction term sums over observed entries only
    scaler = "minmax"  # the reference scales every data set with a MinMaxScaler
    encoder: nn.Module
    decoder: nn.Module
    # runs saved before the option existed sample decoder means
    legacy_config = {"observation_noise": "none"}

    def __init__(self, config: VAEConfig) -> None:
        super().__init__(config)
        if config.observation_noise != "none":  # N(m, L L^T) of the residuals, fitted later
            d = config.n_features
            self.register_buffer("noise_mean", torch.zeros(d))
            self.register_buffer("noise_chol", torch.zeros(d, d))

    def posterior(self, x: torch.Tensor, attributes: torch.Tensor | None = None
                  ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(mean, logvar)`` of q(z|x, a), each (batch, latent_dim); x is (batch, time,
        features), ``attributes`` a (batch, n_attributes) for conditioned models."""
        self.check_input(x)
        return self.encoder(self._encoder_input(x, attributes))

    # --- attributes (models with n_attributes > 0: a conditional VAE, Sohn et al. 2015) ---
    @property
    def n_attributes(self) -> int:
        return int(getattr(self.config, "n_attributes", 0))

    def _attributes(self, a: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor:
        """``a`` (batch, n_attributes), or zeros (no attribute known: encode/decode/sample()
        of a conditioned model)."""
        return like.new_zeros(like.shape[0], self.n_attributes) if a is None else a.to(like)

    def _encoder_input(self, x: torch.Tensor, a: torch.Tensor | None) -> torch.Tensor:
        """x (batch, time, features) with the attributes as extra channels at every step."""
        if not self.n_attributes:
            return x
        a = self._attributes(a, x)
        return torch.cat([x, a[:, None, :].expand(-1, x.shape[1], -1)], dim=-1)

    def _decoder_input(self, z: torch.Tensor, a: torch.Tensor | None) -> torch.Tensor:
        """z (batch, latent_dim) with the attributes appended: p(x | z, a)."""
        return z if not self.n_attributes else torch.cat([z, self._attributes(a, z)], dim=-1)

    def _batch_attributes(self, batch: dict[str, torch.Tensor]) -> torch.Tensor | None:
        if not self.n_attributes:
            return None
        a = batch.get("attributes")
        if a is None or a.shape[-1] != self.n_attributes:
            raise FactorseqError(f"this {self.name} model conditions on {self.n_attributes} "
                                 "attribute values; the batch has none (or another number)")
        return a

    def code_specs(self) -> list[CodeSpec]:
        return [CodeSpec("z", self.config.latent_dim, "latent", description="posterior mean")]

    def _encode(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Posterior mean ``z`` (batch, latent_dim) of x (batch, time, features)."""
        return {"z": self.encoder(self._encoder_input(x, None))[0]}

    def _decode(self, codes: dict[str, torch.Tensor]) -> torch.Tensor:
        """z (batch, latent_dim) -> windows (batch, time, features), scaled space."""
        return self.decoder(self._decoder_input(codes["z"], None))

    def _sample_codes(self, n: int, given: dict[str, torch.Tensor],
                      generator: torch.Generator | None) -> dict[str, torch.Tensor]:
        """z ~ N(0, I) (batch, latent_dim) unless given."""
        z = torch.randn(n, self.config.latent_dim, generator=generator, device=self.device)
        return {"z": given.get("z", z)}

    def _sample(self, n: int, y: torch.Tensor | None,
                generator: torch.Generator | None) -> torch.Tensor:
        """n windows (n, time, features): z ~ N(0, I) decoded, plus the observation noise."""
        return self._sample_attributes(n, y, None, generator)

    def _sample_attributes(self, n: int, y: torch.Tensor | None, attributes: torch.Tensor | None,
                           generator: torch.Generator | None) -> torch.Tensor:
        """n windows decoded from z ~ N(0, I) and ``attributes`` (n, n_attributes)."""
        z = self._sample_codes(n, {}, generator)["z"]
        x = self.decoder(self._decoder_input(z, attributes))
        if self.config.observation_noise == "none":
            return x
        eps = torch.randn(x.shape, generator=generator, device=x.device)
        return x + self.noise_mean + eps @ self.noise_chol.T

    @torch.no_grad()
    def on_fit_end(self, loader) -> None:
        """Fit the observation noise: the Gaussian of the residuals x - g(E[z|x]) of every
        training window and step, diagonal or with the channels' full covariance."""
        if self.config.observation_noise == "none":
            return
        acc = MomentAccumulator()
        for b in loader:
            x, a = b["x"].to(self.device), self._batch_attributes(b)
            a = None if a is None else a.to(self.device)
            r = x - self.decoder(self._decoder_input(self.posterior(x, a)[0], a))
            if "x_mask" in b:  # residuals of observed entries only (rows fully observed)
                r = r[b["x_mask"].to(self.device).bool().all(-1)]
            acc.add(r)
        if acc.n < 2:
            return
        mean, cov = acc.mean_cov()
        if self.config.observation_noise == "diagonal":
            cov = torch.diag(cov.diagonal())
        self.noise_mean.copy_(mean.float())
        self.noise_chol.copy_(robust_cholesky(cov).float())

    def loss(self, batch: dict[str, torch.Tensor],
             generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """Negative ELBO of the reference, averaged over the batch.

        Per window: ``reconstruction_wt * R(x, decode(z)) + KL(q(z|x) || N(0, I))`` with
        z ~ q(z|x) reparameterised (the reference decodes a sample in training and validation)
        and R = :func:`timevae_reconstruction_loss` over the observed entries (``x_mask``;
        the encoder sees the placeholders, the loss never asks for them). The reference's
        Keras ``train_step`` sums both terms over the batch (``reduce_sum``); we divide by the
        batch size so the loss is a per-window mean like every factorseq model: the gradient is
        scaled by 1/batch, which Adam's normalised step leaves essentially unchanged (up to eps /
        grad clipping). Returns ``loss`` and the batch means ``reconstruction`` (unweighted R)
        and ``kl``.
        """
        x, a = batch["x"], self._batch_attributes(batch)
        mean, logvar = self.posterior(x, a)
        z = reparameterize(mean, logvar, generator)
        recon = timevae_reconstruction_loss(x, self.decoder(self._decoder_input(z, a)),
                                            batch_mask(batch, x))
        kl = gaussian_kl(mean, logvar)
        total = self.config.reconstruction_wt * recon + kl
        return {"loss": total.mean(), "reconstruction": recon.mean(), "kl": kl.mean()}
