"""Training options (the ``train.`` keys of ``--set``), saved resolved in the run."""
from __future__ import annotations

import dataclasses
import functools
import os
from typing import Any

from ..config import build, require


def _records_given(cls: type) -> type:
    """Instances remember which fields their caller set (``given()``): the keys a model's
    ``train_defaults`` may not override."""
    init = cls.__init__
    names = [f.name for f in dataclasses.fields(cls) if f.init]

    @functools.wraps(init)
    def __init__(self, *args: Any, **kwargs: Any) -> None:  # noqa: N807
        init(self, *args, **kwargs)
        self._given = frozenset(names[:len(args)]) | frozenset(kwargs)

    cls.__init__ = __init__
    return cls


@_records_given
@dataclasses.dataclass
class TrainConfig:
    """How to train. Defaults are sized for 2 CPU cores.

    ``epochs`` is the ceiling; early stopping on the validation loss (``patience`` epochs
    without an improvement larger than ``min_delta``) ends most runs well before it, and the
    weights of the best validation epoch are kept. The learning rate is multiplied by
    ``lr_factor`` after ``lr_patience`` epochs on a plateau. ``scaler`` overrides the data
    set's / model's preprocessing (``minmax``, ``standard``, ``quantile``: each feature
    through its empirical CDF, for heavy tails and values on a few levels; ``none``).
    ``threads`` is torch's intra-op thread count per process; ``null`` (the default) is one
    thread per core the process may use (its CPU affinity, shared among ``devices`` processes,
    capped by ``OMP_NUM_THREADS``): on an idle 2-core machine 2 threads train 1.18x faster
    than 1, but beside another heavy job 0.40x (BENCHMARKS.md section 11), so jobs that run
    side by side set 1 (or ``OMP_NUM_THREADS=1``). It is restored when training ends.
    ``max_minutes`` stops training after that much wall-clock time (the weights
    kept are chosen as at any other end). ``early_stopping`` false runs every epoch (models
    whose loss is no stopping signal, e.g. GANs, never stop early). ``trim_heap`` hands freed
    C heap back to the OS at each round and validation pass (flat resident size on big
    corpora; see ``factorseq.heap``).

    ``warmup_steps`` > 0 raises the learning rate linearly from lr / warmup_steps to lr over the
    first steps. ``lr_schedule``: ``plateau`` (the above) or ``cosine`` (after the warm-up, a
    half cosine from lr down to ``min_lr`` at the last step; no plateau reductions).
    ``max_steps`` (optimiser steps) ends training before ``epochs`` when reached.

    A model's ``train_defaults`` fill the fields the caller did not set (:meth:`given`).
    """

    epochs: int = 500
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.0
    seed: int = 0
    val_fraction: float = 0.1
    patience: int = 20
    min_delta: float = 0.0
    lr_patience: int = 8
    lr_factor: float = 0.5
    min_lr: float = 1e-5
    grad_clip: float | None = None
    warmup_steps: int = 0
    lr_schedule: str = "plateau"
    max_steps: int | None = None
    devices: int = 1
    num_nodes: int = 1
    strategy: str = "auto"
    accelerator: str = "cpu"
    num_workers: int = 0
    threads: int | None = None
    scaler: str | None = None
    progress: bool | None = None
    log_every_n_steps: int = 50
    tensorboard: bool = True
    max_minutes: float | None = None
    early_stopping: bool = True
    trim_heap: bool = False

    def __post_init__(self) -> None:
        require(self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}")
        require(self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}")
        require(0 < self.lr <= 10, f"lr must be in (0, 10], got {self.lr}")
        require(self.warmup_steps >= 0, f"warmup_steps must be >= 0, got {self.warmup_steps}")
        require(self.lr_schedule in ("plateau", "cosine"),
                f"lr_schedule must be plateau or cosine, got {self.lr_schedule!r}")
        require(self.max_steps is None or self.max_steps >= 1,
                f"max_steps must be >= 1 or null, got {self.max_steps}")
        require(0.0 <= self.val_fraction < 1.0, "val_fraction must be in [0, 1)")
        require(self.patience >= 1, "patience must be >= 1")
        require(0 < self.lr_factor < 1, "lr_factor must be in (0, 1)")
        require(self.devices >= 1 and self.num_nodes >= 1, "devices and num_nodes must be >= 1")
        require(self.max_minutes is None or self.max_minutes > 0,
                f"max_minutes must be > 0 (or null for no limit), got {self.max_minutes}")
        require(self.threads is None or self.threads >= 1,
                f"threads must be >= 1 (or null for one per core), got {self.threads}")
        require(self.num_workers >= 0, f"num_workers must be >= 0, got {self.num_workers}")
        require(self.weight_decay >= 0, f"weight_decay must be >= 0, got {self.weight_decay}")
        # a negative clip norm flips the gradient; a negative floor makes the rate negative
        require(self.grad_clip is None or self.grad_clip > 0,
                f"grad_clip must be > 0 (or null for none), got {self.grad_clip}")
        require(self.min_lr >= 0, f"min_lr must be >= 0, got {self.min_lr}")
        require(0 <= self.seed < 2**32, f"seed must be in [0, 2**32 - 1], got {self.seed}")
        require(self.min_delta >= 0, f"min_delta must be >= 0, got {self.min_delta}")
        require(self.lr_patience >= 0, f"lr_patience must be >= 0, got {self.lr_patience}")
        require(self.log_every_n_steps >= 1,
                f"log_every_n_steps must be >= 1, got {self.log_every_n_steps}")
        _check_strategy(self.strategy)
        _check_accelerator(self.accelerator)

    def given(self) -> frozenset[str]:
        """The fields the caller set (keyword or position; every field of a built copy)."""
        return getattr(self, "_given", frozenset(f.name for f in dataclasses.fields(self)))


def usable_cores(processes: int = 1) -> int:
    """Threads per process for ``threads=null``: the cores this process may run on (affinity
    mask), shared among ``processes`` local processes, capped by ``OMP_NUM_THREADS``."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
        os.cpu_count() or 1)
    omp = os.environ.get("OMP_NUM_THREADS", "")
    if omp.isdigit() and int(omp) >= 1:
        cores = min(cores, int(omp))
    return max(1, cores // max(1, processes))


def _check_strategy(name: str) -> None:
    if name == "auto":
        return
    from lightning.pytorch.strategies import StrategyRegistry  # only when one is named

    known = ["auto", *StrategyRegistry.available_strategies()]
    main = sorted(k for k in known if "unused" not in k and "deepspeed" not in k)
    require(name in known, f"strategy must be a Lightning strategy name ({', '.join(main)}, "
            f"...), got {name!r}")


def _check_accelerator(name: str) -> None:
    import torch

    found = {"cpu": True, "auto": True, "gpu": torch.cuda.is_available(),
             "cuda": torch.cuda.is_available(),
             "mps": hasattr(torch.backends, "mps") and torch.backends.mps.is_available()}
    require(name in found, f"accelerator must be one of {', '.join(found)}, got {name!r}")
    require(found[name], f"accelerator {name!r} is not available on this machine; use cpu "
            "(or auto)")


def effective_train_config(defaults: dict[str, Any],
                           train: TrainConfig | dict[str, Any] | None) -> TrainConfig:
    """``TrainConfig(**{**defaults, **user_given})``: a model's ``train_defaults`` under the
    keys the user set (a dict of them, or the fields a TrainConfig was given)."""
    if isinstance(train, TrainConfig):
        given = {k: getattr(train, k) for k in train.given()}
    else:
        given = dict(train or {})
    return build(TrainConfig, {**defaults, **given}, what="train config")
