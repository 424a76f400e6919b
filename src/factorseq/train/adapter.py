"""One LightningModule for every factorseq model.

Automatic optimisation (one Adam + reduce-on-plateau) for likelihood models; manual
optimisation with one optimiser per named parameter group for adversarial ones, delegating the
alternating updates to ``model.training_step``. The adapter never looks at the model's name.
"""
from __future__ import annotations

import math
from typing import Any

import lightning as L
import torch

from ..models.base import SequenceModel
from .config import TrainConfig


class TrainingDiverged(RuntimeError):
    """A loss term became NaN/inf; the caller restores the last good checkpoint."""


def _check_finite(terms: dict[str, Any], where: str, epoch: int, step: int) -> None:
    for k, v in terms.items():
        val = float(v.detach()) if torch.is_tensor(v) else v
        if isinstance(val, float) and not math.isfinite(val):
            raise TrainingDiverged(f"{where} loss term {k!r} is {val} at epoch {epoch}, "
                                   f"step {step}")


class LitAdapter(L.LightningModule):
    def __init__(self, model: SequenceModel, train_cfg: TrainConfig) -> None:
        super().__init__()
        self.model = model
        self.train_cfg = train_cfg
        self.automatic_optimization = not model.manual_optimization
        self._groups = list(model.optimizer_groups())

    # Lightning's hooks ----------------------------------------------------------------------
    def on_train_epoch_start(self) -> None:
        self.model.on_train_epoch_start(self.current_epoch, self.trainer.max_epochs)

    def _log_terms(self, terms: dict[str, Any], prefix: str, batch_size: int) -> None:
        for k, v in terms.items():
            if torch.is_tensor(v) and v.numel() != 1:
                continue
            name = f"{prefix}_{k}"
            self.log(name, float(v.detach()) if torch.is_tensor(v) else float(v),
                     on_step=False, on_epoch=True, prog_bar=(k == "loss"),
                     batch_size=batch_size, sync_dist=True)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> Any:
        bs = batch["x"].shape[0]
        if self.automatic_optimization:
            terms = self.model.loss(batch)
            _check_finite(terms, "training", self.current_epoch, self.global_step)
            self._log_terms(terms, "train", bs)
            return terms["loss"]
        opts = self.optimizers()
        opts = opts if isinstance(opts, list) else [opts]
        named = dict(zip(self._groups, opts, strict=True))
        terms = self.model.training_step(batch, named, self.manual_backward, self.global_step)
        _check_finite(terms, "training", self.current_epoch, self.global_step)
        self._log_terms(terms, "train", bs)
        return None

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        terms = self.model.validation_loss(batch)
        _check_finite(terms, "validation", self.current_epoch, self.global_step)
        self._log_terms(terms, "val", batch["x"].shape[0])

    def configure_optimizers(self) -> Any:
        cfg = self.train_cfg
        groups = self.model.optimizer_groups()
        opts = []
        for name, params in groups.items():
            kw = {"lr": cfg.lr, "weight_decay": cfg.weight_decay}
            kw.update(self.model.optimizer_config(name))
            opts.append(torch.optim.Adam([p for p in params if p.requires_grad], **kw))
        if not self.automatic_optimization or cfg.lr_schedule == "cosine":
            return opts if len(opts) > 1 else opts[0]
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(
            opts[0], mode="min", factor=cfg.lr_factor, patience=cfg.lr_patience,
            min_lr=cfg.min_lr)
        monitor = "val_loss" if self.trainer.limit_val_batches else "train_loss"
        return {"optimizer": opts[0],
                "lr_scheduler": {"scheduler": sched, "monitor": monitor, "interval": "epoch"}}

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        if self.automatic_optimization and self.train_cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.train_cfg.grad_clip)
        lr = self._scheduled_lr()
        if self.automatic_optimization and lr is not None:
            for group in optimizer.param_groups:
                group["lr"] = lr

    def _scheduled_lr(self) -> float | None:
        """Linear warm-up over ``warmup_steps``, then with ``lr_schedule=cosine`` a half
        cosine from lr to min_lr over the remaining steps; None = leave the lr alone."""
        cfg, step = self.train_cfg, self.global_step
        if step < cfg.warmup_steps:
            return cfg.lr * (step + 1) / cfg.warmup_steps
        if cfg.lr_schedule != "cosine":
            return None
        total = max(int(self.trainer.estimated_stepping_batches) - cfg.warmup_steps, 1)
        progress = min((step - cfg.warmup_steps) / total, 1.0)
        return cfg.min_lr + (cfg.lr - cfg.min_lr) * 0.5 * (1 + math.cos(math.pi * progress))

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        if self.automatic_optimization:
            self.model.on_optimizer_step(self.global_step)
