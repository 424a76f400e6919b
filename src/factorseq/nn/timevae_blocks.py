"""Layers shared by the TimeVAE family (Desai et al. 2021, arXiv:2111.08095).

Keras-style layers of the reference implementation (github.com/abudesai/timeVAE, TensorFlow):

- :class:`SameConv1d` / :class:`SameConvTranspose1d`: Conv1D / Conv1DTranspose with Keras'
  ``padding="same"`` (PyTorch's ``padding="same"`` does not allow ``stride > 1``).
- :class:`ConvEncoder` / :class:`ConvDecoder`: the conv encoder of ``vae_conv``/``timevae`` and the
  conv-transpose decoder (all of ``vae_conv``'s decoder, ``timevae``'s residual branch).
- :func:`keras_init_`: Keras' default initialisation (Glorot-uniform weights, zero biases).

Sequence tensors are (batch, time, features); conv layers run channels-first internally and
flatten/reshape channels-last like Keras (only a permutation of the dense weights).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def keras_init_(module: nn.Module) -> None:
    """Keras' defaults for every Linear/Conv: Glorot-uniform weights, zero biases."""
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Conv1d, nn.ConvTranspose1d)):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


class SameConv1d(nn.Conv1d):
    """Conv1d on (batch, channels, time) with Keras ``padding="same"``.

    Output length ``ceil(L / stride)``; the needed padding ``(out - 1) * stride + k - L`` is
    split with the odd element on the right, as TensorFlow does.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3,
                 stride: int = 2) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        length, k, s = x.shape[-1], self.kernel_size[0], self.stride[0]
        out = -(-length // s)
        total = max((out - 1) * s + k - length, 0)
        return super().forward(F.pad(x, (total // 2, total - total // 2)))


class SameConvTranspose1d(nn.ConvTranspose1d):
    """ConvTranspose1d on (batch, channels, time) with Keras ``padding="same"``.

    Output length ``L * stride``: the full transposed conv has ``(L - 1) * stride + k`` steps;
    like TensorFlow we crop ``pad // 2`` on the left with ``pad = max(k - stride, 0)``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3,
                 stride: int = 2) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, in_channels, L) -> (batch, out_channels, L * stride).

        Computed in polyphase form: tap j of the kernel sends input step i to output step
        ``stride * i + j``, so output phase ``j % stride`` gets ``x @ W[:, :, j]`` shifted by
        ``j // stride`` rows. Same arithmetic as the transposed convolution, but as a few
        large matrix products, which CPUs run ~1.7x faster for the short sequences here.
        """
        b, _, length = x.shape
        k, s = self.kernel_size[0], self.stride[0]
        left = max(k - s, 0) // 2
        rows = length - 1 + -(-k // s)  # ceil: rows of `stride` output steps in the full output
        xt = x.transpose(1, 2)  # (batch, L, in_channels)
        out = x.new_zeros(b, rows, s, self.out_channels)
        for j in range(k):
            q, phase = divmod(j, s)
            out[:, q:q + length, phase] += xt @ self.weight[:, :, j]
        y = out.view(b, rows * s, self.out_channels)[:, left:left + length * s] + self.bias
        return y.transpose(1, 2)


class ConvEncoder(nn.Module):
    """(batch, time, features) -> (mean, logvar), each (batch, latent_dim).

    One ``SameConv1d(kernel 3, stride 2) + ReLU`` per hidden size (time halves, rounded up,
    each layer), flatten, then two dense heads. The flattened size comes from a dry run, so any
    ``seq_len >= 1`` works.
    """

    def __init__(self, seq_len: int, n_features: int, hidden: tuple[int, ...],
                 latent_dim: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = n_features
        for h in hidden:
            layers += [SameConv1d(channels, h, 3, 2), nn.ReLU()]
            channels = h
        self.convs = nn.Sequential(*layers)
        with torch.no_grad():
            self.out_len = int(self.convs(torch.zeros(1, n_features, seq_len)).shape[-1])
        self.flat_dim = self.out_len * channels
        self.mean = nn.Linear(self.flat_dim, latent_dim)
        self.logvar = nn.Linear(self.flat_dim, latent_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.convs(x.transpose(1, 2))  # (B, C, L')
        h = h.transpose(1, 2).flatten(1)  # channels-last flatten, as Keras' Flatten
        return self.mean(h), self.logvar(h)


class ConvDecoder(nn.Module):
    """z (batch, latent_dim) -> (batch, seq_len, n_features), the reference's conv decoder.

    dense(ReLU) to ``enc_len * hidden[-1]`` -> reshape (enc_len, hidden[-1]) -> one
    ``SameConvTranspose1d(kernel 3, stride 2) + ReLU`` per reversed ``hidden[:-1]`` -> a last one
    to ``n_features`` channels (ReLU too, as the reference) -> flatten -> dense to
    ``seq_len * n_features`` -> reshape. The conv stack doubles time ``len(hidden)`` times, so
    its length need not equal ``seq_len``; the final dense maps it there.
    """

    def __init__(self, seq_len: int, n_features: int, hidden: tuple[int, ...],
                 latent_dim: int, enc_len: int) -> None:
        super().__init__()
        self.seq_len, self.n_features = seq_len, n_features
        self.enc_len, self.channels = enc_len, hidden[-1]
        self.dense = nn.Linear(latent_dim, enc_len * hidden[-1])
        layers: list[nn.Module] = []
        channels = hidden[-1]
        for h in reversed(hidden[:-1]):
            layers += [SameConvTranspose1d(channels, h, 3, 2), nn.ReLU()]
            channels = h
        layers += [SameConvTranspose1d(channels, n_features, 3, 2), nn.ReLU()]
        self.deconvs = nn.Sequential(*layers)
        conv_len = enc_len * 2 ** len(hidden)
        self.final = nn.Linear(conv_len * n_features, seq_len * n_features)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.dense(z)).view(-1, self.enc_len, self.channels)  # channels-last reshape
        h = self.deconvs(h.transpose(1, 2))  # (B, D, enc_len * 2^n)
        h = self.final(h.transpose(1, 2).flatten(1))
        return h.view(-1, self.seq_len, self.n_features)
