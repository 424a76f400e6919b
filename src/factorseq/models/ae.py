"""``ae``: deterministic sequence autoencoder, trained on reconstruction only.

Encoder x (batch, time, features) -> z (batch, latent_dim) and decoder z -> x on the shared
backbones (GRU, LSTM or strided conv). Nothing shapes the code distribution during training;
to sample, a full-covariance Gaussian N(mu, Sigma) is fitted to the codes of the training
windows after training (``on_fit_end``) and stored as buffers (mean, Cholesky factor of
Sigma), then z = mu + L eps is decoded. In Hu et al.'s (2017) table the AE is the family's
degenerate member: an inference network and a generator, no discriminator, no prior.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import torch

from ..config import require
from ..nn.backbones import SeqDecoder, SeqEncoder, check_backbone, check_output
from ..nn.gaussian import robust_cholesky
from ..nn.masking import batch_mask, masked_sum
from ..registry import register
from .base import DECODES, ENCODES, GENERATES, ModelConfig, SequenceModel
from .outputs import CodeSpec


@dataclasses.dataclass
class AEConfig(ModelConfig):
    """Backbone of the code autoencoders (ae, vae, aae, vaegan).

    - ``backbone``: ``gru``, ``lstm`` or ``conv`` (stride-2 convolutions, TimeVAE-style).
    - ``hidden``: recurrent units / conv channels; ``layers``: stacked layers.
    - ``latent_dim``: size of the code z.
    - ``output``: decoder read-out, ``linear`` (any scaling) or ``sigmoid`` (data in [0, 1]).
    """

    backbone: str = "gru"
    hidden: int = 64
    layers: int = 2
    latent_dim: int = 8
    output: str = "linear"

    def __post_init__(self) -> None:
        super().__post_init__()
        check_backbone(self.backbone, self.hidden, self.layers)
        require(self.latent_dim >= 1, f"latent_dim must be >= 1, got {self.latent_dim}")
        check_output(self.output)


def sse(x: torch.Tensor, x_hat: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Squared error summed over time and features, per window: shape (batch,); with ``mask``
    (batch, time, features), 1 = observed, over the observed entries only (not rescaled: see
    :mod:`factorseq.nn.masking`)."""
    return masked_sum(((x - x_hat) ** 2).flatten(1), None if mask is None else mask.flatten(1), 1)


class CodeAutoencoder(SequenceModel):
    """Encoder (batch, time, features) -> (batch, code_out) and decoder (batch, latent) ->
    (batch, time, features) on the shared backbones; ``code_out`` is latent_dim for a
    deterministic code, 2 * latent_dim for a Gaussian posterior (mean, log-variance)."""

    def __init__(self, config: AEConfig, code_out: int) -> None:
        super().__init__(config)
        c = config
        self.encoder = SeqEncoder(c.n_features, c.hidden, code_out, c.layers, c.backbone,
                                  seq_len=c.seq_len)
        self.decoder = SeqDecoder(c.latent_dim, c.hidden, c.n_features, c.seq_len, c.layers,
                                  c.backbone, activation=c.output)

    capabilities = frozenset({GENERATES, ENCODES, DECODES})

    def code_specs(self) -> list[CodeSpec]:
        return [CodeSpec("z", self.config.latent_dim, "latent")]

    def _decode(self, codes: dict[str, torch.Tensor]) -> torch.Tensor:
        """Code z (batch, latent_dim) -> windows (batch, time, features)."""
        return self.decoder(codes["z"])


@register("ae")
class AE(CodeAutoencoder):
    """Deterministic autoencoder; samples from a Gaussian fitted to the training codes."""

    Config = AEConfig
    handles_missing = True  # reconstruction over observed entries only

    def __init__(self, config: AEConfig) -> None:
        super().__init__(config, config.latent_dim)
        k = config.latent_dim
        # N(mu, L L^T) of the training codes, fitted in on_fit_end; N(0, I) until then
        self.register_buffer("code_mean", torch.zeros(k))
        self.register_buffer("code_chol", torch.eye(k))

    def _encode(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Windows (batch, time, features) -> codes z (batch, latent_dim)."""
        return {"z": self.encoder(x)}

    def loss(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        x = batch["x"]
        self.check_input(x)
        recon = sse(x, self.decoder(self.encoder(x)), batch_mask(batch, x)).mean()
        return {"loss": recon, "recon": recon}

    @torch.no_grad()
    def on_fit_end(self, loader: Any) -> None:
        """Fit N(mu, Sigma) to the codes of every training window (batches of (batch, time,
        features)); Sigma gets a small ridge so that its Cholesky factor exists."""
        was_training = self.training
        self.eval()
        codes = [self.encoder(b["x"].to(self.device)).double() for b in loader]
        self.train(was_training)
        if not codes:
            return
        z = torch.cat(codes)
        mean = z.mean(0)
        cov = torch.cov(z.T).reshape(z.shape[1], z.shape[1]) if len(z) > 1 \
            else torch.zeros(z.shape[1], z.shape[1], dtype=z.dtype, device=z.device)
        chol = robust_cholesky(cov)
        self.code_mean.copy_(mean.float())
        self.code_chol.copy_(chol.float())

    def _sample(self, n: int, y: torch.Tensor | None,
                generator: torch.Generator | None) -> torch.Tensor:
        """n windows (n, time, features): z = mu + L eps, eps ~ N(0, I), decoded."""
        eps = torch.randn(n, self.config.latent_dim, generator=generator,
                          device=self.code_mean.device)
        return self.decoder(self.code_mean + eps @ self.code_chol.T)
