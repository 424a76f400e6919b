"""The one model contract every factorseq model follows.

A model is an ``nn.Module`` with a typed config dataclass beside it (``Config``), registered by
name (``@register("timevae")``). All tensors are ``(batch, time, features)``. The trainer,
checkpoint code and CLI only ever call the methods below, never branch on the model's name.

Batches are dicts of tensors: ``x`` (batch, time, features), and when the data has them
``y`` (batch,) int64 labels with ``y_mask`` (batch,) bool (False = unlabelled; one code path
for partial labels), ``seq_id`` (batch,) int64 sequence index, ``domain`` (batch,) int64, plus
any per-window extras of the data set.
"""
from __future__ import annotations

import abc
import dataclasses
from collections.abc import Callable
from typing import Any, ClassVar

import torch
from torch import nn

from ..config import require
from ..errors import check_shape


@dataclasses.dataclass
class ModelConfig:
    """Fields every model config has; ``seq_len``/``n_features`` are filled from the data.

    Any config field whose name matches a key of the data's ``meta`` (e.g. ``n_classes``,
    ``n_sequences``) is filled from it too, unless the user set it.
    """

    seq_len: int = 24
    n_features: int = 1

    def __post_init__(self) -> None:
        require(self.seq_len >= 1, f"seq_len must be >= 1, got {self.seq_len}")
        require(self.n_features >= 1, f"n_features must be >= 1, got {self.n_features}")


class SequenceModel(nn.Module, abc.ABC):
    """Base class. Subclasses set ``Config`` and implement ``loss``, ``encode``, ``decode``,
    ``sample``.

    Class attributes a model may override:
    - ``manual_optimization``: True for adversarial models; the trainer then calls
      :meth:`training_step` with one optimiser per name of :meth:`optimizer_groups`.
    - ``monitor_early_stopping``: False where the validation loss is not a stopping signal
      (GANs run their epochs).
    - ``evaluator``: name of the evaluator in ``factorseq.metrics`` that scores this model.
    - ``scaler``: default preprocessing of inputs (``minmax``, ``standard`` or ``none``).
    - ``generative``: False for models that do not generate (a domain-adaptation classifier);
      their ``sample`` raises FactorseqError and the contract tests skip sampling.
    """

    name: ClassVar[str] = "base"
    Config: ClassVar[type[ModelConfig]] = ModelConfig
    manual_optimization: ClassVar[bool] = False
    monitor_early_stopping: ClassVar[bool] = True
    evaluator: ClassVar[str] = "generative"
    scaler: ClassVar[str] = "minmax"
    generative: ClassVar[bool] = True
    # values for config keys that runs saved before the key existed did not write: a new
    # default must not silently change how an old checkpoint decodes
    legacy_config: ClassVar[dict[str, Any]] = {}

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config

    # --- the contract -------------------------------------------------------------------
    @abc.abstractmethod
    def loss(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Return ``dict(loss=scalar, **terms)``; ``loss`` is minimised (per-batch mean)."""

    @abc.abstractmethod
    def encode(self, x: torch.Tensor, **kw: Any) -> Any:
        """Map ``x`` (batch, time, features) to latent codes (posterior means by default)."""

    @abc.abstractmethod
    def decode(self, z: Any, **kw: Any) -> torch.Tensor:
        """Map latent codes to ``(batch, time, features)`` in the model's scaled space."""

    @abc.abstractmethod
    def sample(self, n: int, generator: torch.Generator | None = None, **kw: Any) -> torch.Tensor:
        """Draw ``n`` synthetic windows, shape ``(n, time, features)``, scaled space."""

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Posterior reconstruction ``decode(encode(x))``, shape of ``x``."""
        return self.decode(self.encode(x))

    # --- training hooks (defaults fit most VAEs) ------------------------------------------
    def optimizer_groups(self) -> dict[str, list[nn.Parameter]]:
        """Named parameter groups, one optimiser each. One group = automatic optimisation."""
        return {"all": list(self.parameters())}

    def optimizer_config(self, name: str) -> dict[str, Any]:
        """Adam keyword overrides (lr, betas, weight_decay) for optimiser group ``name``."""
        return {}

    def training_step(self, batch: dict[str, torch.Tensor], optimizers: dict[str, Any],
                      backward: Callable[[torch.Tensor], None], step: int) -> dict[str, Any]:
        """Manual optimisation only: do the model's alternating updates, return loss terms."""
        raise TypeError(f"{type(self).__name__} uses automatic optimisation; the trainer calls "
                        "training_step only when manual_optimization is True")

    def validation_loss(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return self.loss(batch)

    def on_train_epoch_start(self, epoch: int, max_epochs: int) -> None:
        """Called by the trainer before each epoch (annealing, training phases)."""

    def on_optimizer_step(self, step: int) -> None:
        """Called by the trainer after each optimiser step of automatic optimisation (``step``
        = optimiser steps so far, from 1), e.g. to update an EMA copy of the weights."""

    def make_batch_sampler(self, data: Any, batch_size: int, seed: int) -> Any:
        """Optional custom batching of the training windows (``data`` is the scaled
        SequenceData): an iterable of index lists, re-iterated every epoch. None = shuffled
        mini-batches. FHVAE uses it for hierarchical sampling of sequences."""
        return None

    def on_fit_end(self, loader: Any) -> None:
        """Called once after training with a loader over the (scaled) training data, e.g. to
        fit a code distribution for sampling. State to keep must live in buffers."""

    def report_figures(self, x: torch.Tensor) -> list[tuple[str, Any]]:
        """Model-specific (title, matplotlib figure) pairs for the report; ``x`` is real data."""
        return []

    # --- helpers ------------------------------------------------------------------------
    def check_input(self, x: torch.Tensor, name: str = "x") -> None:
        check_shape(name, x, 3, features=self.config.n_features, time=self.config.seq_len)

    @property
    def device(self) -> torch.device:
        p = next(self.parameters(), None)
        return p.device if p is not None else torch.device("cpu")


def gaussian_kl(mean: torch.Tensor, logvar: torch.Tensor, prior_mean: torch.Tensor | float = 0.0,
                prior_logvar: torch.Tensor | float = 0.0) -> torch.Tensor:
    """KL(N(mean, e^logvar) || N(prior_mean, e^prior_logvar)), summed over the last dim."""
    prior_logvar = torch.as_tensor(prior_logvar, dtype=mean.dtype, device=mean.device)
    prior_mean = torch.as_tensor(prior_mean, dtype=mean.dtype, device=mean.device)
    kl = 0.5 * (prior_logvar - logvar
                + (logvar.exp() + (mean - prior_mean) ** 2) / prior_logvar.exp() - 1.0)
    return kl.sum(-1)


def reparameterize(mean: torch.Tensor, logvar: torch.Tensor,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    eps = torch.randn(mean.shape, generator=generator, dtype=mean.dtype, device=mean.device)
    return mean + eps * torch.exp(0.5 * logvar)
