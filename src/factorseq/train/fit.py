"""``fit``: data -> scaled split -> model -> Lightning -> run directory.

Everything is generic over the registry: the model class supplies its config type, default
scaler, optimiser groups and hooks; this module never looks at a model's name.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import pandas as pd
import torch
from lightning.pytorch.callbacks import Callback, EarlyStopping, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

from ..checkpoint import CONFIG, Run, load, read_config, save_run, write_config
from ..config import build, to_dict
from ..data.config import DataConfig
from ..data.loaders import load_data
from ..data.scaler import make_scaler
from ..errors import FactorseqError
from ..registry import get_model_class
from .adapter import LitAdapter, TrainingDiverged
from .config import TrainConfig
from .data import check_size, make_loader, scaled, split

log = logging.getLogger("factorseq")


def is_child_process() -> bool:
    """True in the extra processes a DDP launcher starts (they must not touch outputs)."""
    return os.environ.get("LOCAL_RANK", "0") != "0" or os.environ.get("NODE_RANK", "0") != "0"


def prepare_out(out: Path, *, force: bool, resume: bool) -> None:
    if is_child_process():
        return
    if resume:
        if not (out / "checkpoints" / "last.ckpt").is_file():
            raise FactorseqError(f"nothing to resume in {out} (no checkpoints/last.ckpt)")
        return
    if out.exists() and any(out.iterdir()):
        if not force:
            raise FactorseqError(f"output {out} exists; use --force to overwrite or --resume")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)


def model_config(cls: type, data, overrides: dict[str, Any]):
    """Model config from the data (seq_len, n_features, meta keys) and the user's overrides."""
    fields = {f.name for f in dataclasses.fields(cls.Config)}
    values: dict[str, Any] = {"seq_len": data.seq_len, "n_features": data.n_features}
    values.update({k: v for k, v in data.meta.items() if k in fields})
    values.update(overrides)
    return build(cls.Config, values, what=f"{cls.name} config")


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


