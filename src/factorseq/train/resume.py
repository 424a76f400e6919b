"""Continuing a run (``--resume``) and reading its checkpoints: which checkpoint is the newest,
the stored configs, the merged CSV log, the kept weights. Checkpoints load tensors only."""
from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from ..checkpoint import read_config
from ..config import build
from ..data.config import DataConfig
from ..errors import FactorseqError
from ..runfolder import source_of_run
from .adapter import LitAdapter
from .config import TrainConfig


def resume_checkpoint(run: Path) -> Path | None:
    """``last.ckpt``; else ``best.ckpt``: each epoch writes best before last, so a run killed
    while writing its first last.ckpt has best.ckpt as its newest state."""
    return next((p for p in (run / "checkpoints" / "last.ckpt", run / "checkpoints" /
                             "best.ckpt") if p.is_file()), None)


def resumed(out: Path, model_name: str, train: TrainConfig | dict[str, Any] | None
             ) -> tuple[DataConfig, TrainConfig, dict[str, Any], int]:
    """The stored configs of ``out``; the user's ``epochs``/``max_minutes`` may raise the
    ceilings. Also the number of epochs ``checkpoints/last.ckpt`` has done."""
    last = resume_checkpoint(out)
    if last is None:
        raise FactorseqError(f"nothing to resume in {out} (no checkpoints/last.ckpt)")
    stored = read_config(out)
    if stored["model"] != model_name:
        raise FactorseqError(f"{out} holds a {stored['model']} run, not {model_name}")
    data_cfg = build(DataConfig, stored["data_config"], what="data config")
    data_cfg = dataclasses.replace(data_cfg, source=source_of_run(data_cfg.source, out))
    if "data_split" not in stored:  # begun before splits were saved: its random split
        data_cfg = dataclasses.replace(data_cfg, split="random")
    cfg = build(TrainConfig, stored["train_config"], what="train config")
    given = train if isinstance(train, dict) else (
        {k: getattr(train, k) for k in train.given()} if train is not None else {})
    if "epochs" in given:
        cfg.epochs = max(int(given["epochs"]), cfg.epochs)
    if "max_minutes" in given:
        cfg.max_minutes = given["max_minutes"]
    try:
        with warnings.catch_warnings():  # torch's notes on a foreign pickle: the error says it
            warnings.simplefilter("ignore")
            state = torch.load(last, map_location="cpu", weights_only=True)
        missing = [k for k in ("epoch", "state_dict", "pytorch-lightning_version")
                   if k not in state]
        if missing:
            raise ValueError(f"no {missing[0]!r} entry")
        done = int(state["epoch"]) + 1
    except Exception as e:  # noqa: BLE001 (any failure to read it is a corrupt checkpoint)
        why = ("it holds objects other than tensors and plain values, which are never loaded"
               if "weights only" in str(e).lower() else str(e).splitlines()[0][:200])
        raise FactorseqError(f"{last} is corrupt or not factorseq's: {why}") from None
    return data_cfg, cfg, stored["model_config"], done


def merge_logs(csv_log: Path, earlier: pd.DataFrame) -> None:
    """Prepend the epochs logged before a resume to the resumed run's CSV log."""
    new = pd.read_csv(csv_log) if csv_log.is_file() else earlier.iloc[:0]
    start = new["epoch"].min() if len(new) else np.inf
    merged = pd.concat([earlier[earlier["epoch"] < start], new], ignore_index=True)
    merged.to_csv(csv_log, index=False)


def restore_weights(adapter: LitAdapter, ckpt_path: Path) -> int | None:
    """Load a Lightning checkpoint's weights (tensors only) into ``adapter``; its epoch."""
    if not ckpt_path.is_file():
        return None
    state = torch.load(ckpt_path, map_location="cpu", weights_only=True)
    adapter.load_state_dict(state["state_dict"])
    return int(state.get("epoch", 0)) + 1
