"""Fitting Gaussians to what a trained model leaves behind (codes, residuals): moments streamed
batch by batch, and a Cholesky factor that exists even for a singular covariance."""
from __future__ import annotations

import torch


class MomentAccumulator:
    """Running count, sum and sum of outer products of rows (n, d), in float64."""

    def __init__(self) -> None:
        self.n, self.s, self.ss = 0, None, None

    def add(self, rows: torch.Tensor) -> None:
        r = rows.detach().double().reshape(-1, rows.shape[-1])
        if self.s is None:
            self.s = torch.zeros(r.shape[1], dtype=torch.float64, device=r.device)
            self.ss = torch.zeros(r.shape[1], r.shape[1], dtype=torch.float64, device=r.device)
        self.n += len(r)
        self.s += r.sum(0)
        self.ss += r.T @ r

    def mean_cov(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The mean (d,) and the unbiased covariance (d, d) of every row added."""
        mean = self.s / self.n
        cov = (self.ss - self.n * torch.outer(mean, mean)) / max(self.n - 1, 1)
        return mean, 0.5 * (cov + cov.T)


def robust_cholesky(cov: torch.Tensor) -> torch.Tensor:
    """Lower Cholesky factor of ``cov`` + a ridge, grown from 1e-6 x its mean variance until the
    sum is positive definite (identical channels make ``cov`` singular)."""
    eye = torch.eye(len(cov), dtype=cov.dtype, device=cov.device)
    ridge = 1e-6 * (float(cov.diagonal().mean()) + 1e-12)
    for _ in range(12):
        chol, info = torch.linalg.cholesky_ex(cov + ridge * eye)
        if int(info) == 0:
            return chol
        ridge *= 10
    return torch.diag(cov.diagonal().clamp(min=0).sqrt())
