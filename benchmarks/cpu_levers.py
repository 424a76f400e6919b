"""CPU levers for the transformer generators (issue #23): training steps/s of ``diffusion_ts``
and ``flow_ts`` with torch threads 1 vs 2, bfloat16 autocast of the denoiser, and
``torch.compile`` of the denoiser, each against the plain setting (1 thread, float32, eager).

All settings are timed in ONE process, interleaved round by round (base, threads2, bf16,
compile, base, ...), so a ratio compares timings taken seconds apart; the reported ratio is the
median over rounds of (setting steps/s) / (base steps/s of the same round). The load average is
read before each timing; a timing that starts above ``--max-load`` is repeated (at most twice)
and the load kept in the row either way.

Quality at equal steps: for bf16 and compile, the same initial weights, batches and noise are
trained ``--val-steps`` optimiser steps and the validation loss (float32, eager, fixed noise, the
validation block of the run's own split, in time with a gap) is compared with the plain run's.

    PYTHONPATH=src python benchmarks/cpu_levers.py --data energy \\
        --out benchmarks/results/cpu_levers.json
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from factorseq.config import build
from factorseq.data.config import DataConfig
from factorseq.metrics.scoring import SCORING_VERSION
from factorseq.registry import get_model_class
from factorseq.train.fit import prepared_data

SETTINGS = {  # name: (threads, bf16 autocast, compile)
    "base": (1, False, False), "threads2": (2, False, False),
    "bf16": (1, True, False), "compile": (1, False, True),
}


def load_avg() -> float:
    return round(os.getloadavg()[0], 2)


def windows(source: str, model: str = "flow_ts") -> tuple[torch.Tensor, torch.Tensor]:
    """(train, validation) windows (batch, time, features) exactly as ``fit`` trains the
    transformer generators on them: the run's own split at the defaults (in time with a gap
    where the windows' positions are known: no validation window shares a step with a
    training one), MinMax-scaled by the training windows."""
    train, val = prepared_data(model, DataConfig(source=source))
    return (torch.from_numpy(np.asarray(train.x, dtype=np.float32)),
            torch.from_numpy(np.asarray(val.x, dtype=np.float32)))


def with_bf16(net: torch.nn.Module) -> None:
    """Run ``net``'s forward under bfloat16 autocast, its output back in float32."""
    forward = net.forward

    def cast(*args):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = forward(*args)
        return out.float()

    net.forward = cast


def make(name: str, features: int, setting: str, template=None):
    """A model (weights copied from ``template`` when given) and its Adam, set up as the
    setting says (threads are set by the caller)."""
    cls = get_model_class(name)
    torch.manual_seed(0)
    model = cls(build(cls.Config, {"seq_len": 24, "n_features": features}))
    if template is not None:
        model.load_state_dict(template.state_dict())
    _, bf16, compiled = SETTINGS[setting]
    if bf16:
        with_bf16(model.denoiser)
    if compiled:
        model.denoiser.compile()
    opt = torch.optim.Adam(model.optimizer_groups()["all"], lr=1e-3,
                           **model.optimizer_config("all"))
    return model.train(), opt


def step(model, opt, x: torch.Tensor, g: torch.Generator, n: int) -> None:
    loss = model.loss({"x": x}, generator=g)["loss"]
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.optimizer_groups()["all"], 1.0)
    opt.step()
    model.on_optimizer_step(n)


def batches(train: torch.Tensor, size: int, count: int, seed: int) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [train[torch.randint(0, len(train), (size,), generator=g)] for _ in range(count)]


def timed(model, opt, data: list[torch.Tensor], threads: int, max_load: float) -> dict:
    """Steps/s over ``data`` (after the caller's warm-up); repeated while load > max_load."""
    torch.set_num_threads(threads)
    for attempt in range(3):
        load = load_avg()
        g = torch.Generator().manual_seed(attempt)
        t0, c0 = time.perf_counter(), time.process_time()
        for i, x in enumerate(data):
            step(model, opt, x, g, i + 1)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        if load <= max_load:
            break
    torch.set_num_threads(1)
    return {"steps_per_s": round(len(data) / wall, 2), "cpu_per_wall": round(cpu / wall, 2),
            "load_before": load, "load_after": load_avg(), "attempts": attempt + 1}


