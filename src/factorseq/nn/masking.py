"""Losses over observed entries only: the one code path for ``x_mask`` (gaps in the data).

A batch from data with gaps carries ``x_mask`` (batch, time, features), 1 = observed, 0 = never
observed (``x`` holds a finite placeholder there). A model with ``handles_missing`` sums its
per-entry likelihood or reconstruction terms over the observed entries with :func:`masked_sum`
(and averages over observed entries with :func:`masked_mean`); ``mask=None`` (complete data)
runs exactly the unmasked computation.

Normalisation: a window's term is the plain sum over its observed entries, which is the
log-likelihood of the observed part, log p(x_obs | z) = sum_{observed (t, d)} log p(x_td | z),
so the ELBO stays a bound on log p(x_obs). A window with fewer observations carries less data
evidence against the same KL term (as a shorter window would). We do not rescale by
T * D / n_observed: that would count each observed entry of a sparse window many times (an
entry alone in its window would weigh T * D times), which is not the likelihood of anything
and makes sparse windows' posteriors over-confident. With a fraction r missing throughout, the
data term shrinks to about (1 - r) of its complete-data size, like a reconstruction weight
times (1 - r) against the KL.
"""
from __future__ import annotations

from collections.abc import Mapping

import torch

from ..errors import ShapeError


def batch_mask(batch: Mapping[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor | None:
    """``batch["x_mask"]`` as x's dtype and device (1 = observed), or None when the batch has
    none; a mask whose shape is not x's (batch, time, features) is a ShapeError."""
    mask = batch.get("x_mask")
    if mask is None:
        return None
    if tuple(mask.shape) != tuple(x.shape):
        raise ShapeError(f"x_mask has shape {tuple(mask.shape)} but x has {tuple(x.shape)}")
    return mask.to(device=x.device, dtype=x.dtype)


def masked_sum(values: torch.Tensor, mask: torch.Tensor | None,
               dim: int | tuple[int, ...]) -> torch.Tensor:
    """Sum of ``values`` over ``dim`` where ``mask`` (broadcast against values) is nonzero;
    masked entries contribute exactly 0 and pass no gradient (a select, not a product, so a
    non-finite value at a masked entry cannot leak in as 0 * inf)."""
    if mask is None:
        return values.sum(dim)
    return torch.where(mask != 0, values, torch.zeros((), dtype=values.dtype,
                                                      device=values.device)).sum(dim)


def masked_mean(values: torch.Tensor, mask: torch.Tensor | None, dim: int) -> torch.Tensor:
    """Mean of ``values`` over the observed entries along ``dim``; 0 where none is observed
    (then the term drops out of a squared error between two such means)."""
    if mask is None:
        return values.mean(dim)
    count = (mask != 0).to(values.dtype).expand_as(values).sum(dim)
    return masked_sum(values, mask, dim) / count.clamp(min=1.0)


def interpolate_missing(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """x (batch, time, features) with its unobserved entries (``mask`` 0) replaced by linear
    interpolation along time between the nearest observed entries of the same window and
    feature; before the first / after the last observation the nearest one is repeated; a
    feature with no observation in a window takes that feature's mean over the batch's
    observed entries (0 if the batch has none). Observed entries are returned unchanged.

    For a model that needs a complete input but scores only the observed entries: a plausible
    value in each hole, so the net never sees placeholders that no complete window has."""
    obs = mask != 0
    steps = x.shape[1]
    t = torch.arange(steps, device=x.device).view(1, -1, 1).expand_as(x)
    # index of the last observed step at or before t, and of the first at or after t
    prev = torch.where(obs, t, torch.full_like(t, -1)).cummax(dim=1).values
    nxt = torch.where(obs, t, torch.full_like(t, steps)).flip(1).cummin(dim=1).values.flip(1)
    has_prev, has_next = prev >= 0, nxt < steps
    x_prev = x.gather(1, prev.clamp(min=0))
    x_next = x.gather(1, nxt.clamp(max=steps - 1))
    w = (t - prev).to(x.dtype) / (nxt - prev).clamp(min=1).to(x.dtype)
    between = x_prev + w * (x_next - x_prev)
    fallback = masked_sum(x, obs, dim=(0, 1)) / obs.to(x.dtype).sum((0, 1)).clamp(min=1.0)
    fill = torch.where(has_prev & has_next, between,
                       torch.where(has_prev, x_prev,
                                   torch.where(has_next, x_next, fallback.expand_as(x))))
    return torch.where(obs, x, fill)
