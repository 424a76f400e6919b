"""``fit``: data -> scaled split -> model -> Lightning -> run directory (or a run in memory).

Everything is generic over the registry: the model class supplies its config type, default
scaler, training defaults, optimiser groups, batching and hooks; this module never looks at a
model's name. Outputs are checked before any work and never lose a user's files: ``--force``
replaces only a factorseq run, and only once the new one has trained (``train.outputs``).
"""
from __future__ import annotations

import contextlib
import dataclasses
import datetime
import logging
import os
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lightning as L
import pandas as pd
import torch
from lightning.pytorch.callbacks import Callback, EarlyStopping, ModelCheckpoint, Timer
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

from ..checkpoint import CONFIG, Run, load, run_payload, save_run, write_config
from ..config import build, to_dict
from ..data.config import DataConfig
from ..data.lengths import distribution
from ..data.loaders import load_data
from ..data.split import RunSplit, make_split
from ..errors import FactorseqError
from ..io import free_memory
from ..registry import get_model_class
from ..runfolder import source_for_run
from .adapter import LitAdapter, TrainingDiverged
from .batches import BatchPlan, StartRounds, TrimHeap
from .config import TrainConfig, effective_train_config, usable_cores
from .data import check_size, check_support, fit_scaler, make_loader, scaled
from .outputs import Target, is_child_process, plan_target
from .resume import merge_logs, restore_weights, resume_checkpoint, resumed
from .sources import resolve_call

log = logging.getLogger("factorseq")

_QUIET_LOGGERS = ("lightning.pytorch", "lightning.fabric", "lightning")
_QUIET_WARNINGS = (".*does not have many workers.*", ".*GPU available.*", ".*sync_dist=True.*",
                   ".*LeafSpec.*", ".*smaller than the logging interval.*",
                   ".*exists and is not empty.*", ".*dirpath has changed.*",
                   ".*no `val_dataloader`.*")
_SEED_ENV = ("PL_GLOBAL_SEED", "PL_SEED_WORKERS")


def model_config(cls: type, data, overrides: dict[str, Any]):
    """Model config from the data (seq_len, n_features, meta keys) and the user's overrides."""
    fields = {f.name for f in dataclasses.fields(cls.Config)}
    values: dict[str, Any] = {"seq_len": data.seq_len, "n_features": data.n_features}
    values.update({k: v for k, v in data.meta.items() if k in fields})
    values.update(overrides)
    return build(cls.Config, values, what=f"{cls.name} config")


def overrides_of(cls: type, given: Any) -> dict[str, Any]:
    """The user's model settings as a dict: a dict as it is, or a model config instance
    (``fs.TimeVAEConfig(trend_poly=2)``) reduced to the fields that differ from their defaults,
    so that ``seq_len``/``n_features`` and meta keys still come from the data."""
    if given is None:
        return {}
    if isinstance(given, dict):
        return dict(given)
    if not isinstance(given, cls.Config):
        raise FactorseqError(f"{cls.name} takes a {cls.Config.__name__} or a dict of settings, "
                             f"got {type(given).__name__}")
    default = cls.Config()
    return {f.name: getattr(given, f.name) for f in dataclasses.fields(given)
            if f.init and getattr(given, f.name) != getattr(default, f.name)}


def choose_scaler(cls: type, data, train_cfg: TrainConfig) -> str:
    """Explicit ``train.scaler`` > the data's own preference (``meta["scaler"]``: bundled sets,
    log-mel features) unless it is the generic minmax and the model asks for another > the
    model's default."""
    if train_cfg.scaler:
        return train_cfg.scaler
    preferred = data.meta.get("scaler")
    if preferred and (preferred != "minmax" or cls.scaler == "minmax"):
        return preferred
    return cls.scaler


