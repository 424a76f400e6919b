"""``dann``: domain-adversarial training of a sequence classifier (Ganin et al., JMLR 2016).

A feature extractor G_f (the shared sequence encoder over (batch, time, features), e.g. log-mel
frames) feeds a label predictor G_y, trained on the labelled *source* domain only, and, through
the gradient reversal layer R_lambda, a domain classifier G_d trained to tell source (domain 0)
from target (domain != 0) features. One update minimises::

    CE(G_y(G_f(x_s)), y_s) + BCE(G_d(R_lambda(G_f(x))), d)

so G_d descends the domain loss while G_f ascends lambda times it: the features become
domain-invariant. G_d is the library's one invariance head (``nn/invariance.py``, which also
keeps the sequence out of FHVAE's z1 and the label out of the SS-VAE's style).
lambda follows the paper's schedule lambda_p = 2 / (1 + exp(-10 p)) - 1
(times ``lambda_max``), p the training progress in [0, 1]. Batches are half source, half
target (``make_batch_sampler``), as in the paper.

Labels of the target domain are never used: only rows with ``domain == 0`` and ``y_mask`` True
enter the classification loss, whatever the data layer marks. The source-only baseline is the
same model with ``lambda_max=0`` (the reversal passes no gradient: the domain classifier
still learns, as a probe, but the features do not adapt), trained as its own run on the same
batches; the ``classifier`` evaluator scores either run and, given the other run as
``baseline``, reports the adaptation gain.

Hu et al. (2017): the feature extractor is the generator (of features), the domain classifier
the discriminator, y = source / target; the reversal layer makes the extractor minimise the
discriminator's objective with reversed labels' sign.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..config import require
from ..errors import FactorseqError
from ..nn.adversarial import optimizer_step
from ..nn.backbones import SeqEncoder, check_backbone, mlp
from ..nn.invariance import AdversarialInvariance, reversal_lambda
from ..nn.schedule import ScheduleState
from ..registry import register
from .base import CLASSIFIES, ENCODES, ModelConfig, SequenceModel
from .outputs import CodeSpec


@dataclasses.dataclass
class DANNConfig(ModelConfig):
    """DANN hyper-parameters.

    - ``backbone``/``hidden``/``layers``: the feature extractor (GRU, 2 x 128 by default);
      ``feature_dim``: size of the features G_f(x).
    - ``n_classes``: classes of y (filled from the data).
    - ``head_hidden``: hidden units of the label predictor and domain classifier (each one
      hidden layer of ``head_hidden`` / two layers for the domain classifier as in Ganin).
    - ``lambda_max``: scale of the reversal schedule (0 = the source-only baseline);
      ``schedule_gamma``: its steepness (10).
    - ``dropout``: on the features before the heads (regularises the small speech task).
    """

    backbone: str = "gru"
    hidden: int = 128
    layers: int = 2
    feature_dim: int = 128
    n_classes: int = 10
    head_hidden: int = 128
    lambda_max: float = 1.0
    schedule_gamma: float = 10.0
    dropout: float = 0.2

    def __post_init__(self) -> None:
        super().__post_init__()
        check_backbone(self.backbone, self.hidden, self.layers)
        require(self.feature_dim >= 1 and self.head_hidden >= 1,
                "feature_dim and head_hidden must be >= 1")
        require(self.n_classes >= 2, f"n_classes must be >= 2, got {self.n_classes}")
        require(self.lambda_max >= 0, f"lambda_max must be >= 0, got {self.lambda_max}")
        require(self.schedule_gamma > 0, "schedule_gamma must be > 0")
        require(0 <= self.dropout < 1, f"dropout must be in [0, 1), got {self.dropout}")


class SequenceClassifier(nn.Module):
    """G_f + G_y: (batch, time, features) -> features (batch, feature_dim) -> logits."""

    def __init__(self, c: DANNConfig) -> None:
        super().__init__()
        self.features = SeqEncoder(c.n_features, c.hidden, c.feature_dim, c.layers, c.backbone,
                                   seq_len=c.seq_len)
        self.drop = nn.Dropout(c.dropout)
        self.head = mlp(c.feature_dim, c.head_hidden, c.n_classes, layers=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = torch.relu(self.features(x))
        return f, self.head(self.drop(f))


class DomainBalancedBatches:
    """Batches of half source, half target windows (index lists), re-drawn every epoch.

    An epoch walks once through a permutation of the source windows; target windows come from
    a stream of permutations (cycled when the target domain is smaller)."""

    def __init__(self, domain: np.ndarray, batch_size: int, seed: int) -> None:
        self.src = np.flatnonzero(domain == 0)
        self.tgt = np.flatnonzero(domain != 0)
        if len(self.src) == 0 or len(self.tgt) == 0:
            raise FactorseqError("dann needs windows of both domains (source = 0 and target "
                                 f"!= 0); got {len(self.src)} source, {len(self.tgt)} target")
        self.half = max(1, batch_size // 2)
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return math.ceil(len(self.src) / self.half)

    def __iter__(self):
        src = self.rng.permutation(self.src)
        need = len(self) * self.half
        tgt = np.concatenate([self.rng.permutation(self.tgt)
                              for _ in range(math.ceil(need / len(self.tgt)))])
        for i in range(len(self)):
            s = src[i * self.half:(i + 1) * self.half]
            yield np.concatenate([s, tgt[i * self.half:i * self.half + len(s)]]).tolist()


@register("dann")
class DANN(SequenceModel):
    """Domain-adversarial sequence classifier (``lambda_max=0``: its source-only baseline)."""

    Config = DANNConfig
    capabilities = frozenset({ENCODES, CLASSIFIES})
    manual_optimization: ClassVar[bool] = True
    monitor_early_stopping: ClassVar[bool] = False
    evaluator: ClassVar[str] = "classifier"
    scaler: ClassVar[str] = "standard"

    def __init__(self, config: DANNConfig) -> None:
        super().__init__(config)
        c = config
        self.classifier = SequenceClassifier(c)
        # G_d: the shared invariance head (nn/invariance.py), source (0) vs target (1)
        self.domain_classifier = AdversarialInvariance(c.feature_dim, 2, c.head_hidden, layers=2)
        # where training is (resumes with the run): epoch, batch within it, an epoch's length
        self.schedule = ScheduleState(epoch=0, max_epochs=1, batch=0, per_epoch=0, lambd=0.0)

    # --- schedule ----------------------------------------------------------------------------
    @property
    def lambd(self) -> float:
        """The reversal weight of the latest training step."""
        return self.schedule.get("lambd")

    def on_train_epoch_start(self, epoch: int, max_epochs: int) -> None:
        s = self.schedule
        if s.get("batch"):
            s.set("per_epoch", s.get("batch"))
        s.set("epoch", epoch)
        s.set("max_epochs", max(max_epochs, 1))
        s.set("batch", 0)

    def progress(self) -> float:
        """Training progress p in [0, 1] (per batch once an epoch's length is known)."""
        s = self.schedule
        per = s.get("per_epoch")
        within = min(s.get("batch") / per, 1.0) if per else 0.0
        return (s.get("epoch") + within) / s.get("max_epochs")

    # --- the contract ------------------------------------------------------------------------
    def _check(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor,
                                                              torch.Tensor, torch.Tensor]:
        x = batch["x"]
        self.check_input(x)
        if "y" not in batch or "domain" not in batch:
            raise FactorseqError("dann needs labelled data with domains (y and domain), e.g. "
                                 "--data fsdd-digits --target-speaker NAME")
        y, domain = batch["y"].long(), batch["domain"].long()
        mask = batch.get("y_mask")
        known = torch.ones_like(y, dtype=torch.bool) if mask is None else mask.bool()
        source = (domain == 0) & known  # target labels never enter any loss
        if source.any() and int(y[source].max()) >= self.config.n_classes:
            raise FactorseqError(f"label {int(y[source].max())} is out of range for "
                                 f"n_classes={self.config.n_classes}")
        return x, y, domain, source

    @staticmethod
    def _ce(logits: torch.Tensor, y: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
        if not source.any():
            return logits.sum() * 0.0  # no labelled source row in this batch
        return F.cross_entropy(logits[source], y[source])

    def _terms(self, batch: dict[str, torch.Tensor], lambd: float) -> dict[str, torch.Tensor]:
        x, y, domain, source = self._check(batch)
        f, logits = self.classifier(x)
        domain_term = self.domain_classifier.term(f, (domain != 0).long(), lambd=lambd)
        class_loss = self._ce(logits, y, source)
        return {"loss": class_loss + domain_term.loss, "class_loss": class_loss,
                "domain_loss": domain_term.loss, "domain_acc": domain_term.accuracy}

    def loss(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Validation: ``loss`` = source classification + domain loss."""
        return self._terms(batch, self.lambd)

    def optimizer_groups(self) -> dict[str, list[nn.Parameter]]:
        return {"dann": list(self.classifier.parameters())
                + list(self.domain_classifier.parameters())}

    def training_step(self, batch: dict[str, torch.Tensor], optimizers: dict[str, Any],
                      backward: Any, step: int) -> dict[str, Any]:
        """One DANN update through the reversal layer."""
        self.schedule.set("lambd", reversal_lambda(self.progress(), self.config.schedule_gamma,
                                                   self.config.lambda_max))
        self.schedule.add("batch")
        t = self._terms(batch, self.lambd)
        optimizer_step(optimizers["dann"], t["loss"], backward)
        return {**{k: v.detach() for k, v in t.items()}, "lambda": self.lambd}

    def make_batch_sampler(self, data: Any, batch_size: int, seed: int) -> Any:
        if data.domain is None:
            raise FactorseqError("dann needs a data set with domains (source = 0, target = 1),"
                                 " e.g. --data fsdd-digits --target-speaker theo")
        if data.y is None:
            raise FactorseqError("dann needs labels y for the source domain")
        return DomainBalancedBatches(data.domain, batch_size, seed)

    # --- inference ---------------------------------------------------------------------------
    def code_specs(self) -> list[CodeSpec]:
        return [CodeSpec("features", self.config.feature_dim, "features", decoded=False,
                         description="domain-invariant features G_f(x)")]

    def _encode(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Features G_f(x) (batch, feature_dim) of windows (batch, time, features)."""
        return {"features": self.classifier(x)[0]}

    def _predict_proba(self, x: torch.Tensor) -> torch.Tensor:
        """Class probabilities (batch, n_classes) of the label predictor."""
        return torch.softmax(self.classifier(x)[1], -1)
