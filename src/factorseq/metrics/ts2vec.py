"""TS2Vec: contrastive representations of time series (Yue et al., AAAI 2022).

Used here as the embedding of Context-FID (Diffusion-TS, Yuan & Qiao, ICLR 2024): an encoder
is trained on the real windows and every window is embedded by max-pooling its per-step
representations over time. Our own implementation of the paper's method, sized as
Diffusion-TS uses it (320-dim output, hidden 64, 10 residual blocks, AdamW lr 1e-3, batch 8,
200 iterations for a set of <= 100,000 numbers and 600 above, the authors' default budget).

- Encoder: a linear input projection; timestamp masking in training (each step's projected
  vector is zeroed with probability 1/2, so the network learns to fill in from context);
  ``depth`` residual blocks of two same-length dilated convolutions (kernel 3, GELU before
  each, dilation ``2**i`` in block i: the receptive field doubles per block) plus a final block
  to ``output_dims`` channels; dropout 0.1 on the representation in training.
- Views: two random overlapping crops of each window; only the overlap's representations are
  contrasted, so the same time step is seen in two different contexts.
- Loss: hierarchical contrast. At every scale (max-pooling by 2 over time until one step is
  left) the instance-wise loss (the same step of the other view vs. the other windows of the
  batch) and the temporal loss (the same step of the other view vs. the other steps of the same
  window) are averaged with weight 1/2 each.
- The embedding network is the running average of the weights over all iterates (stochastic
  weight averaging, as the authors' code encodes with), in eval mode (no masking, no dropout).

Speed on one CPU thread (the same numbers up to float rounding): the convolutions are matrix
products over shifted copies (pointwise once the dilation reaches the window length), and the
two crops go through the network as one zero-padded batch.

All arrays are (windows, time, features).
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch.optim.swa_utils import AveragedModel

from ..errors import FactorseqError, ShapeError, check_shape
from .timegan import single_thread

OUTPUT_DIMS = 320  # Diffusion-TS's Context-FID embedding size
ENCODE_BATCH = 64  # windows per embedding pass (no effect on the numbers; fastest measured)


def default_iterations(x: np.ndarray) -> int:
    """The authors' training budget: 200 iterations for <= 100,000 numbers, else 600."""
    return 200 if np.asarray(x).size <= 100_000 else 600


def dilated_conv(h: torch.Tensor, conv: nn.Conv1d) -> torch.Tensor:
    """``conv`` (kernel 3, dilation d, padding d) applied to ``h`` (batch, time, channels) as
    one matrix product over the three shifted copies: out[t] = W0 h[t-d] + W1 h[t] + W2 h[t+d]
    + b, zeros outside the window. With d >= T the outer taps only see padding, so the layer
    is pointwise (W1 alone). Equal to ``conv`` up to float rounding; much faster than CPU
    convolutions on windows this short (backward included)."""
    d, t = conv.dilation[0], h.shape[1]
    w = conv.weight  # (out, in, 3)
    if d >= t:
        return F.linear(h, w[:, :, 1], conv.bias)
    padded = F.pad(h, (0, 0, d, d))  # d zero steps on both sides of the time axis
    taps = torch.cat([padded[:, k * d:k * d + t] for k in range(3)], -1)  # (B, T, 3 in)
    return F.linear(taps, w.permute(0, 2, 1).reshape(w.shape[0], -1), conv.bias)


