"""The adversarial pieces every GAN-like model shares (Hu et al. 2017's unified view).

A discriminator D with label y (real/fake, code/prior, source/target) is trained against the
rest of the model; ``optimizer_step`` is the one update helper all adversarial models use, and
``grad_reverse`` implements Ganin et al.'s gradient reversal layer.
"""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator

import torch
from torch import nn


class _GradReverse(torch.autograd.Function):
    """Identity forward; multiplies the incoming gradient by -lambda backward."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, lambd: float) -> torch.Tensor:
        ctx.lambd = lambd
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return -ctx.lambd * grad, None


def grad_reverse(x: torch.Tensor, lambd: float = 1.0) -> torch.Tensor:
    """Gradient reversal: y = x forward, dL/dx = -lambd * dL/dy backward."""
    return _GradReverse.apply(x, lambd)


def optimizer_step(optimizer: torch.optim.Optimizer, loss: torch.Tensor,
                   backward: Callable[[torch.Tensor], None],
                   params: Iterable[nn.Parameter] | None = None,
                   clip_norm: float | None = None) -> float:
    """One update of ``optimizer`` on ``loss``: zero grads, backward, optional clip, step.

    Only the optimiser's own parameters move. Gradients left on other parameters by this
    backward are cleared by their optimiser's ``zero_grad`` before their own step, so the
    discriminator step and the generator step never leak into each other.
    """
    optimizer.zero_grad(set_to_none=True)
    backward(loss)
    if clip_norm is not None:
        ps = list(params) if params is not None else [
            p for g in optimizer.param_groups for p in g["params"]]
        torch.nn.utils.clip_grad_norm_(ps, clip_norm)
    optimizer.step()
    return float(loss.detach())


def bce_logits(logits: torch.Tensor, target: float) -> torch.Tensor:
    """Binary cross-entropy against a constant label (1 = real/prior/source, 0 = fake)."""
    return nn.functional.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


def discriminator_loss(real_logits: torch.Tensor, *fake_logits: torch.Tensor,
                       weights: Iterable[float] | None = None) -> torch.Tensor:
    """D's loss: cross-entropy with y = 1 on ``real_logits`` and y = 0 on each ``fake_logits``
    (weighted, e.g. TimeGAN's gamma on its second fake term). Logits of any shape; each term is
    the mean over its elements (per-step discriminators average over time, as in RCGAN)."""
    ws = list(weights) if weights is not None else [1.0] * len(fake_logits)
    loss = bce_logits(real_logits, 1.0)
    for w, f in zip(ws, fake_logits, strict=True):
        loss = loss + w * bce_logits(f, 0.0)
    return loss


def generator_loss(*fake_logits: torch.Tensor,
                   weights: Iterable[float] | None = None) -> torch.Tensor:
    """The generator's non-saturating loss: D's cross-entropy on its samples with the label
    flipped to y = 1 (Hu et al. 2017: the generator optimises the discriminator's objective
    with reversed labels)."""
    ws = list(weights) if weights is not None else [1.0] * len(fake_logits)
    return sum(w * bce_logits(f, 1.0) for w, f in zip(ws, fake_logits, strict=True))


@contextlib.contextmanager
def frozen(*modules: nn.Module) -> Iterator[None]:
    """Within the block, the modules' parameters record no gradient; gradients still flow
    through them to their inputs. Used where one network's loss must reach an upstream network
    only (VAE/GAN: the encoder's reconstruction loss passes through a frozen decoder)."""
    params = [p for m in modules for p in m.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)
