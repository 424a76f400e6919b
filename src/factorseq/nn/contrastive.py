"""Contrastive estimates of mutual information between codes, and the views of a sequence they
compare (C-DSVAE: Bai, Wang & Gomes, "Contrastively Disentangled Sequential Variational
Autoencoder", NeurIPS 2021).

C-DSVAE adds to DSVAE's bound the mutual information between the static code f of a window and
the f of a view that keeps its static factors but destroys its dynamics, between the dynamic
codes z of a window and those of a view that keeps its dynamics but changes its static factors,
and subtracts I(f; z). Both positive terms are estimated with InfoNCE, I(f; z) with minibatch
stratified sampling of the aggregate posterior. Here every tensor of a sequence is
``(batch, time, features)``; codes are ``(batch, dims)``.

- InfoNCE (van den Oord et al. 2018; Poole et al. 2019): for B pairs (a_i, b_i) drawn from the
  joint and a score table s[i, j] = sim(a_i, b_j) / temperature,

      I(a; b) >= log B + 1/B sum_i (s[i, i] - log sum_j exp s[i, j]),

  i.e. log B minus the cross entropy of picking each row's positive among the B columns. The
  bound is at most log B (reached when each positive outscores every negative by a wide
  margin) and about 0 for independent codes. :func:`info_nce` averages the row and the column
  form (each is a bound, so their mean is one).
- Minibatch stratified sampling (Chen et al. 2018, "Isolating sources of disentanglement"):
  the aggregate posterior q(c) = 1/N sum_n q(c | x_n) at a batch member's own sample c_i is
  estimated from the M batch members as  w_own q(c_i | x_i) + w_other sum_{j != i}
  q(c_i | x_j),  w_own = 1/N, w_other = (N - 1) / (N (M - 1)) (unbiased for q(c_i): x_i is
  one of the N data, the others a uniform draw from the rest). ``dataset_size=None`` is the
  limit N -> infinity: the own term drops out, the others are averaged.
- Views: :func:`shuffle_time` (order of steps permuted: every value of the window kept, its
  dynamics destroyed; C-DSVAE's content-preserving shuffle of video frames) and
  :func:`feature_affine` (a random positive gain and an offset per feature and window, plus
  optional noise: the time course of every feature kept, its level / scale / mixing changed,
  the sequence analogue of C-DSVAE's colour jitter). They need no images.
  :func:`channel_colour` is the image form of that view (C-DSVAE's colour distortion): the
  colour channels of every frame permuted and rescaled, the same way for all frames of a
  window, so shapes and motion stay while the colours (the appearance) change.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F  # noqa: N812

from ..errors import ShapeError
from .densities import log_gauss


def similarity_table(a: torch.Tensor, b: torch.Tensor, temperature: float = 0.5,
                     cosine: bool = True) -> torch.Tensor:
    """Scores s[i, j] = sim(a_i, b_j) / temperature, (B, B), for codes a, b (B, dims):
    cosine similarity (each row scaled to unit length) or the plain dot product."""
    if a.shape != b.shape or a.dim() != 2:
        raise ShapeError(f"paired codes must both be (batch, dims), got {tuple(a.shape)} "
                         f"and {tuple(b.shape)}")
    if cosine:
        a, b = F.normalize(a, dim=1), F.normalize(b, dim=1)
    return a @ b.T / temperature


def info_nce(scores: torch.Tensor) -> torch.Tensor:
    """InfoNCE lower bound on I(a; b) in nats from a (B, B) score table whose diagonal holds
    the positive pairs: log B + mean_i (s_ii - logsumexp_j s_ij), averaged with the same over
    columns (module docstring). A scalar; maximise it."""
    n = scores.shape[0]
    if scores.dim() != 2 or scores.shape[1] != n:
        raise ShapeError(f"scores must be a square (batch, batch) table, got "
                         f"{tuple(scores.shape)}")
    pos = scores.diagonal()
    rows = (pos - scores.logsumexp(1)).mean()
    cols = (pos - scores.logsumexp(0)).mean()
    return math.log(n) + 0.5 * (rows + cols)


def info_nce_codes(a: torch.Tensor, b: torch.Tensor, temperature: float = 0.5,
                   cosine: bool = True) -> torch.Tensor:
    """InfoNCE bound on I(a; b) of paired codes a, b (B, dims) (:func:`similarity_table`)."""
    return info_nce(similarity_table(a, b, temperature, cosine))


def gaussian_log_table(sample: torch.Tensor, mean: torch.Tensor,
                       logvar: torch.Tensor) -> torch.Tensor:
    """t[..., i, j] = log N(sample_i; mean_j, diag exp(logvar_j)), summed over the code
    dims; inputs (..., B, dims), output (..., B, B)."""
    s, m, v = sample.unsqueeze(-2), mean.unsqueeze(-3), logvar.unsqueeze(-3)
    return log_gauss(s, m, v).sum(-1)


def log_aggregate(table: torch.Tensor, dataset_size: int | None = None) -> torch.Tensor:
    """Minibatch stratified estimate of log q(c_i) (..., B) from t[..., i, j] = log q(c_i |
    x_j) (..., B, B), B >= 2: weight 1/N on the own term, (N - 1) / (N (B - 1)) on the
    others; ``dataset_size`` None = N -> infinity (own term left out)."""
    m = table.shape[-1]
    if m < 2:
        raise ShapeError("the aggregate posterior needs a batch of at least 2")
    eye = torch.eye(m, dtype=torch.bool, device=table.device)
    if dataset_size is None:
        log_w = torch.where(eye, -math.inf, -math.log(m - 1))
    else:
        n = float(dataset_size)
        log_w = torch.where(eye, -math.log(n), math.log(n - 1) - math.log(n * (m - 1)))
    return (table + log_w.to(table.dtype)).logsumexp(-1)


def mutual_information_mss(f: torch.Tensor, f_mean: torch.Tensor, f_logvar: torch.Tensor,
                           z: torch.Tensor, z_mean: torch.Tensor, z_logvar: torch.Tensor,
                           dataset_size: int | None = None) -> torch.Tensor:
    """Estimate of I(f; z_t) under the aggregate posterior, averaged over steps t: mean over
    batch and steps of log q(f_i, z_ti) - log q(f_i) - log q(z_ti), each by
    :func:`log_aggregate`, with q(f, z_t | x) = q(f | x) q(z_t | x) (as C-DSVAE; the z
    posterior's own dependence on f is not integrated). f, f_*: (B, f_dim) samples and
    posterior; z, z_*: (B, time, z_dim). A scalar (may be < 0: an estimate)."""
    tf = gaussian_log_table(f, f_mean, f_logvar)  # (B, B)
    tz = gaussian_log_table(z.transpose(0, 1), z_mean.transpose(0, 1),
                            z_logvar.transpose(0, 1))  # (time, B, B)
    joint = log_aggregate(tf + tz, dataset_size)
    return (joint - log_aggregate(tf, dataset_size) - log_aggregate(tz, dataset_size)).mean()


def shuffle_time(x: torch.Tensor, block: int | None = None,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """Static-preserving view of x (batch, time, features): the steps of each window permuted
    at random within consecutive blocks of ``block`` steps (None = the whole window; the last
    block may be shorter), a new permutation per window and block. Every feature keeps the
    multiset of its values in each block; the order (the dynamics) is gone."""
    b, t, _ = x.shape
    block = t if block is None else block
    if block < 1:
        raise ValueError(f"block must be >= 1, got {block}")
    keys = torch.rand(b, t, generator=generator, device=x.device)
    keys = keys + torch.div(torch.arange(t, device=x.device), block, rounding_mode="floor")
    order = keys.argsort(1)  # block k's keys lie in [k, k + 1): a permutation inside blocks
    return x.gather(1, order.unsqueeze(-1).expand_as(x))


def feature_affine(x: torch.Tensor, log_scale: float = 0.5, shift: float = 0.0,
                   noise: float = 0.0, generator: torch.Generator | None = None
                   ) -> torch.Tensor:
    """Dynamics-preserving view of x (batch, time, features): x'[n, t, d] = a[n, d] x[n, t, d]
    + c[n, d] + noise * eps, with a = exp(U(-log_scale, log_scale)) > 0 and c ~ N(0, shift^2)
    drawn per window and feature, eps ~ N(0, 1) per entry. With noise 0, every feature keeps
    its time course up to a positive affine map (order of its values, argmax along time)."""
    b, _, d = x.shape
    g = dict(generator=generator, device=x.device, dtype=x.dtype)
    gain = torch.exp((2.0 * torch.rand(b, 1, d, **g) - 1.0) * log_scale)
    out = gain * x + shift * torch.randn(b, 1, d, **g)
    return out + noise * torch.randn(x.shape, **g) if noise > 0 else out


def channel_colour(x: torch.Tensor, frame_shape: tuple[int, int, int] | list[int],
                   log_scale: float = 0.5, generator: torch.Generator | None = None
                   ) -> torch.Tensor:
    """Dynamics-preserving view of image windows x (batch, time, C*H*W), each frame flattened
    channel first as ``frame_shape`` [C, H, W]: per window, a random permutation of the C
    channels and a gain exp(U(-log_scale, log_scale)) per channel, applied alike to every
    frame (every pixel keeps its place; only the colours change). Output like x."""
    c = int(frame_shape[0])
    b, t, d = x.shape
    if d % c:
        raise ShapeError(f"windows x {tuple(x.shape)} do not hold frames of shape "
                         f"{list(frame_shape)}")
    g = dict(generator=generator, device=x.device)
    order = torch.rand(b, c, **g).argsort(1)  # a uniform permutation per window
    frames = x.reshape(b, t, c, d // c)
    frames = frames.gather(2, order[:, None, :, None].expand_as(frames))
    gain = torch.exp((2.0 * torch.rand(b, 1, c, 1, **g, dtype=x.dtype) - 1.0) * log_scale)
    return (gain * frames).reshape(b, t, d)
