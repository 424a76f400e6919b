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

The reversed gradient has a known flaw: the code ascends the head's cross-entropy, which it can
also do by making the head confidently *wrong*, and that needs the nuisance in the code (a label
flipped is a label kept). ``mode="confusion"`` (Tzeng et al. 2015's domain confusion; Alvi et al.
2018) trains the head as before, on the code with its gradient stopped, and gives the code
lambda times the cross-entropy of the head's prediction against the *uniform* distribution::

    L_head = CE(c(sg(h)), n),   L_code = -1/K sum_k log softmax(c_sg(h))_k

with c_sg the head with its parameters held fixed: L_code is smallest (log K) when the head
cannot tell the classes apart, and a flipped label scores no better than a kept one.

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
MODES = ("reverse", "confusion")


def reversal_lambda(progress: float, gamma: float = 10.0, scale: float = 1.0) -> float:
    """Ganin et al.'s schedule: scale * (2 / (1 + exp(-gamma p)) - 1), p in [0, 1]."""
    p = min(max(progress, 0.0), 1.0)
    return scale * (2.0 / (1.0 + math.exp(-gamma * p)) - 1.0)


def check_adversary(weight: float, schedule: str, name: str, mode: str = "reverse") -> None:
    """Config check of an invariance weight (>= 0; 0 = off), its schedule and mode names."""
    require(weight >= 0, f"{name}_weight must be >= 0 (0 = off), got {weight}")
    require(schedule in SCHEDULES,
            f"{name}_schedule must be one of {', '.join(SCHEDULES)}, got {schedule!r}")
    require(mode in MODES, f"{name}_mode must be one of {', '.join(MODES)}, got {mode!r}")


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

    def __init__(self, code_dim: int, n_classes: int, hidden: int = 128, layers: int = 2,
                 mode: str = "reverse") -> None:
        if n_classes < 2:
            raise FactorseqError(f"an invariance head needs >= 2 classes, got {n_classes}")
        if mode not in MODES:
            raise FactorseqError(f"invariance mode must be one of {', '.join(MODES)}, "
                                 f"got {mode!r}")
        super().__init__(*mlp(code_dim, hidden, 1 if n_classes == 2 else n_classes, layers))
        self.n_classes, self.mode = n_classes, mode

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
        code = code[known]
        if self.mode == "confusion":  # the head learns on a stopped code, the code confuses it
            logits = self(code.detach())
            loss = self._cross_entropy(logits, y) + lambd * self._confusion(code)
        else:
            logits = self(grad_reverse(code, lambd))
            loss = self._cross_entropy(logits, y)
        hit = (logits.squeeze(-1) > 0) == (y == 1) if self.n_classes == 2 else \
            logits.argmax(-1) == y
        return InvarianceTerm(loss, hit.float().mean().detach(), int(known.sum()))

    def _cross_entropy(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.n_classes == 2:
            return F.binary_cross_entropy_with_logits(logits.squeeze(-1), y.to(logits.dtype))
        return F.cross_entropy(logits, y)

    def _confusion(self, code: torch.Tensor) -> torch.Tensor:
        """Cross-entropy of the head's prediction on ``code`` against the uniform
        distribution, with the head's parameters held fixed (gradient to the code only):
        mean over rows of -1/K sum_k log p_k; for two classes BCE against 1/2."""
        fixed = {k: v.detach() for k, v in self.named_parameters()}
        logits = torch.func.functional_call(self, fixed, (code,))
        if self.n_classes == 2:
            half = torch.full_like(logits.squeeze(-1), 0.5)
            return F.binary_cross_entropy_with_logits(logits.squeeze(-1), half)
        return -F.log_softmax(logits, -1).mean(-1).mean()
