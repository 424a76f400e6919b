"""Adversarial invariance: one mechanism that keeps a nuisance factor out of a code.

A classifier head c predicts a nuisance label n (a sequence id, a class label, a domain) from a
code h (batch, dim). It reads the code through Ganin et al.'s gradient reversal layer R_lambda
(:func:`~factorseq.nn.adversarial.grad_reverse`), so one loss and one optimiser suffice::

    L_inv = CE(c(R_lambda(h)), n)     (mean over the rows whose label is known)

c descends L_inv (it becomes the best probe of n it can be) while whatever produced h receives
-lambda dL_inv/dh, i.e. ascends the probe's loss: h is pushed to carry no information about n
that c can read (Ganin et al., JMLR 2016; Hu et al. 2017 read c as the discriminator of a GAN
whose generator is the encoder). Partial labels go through ``y_mask`` (False = unknown: the row
adds nothing). Two classes use one logit and the binary cross-entropy (the two-class softmax
with one logit fixed at 0), as DANN's domain classifier does.

lambda = ``weight`` (constant) or Ganin et al.'s schedule ``weight * (2 / (1 + exp(-gamma p))
- 1)`` over training progress p in [0, 1] (:func:`reversal_lambda`), which lets the head learn
before the code is pushed.
"""
from __future__ import annotations

import dataclasses
import math

import torch
import torch.nn.functional as F
from torch import nn

from ..config import require
from ..errors import FactorseqError
from .adversarial import grad_reverse
from .backbones import mlp

SCHEDULES = ("constant", "dann")


def reversal_lambda(progress: float, gamma: float = 10.0, scale: float = 1.0) -> float:
    """Ganin et al.'s schedule: scale * (2 / (1 + exp(-gamma p)) - 1), p in [0, 1]."""
    p = min(max(progress, 0.0), 1.0)
    return scale * (2.0 / (1.0 + math.exp(-gamma * p)) - 1.0)


def check_adversary(weight: float, schedule: str, name: str) -> None:
    """Config check of an invariance weight (>= 0; 0 = off) and its schedule name."""
    require(weight >= 0, f"{name}_weight must be >= 0 (0 = off), got {weight}")
    require(schedule in SCHEDULES,
            f"{name}_schedule must be one of {', '.join(SCHEDULES)}, got {schedule!r}")


def adversary_lambda(weight: float, schedule: str, progress: float,
                     gamma: float = 10.0) -> float:
    """The reversal weight lambda at training progress ``progress`` in [0, 1]."""
    if schedule == "dann":
        return reversal_lambda(progress, gamma, weight)
    return float(weight)


@dataclasses.dataclass
class InvarianceTerm:
    """``loss``: the head's cross-entropy (a scalar with a graph, 0 when no label is known);
    ``accuracy``: the head's accuracy on the known rows (None when there are none); ``known``:
    their number."""

    loss: torch.Tensor
    accuracy: torch.Tensor | None
    known: int

    def logged(self, prefix: str) -> dict[str, torch.Tensor]:
        """Detached terms for the training log: ``<prefix>_loss`` and ``<prefix>_acc`` (none
        for a batch without a known label, whose 0 would drag the epoch's mean down)."""
        if self.accuracy is None:
            return {}
        return {f"{prefix}_loss": self.loss.detach(), f"{prefix}_acc": self.accuracy}


class AdversarialInvariance(nn.Sequential):
    """The nuisance classifier c: an MLP (``layers`` hidden layers of ``hidden`` units) from a
    code (batch, code_dim) to logits (batch, n_classes), or (batch, 1) for two classes.
    Calling it gives the logits; :meth:`term` the reversed-gradient invariance loss."""

    def __init__(self, code_dim: int, n_classes: int, hidden: int = 128, layers: int = 2) -> None:
        if n_classes < 2:
            raise FactorseqError(f"an invariance head needs >= 2 classes, got {n_classes}")
        super().__init__(*mlp(code_dim, hidden, 1 if n_classes == 2 else n_classes, layers))
        self.n_classes = n_classes

    def term(self, code: torch.Tensor, y: torch.Tensor, y_mask: torch.Tensor | None = None,
             lambd: float = 1.0) -> InvarianceTerm:
        """CE of c(R_lambda(code)) against ``y`` (batch,) on the rows where ``y_mask`` (batch,)
        is True (all rows without a mask); ``code`` (batch, code_dim)."""
        y = y.reshape(-1).long()
        known = torch.ones_like(y, dtype=torch.bool) if y_mask is None else \
            y_mask.reshape(-1).bool()
        if y.shape[0] != code.shape[0] or known.shape[0] != code.shape[0]:
            raise FactorseqError(f"{y.shape[0]} nuisance labels for {code.shape[0]} codes")
        if not known.any():
            return InvarianceTerm(code.sum() * 0.0, None, 0)  # keeps the graph, adds nothing
        y = y[known]
        if int(y.min()) < 0 or int(y.max()) >= self.n_classes:
            raise FactorseqError(f"nuisance label {int(y.max())} is outside 0.."
                                 f"{self.n_classes - 1}")
        logits = self(grad_reverse(code[known], lambd))
        if self.n_classes == 2:
            logits = logits.squeeze(-1)
            loss = F.binary_cross_entropy_with_logits(logits, y.to(logits.dtype))
            hit = (logits > 0) == (y == 1)
        else:
            loss = F.cross_entropy(logits, y)
            hit = logits.argmax(-1) == y
        return InvarianceTerm(loss, hit.float().mean().detach(), int(known.sum()))
