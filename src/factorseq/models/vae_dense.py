"""Dense VAE baseline of TimeVAE (Desai et al. 2021, arXiv:2111.08095), ``vae_dense``.

As the reference's ``vae_dense_model.py``: the window (batch, time, features) is flattened and
passed through dense ReLU layers of ``hidden_layer_sizes`` units to the posterior mean and
log-variance; the decoder mirrors it (reversed sizes, ReLU) and ends with a linear dense layer
to ``time * features`` reshaped to (batch, time, features). Loss and sampling: ``vae_base``.
"""
from __future__ import annotations

import dataclasses

import torch
from torch import nn

from ..nn.timevae_blocks import keras_init_
from ..registry import register
from .vae_base import GaussianVAE, VAEConfig


@dataclasses.dataclass
class VAEDenseConfig(VAEConfig):
    """``vae_dense`` config: ``latent_dim`` 8, ``hidden_layer_sizes`` (50, 100, 200),
    ``reconstruction_wt`` 3.0 (the reference's defaults); ``seq_len``/``n_features`` from data."""


class DenseEncoder(nn.Module):
    """(batch, time, features) -> flatten -> dense ReLU stack -> (mean, logvar) (batch, latent)."""

    def __init__(self, seq_len: int, n_features: int, hidden: tuple[int, ...],
                 latent_dim: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = seq_len * n_features
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        self.body = nn.Sequential(*layers)
        self.mean = nn.Linear(width, latent_dim)
        self.logvar = nn.Linear(width, latent_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.body(x.flatten(1))
        return self.mean(h), self.logvar(h)


class DenseDecoder(nn.Module):
    """z (batch, latent) -> reversed dense ReLU stack -> dense -> (batch, time, features)."""

    def __init__(self, seq_len: int, n_features: int, hidden: tuple[int, ...],
                 latent_dim: int) -> None:
        super().__init__()
        self.seq_len, self.n_features = seq_len, n_features
        layers: list[nn.Module] = []
        width = latent_dim
        for h in reversed(hidden):
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        layers.append(nn.Linear(width, seq_len * n_features))
        self.body = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.body(z).view(-1, self.seq_len, self.n_features)


@register("vae_dense")
class VAEDense(GaussianVAE):
    """Dense VAE on windows (batch, time, features); see the module docstring."""

    Config = VAEDenseConfig

    def __init__(self, config: VAEDenseConfig) -> None:
        super().__init__(config)
        c = config
        self.encoder = DenseEncoder(c.seq_len, c.n_features, c.hidden_layer_sizes, c.latent_dim)
        self.decoder = DenseDecoder(c.seq_len, c.n_features, c.hidden_layer_sizes, c.latent_dim)
        keras_init_(self)