def speed(args, name: str, features: int, train: torch.Tensor) -> dict:
    models, rows, out = {}, {}, {}
    for setting in SETTINGS:
        t0 = time.perf_counter()
        try:
            models[setting] = make(name, features, setting)
            torch.set_num_threads(SETTINGS[setting][0])
            for i, x in enumerate(batches(train, args.batch, args.warmup, 99)):  # compiles
                step(*models[setting], x, torch.Generator().manual_seed(i), i + 1)
        except Exception as e:  # noqa: BLE001 - a lever that fails here is reported as such
            models.pop(setting, None)
            out[setting] = {"error": f"{type(e).__name__}: {e}"[:300]}
        torch.set_num_threads(1)
        rows[setting] = []
        out.setdefault(setting, {"warmup_s": round(time.perf_counter() - t0, 1)})
    for r in range(args.rounds):
        data = batches(train, args.batch, args.steps, r)
        for setting in models:
            rows[setting].append(timed(*models[setting], data, SETTINGS[setting][0],
                                       args.max_load))
            print(json.dumps({"model": name, "setting": setting, "round": r,
                              **rows[setting][-1]}), flush=True)
    for setting in models:
        ratios = [t["steps_per_s"] / b["steps_per_s"]
                  for t, b in zip(rows[setting], rows["base"], strict=True)]
        out[setting].update(
            timings=rows[setting],
            median_steps_per_s=statistics.median(t["steps_per_s"] for t in rows[setting]),
            ratio_vs_base_median=round(statistics.median(ratios), 3),
            ratio_vs_base_range=[round(min(ratios), 3), round(max(ratios), 3)])
    return out


@torch.no_grad()
def validation_loss(model, val: torch.Tensor) -> float:
    """Mean validation loss (float32, eager weights, fixed noise) over the held-out windows."""
    model.eval()
    total = [float(model.validation_loss({"x": val[i:i + 256]})["loss"]) * len(val[i:i + 256])
             for i in range(0, len(val), 256)]
    model.train()
    return sum(total) / len(val)


def quality(args, name: str, features: int, train: torch.Tensor, val: torch.Tensor,
            failed: set[str]) -> dict:
    """Validation loss after the same ``val_steps`` steps (same init, batches, noise)."""
    template, _ = make(name, features, "base")
    data = batches(train, args.batch, args.val_steps, 7)
    out = {}
    for setting in [s for s in ("base", "bf16", "compile") if s not in failed]:
        try:
            model, opt = make(name, features, setting, template)
        except Exception as e:  # noqa: BLE001
            out[setting] = {"error": f"{type(e).__name__}: {e}"[:300]}
            continue
        g = torch.Generator().manual_seed(11)
        t0 = time.perf_counter()
        for i, x in enumerate(data):
            step(model, opt, x, g, i + 1)
        plain = copy.deepcopy(template)  # the trained weights in an eager float32 model
        plain.load_state_dict({k.replace("_orig_mod.", ""): v
                               for k, v in model.state_dict().items()})
        out[setting] = {"val_loss": round(validation_loss(plain, val), 5),
                        "train_s": round(time.perf_counter() - t0, 1), "load": load_avg()}
        print(json.dumps({"model": name, "quality": setting, **out[setting]}), flush=True)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default="energy")
    p.add_argument("--models", nargs="+", default=["diffusion_ts", "flow_ts"])
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--steps", type=int, default=40, help="optimiser steps per timing")
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--val-steps", type=int, default=300)
    p.add_argument("--max-load", type=float, default=2.5)
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    torch.set_num_threads(1)
    train, val = windows(args.data)
    result = {"scoring_version": SCORING_VERSION,  # validation windows: the run's split
              "args": {k: str(v) for k, v in vars(args).items()},
              "torch": torch.__version__, "cpu_count": os.cpu_count(),
              "machine": platform.processor() or platform.machine(),
              "load_start": load_avg(), "models": {}}
    with contextlib.suppress(KeyboardInterrupt):
        for name in args.models:  # written after each part: a time cap keeps what finished
            result["models"][name] = {"speed": speed(args, name, train.shape[-1], train)}
            write(result, args.out)
            if args.val_steps:
                failed = {k for k, v in result["models"][name]["speed"].items() if "error" in v}
                result["models"][name]["quality"] = quality(args, name, train.shape[-1],
                                                            train, val, failed)
                write(result, args.out)
    print(json.dumps(result, indent=1))


def write(result: dict, out: Path | None) -> None:
    result["load_end"] = load_avg()
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