def _quiet() -> None:
    for name in ("lightning.pytorch", "lightning.fabric", "lightning"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*GPU available.*")
    warnings.filterwarnings("ignore", message=".*sync_dist=True.*")
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")
    warnings.filterwarnings("ignore", message=".*smaller than the logging interval.*")
    warnings.filterwarnings("ignore", message=".*exists and is not empty.*")


def fit(model_name: str, data_cfg: DataConfig, train_cfg: TrainConfig | None = None,
        model_overrides: dict[str, Any] | None = None, out: str | Path = "runs/run",
        *, force: bool = False, resume: bool = False) -> Run | None:
    """Train ``model_name`` on the data of ``data_cfg`` and write a run directory at ``out``.

    Returns the loaded :class:`Run` (None in DDP child processes). With ``resume`` the stored
    resolved configs of ``out`` are used and training continues from ``checkpoints/last.ckpt``
    (``train_cfg.epochs`` may raise the ceiling).
    """
    _quiet()
    out = Path(out)
    train_cfg = train_cfg or TrainConfig()
    model_overrides = dict(model_overrides or {})
    if resume:
        stored = read_config(out)
        if stored["model"] != model_name:
            raise FactorseqError(f"{out} holds a {stored['model']} run, not {model_name}")
        data_cfg = build(DataConfig, stored["data_config"], what="data config")
        epochs = train_cfg.epochs
        train_cfg = build(TrainConfig, stored["train_config"], what="train config")
        train_cfg.epochs = max(epochs, train_cfg.epochs)
        model_overrides = stored["model_config"]
    prepare_out(out, force=force, resume=resume)
    if train_cfg.threads:
        torch.set_num_threads(train_cfg.threads)
    L.seed_everything(train_cfg.seed, workers=True, verbose=False)

    cls = get_model_class(model_name)
    data = load_data(data_cfg)
    # --labels N promises exactly N labels for training: they all stay in the training split
    keep = data.y_mask if data_cfg.labels is not None else None
    train_raw, val_raw = split(data, train_cfg.val_fraction, train_cfg.seed, keep)
    check_size(train_raw.n_windows, train_cfg.batch_size)
    scaler = make_scaler(choose_scaler(cls, data, train_cfg)).fit(train_raw.x)
    train_data, val_data = scaled(train_raw, scaler), val_raw and scaled(val_raw, scaler)
    model = cls(model_config(cls, data, model_overrides))
    schema = data.schema()

    if not resume and not is_child_process():  # the resolved config, before any epoch
        write_config(out, {"format": "factorseq-run", "status": "training", "model": cls.name,
                           "model_config": to_dict(model.config), "scaler": scaler.to_dict(),
                           "data_schema": schema, "data_config": to_dict(data_cfg),
                           "train_config": to_dict(train_cfg)})

    sampler = model.make_batch_sampler(train_data, train_cfg.batch_size, train_cfg.seed)
    train_loader = make_loader(train_data, train_cfg.batch_size, shuffle=True,
                               seed=train_cfg.seed, batch_sampler=sampler,
                               num_workers=train_cfg.num_workers)
    val_loader = (make_loader(val_data, max(train_cfg.batch_size, 256), shuffle=False,
                              seed=train_cfg.seed, num_workers=train_cfg.num_workers)
                  if val_data is not None else None)
    monitor = "val_loss" if val_loader is not None else "train_loss"

    timer = _Timer()
    ckpt = ModelCheckpoint(dirpath=out / "checkpoints", filename="best", save_last=True,
                           monitor=monitor if model.monitor_early_stopping else None,
                           save_top_k=1, mode="min", enable_version_counter=False)
    callbacks: list[Callback] = [timer, ckpt]
    if model.monitor_early_stopping:
        callbacks.append(EarlyStopping(monitor=monitor, patience=train_cfg.patience,
                                       min_delta=train_cfg.min_delta, mode="min"))
    progress = sys.stderr.isatty() if train_cfg.progress is None else train_cfg.progress
    if not progress:
        callbacks.append(_EpochPrinter())
    loggers: list[Any] = [CSVLogger(str(out), name="logs", version="")]
    if train_cfg.tensorboard:
        loggers.append(TensorBoardLogger(str(out), name="tensorboard", version="",
                                         default_hp_metric=False))
    trainer = L.Trainer(
        accelerator=train_cfg.accelerator, devices=train_cfg.devices,
        num_nodes=train_cfg.num_nodes, strategy=train_cfg.strategy,
        max_epochs=train_cfg.epochs, callbacks=callbacks, logger=loggers,
        max_steps=train_cfg.max_steps or -1,  # whichever comes first: epochs, steps, time
        max_time={"minutes": train_cfg.max_minutes} if train_cfg.max_minutes else None,
        enable_progress_bar=progress, enable_model_summary=False,
        log_every_n_steps=train_cfg.log_every_n_steps, deterministic=False,
        limit_val_batches=1.0 if val_loader is not None else 0,
        num_sanity_val_steps=0, default_root_dir=str(out))
    adapter = LitAdapter(model, train_cfg)
    last = out / "checkpoints" / "last.ckpt"
    csv_log = out / "logs" / "metrics.csv"
    earlier = pd.read_csv(csv_log) if resume and csv_log.is_file() else None
    t0 = time.perf_counter()
    try:
        trainer.fit(adapter, train_loader, val_loader,
                    ckpt_path=str(last) if resume else None, weights_only=True)
    except TrainingDiverged as e:
        if is_child_process():
            raise
        kept = _restore(adapter, last)
        msg = f"training diverged: {e}"
        if kept is None:
            raise FactorseqError(msg + "; no good checkpoint to keep (lower train.lr?)") from None
        save_run(out, model, scaler, schema, data_cfg, train_cfg,
                 {"status": "diverged", "training": {"kept_epoch": kept, "error": str(e)}})
        raise FactorseqError(msg + f"; kept the last good checkpoint (epoch {kept}) in {out}") \
            from None
    if earlier is not None and trainer.is_global_zero:  # CSVLogger restarts its file on resume
        _merge_logs(csv_log, earlier)
    if trainer.interrupted:
        raise FactorseqError(f"training interrupted; continue with --resume (run {out})")
    if not trainer.is_global_zero:
        return None
    best_epoch = None
    if ckpt.best_model_path and model.monitor_early_stopping:
        best_epoch = _restore(adapter, Path(ckpt.best_model_path))
    model.eval()
    model.on_fit_end(make_loader(train_data, 1024, shuffle=False, seed=0))
    stopped = next((c for c in callbacks if isinstance(c, EarlyStopping)), None)
    summary = {
        "epochs_run": trainer.current_epoch,
        "best_epoch": best_epoch,
        "best_score": float(ckpt.best_model_score) if ckpt.best_model_score is not None
        else None,
        "monitor": monitor,
        "stopped_early": bool(stopped and stopped.stopped_epoch > 0),
        "train_seconds": round(timer.seconds, 3),
        "wall_seconds": round(time.perf_counter() - t0, 3),
        "windows_per_second": round(timer.windows / timer.seconds, 1) if timer.seconds else None,
        "n_train": train_data.n_windows,
        "n_val": val_data.n_windows if val_data is not None else 0,
    }
    save_run(out, model, scaler, schema, data_cfg, train_cfg,
             {"status": "trained", "training": summary})
    return load(out)


def _merge_logs(csv_log: Path, earlier: pd.DataFrame) -> None:
    """Prepend the epochs logged before a resume to the resumed run's CSV log."""
    new = pd.read_csv(csv_log) if csv_log.is_file() else earlier.iloc[:0]
    start = new["epoch"].min() if len(new) else np.inf
    merged = pd.concat([earlier[earlier["epoch"] < start], new], ignore_index=True)
    merged.to_csv(csv_log, index=False)


def _restore(adapter: LitAdapter, ckpt_path: Path) -> int | None:
    """Load a Lightning checkpoint's weights (tensors only) into ``adapter``; its epoch."""
    if not ckpt_path.is_file():
        return None
    state = torch.load(ckpt_path, map_location="cpu", weights_only=True)
    adapter.load_state_dict(state["state_dict"])
    return int(state.get("epoch", 0)) + 1


__all__ = ["fit", "TrainConfig", "CONFIG"]