class _Block(nn.Module):
    """Residual block: x + conv(gelu(conv(gelu(x)))), two dilated 'same' convolutions; a 1x1
    convolution maps the skip path when the width changes (and in the final block).
    (batch, time, channels) in and out."""

    def __init__(self, n_in: int, n_out: int, dilation: int, final: bool) -> None:
        super().__init__()
        # kernel 3 with dilation d spans 2d + 1 steps: padding d keeps the length
        self.conv1 = nn.Conv1d(n_in, n_out, 3, padding=dilation, dilation=dilation)
        self.conv2 = nn.Conv1d(n_out, n_out, 3, padding=dilation, dilation=dilation)
        self.skip = nn.Conv1d(n_in, n_out, 1) if n_in != n_out or final else None

    def forward(self, h: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
        """``valid`` (batch, time, 1): 1 on a window's steps, 0 on padding, which is zeroed
        after every convolution so that the next one reads zeros there, as at a window end."""
        skip = h if self.skip is None else F.linear(h, self.skip.weight[:, :, 0], self.skip.bias)
        inner = dilated_conv(F.gelu(h), self.conv1)
        out = skip + dilated_conv(F.gelu(inner if valid is None else inner * valid), self.conv2)
        return out if valid is None else out * valid


class TS2VecEncoder(nn.Module):
    """(batch, time, features) -> per-step representations (batch, time, output_dims)."""

    def __init__(self, n_features: int, output_dims: int = OUTPUT_DIMS, hidden: int = 64,
                 depth: int = 10, mask_p: float = 0.5) -> None:
        super().__init__()
        self.mask_p = mask_p
        self.project = nn.Linear(n_features, hidden)
        widths = [hidden] * depth + [output_dims]
        self.blocks = nn.ModuleList([
            _Block(hidden if i == 0 else widths[i - 1], w, 2 ** i, final=i == depth)
            for i, w in enumerate(widths)])
        self.dropout = nn.Dropout(0.1)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """``lengths`` (batch,): windows of different lengths in one batch, each padded at
        its end; the output on a window's steps equals that of the window alone."""
        h = self.project(x)
        valid = None
        if lengths is not None:
            valid = (torch.arange(x.shape[1]) < lengths[:, None])[..., None].to(h.dtype)
            h = h * valid
        if self.training:  # timestamp masking: drop whole steps of the projected input
            h = h * (torch.rand(h.shape[:2], device=h.device) >= self.mask_p)[..., None]
        for block in self.blocks:
            h = block(h, valid)
        return self.dropout(h)


def _contrast(z: torch.Tensor) -> torch.Tensor:
    """Mean InfoNCE loss of ``z`` (groups, 2K, C): row k's positive is row (k + K) mod 2K,
    every other row of its group but itself is a negative (dot-product similarity)."""
    n = z.shape[1]
    sim = z @ z.transpose(1, 2)
    sim = sim.masked_fill(torch.eye(n, dtype=torch.bool, device=z.device), float("-inf"))
    target = (torch.arange(n, device=z.device) + n // 2) % n
    return F.cross_entropy(sim.reshape(-1, n), target.repeat(z.shape[0]))


def instance_contrastive_loss(z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
    """Per time step, each window's two views are positives, the batch's other windows (both
    views) negatives. ``z1``, ``z2`` (batch, time, C); averaged over steps and the 2B rows."""
    return _contrast(torch.cat([z1, z2], 0).transpose(0, 1))  # (T, 2B, C)


def temporal_contrastive_loss(z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
    """Per window, a step's two views are positives, the window's other steps (both views)
    negatives. ``z1``, ``z2`` (batch, time, C); averaged over windows and the 2T rows."""
    return _contrast(torch.cat([z1, z2], 1))  # (B, 2T, C)


def hierarchical_contrastive_loss(z1: torch.Tensor, z2: torch.Tensor, alpha: float = 0.5,
                                  temporal_unit: int = 0) -> torch.Tensor:
    """Average over scales of ``alpha * instance + (1 - alpha) * temporal`` loss, the scales
    made by max-pooling pairs of steps until one is left (no temporal term at one step, none
    below scale ``temporal_unit``). ``z1``, ``z2`` (batch, time, C), the two views' overlap."""
    if z1.shape != z2.shape or z1.ndim != 3:
        raise ShapeError(f"z1 {tuple(z1.shape)} and z2 {tuple(z2.shape)} must be equal "
                         "(batch, time, channels)")
    total, level = z1.new_zeros(()), 0
    while True:
        total = total + alpha * instance_contrastive_loss(z1, z2)
        if z1.shape[1] == 1:
            return total / (level + 1)
        if level >= temporal_unit:
            total = total + (1 - alpha) * temporal_contrastive_loss(z1, z2)
        level += 1
        # pool pairs of steps (an odd last step is dropped)
        z1, z2 = (F.max_pool1d(z.transpose(1, 2), 2).transpose(1, 2) for z in (z1, z2))


def random_crops(n: int, length: int, rng: np.random.Generator, min_overlap: int = 2
                 ) -> tuple[np.ndarray, np.ndarray, int]:
    """Two overlapping crops per window: start indices (n, L1) and (n, L2) and the overlap
    length L. Crop 1 is [a1, b1), crop 2 [a2, b2) with a1 <= a2 < b1 <= b2, the overlap [a2, b1)
    the last L steps of crop 1 and the first L of crop 2. Lengths are shared by the batch,
    the position of the pair is drawn per window."""
    overlap = int(rng.integers(min(min_overlap, length), length + 1))
    a2 = int(rng.integers(0, length - overlap + 1))  # overlap [a2, b1) inside [0, length)
    b1 = a2 + overlap
    a1 = int(rng.integers(0, a2 + 1))  # crop 1 extends the overlap to the left
    b2 = int(rng.integers(b1, length + 1))  # crop 2 to the right
    shift = rng.integers(-a1, length - b2 + 1, size=n)  # move the pair inside the window
    return (shift[:, None] + np.arange(a1, b1)[None], shift[:, None] + np.arange(a2, b2)[None],
            overlap)


class TS2Vec:
    """A TS2Vec encoder: ``fit(x)`` on windows (N, T, D), then ``encode(x)`` -> (N, C)."""

    def __init__(self, n_features: int, *, output_dims: int = OUTPUT_DIMS, hidden: int = 64,
                 depth: int = 10, lr: float = 1e-3, batch_size: int = 8, seed: int = 0) -> None:
        if n_features < 1 or output_dims < 1 or hidden < 1 or depth < 0 or batch_size < 1:
            raise FactorseqError("TS2Vec needs n_features, output_dims, hidden, batch_size >= 1 "
                                 "and depth >= 0")
        self.lr, self.batch_size, self.seed = lr, batch_size, int(seed)
        with torch.random.fork_rng(devices=[]):  # seeded initialisation, global RNG restored
            torch.manual_seed(self.seed)
            self.net = TS2VecEncoder(n_features, output_dims, hidden, depth)
        # equal-weight mean of every iterate's weights, the initial ones included
        self.average = AveragedModel(self.net)
        self.average.update_parameters(self.net)
        self.losses: list[float] = []

    def fit(self, x: np.ndarray, iterations: int | None = None) -> list[float]:
        """Train on ``x`` (N, T, D) for ``iterations`` mini-batches (default: the authors'
        budget, :func:`default_iterations`); returns the loss of every iteration."""
        x = _windows(x, "x")
        iterations = default_iterations(x) if iterations is None else int(iterations)
        if iterations < 0:
            raise FactorseqError(f"TS2Vec iterations must be >= 0, got {iterations}")
        data = torch.from_numpy(x)
        bs = min(self.batch_size, len(x))
        rng = np.random.default_rng(self.seed)
        opt = torch.optim.AdamW(self.net.parameters(), lr=self.lr, foreach=True)
        self.net.train()
        with torch.random.fork_rng(devices=[]), single_thread():
            torch.manual_seed(self.seed + 1)  # masks and dropout
            order: list[np.ndarray] = []
            for _ in range(iterations):
                if not order:  # a new epoch: shuffled full batches (the last partial dropped)
                    perm = rng.permutation(len(x))
                    order = [perm[i:i + bs] for i in range(0, len(x) - bs + 1, bs)]
                batch = data[order.pop(0)]
                z1, z2 = self._views(batch, rng)
                loss = hierarchical_contrastive_loss(z1, z2)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                self.average.update_parameters(self.net)
                self.losses.append(float(loss.detach()))
        return self.losses[-iterations:] if iterations else []

    def _views(self, batch: torch.Tensor, rng: np.random.Generator
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """Representations of the overlap in the two crops of every window (batch, L, C);
        both crops go through the network as one padded batch (half the calls)."""
        b = len(batch)
        i1, i2, overlap = random_crops(b, batch.shape[1], rng)
        n1, n2 = i1.shape[1], i2.shape[1]
        idx = np.zeros((2 * b, max(n1, n2)), dtype=np.int64)  # padding reads step 0, masked
        idx[:b, :n1], idx[b:, :n2] = i1, i2
        rows = torch.arange(2 * b)[:, None] % b
        z = self.net(batch[rows, torch.from_numpy(idx)], torch.tensor([n1] * b + [n2] * b))
        return z[:b, n1 - overlap:n1], z[b:, :overlap]

    @torch.no_grad()
    def encode(self, x: np.ndarray) -> np.ndarray:
        """Full-window embeddings (N, output_dims): per-step representations of the averaged
        encoder, max-pooled over time."""
        x = _windows(x, "x")
        self.average.eval()
        with single_thread():
            out = [self.average(torch.from_numpy(x[i:i + ENCODE_BATCH])).amax(1)
                   for i in range(0, len(x), ENCODE_BATCH)]
        return torch.cat(out).numpy().astype(np.float64)


def _windows(x: np.ndarray, name: str) -> np.ndarray:
    a = np.ascontiguousarray(x, dtype=np.float32)
    check_shape(name, a, 3)
    if len(a) < 1 or not np.isfinite(a).all():
        raise FactorseqError(f"{name} must hold at least one window of finite values")
    return a
