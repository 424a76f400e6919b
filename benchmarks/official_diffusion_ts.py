"""The official Diffusion-TS code beside ours at an equal CPU budget (issue #23, part 2).

Two steps, two interpreters (the official code is never committed; fetch it and give --repo):

  # 1. with factorseq's interpreter: the energy series, rebuilt from the bundled windows
  python benchmarks/official_diffusion_ts.py series --data energy --out /tmp/energy_data.csv

  # 2. with an interpreter that has the official code's requirements (einops, ema-pytorch):
  python benchmarks/official_diffusion_ts.py run --repo Diffusion-TS --config Config/energy.yaml \
      --series /tmp/energy_data.csv --minutes 10 --seed 0 --threads 1 --out OUT

Step 2 trains with the official ``Trainer`` (their loss, optimiser, scheduler, EMA, gradient
accumulation, clipping) until the budget runs out, saves the checkpoint, samples as many
windows as the series has with their own sampler (their config's sampling steps, EMA model),
and writes ``OUT/samples.npy`` in the series' own units (their MinMax scaler inverted) with
``OUT/official.json`` (steps, seconds, load). Scoring uses factorseq's scores on the same real
windows as our runs: ``factorseq evaluate RUN --samples OUT/samples.npy``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np


def series(args: argparse.Namespace) -> None:
    """The bundled windows are stride-1 cuts of one series: put the rows back in order."""
    from factorseq.data import DataConfig, load_data

    data = load_data(DataConfig(source=args.data))
    if data.start is None:
        raise SystemExit(f"error: {args.data} has no recoverable time positions")
    order = np.argsort(data.start)
    x, start = np.asarray(data.x)[order], data.start[order]
    if not np.array_equal(start, np.arange(len(start))):
        raise SystemExit("error: the windows are not every stride-1 cut of one series")
    rows = np.concatenate([x[:, 0, :], x[-1, 1:, :]])
    import pandas as pd
    pd.DataFrame(rows, columns=data.feature_names).to_csv(args.out, index=False)
    print(f"{args.out}: {rows.shape[0]} rows x {rows.shape[1]} columns")


class _BudgetSpent(Exception):
    pass


def _batches_until(loader, deadline: float):
    """Their training loop draws batches from an endless iterator: end it at the deadline."""
    while True:
        for batch in loader:
            if time.monotonic() > deadline:
                raise _BudgetSpent
            yield batch


def run(args: argparse.Namespace) -> None:
    import torch
    repo = Path(args.repo).resolve()
    sys.path.insert(0, str(repo))
    os.chdir(repo)  # their modules resolve paths relative to the checkout
    from Data.build_dataloader import build_dataloader
    from engine.solver import Trainer
    from Models.interpretable_diffusion.model_utils import unnormalize_to_zero_to_one
    from Utils.io_utils import instantiate_from_config, load_yaml_config, seed_everything

    torch.set_num_threads(args.threads)
    seed_everything(args.seed)
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    config = load_yaml_config(args.config)
    config["dataloader"]["train_dataset"]["params"]["data_root"] = str(Path(args.series).resolve())
    config["solver"]["results_folder"] = str(out / "checkpoints")
    if args.sampling_steps:
        config["model"]["params"]["sampling_timesteps"] = args.sampling_steps
    ns = argparse.Namespace(save_dir=str(out), name="energy")
    model = instantiate_from_config(config["model"])
    loaders = build_dataloader(config, ns)
    trainer = Trainer(config=config, args=ns, model=model, dataloader=loaders, logger=None)

    load0 = os.getloadavg()
    t0 = time.monotonic()
    trainer.dl = _batches_until(loaders["dataloader"], t0 + 60 * args.minutes)
    try:
        trainer.train()
    except _BudgetSpent:
        pass
    train_s = time.monotonic() - t0
    trainer.save(1)
    dataset = loaders["dataset"]
    n = args.n or len(dataset)
    t1 = time.monotonic()
    with torch.no_grad():
        samples = trainer.sample(num=n, size_every=args.batch, shape=[dataset.window,
                                                                     dataset.var_num])[:n]
    sample_s = time.monotonic() - t1
    samples = unnormalize_to_zero_to_one(samples)  # their [-1, 1] -> MinMax [0, 1]
    flat = dataset.scaler.inverse_transform(samples.reshape(-1, samples.shape[-1]))
    tmp = out / "samples.tmp.npy"
    np.save(tmp, flat.reshape(samples.shape).astype(np.float32))
    os.replace(tmp, out / "samples.npy")
    facts = {"steps": trainer.step, "train_seconds": round(train_s, 1),
             "sample_seconds": round(sample_s, 1), "n_samples": int(n),
             "sampling_timesteps": int(model.sampling_timesteps),
             "timesteps": int(model.num_timesteps), "threads": args.threads,
             "minutes": args.minutes, "seed": args.seed, "config": args.config,
             "training_windows": len(dataset), "load_start": load0,
             "load_end": os.getloadavg(), "torch": torch.__version__}
    (out / "official.json").write_text(json.dumps(facts, indent=1))
    print(json.dumps(facts))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="verb", required=True)
    s = sub.add_parser("series")
    s.add_argument("--data", default="energy")
    s.add_argument("--out", required=True)
    r = sub.add_parser("run")
    r.add_argument("--repo", required=True)
    r.add_argument("--config", default="Config/energy.yaml")
    r.add_argument("--series", required=True)
    r.add_argument("--minutes", type=float, required=True)
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--threads", type=int, default=1)
    r.add_argument("--n", type=int, default=0, help="windows to sample (default: all)")
    r.add_argument("--batch", type=int, default=2001, help="windows per sampling batch")
    r.add_argument("--sampling-steps", type=int, default=0,
                   help="override the config's sampling_timesteps (default: keep)")
    r.add_argument("--out", required=True)
    args = parser.parse_args()
    (series if args.verb == "series" else run)(args)


if __name__ == "__main__":
    main()
