"""The adversarial pieces every GAN-like model shares (Hu et al. 2017's unified view).

A discriminator D with label y (real/fake, code/prior, source/target) is trained against the
rest of the model; ``optimizer_step`` is the one update helper all adversarial models use, and
``grad_reverse`` implements Ganin et al.'s gradient reversal layer. ``window_logits``,
``importance_weights`` and ``realness`` read D as a density-ratio estimate per window (Hu et
al.'s IWGAN and AAVAE weights).
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


def window_logits(logits: torch.Tensor) -> torch.Tensor:
    """One log-odds of "real" per window, (batch,): the mean over the window's per-step logits
    (batch, time, 1) (or any trailing shape). A per-step discriminator is trained on the
    time-averaged cross-entropy, so its window log-odds is the time average as well."""
    return logits.reshape(len(logits), -1).mean(1)


def importance_weights(logits: torch.Tensor) -> torch.Tensor:
    """Self-normalised importance weights (batch,) of generated windows from D's logits.

    D(x) / (1 - D(x)) = exp(logit) estimates p_data(x) / p_g(x), so the weights normalised
    within the batch are softmax(logit) (Hu et al. 2017, IWGAN). Detached: the weights are
    constants for the generator's gradient; only log D carries it."""
    return torch.softmax(window_logits(logits).detach(), dim=0)


def realness(logits: torch.Tensor) -> torch.Tensor:
    """D's probability that each window is real, (batch,), detached: AAVAE's weight q_phi(y|x)
    on a window's likelihood (a constant for the encoder's and decoder's gradients)."""
    return torch.sigmoid(window_logits(logits).detach())


def window_generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """The non-saturating generator loss of each window, (batch,): -log D averaged over its
    steps; its plain mean over the batch is :func:`generator_loss`."""
    return nn.functional.softplus(-fake_logits).reshape(len(fake_logits), -1).mean(1)


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