def train_config_for(cls: type, train: TrainConfig | dict[str, Any] | None) -> TrainConfig:
    """The effective TrainConfig: the model's ``train_defaults`` under the user's keys."""
    defaults = dict(getattr(cls, "train_defaults", {}) or {})
    unknown = set(defaults) - {f.name for f in dataclasses.fields(TrainConfig)}
    if unknown:  # a model's bug, not the user's input
        raise TypeError(f"{cls.__name__}.train_defaults has unknown keys {sorted(unknown)}")
    return effective_train_config(defaults, train)


# --- process-wide state, scoped ------------------------------------------------------------

@contextlib.contextmanager
def scoped_process_state(threads: int) -> Iterator[None]:
    """Torch's thread count, Lightning's log levels, warning filters and the seed variables
    Lightning exports, as training needs them and restored afterwards."""
    saved_threads = torch.get_num_threads()
    levels = {name: logging.getLogger(name).level for name in _QUIET_LOGGERS}
    env = {k: os.environ.get(k) for k in _SEED_ENV}
    with warnings.catch_warnings():
        for pattern in _QUIET_WARNINGS:
            warnings.filterwarnings("ignore", message=pattern)
        try:
            for name in _QUIET_LOGGERS:
                logging.getLogger(name).setLevel(logging.ERROR)
            torch.set_num_threads(threads)
            yield
        finally:
            torch.set_num_threads(saved_threads)
            for name, level in levels.items():
                logging.getLogger(name).setLevel(level)
            for k, v in env.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


# --- callbacks ------------------------------------------------------------------------------

