"""Rectified flow / flow matching maths (Liu et al. 2023; Lipman et al. 2023), as FM-TS (Hu et
al. 2024) uses it on the Diffusion-TS backbone.

Convention (ours, stated once): time runs from noise to data. ``x0 ~ N(0, I)`` is the noise,
``x1`` the data (windows (batch, time, features)), and ``t`` (batch,) in [0, 1]:

- probability path   x_t = (1 - t) x0 + t x1   (the straight line between the pair);
- velocity target    dx_t / dt = x1 - x0       (constant along the line);
- a velocity field v(x, t) learnt by regression on that target carries N(0, I) at t = 0 to
  the data at t = 1 along dx/dt = v(x, t); sampling integrates it with Euler or Heun steps,
  and integrating it backwards (t from 1 to 0) is a deterministic encoding.
"""
from __future__ import annotations

from collections.abc import Callable

import torch

from ..errors import FactorseqError

Velocity = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (x_t, t (batch,)) -> v
METHODS = ("euler", "heun")


def _col(t: torch.Tensor) -> torch.Tensor:
    """t (batch,) shaped (batch, 1, 1) to broadcast over (batch, time, features)."""
    return t.reshape(-1, 1, 1)


def linear_path(x0: torch.Tensor, x1: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """x_t = (1 - t) x0 + t x1 for noise x0, data x1 and times t (batch,)."""
    return (1.0 - _col(t)) * x0 + _col(t) * x1


def velocity_target(x0: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
    """The path's velocity d x_t / d t = x1 - x0 (the regression target)."""
    return x1 - x0


def data_from_velocity(x_t: torch.Tensor, t: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """The data end implied by a velocity on a straight path: x1 = x_t + (1 - t) v."""
    return x_t + (1.0 - _col(t)) * v


def velocity_from_data(x_t: torch.Tensor, t: torch.Tensor, x1: torch.Tensor,
                       min_gap: float) -> torch.Tensor:
    """The velocity implied by a data prediction: v = (x1 - x_t) / (1 - t), the gap 1 - t
    floored at ``min_gap`` (it vanishes at the data end)."""
    return (x1 - x_t) / (1.0 - _col(t)).clamp(min=min_gap)


def sample_times(n: int, kind: str, generator: torch.Generator | None = None,
                 device: torch.device | str = "cpu") -> torch.Tensor:
    """n training times in (0, 1): ``uniform``, or ``logit_normal`` (sigmoid of a standard
    normal, Esser et al. 2024: more weight mid-path, where the velocity is hardest)."""
    if kind == "uniform":
        return torch.rand(n, generator=generator, device=device)
    if kind == "logit_normal":
        return torch.sigmoid(torch.randn(n, generator=generator, device=device))
    raise FactorseqError(f"unknown time sampling {kind!r}; use uniform or logit_normal")


def ode_step(velocity: Velocity, x: torch.Tensor, t: float, h: float,
             method: str = "euler") -> torch.Tensor:
    """One step of dx/dt = v(x, t) from t to t + h (h < 0 runs backwards).
    Euler: x + h v(x, t). Heun: the trapezoid of v at both ends, the end point predicted by
    an Euler step: x + h / 2 (v(x, t) + v(x + h v(x, t), t + h))."""
    tt = torch.full((x.shape[0],), t, dtype=x.dtype, device=x.device)
    v = velocity(x, tt)
    if method == "euler":
        return x + h * v
    if method != "heun":
        raise FactorseqError(f"unknown ODE method {method!r}; use {' or '.join(METHODS)}")
    v_end = velocity(x + h * v, tt + h)
    return x + 0.5 * h * (v + v_end)


def integrate(velocity: Velocity, x: torch.Tensor, steps: int, *, method: str = "euler",
              start: float = 0.0, end: float = 1.0) -> torch.Tensor:
    """``steps`` equal steps of dx/dt = v(x, t) from t = ``start`` to ``end`` (start > end
    integrates backwards). Velocity calls: ``steps`` (Euler) or 2 ``steps`` (Heun)."""
    if steps < 1:
        raise FactorseqError(f"ODE steps must be >= 1, got {steps}")
    h = (end - start) / steps
    for k in range(steps):
        x = ode_step(velocity, x, start + k * h, h, method)
    return x
