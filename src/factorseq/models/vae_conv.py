"""Convolutional VAE of TimeVAE (Desai et al. 2021, arXiv:2111.08095), ``vae_conv``.

The paper's "base" TimeVAE (the reference's ``vae_conv_model.py``). Encoder: one Conv1D
(kernel 3, stride 2, Keras "same" padding, ReLU) per ``hidden_layer_sizes`` entry, flatten,
dense to the posterior mean and log-variance. Decoder: dense (ReLU) -> reshape -> Conv1DTranspose
(kernel 3, stride 2, ReLU) per reversed ``hidden_layer_sizes[:-1]`` -> Conv1DTranspose to
``features`` channels (ReLU) -> flatten -> dense to ``time * features`` -> reshape to
(batch, time, features). Loss and sampling: ``vae_base``.

With ``n_attributes`` > 0 (data with ``attribute_columns``) it is a conditional VAE: the
encoded attributes enter the encoder as extra channels at every step and the decoder beside
z, p(x | z, a) q(z | x, a), so ``sample(attributes=...)`` draws windows for given attributes.
"""
from __future__ import annotations

import dataclasses

from ..config import require
from ..nn.timevae_blocks import ConvDecoder, ConvEncoder, keras_init_
from ..registry import register
from .base import ATTRIBUTES
from .vae_base import GaussianVAE, VAEConfig


@dataclasses.dataclass
class VAEConvConfig(VAEConfig):
    """``vae_conv`` config: ``latent_dim`` 8, ``hidden_layer_sizes`` (50, 100, 200) filters,
    ``reconstruction_wt`` 3.0 (the reference's defaults); ``seq_len``/``n_features`` and
    ``n_attributes`` (encoded attribute width, 0 = unconditioned) from the data."""

    n_attributes: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        require(self.n_attributes >= 0, f"n_attributes must be >= 0, got {self.n_attributes}")


@register("vae_conv")
class VAEConv(GaussianVAE):
    """Convolutional VAE on windows (batch, time, features); see the module docstring."""

    Config = VAEConvConfig
    capabilities = GaussianVAE.capabilities | {ATTRIBUTES}

    def __init__(self, config: VAEConvConfig) -> None:
        super().__init__(config)
        c = config
        self.encoder = ConvEncoder(c.seq_len, c.n_features + c.n_attributes,
                                   c.hidden_layer_sizes, c.latent_dim)
        self.decoder = ConvDecoder(c.seq_len, c.n_features, c.hidden_layer_sizes,
                                   c.latent_dim + c.n_attributes, self.encoder.out_len)
        keras_init_(self)
