"""Sequence backbones shared by the classic family (ae, vae, gan, aae, vaegan, timegan, dann).

Hu et al. (2017) read these models as one family: a generator, an inference network and a
discriminator. Here the three roles are built from the same few blocks, all over tensors of
shape (batch, time, features):

- :class:`StepNet`: per-step network (batch, time, in) -> (batch, time, out): a stacked GRU /
  LSTM (or same-padded 1-D convolutions) plus a linear read-out. TimeGAN's five networks,
  RCGAN's generator and every per-step discriminator are StepNets.
- :class:`SeqEncoder`: whole-sequence encoder (batch, time, in) -> (batch, out): the last
  state of the top recurrent layer, or strided convolutions flattened. Inference networks
  q(z|x), DANN's feature extractor.
- :class:`SeqDecoder`: (batch, latent) -> (batch, time, out), the mirror of SeqEncoder: the
  code sets the initial recurrent state and is fed at every step, or is unfolded by
  transposed convolutions that retrace the encoder's lengths exactly. Generators p(x|z).
- :func:`mlp`: small dense networks on codes (AAE's code discriminator, DANN's heads).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from ..config import require

CELLS = ("gru", "lstm", "conv")
RECURRENT = ("gru", "lstm")
ACTIVATIONS = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, None: None, "linear": None}


def check_output(output: str) -> None:
    """A generator/decoder read-out: ``linear`` (any scaling) or ``sigmoid`` (data in [0, 1])."""
    require(output in ("linear", "sigmoid"), f"output must be linear or sigmoid, got {output!r}")


def check_backbone(cell: str, hidden: int, layers: int, *, allowed: tuple[str, ...] = CELLS,
                   kernel_size: int = 3) -> None:
    """Config validation shared by every model built on these backbones."""
    require(cell in allowed, f"backbone must be one of {', '.join(allowed)}, got {cell!r}")
    require(hidden >= 1, f"hidden must be >= 1, got {hidden}")
    require(layers >= 1, f"layers must be >= 1, got {layers}")
    require(kernel_size >= 1 and kernel_size % 2 == 1,
            f"kernel_size must be an odd number >= 1, got {kernel_size}")


def _rnn(cell: str, in_dim: int, hidden: int, layers: int) -> nn.RNNBase:
    cls = nn.GRU if cell == "gru" else nn.LSTM
    return cls(in_dim, hidden, num_layers=layers, batch_first=True)


class ConvStack(nn.Module):
    """Same-padded 1-D convolutions + ReLU: (batch, time, in) -> (batch, time, hidden)."""

    def __init__(self, in_dim: int, hidden: int, layers: int, kernel_size: int = 3) -> None:
        super().__init__()
        blocks: list[nn.Module] = []
        for i in range(layers):
            blocks += [nn.Conv1d(in_dim if i == 0 else hidden, hidden, kernel_size,
                                 padding=kernel_size // 2), nn.ReLU()]
        self.net = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.transpose(1, 2)).transpose(1, 2)


class StepNet(nn.Module):
    """Per-step network (batch, time, in) -> (batch, time, out).

    ``cell`` gru/lstm: a stacked recurrent network (TimeGAN's ``rnn_cell`` stack); conv:
    same-padded convolutions (non-causal). A linear read-out maps each step's top hidden state
    to ``out_dim`` followed by ``activation`` (sigmoid for TimeGAN's networks, None = linear).
    ``features(x)`` returns the hidden states (batch, time, hidden) before the read-out.
    """

    def __init__(self, in_dim: int, hidden: int, out_dim: int, layers: int = 1,
                 cell: str = "gru", activation: str | None = None,
                 kernel_size: int = 3) -> None:
        super().__init__()
        check_backbone(cell, hidden, layers, kernel_size=kernel_size)
        require(activation in ACTIVATIONS, f"unknown activation {activation!r}")
        self.cell = cell
        self.body = (_rnn(cell, in_dim, hidden, layers) if cell in RECURRENT
                     else ConvStack(in_dim, hidden, layers, kernel_size))
        self.head = nn.Linear(hidden, out_dim)
        self.activation = ACTIVATIONS[activation]

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Top-layer hidden states, (batch, time, hidden)."""
        return self.body(x)[0] if self.cell in RECURRENT else self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.head(self.features(x))
        return self.activation(y) if self.activation is not None else y


def _conv_lengths(seq_len: int, layers: int) -> list[int]:
    """Lengths after each stride-2, kernel-3, padding-1 convolution: L -> ceil(L / 2)."""
    lengths = [seq_len]
    for _ in range(layers):
        lengths.append(math.ceil(lengths[-1] / 2))
    return lengths


class SeqEncoder(nn.Module):
    """Whole-sequence encoder (batch, time, in) -> (batch, out_dim).

    Recurrent: the last hidden state of the top layer, then a linear map. Conv: ``layers``
    stride-2 convolutions (time halves each layer, channels ``hidden``), flattened, then a
    linear map (TimeVAE-style). ``seq_len`` is needed by the conv variant only.
    """

    def __init__(self, in_dim: int, hidden: int, out_dim: int, layers: int = 1,
                 cell: str = "gru", seq_len: int | None = None) -> None:
        super().__init__()
        check_backbone(cell, hidden, layers)
        self.cell = cell
        if cell in RECURRENT:
            self.body = _rnn(cell, in_dim, hidden, layers)
            flat = hidden
        else:
            require(seq_len is not None and seq_len >= 1, "conv encoder needs seq_len")
            self.lengths = _conv_lengths(seq_len, layers)
            convs: list[nn.Module] = []
            for i in range(layers):
                convs += [nn.Conv1d(in_dim if i == 0 else hidden, hidden, 3, stride=2,
                                    padding=1), nn.ReLU()]
            self.body = nn.Sequential(*convs)
            flat = hidden * self.lengths[-1]
        self.out = nn.Linear(flat, out_dim)

    def pooled(self, x: torch.Tensor) -> torch.Tensor:
        """The summary before the output map: last top-layer state or flattened conv maps."""
        if self.cell == "gru":
            return self.body(x)[1][-1]
        if self.cell == "lstm":
            return self.body(x)[1][0][-1]
        return self.body(x.transpose(1, 2)).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.pooled(x))


class SeqDecoder(nn.Module):
    """Code-to-sequence decoder (batch, latent) -> (batch, seq_len, out_dim).

    Recurrent: tanh(W z) is the initial hidden state of every layer (LSTM cells start at 0) and
    z is also the input at every step; a linear read-out per step. Conv: a linear map to
    ``hidden`` channels at the encoder's shortest length, then stride-2 transposed convolutions
    whose output padding retraces the encoder's lengths exactly, then a same-padded convolution
    to ``out_dim``. ``activation`` as in :class:`StepNet`.
    """

    def __init__(self, latent_dim: int, hidden: int, out_dim: int, seq_len: int,
                 layers: int = 1, cell: str = "gru", activation: str | None = None) -> None:
        super().__init__()
        check_backbone(cell, hidden, layers)
        require(activation in ACTIVATIONS, f"unknown activation {activation!r}")
        self.cell, self.hidden, self.layers, self.seq_len = cell, hidden, layers, seq_len
        self.activation = ACTIVATIONS[activation]
        if cell in RECURRENT:
            self.init = nn.Linear(latent_dim, hidden * layers)
            self.body = _rnn(cell, latent_dim, hidden, layers)
            self.out = nn.Linear(hidden, out_dim)
        else:
            self.lengths = _conv_lengths(seq_len, layers)
            self.init = nn.Linear(latent_dim, hidden * self.lengths[-1])
            ups: list[nn.Module] = []
            for i in range(layers, 0, -1):  # length lengths[i] -> lengths[i - 1]
                pad = self.lengths[i - 1] - 2 * self.lengths[i] + 1  # 0 or 1
                ups += [nn.ConvTranspose1d(hidden, hidden, 3, stride=2, padding=1,
                                           output_padding=pad), nn.ReLU()]
            self.body = nn.Sequential(*ups)
            self.out = nn.Conv1d(hidden, out_dim, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        b = z.shape[0]
        if self.cell in RECURRENT:
            h0 = torch.tanh(self.init(z)).view(b, self.layers, self.hidden).transpose(0, 1)
            h0 = h0.contiguous()
            state = h0 if self.cell == "gru" else (h0, torch.zeros_like(h0))
            steps = z.unsqueeze(1).expand(b, self.seq_len, z.shape[-1])
            y = self.out(self.body(steps, state)[0])
        else:
            h = self.init(z).view(b, self.hidden, self.lengths[-1])
            y = self.out(self.body(h)).transpose(1, 2)
        return self.activation(y) if self.activation is not None else y


def mlp(in_dim: int, hidden: int, out_dim: int, layers: int = 2) -> nn.Sequential:
    """Dense network on codes: ``layers`` hidden layers of LeakyReLU(0.2), then linear."""
    mods: list[nn.Module] = []
    d = in_dim
    for _ in range(layers):
        mods += [nn.Linear(d, hidden), nn.LeakyReLU(0.2)]
        d = hidden
    mods.append(nn.Linear(d, out_dim))
    return nn.Sequential(*mods)


def one_hot_condition(y: torch.Tensor | None, y_mask: torch.Tensor | None, n_classes: int,
                      batch: int, device: torch.device) -> torch.Tensor:
    """One-hot labels (batch, n_classes); unknown labels (``y_mask`` False) are all zeros.

    The condition of conditional generators/discriminators (RCGAN concatenates it to every
    step); one code path for labelled and unlabelled rows.
    """
    c = torch.zeros(batch, n_classes, device=device)
    if y is None:
        return c
    known = torch.ones(batch, dtype=torch.bool, device=device) if y_mask is None else y_mask
    idx = torch.nonzero(known, as_tuple=True)[0]
    c[idx, y[idx].long()] = 1.0
    return c


def repeat_steps(c: torch.Tensor, seq_len: int) -> torch.Tensor:
    """(batch, k) -> (batch, seq_len, k): a per-sequence vector fed at every step."""
    return c.unsqueeze(1).expand(c.shape[0], seq_len, c.shape[1])
