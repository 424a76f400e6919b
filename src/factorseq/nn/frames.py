"""Per-frame networks for sequences of images: every step's features are one frame.

Sequences of images arrive like any other windows, ``(batch, time, C*H*W)``, each frame
flattened in (C, H, W) order; the data says the frame's shape in ``meta["frame_shape"]``
(``[C, H, W]``) and a model config field ``frame_shape`` is filled from it. A sequence model
picks its per-frame network with ``frame_net``: ``mlp`` reads the flat features as they are
(its own dense layers), ``conv`` puts :class:`FrameEncoder` in front of its recurrent
encoders and :class:`FrameDecoder` behind its codes (the DSVAE paper's Sprites networks are
of this kind: strided convolutions per frame, an LSTM across frames).

Both halve / double the image ``stages(H, W)`` times with kernel-4, stride-2, padding-1
(transposed) convolutions, which map an even side L to exactly L / 2 (and back to 2 L), so
the decoder retraces the encoder's sizes: 64 -> 32 -> 16 -> 8 -> 4, 32 -> 16 -> 8 -> 4,
16 -> 8 -> 4. Channels double at every stage from ``channels``.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from ..config import require
from ..errors import ShapeError

FRAME_NETS = ("mlp", "conv")
FRAME_OUTPUTS = ("linear", "sigmoid")
SMALLEST = 4  # stop halving at this side (or at an odd side)


def check_frame_net(frame_net: str, frame_shape: Sequence[int] | None, n_features: int,
                    channels: int = 1) -> None:
    """Config validation: ``conv`` needs a frame shape [C, H, W] whose product is the number
    of features (one frame per step)."""
    require(frame_net in FRAME_NETS,
            f"frame_net must be one of {', '.join(FRAME_NETS)}, got {frame_net!r}")
    require(channels >= 1, f"frame_channels must be >= 1, got {channels}")
    if frame_net != "conv":
        return
    require(frame_shape is not None, "frame_net conv needs frame_shape [C, H, W] (the data's "
            "meta frame_shape, or --set model.frame_shape=[C,H,W])")
    require(len(frame_shape) == 3 and all(int(s) >= 1 for s in frame_shape),
            f"frame_shape must be [C, H, W] of positive sizes, got {list(frame_shape)}")
    require(math.prod(frame_shape) == n_features,
            f"frame_shape {list(frame_shape)} holds {math.prod(frame_shape)} values per frame "
            f"but each step has {n_features} features")


def stages(height: int, width: int) -> int:
    """How many exact halvings take both sides down to ``SMALLEST`` (stops at an odd side)."""
    k = 0
    while height % 2 == 0 and width % 2 == 0 and min(height, width) > SMALLEST:
        height, width, k = height // 2, width // 2, k + 1
    return k


def _widths(channels: int, k: int) -> list[int]:
    """Channels after each of the k stages: channels, 2 channels, 4 channels, ..."""
    return [channels * 2 ** i for i in range(k)]


class FrameEncoder(nn.Module):
    """(batch, time, C*H*W) -> (batch, time, out_dim): the same 2-D conv net on every frame
    (stride-2 convolutions + LeakyReLU, then a linear map of the flattened maps)."""

    def __init__(self, frame_shape: Sequence[int], out_dim: int, channels: int = 32) -> None:
        super().__init__()
        self.frame_shape = tuple(int(s) for s in frame_shape)
        c, h, w = self.frame_shape
        k = stages(h, w)
        layers: list[nn.Module] = []
        for i, width in enumerate(_widths(channels, k)):
            layers += [nn.Conv2d(c if i == 0 else width // 2, width, 4, 2, 1),
                       nn.LeakyReLU(0.2)]
        self.body = nn.Sequential(*layers)
        last = channels * 2 ** (k - 1) if k else c
        self.out = nn.Linear(last * (h >> k) * (w >> k), out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = _frames_of(x, self.frame_shape)
        maps = self.body(x.reshape(b * t, *self.frame_shape))
        return self.out(maps.flatten(1)).view(b, t, -1)


class FrameDecoder(nn.Module):
    """(batch, time, in_dim) -> (batch, time, C*H*W): a linear map to the encoder's smallest
    maps, then stride-2 transposed convolutions back to the frame (its mirror), read out
    ``linear`` or ``sigmoid`` (pixels in [0, 1])."""

    def __init__(self, frame_shape: Sequence[int], in_dim: int, channels: int = 32,
                 output: str = "linear") -> None:
        super().__init__()
        require(output in FRAME_OUTPUTS,
                f"frame output must be one of {', '.join(FRAME_OUTPUTS)}, got {output!r}")
        self.frame_shape = tuple(int(s) for s in frame_shape)
        c, h, w = self.frame_shape
        k = stages(h, w)
        widths = _widths(channels, k)[::-1]  # widest first
        self.start = (widths[0] if k else c, h >> k, w >> k)
        self.inp = nn.Linear(in_dim, math.prod(self.start))
        layers: list[nn.Module] = []
        for i, width in enumerate(widths):
            last = i == k - 1
            layers.append(nn.ConvTranspose2d(width, c if last else width // 2, 4, 2, 1))
            if not last:
                layers.append(nn.LeakyReLU(0.2))
        self.body = nn.Sequential(*layers)
        self.sigmoid = output == "sigmoid"

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.dim() != 3:
            raise ShapeError(f"frame codes must be (batch, time, dim), got shape "
                             f"{tuple(z.shape)}")
        b, t, _ = z.shape
        h = self.inp(z.reshape(b * t, -1)).view(b * t, *self.start)
        if len(self.body):  # no stage: the linear map is the whole decoder
            h = self.body(nn.functional.leaky_relu(h, 0.2))
        y = h.reshape(b, t, -1)
        return torch.sigmoid(y) if self.sigmoid else y


def _frames_of(x: torch.Tensor, frame_shape: tuple[int, ...]) -> tuple[int, int, int]:
    """(batch, time, features) of ``x``; ShapeError unless every step is one frame."""
    if x.dim() != 3 or x.shape[-1] != math.prod(frame_shape):
        raise ShapeError(f"frames x must be (batch, time, {math.prod(frame_shape)}) for frames "
                         f"of shape {list(frame_shape)}, got shape {tuple(x.shape)}")
    return tuple(x.shape)  # type: ignore[return-value]
