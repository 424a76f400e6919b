"""Log densities shared by the models: the diagonal Gaussian (elementwise and summed) and the
categorical KL to a uniform prior. One place for the maths the VAEs' objectives share."""
from __future__ import annotations

import math

import torch

LOG_2PI = math.log(2.0 * math.pi)


def log_gauss(x: torch.Tensor, mean: torch.Tensor | float, logvar: torch.Tensor | float
              ) -> torch.Tensor:
    """Elementwise log N(x; mean, exp(logvar))."""
    logvar = torch.as_tensor(logvar, dtype=x.dtype, device=x.device)
    return -0.5 * (LOG_2PI + logvar + (x - mean) ** 2 / logvar.exp())


def log_normal(z: torch.Tensor, mean: torch.Tensor | float = 0.0,
               logvar: torch.Tensor | float = 0.0) -> torch.Tensor:
    """log N(z; mean, diag(e^logvar)), summed over the last dim."""
    return log_gauss(z, mean, logvar).sum(-1)


def categorical_kl_uniform(log_q: torch.Tensor) -> torch.Tensor:
    """KL(q || Cat(1/K)) = sum_k q_k log(K q_k), over the last dim."""
    return (log_q.exp() * (log_q + math.log(log_q.shape[-1]))).sum(-1)
