"""Run directories: ``config.json`` + ``model.safetensors`` (+ logs and trainer state).

``config.json`` holds the model's registered name and class, the library version, the model
config, the fitted scaler, the data schema, the resolved data/training configs and a summary
of the split (``data_split``); ``split.npz`` the split's window indices. Weights are
safetensors, so loading never executes code from the file.
"""
from __future__ import annotations

import dataclasses
import json
import os
import sys
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_model, save_model

from . import __version__
from .config import build, to_dict
from .data.config import DataConfig
from .data.scaler import Scaler
from .data.split import RunSplit
from .errors import FactorseqError
from .io import atomic_output
from .models.base import SequenceModel
from .registry import get_model_class
from .run import Run
from .runfolder import hidden_copies, recover

__all__ = ["CONFIG", "WEIGHTS", "Run", "load", "read_config", "read_split", "save_run",
           "write_config"]

CONFIG = "config.json"
WEIGHTS = "model.safetensors"


def _class_path(obj: Any) -> str:
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


def write_config(path: Path, payload: dict[str, Any]) -> None:
    """``path/config.json``, all or nothing (a reader never sees half a config)."""
    with atomic_output(Path(path) / CONFIG) as tmp:
        tmp.write_text(json.dumps(payload, indent=2, sort_keys=False))


def run_payload(model: SequenceModel, scaler: Scaler, schema: dict[str, Any],
                data_config: DataConfig, train_config: Any, extra: dict[str, Any] | None = None
                ) -> dict[str, Any]:
    """The full config of a trained model (what ``config.json`` holds)."""
    payload = {
        "format": "factorseq-run",
        "version": __version__,
        "model": model.name,
        "class": _class_path(model),
        "model_config": to_dict(model.config),
        "scaler": scaler.to_dict(),
        "data_schema": schema,
        "data_config": to_dict(data_config),  # its source made run-relative by save_run
        "train_config": to_dict(train_config) if dataclasses.is_dataclass(train_config)
        else train_config,
    }
    payload.update(extra or {})
    return payload


def save_run(path: str | Path, model: SequenceModel, scaler: Scaler, schema: dict[str, Any],
             data_config: DataConfig, train_config: Any, extra: dict[str, Any] | None = None,
             split: RunSplit | None = None) -> Path:
    """Write the weights, the split (``split.npz``: which windows trained, validated, were
    held out) and the full config of a trained model into ``path`` (each file all or
    nothing; the config last, so a run with a trained config has its weights)."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    model = model.cpu()
    with atomic_output(path / WEIGHTS) as tmp:
        save_model(model, str(tmp), metadata={"format": "factorseq", "version": __version__})
    extra = dict(extra or {})
    if split is not None:
        split.save(path)
        extra["data_split"] = split.summary()
    from .runfolder import source_for_run
    data_config = dataclasses.replace(data_config,
                                      source=source_for_run(data_config.source, path))
    write_config(path, run_payload(model, scaler, schema, data_config, train_config, extra))
    return path


def read_config(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.exists():
        raise FactorseqError(f"run directory not found: {path}")
    cfg_file = path / CONFIG if path.is_dir() else path
    if not cfg_file.is_file():
        raise FactorseqError(f"{path} is not a factorseq run (no {CONFIG})")
    try:
        cfg = json.loads(cfg_file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise FactorseqError(f"{cfg_file} is corrupt (not valid JSON)") from None
    if not isinstance(cfg, dict) or cfg.get("format") != "factorseq-run":
        raise FactorseqError(f"{cfg_file} is not a factorseq run config")
    for key in ("model", "model_config", "scaler", "data_schema", "data_config"):
        if key not in cfg:
            raise FactorseqError(f"{cfg_file} is missing {key!r}")
        if key != "model" and not isinstance(cfg[key], dict):
            raise FactorseqError(f"{cfg_file}: {key} must be a mapping")
    _check_schema(cfg["data_schema"], cfg_file)
    return cfg


def _check_schema(schema: dict[str, Any], cfg_file: Path) -> None:
    """The window shape a run was trained on, and one feature name per feature."""
    t, d = schema.get("seq_len"), schema.get("n_features")
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in (t, d)):
        raise FactorseqError(f"{cfg_file}: data_schema seq_len and n_features must be whole "
                             f"numbers >= 1, got {t!r} and {d!r}")
    names = schema.get("feature_names")
    if names is not None and (not isinstance(names, list) or len(names) != d):
        raise FactorseqError(f"{cfg_file}: data_schema feature_names must be a list of {d} "
                             f"names, got {names!r:.80}")


def load(path: str | Path) -> Run:
    """Load a run directory written by ``factorseq train`` into a ready (eval-mode) model."""
    path = Path(path)
    for line in recover(path):  # a replacement killed half-way: finish it or roll it back
        print(line, file=sys.stderr, flush=True)
    if not path.exists() and hidden_copies(path):
        raise FactorseqError(f"run directory not found: {path} (a replacement under way, or "
                             f"one that was interrupted, holds "
                             f"{' and '.join(map(str, hidden_copies(path)))})")
    cfg = read_config(path)
    cls = get_model_class(cfg["model"])
    if cfg.get("class") and cfg["class"] != f"{cls.__module__}.{cls.__qualname__}":
        raise FactorseqError(f"{path}: model class {cfg['class']} does not match the registered "
                             f"{cls.__module__}.{cls.__qualname__}")
    mcfg = build(cls.Config, {**cls.legacy_config, **cfg["model_config"]},
                 what=f"{cfg['model']} config")
    model = cls(mcfg)
    weights = path / WEIGHTS
    if not weights.is_file():
        raise FactorseqError(f"{path} has no {WEIGHTS} (training unfinished? try --resume)")
    if not os.access(weights, os.R_OK):
        raise FactorseqError(f"cannot read {weights}: permission denied")
    try:
        missing, unexpected = load_model(model, str(weights), strict=False)
    except (SafetensorError, OSError, RuntimeError, ValueError) as e:
        raise FactorseqError(f"{weights} is corrupt or not a {cfg['model']} checkpoint: "
                             f"{str(e).splitlines()[0][:200]}") from None
    if missing or unexpected:
        raise FactorseqError(f"{weights} does not match the {cfg['model']} model (missing "
                             f"{sorted(missing)[:3]}, unexpected {sorted(unexpected)[:3]})")
    bad = next((n for n, p in model.named_parameters() if not torch.isfinite(p).all()), None)
    if bad is not None:
        raise FactorseqError(f"{weights} holds NaN/inf weights ({bad}): a diverged or damaged "
                             "run; train it again")
    model.eval()
    return Run(path=path, model=model, scaler=Scaler.from_dict(cfg["scaler"]), config=cfg,
               split=read_split(path, cfg))


def read_split(path: str | Path, cfg: dict[str, Any]) -> RunSplit | None:
    """The split saved with the run at ``path`` (``cfg``: its config.json); None for runs
    saved before splits were saved (``Run.splits()`` re-derives theirs)."""
    return RunSplit.load(path, cfg["data_split"]) if cfg.get("data_split") else None