class _Timer(Callback):
    """Wall time and windows seen, for the run summary (training throughput)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.windows = 0
        self._t0 = 0.0

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._t0 = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.windows += int(batch["x"].shape[0])

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self.seconds += time.perf_counter() - self._t0


class _EpochPrinter(Callback):
    """Without a terminal, one short line every few epochs instead of a progress bar."""

    def __init__(self, every: int = 10) -> None:
        self.every = every

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        e = trainer.current_epoch
        if trainer.sanity_checking or (e + 1) % self.every or not trainer.is_global_zero:
            return
        m = {k: float(v) for k, v in trainer.callback_metrics.items() if k.endswith("loss")}
        print(f"epoch {e + 1}: " + " ".join(f"{k}={v:.4g}" for k, v in sorted(m.items())),
              file=sys.stderr, flush=True)


class _BestInMemory(Callback):
    """Without a run folder: a copy of the weights of the best epoch of ``monitor`` (what
    ModelCheckpoint keeps on disk), nothing written anywhere."""

    def __init__(self, monitor: str) -> None:
        self.monitor = monitor
        self.best_score: float | None = None
        self.best_epoch: int | None = None
        self.state: dict[str, torch.Tensor] | None = None

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        score = trainer.callback_metrics.get(self.monitor)
        if score is None or not torch.isfinite(score):
            return
        if self.best_score is None or float(score) < self.best_score:
            self.best_score, self.best_epoch = float(score), trainer.current_epoch + 1
            self.state = {k: v.detach().clone() for k, v in pl_module.state_dict().items()}


@dataclasses.dataclass
class _Prepared:
    """Everything training needs, built (and so validated) before any output is touched."""

    cls: type
    model: Any
    scaler: Any
    schema: dict[str, Any]
    data_cfg: DataConfig
    train_cfg: TrainConfig
    train_data: Any
    val_data: Any
    split: RunSplit


def _prepare(cls: type, data_cfg: DataConfig, train_cfg: TrainConfig,
             model_overrides: dict[str, Any]) -> _Prepared:
    data = load_data(data_cfg)
    check_support(cls, data)
    split = make_split(data, data_cfg.split, train_cfg.val_fraction, data_cfg.holdout_fraction,
                       train_cfg.seed, data_cfg.labels, data_cfg.split_blocks)
    train_raw, val_raw, _ = split.parts(data)  # the held-out block is for evaluation only
    check_size(train_raw.n_windows, train_cfg.batch_size)
    scaler = fit_scaler(choose_scaler(cls, data, train_cfg), data, train_raw)
    train_data, val_data = scaled(train_raw, scaler), val_raw and scaled(val_raw, scaler)
    model = _build_model(cls, model_config(cls, train_data, model_overrides))  # model's width
    schema = data.schema()
    if train_raw.lengths is not None:  # what sample draws entity lengths from (JSON)
        schema["lengths"] = distribution(train_raw.lengths)
    return _Prepared(cls, model, scaler, schema, data_cfg, train_cfg, train_data,
                     val_data, split)


def _loaders(p: _Prepared) -> tuple[Any, Any, BatchPlan | None]:
    cfg = p.train_cfg
    sampler = p.model.make_batch_sampler(p.train_data, cfg.batch_size, cfg.seed)
    plan = BatchPlan(sampler) if sampler is not None else None
    train = make_loader(p.train_data, cfg.batch_size, shuffle=True, seed=cfg.seed,
                        batch_sampler=plan, num_workers=cfg.num_workers)
    val = (make_loader(p.val_data, max(cfg.batch_size, 256), shuffle=False, seed=cfg.seed,
                       num_workers=cfg.num_workers) if p.val_data is not None else None)
    return train, val, plan


def _build_model(cls: type, config: Any) -> Any:
    """The model, or one error line when its parameters (with Adam's two moments and the
    gradients, 4 copies) would not fit in the free memory."""
    try:
        model = cls(config)
    except (MemoryError, RuntimeError, TypeError, OverflowError) as e:
        if not isinstance(e, MemoryError | OverflowError) and not any(
                w in str(e).lower() for w in ("alloc", "overflow")):
            raise  # a bug, not a size
        raise FactorseqError(f"the {cls.name} model is too large for this machine's memory "
                             f"(check its size settings): {str(e).splitlines()[0][:120]}"
                             ) from None
    need = 4 * 4 * sum(p.numel() for p in model.parameters())
    free = free_memory()
    if free is not None and need > free:
        raise FactorseqError(f"the {cls.name} model has {need // 16:,} parameters: training "
                             f"needs about {need / 1e9:.1f} GB, more than is free "
                             f"({free / 1e9:.1f} GB); check its size settings")
    return model


def _callbacks(p: _Prepared, work: Path | None, monitor: str, plan: BatchPlan | None
               ) -> list[Callback]:
    cfg, model = p.train_cfg, p.model
    callbacks: list[Callback] = [_Timer()]
    if cfg.trim_heap:
        callbacks.append(TrimHeap(plan))  # before a round starts: trimmed, then filled
    if plan is not None:
        callbacks.append(StartRounds(plan))
    keep_best = monitor if model.monitor_early_stopping else None
    if work is not None:
        callbacks.append(ModelCheckpoint(dirpath=work / "checkpoints", filename="best",
                                         save_last=True, monitor=keep_best, save_top_k=1,
                                         mode="min", enable_version_counter=False))
    elif keep_best is not None:
        callbacks.append(_BestInMemory(keep_best))
    if model.monitor_early_stopping and cfg.early_stopping:
        callbacks.append(EarlyStopping(monitor=monitor, patience=cfg.patience,
                                       min_delta=cfg.min_delta, mode="min",
                                       strict=False))  # max_steps may end before validation
    if not _progress(cfg):
        callbacks.append(_EpochPrinter())
    return callbacks


def _progress(cfg: TrainConfig) -> bool:
    return sys.stderr.isatty() if cfg.progress is None else cfg.progress


def _loggers(cfg: TrainConfig, work: Path | None) -> list[Any] | bool:
    if work is None:
        return False
    loggers: list[Any] = [CSVLogger(str(work), name="logs", version="")]
    if cfg.tensorboard:
        loggers.append(TensorBoardLogger(str(work), name="tensorboard", version="",
                                         default_hp_metric=False))
    return loggers


def _strategy(name: str, model: Any) -> str:
    """Models with several optimisers take several backward passes per batch, each through
    part of the parameters: DDP must then look for the parameters a pass leaves out."""
    if model.manual_optimization and name in ("ddp", "ddp_spawn", "ddp_fork", "ddp_notebook"):
        return f"{name}_find_unused_parameters_true"
    return name


def _trainer(p: _Prepared, work: Path | None, callbacks: list[Callback], has_val: bool,
             own_batches: bool) -> L.Trainer:
    cfg = p.train_cfg
    return L.Trainer(
        accelerator=cfg.accelerator, devices=cfg.devices, num_nodes=cfg.num_nodes,
        strategy=_strategy(cfg.strategy, p.model), max_epochs=cfg.epochs, callbacks=callbacks,
        max_steps=cfg.max_steps or -1,  # whichever comes first: epochs, steps, time
        logger=_loggers(cfg, work), enable_checkpointing=work is not None,
        max_time=datetime.timedelta(minutes=cfg.max_minutes) if cfg.max_minutes else None,
        enable_progress_bar=_progress(cfg), enable_model_summary=False,
        log_every_n_steps=cfg.log_every_n_steps, deterministic=False,
        limit_val_batches=1.0 if has_val else 0, num_sanity_val_steps=0,
        # a model's own batches are split over processes by its BatchPlan, and their number
        # may change with the epoch: Lightning asks for it again every epoch
        use_distributed_sampler=not own_batches,
        reload_dataloaders_every_n_epochs=1 if own_batches else 0,
        default_root_dir=str(work) if work is not None else None)


# --- the run folder -----------------------------------------------------------------------

def _initial_config(p: _Prepared, work: Path) -> dict[str, Any]:
    data_cfg = dataclasses.replace(p.data_cfg, source=source_for_run(p.data_cfg.source, work))
    return {"format": "factorseq-run", "status": "training", "model": p.cls.name,
            "model_config": to_dict(p.model.config), "scaler": p.scaler.to_dict(),
            "data_schema": p.schema, "data_config": to_dict(data_cfg),
            "train_config": to_dict(p.train_cfg), "data_split": p.split.summary()}


# --- fit ------------------------------------------------------------------------------------

def prepared_data(model_name: str, data_cfg: Any = None, train_cfg: Any = None,
                  **options: Any) -> tuple[Any, Any]:
    """(training, validation) windows exactly as :func:`fit` would train ``model_name`` on
    them: the run's split, scaled by the scaler fitted on the training block. For benchmarks
    that time or probe a model outside a run (nothing is written)."""
    cls = get_model_class(model_name)
    data_cfg, train_cfg, overrides = resolve_call(
        cls, DataConfig() if data_cfg is None else data_cfg, train_cfg, {}, options)
    p = _prepare(cls, data_cfg, train_config_for(cls, train_cfg), overrides)
    return p.train_data, p.val_data


def fit(model_name: str, data_cfg: Any = None, train_cfg: TrainConfig | dict[str, Any] | None
        = None, model_overrides: dict[str, Any] | Any = None, out: str | Path | None = None,
        *, force: bool = False, resume: bool = False, **options: Any) -> Run | None:
    """Train ``model_name`` on the data of ``data_cfg``: a DataConfig, a path or bundled name,
    a pandas DataFrame or a numpy array (:mod:`.sources`); ``options`` are settings of the
    data, training or model config by name (``fs.fit("vae_conv", df, id_column="site",
    time_column="t", window=12, epochs=1)``).

    ``train_cfg``: a TrainConfig or a dict of ``train.`` keys; the model's ``train_defaults``
    fill the keys it does not set. ``model_overrides``: a dict of model keys or the model's
    config (``fs.TimeVAEConfig(trend_poly=2)``: the fields set away from their defaults count).
    With ``out`` a run directory is written there and the loaded :class:`Run` returned (None in
    DDP child processes); ``force`` replaces an existing factorseq run at ``out`` once the new
    one has trained; ``resume`` continues ``out`` from ``checkpoints/last.ckpt`` with its
    stored configs (``epochs`` may raise the ceiling). Without ``out`` nothing is written: the
    best weights are kept in memory and the Run has ``path=None``.
    """
    cls = get_model_class(model_name)
    out = Path(out) if out is not None else None
    model_overrides = overrides_of(cls, model_overrides)
    data_cfg, train_cfg, model_overrides = resolve_call(
        cls, DataConfig() if data_cfg is None else data_cfg, train_cfg, model_overrides, options)
    done = 0
    if resume:
        if out is None:
            raise FactorseqError("resume needs the run directory (out)")
        data_cfg, cfg, model_overrides, done = resumed(out, model_name, train_cfg)
    else:
        cfg = train_config_for(cls, train_cfg)
    if out is None and cfg.devices * cfg.num_nodes > 1:
        raise FactorseqError("training on several processes needs a run directory (out)")
    target = plan_target(out, force=force, resume=resume) if out is not None else None
    try:
        with scoped_process_state(cfg.threads or usable_cores(cfg.devices)):
            L.seed_everything(cfg.seed, workers=True, verbose=False)
            try:
                p = _prepare(cls, data_cfg, cfg, model_overrides)
            except BaseException:
                if target is not None:
                    target.abandon()  # nothing trained: only the parent folders it made
                raise
            if target is None:
                return _fit_in_memory(p)
            if resume and not is_child_process():
                print(f"resuming {out} after epoch {done}: training continues with epoch "
                      f"{done + 1} (up to {cfg.epochs})", file=sys.stderr, flush=True)
            return _fit_to_folder(p, target, resume)
    finally:
        if target is not None:
            target.release()  # the run folder's lock: one writer at a time


def _fit_in_memory(p: _Prepared) -> Run:
    train_loader, val_loader, plan = _loaders(p)
    monitor = "val_loss" if val_loader is not None else "train_loss"
    callbacks = _callbacks(p, None, monitor, plan)
    trainer = _trainer(p, None, callbacks, val_loader is not None, plan is not None)
    adapter = LitAdapter(p.model, p.train_cfg)
    t0 = time.perf_counter()
    try:
        trainer.fit(adapter, train_loader, val_loader, weights_only=True)
    except TrainingDiverged as e:
        raise FactorseqError(f"training diverged: {e}; nothing kept (no out folder; lower "
                             "train.lr?)") from None
    best = next((c for c in callbacks if isinstance(c, _BestInMemory)), None)
    if best is not None and best.state is not None:
        adapter.load_state_dict(best.state)
    summary = _summary(p, trainer, callbacks, monitor, t0,
                       best.best_epoch if best else None, best.best_score if best else None)
    _finish_model(p)
    config = run_payload(p.model, p.scaler, p.schema, p.data_cfg, p.train_cfg,
                         {"status": "trained", "training": summary,
                          "data_split": p.split.summary()})
    return Run(path=None, model=p.model, scaler=p.scaler, config=config, split=p.split)


def _fit_to_folder(p: _Prepared, target: Target, resume: bool) -> Run | None:
    try:
        return _train_in(p, target, resume)
    except BaseException:
        target.abandon()  # a replacement that did not finish: the old run stays as it was
        raise


def _train_in(p: _Prepared, target: Target, resume: bool) -> Run | None:
    work = target.prepare()
    if not resume and not is_child_process():  # the resolved config, before any epoch
        p.split.save(work)
        write_config(work, _initial_config(p, work))
    train_loader, val_loader, plan = _loaders(p)
    monitor = "val_loss" if val_loader is not None else "train_loss"
    callbacks = _callbacks(p, work, monitor, plan)
    trainer = _trainer(p, work, callbacks, val_loader is not None, plan is not None)
    adapter = LitAdapter(p.model, p.train_cfg)
    last, csv_log = work / "checkpoints" / "last.ckpt", work / "logs" / "metrics.csv"
    earlier = pd.read_csv(csv_log) if resume and csv_log.is_file() else None
    t0 = time.perf_counter()
    try:
        with target.shared_with_children():
            trainer.fit(adapter, train_loader, val_loader,
                        ckpt_path=str(resume_checkpoint(work)) if resume else None,
                        weights_only=True)
    except TrainingDiverged as e:
        if is_child_process():
            raise
        _keep_diverged(p, adapter, target, last, str(e))
    if earlier is not None and trainer.is_global_zero:  # CSVLogger restarts its file on resume
        merge_logs(csv_log, earlier)
    if trainer.interrupted:
        if target.replaces:
            raise FactorseqError(f"training interrupted; {target.out} is unchanged")
        raise FactorseqError(f"training interrupted; continue with --resume (run {work})")
    if not trainer.is_global_zero:
        return None
    ckpt = next(c for c in callbacks if isinstance(c, ModelCheckpoint))
    best_epoch = None
    if ckpt.best_model_path and p.model.monitor_early_stopping:
        best_epoch = restore_weights(adapter, Path(ckpt.best_model_path))
    score = float(ckpt.best_model_score) if ckpt.best_model_score is not None else None
    summary = _summary(p, trainer, callbacks, monitor, t0, best_epoch, score)
    _finish_model(p)
    save_run(work, p.model, p.scaler, p.schema, p.data_cfg, p.train_cfg,
             {"status": "trained", "training": summary}, p.split)
    return load(target.commit())


def _keep_diverged(p: _Prepared, adapter: LitAdapter, target: Target, last: Path,
                   error: str) -> None:
    """A new run that diverged keeps its last good checkpoint; a replacement that diverged
    replaces nothing. Always raises."""
    msg = f"training diverged: {error}"
    if target.replaces:
        raise FactorseqError(msg + f"; {target.out} is unchanged (lower train.lr?)") from None
    kept = restore_weights(adapter, last)
    if kept is None:
        raise FactorseqError(msg + "; no good checkpoint to keep (lower train.lr?)") from None
    save_run(target.work, p.model, p.scaler, p.schema, p.data_cfg, p.train_cfg,
             {"status": "diverged", "training": {"kept_epoch": kept, "error": error}}, p.split)
    raise FactorseqError(msg + f"; kept the last good checkpoint (epoch {kept}) in "
                         f"{target.out}") from None


def _finish_model(p: _Prepared) -> None:
    p.model.eval()
    p.model.on_fit_end(make_loader(p.train_data, 1024, shuffle=False, seed=0))


def _summary(p: _Prepared, trainer: L.Trainer, callbacks: list[Callback], monitor: str,
             t0: float, best_epoch: int | None, best_score: float | None) -> dict[str, Any]:
    timer = next(c for c in callbacks if isinstance(c, _Timer))
    stopped = next((c for c in callbacks if isinstance(c, EarlyStopping)), None)
    clock = next((c for c in trainer.callbacks if isinstance(c, Timer)), None)
    return {
        "epochs_run": trainer.current_epoch,
        "best_epoch": best_epoch,
        "best_score": best_score,
        "monitor": monitor,
        "stopped_early": bool(stopped and stopped.stopped_epoch > 0),
        "stopped_by_time": bool(clock is not None and (clock.time_remaining() or 0) <= 0),
        "train_seconds": round(timer.seconds, 3),
        "wall_seconds": round(time.perf_counter() - t0, 3),
        "windows_per_second": round(timer.windows / timer.seconds, 1) if timer.seconds
        else None,
        "n_train": p.train_data.n_windows,
        "n_val": p.val_data.n_windows if p.val_data is not None else 0,
        "n_holdout": len(p.split.holdout),
    }


__all__ = ["fit", "TrainConfig", "CONFIG"]
