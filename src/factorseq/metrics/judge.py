"""The judge of the Sprites protocol: a classifier of real sequences that scores generated ones.

A judge reads sequences of frames ``(batch, time, C*H*W)`` (pixels in the data's own units)
and predicts every labelled factor at once (multi-head): the same small conv net on each
frame (:class:`factorseq.nn.frames.FrameEncoder`), a convolution across time (motion is in
how frames follow each other), mean pooling over time, one linear head per factor.

It is trained once on the REAL training sequences and reused by every model scored on that
data, so it is kept on disk (``<cache>/judges/<key>.safetensors`` + ``<key>.json``, never
pickle), keyed by the data's content (shape, labels, a strided sample of frames), its name and
frame shape, the factors and the judge's settings: another data set, resolution or split gets
its own judge.

Training runs ``min_epochs`` and then stops when every head reaches ``target`` accuracy on a
seeded ``holdout`` share of the training sequences (checked after each epoch; at most
``epochs``; the minimum keeps the judge confident, not just right, as the Inception Score reads
its probabilities): a fixed epoch count left the
judge of one split at chance on skin colour (a small, late-learnt factor at 32 x 32) while
another split's judge had it at 98 %. The evaluator reports the judge's test accuracy; a judge
short of the target says so in the metrics (``judge.below_target``).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_model, save_model
from torch import nn

from ..config import require, to_dict
from ..io import atomic_output
from ..nn.frames import FrameEncoder


@dataclasses.dataclass
class JudgeConfig:
    """How a judge is built and trained (part of its cache key)."""

    epochs: int = 40  # at most; stops earlier at ``target`` (module docstring)
    min_epochs: int = 6
    target: float = 0.99
    holdout: float = 0.1
    channels: int = 16
    hidden: int = 64
    batch_size: int = 64
    lr: float = 1e-3
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("epochs", "min_epochs", "channels", "hidden", "batch_size"):
            require(getattr(self, name) >= 1, f"judge {name} must be >= 1, got "
                                              f"{getattr(self, name)}")
        require(self.lr > 0, f"judge lr must be > 0, got {self.lr}")
        require(0 < self.target <= 1, f"judge target must be in (0, 1], got {self.target}")
        require(0 < self.holdout < 0.5, f"judge holdout must be in (0, 0.5), got "
                                        f"{self.holdout}")


class Judge(nn.Module):
    """(batch, time, C*H*W) -> {factor: logits (batch, classes)}."""

    def __init__(self, frame_shape: Sequence[int], classes: Mapping[str, int],
                 cfg: JudgeConfig) -> None:
        super().__init__()
        self.frames = FrameEncoder(frame_shape, cfg.hidden, cfg.channels)
        self.time = nn.Conv1d(cfg.hidden, cfg.hidden, 3, padding=1)
        self.heads = nn.ModuleDict({k: nn.Linear(cfg.hidden, int(n)) for k, n in classes.items()})

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        h = nn.functional.leaky_relu(self.frames(x), 0.2).transpose(1, 2)  # (batch, hidden, T)
        h = nn.functional.leaky_relu(self.time(h), 0.2).mean(-1)
        return {k: head(h) for k, head in self.heads.items()}


def train_judge(x: np.ndarray, labels: Mapping[str, np.ndarray], frame_shape: Sequence[int],
                classes: Mapping[str, int], cfg: JudgeConfig) -> tuple[Judge, dict[str, Any]]:
    """A judge fit on sequences ``x`` (n, time, C*H*W) with integer ``labels`` per factor:
    Adam on the sum of the heads' cross-entropies, shuffled mini-batches, seeded; the last
    ``holdout`` share of a seeded permutation is held out and training stops, after
    ``min_epochs``, once every head scores ``target`` there. Returns the judge and facts
    (epochs run, held-out accuracy, heads below the target)."""
    torch.manual_seed(cfg.seed)
    judge = Judge(frame_shape, classes, cfg)
    opt = torch.optim.Adam(judge.parameters(), lr=cfg.lr)
    ys = {k: torch.as_tensor(np.asarray(v), dtype=torch.long) for k, v in labels.items()}
    g = torch.Generator().manual_seed(cfg.seed)
    perm = torch.randperm(len(x), generator=g)
    n_held = max(1, int(round(cfg.holdout * len(x))))
    fit, held = perm[:-n_held], np.sort(perm[-n_held:].numpy())
    held_x = np.asarray(x[held], dtype=np.float32)
    held_y = {k: v[held].numpy() for k, v in ys.items()}
    acc: dict[str, float] = {}
    epochs_run = 0
    while epochs_run < cfg.epochs:
        epochs_run += 1
        judge.train()
        order = fit[torch.randperm(len(fit), generator=g)]
        for i in range(0, len(order), cfg.batch_size):
            rows = np.sort(order[i:i + cfg.batch_size].numpy())
            logits = judge(torch.as_tensor(np.asarray(x[rows], dtype=np.float32)))
            loss = sum(nn.functional.cross_entropy(logits[k], ys[k][rows]) for k in logits)
            opt.zero_grad()
            loss.backward()
            opt.step()
        acc = accuracies(judge_probs(judge, held_x), held_y)
        if epochs_run >= cfg.min_epochs and min(acc.values()) >= cfg.target:
            break
    return judge.eval(), {"epochs_run": epochs_run, "holdout_accuracy": acc,
                          "below_target": sorted(k for k, v in acc.items() if v < cfg.target)}


@torch.no_grad()
def judge_probs(judge: Judge, x: np.ndarray, batch: int = 256) -> dict[str, np.ndarray]:
    """p(y | x) of every factor, (n, classes) each, for sequences ``x`` (n, time, C*H*W)."""
    judge.eval()
    parts: dict[str, list[np.ndarray]] = {}
    for i in range(0, len(x), batch):
        out = judge(torch.as_tensor(np.asarray(x[i:i + batch], dtype=np.float32)))
        for k, v in out.items():
            parts.setdefault(k, []).append(v.softmax(-1).numpy())
    return {k: np.concatenate(v) for k, v in parts.items()}


def accuracies(probs: Mapping[str, np.ndarray], labels: Mapping[str, np.ndarray]
               ) -> dict[str, float]:
    """Share of rows whose most probable class is the label, per factor."""
    return {k: float((p.argmax(1) == np.asarray(labels[k])).mean()) for k, p in probs.items()}


def judge_key(x: np.ndarray, labels: Mapping[str, np.ndarray], frame_shape: Sequence[int],
              classes: Mapping[str, int], cfg: JudgeConfig, name: str) -> str:
    """Hex key of a judge: the data's name, shape, every label, a strided sample of its frames
    (64 sequences), the factors and the judge's settings."""
    h = hashlib.sha256()
    h.update(json.dumps({"name": name, "shape": list(np.shape(x)), "frame": list(frame_shape),
                         "classes": dict(classes), "judge": to_dict(cfg)},
                        sort_keys=True).encode())
    for k in sorted(labels):
        h.update(np.ascontiguousarray(labels[k], dtype=np.int64).tobytes())
    step = max(1, len(x) // 64)
    h.update(np.ascontiguousarray(np.asarray(x[::step], dtype=np.float32)).tobytes())
    return h.hexdigest()[:24]


TRAINING_FACTS = ("epochs_run", "holdout_accuracy", "below_target")


def load_or_train(x: np.ndarray, labels: Mapping[str, np.ndarray], frame_shape: Sequence[int],
                  classes: Mapping[str, int], cfg: JudgeConfig, *, name: str,
                  folder: Path | None) -> tuple[Judge, dict[str, Any]]:
    """The cached judge for this data and settings (``folder``/<key>.*), else a new one
    trained and saved there (None = no cache). Returns it with facts for metrics.json."""
    key = judge_key(x, labels, frame_shape, classes, cfg, name)
    info: dict[str, Any] = {"key": key, "config": to_dict(cfg), "cached": False}
    if folder is not None:
        weights, meta = folder / f"{key}.safetensors", folder / f"{key}.json"
        info["path"] = str(weights)
        if weights.is_file() and meta.is_file():
            judge = Judge(frame_shape, classes, cfg)
            try:
                load_model(judge, str(weights))
                facts = json.loads(meta.read_text())
                info.update({k: facts[k] for k in TRAINING_FACTS if k in facts}, cached=True)
                return judge.eval(), info
            except (SafetensorError, OSError, RuntimeError, ValueError):
                pass  # a damaged cache entry is trained again and replaced
    judge, facts = train_judge(x, labels, frame_shape, classes, cfg)
    info.update(facts)
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        with atomic_output(weights) as tmp:
            save_model(judge, str(tmp))
        with atomic_output(meta) as tmp:  # last: a judge with its json has its weights
            tmp.write_text(json.dumps({"data": name, "frame_shape": list(frame_shape),
                                       "classes": dict(classes), **info, "cached": False},
                                      indent=2))
    return judge, info
