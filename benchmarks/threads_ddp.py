"""How to use two cores (issue #23, part 1): one training epoch of a model on a bundled set,
timed as a user runs it (the whole ``factorseq train`` command, its own "trained ... in Ns"
line), with 1 torch thread, 2 torch threads, and 2 data-parallel processes (DDP, gloo, one
thread each; each process trains on half the windows, so one epoch is half the steps).
Settings interleaved round by round; the machine's load average before and after each row.

    python benchmarks/threads_ddp.py --model diffusion_ts --data energy --rounds 2 \
        --out benchmarks/results/threads_ddp.json

Run it with both cores free (nothing else heavy): it measures what a user's idle 2-core
machine gives, where cpu_levers.py measured a second thread beside another job.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FACTORSEQ = Path(sys.executable).with_name("factorseq")
SETTINGS = {"1 thread": ["--set", "train.threads=1"],
            "2 threads": ["--set", "train.threads=2"],
            "2 DDP processes x 1 thread": ["--set", "train.threads=1", "--devices", "2",
                                           "--strategy", "ddp"]}


def one(args, setting: str, root: Path) -> dict:
    out = root / re.sub(r"\W+", "_", setting)
    cmd = [str(FACTORSEQ), "train", args.model, "--data", args.data, "--out", str(out),
           "--force", "--epochs", str(args.epochs), "--seed", "0",
           "--set", "train.tensorboard=false", "--set", "train.progress=false",
           *SETTINGS[setting]]
    load = os.getloadavg()
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1:], "cmd": cmd}
    m = re.search(r"trained \S+ in ([\d.]+)s", done.stdout)
    return {"train_s": float(m.group(1)) if m else None, "command_s": round(wall, 1),
            "load_before": load, "load_after": os.getloadavg(), "cmd": " ".join(cmd[1:])}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="diffusion_ts")
    p.add_argument("--data", default="energy")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    rows: dict[str, list] = {s: [] for s in SETTINGS}
    with tempfile.TemporaryDirectory(prefix="threads-ddp-") as tmp:
        for r in range(args.rounds):
            for setting in SETTINGS:
                rows[setting].append(one(args, setting, Path(tmp)))
                print(json.dumps({"round": r, "setting": setting, **rows[setting][-1]}),
                      flush=True)
    base = [r.get("train_s") for r in rows["1 thread"]]
    summary = {}
    for setting, rs in rows.items():
        t = [r.get("train_s") for r in rs]
        if None in t or None in base:
            summary[setting] = {"error": rs}
            continue
        summary[setting] = {"train_s_median": statistics.median(t),
                            "speed_vs_1_thread": [round(b / x, 3) for b, x in zip(base, t,
                                                                                  strict=True)]}
    from factorseq.metrics.scoring import SCORING_VERSION  # the checkout measured (no scores)
    result = {"scoring_version": SCORING_VERSION, "args": vars(args) | {"out": str(args.out)},
              "cpu_count": os.cpu_count(),
              "affinity": len(os.sched_getaffinity(0)), "rows": rows, "summary": summary}
    print(json.dumps(summary, indent=1))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
