"""FHVAE memory with 10x as many training sequences: does hierarchical sampling keep it flat?

Each scale runs in its own child process (``--child SCALE``) that trains one epoch of fhvae
on fsdd-strings with ``options.n_sequences = 450 * SCALE`` (synthetic copies: new random digit
strings drawn from the same recordings) through ``factorseq.train.fit``, the same code as
``factorseq train``. Three numbers per scale:

- ``process peak RSS``: ``ru_maxrss`` of the child (``os.wait4``), everything included, i.e. also
  the in-memory data set (the foundation's data layer holds all windows, raw and scaled);
- ``training-loop peak``: the peak RSS while Lightning's ``Trainer.fit`` runs (high-water mark
  reset through ``/proc/self/clear_refs`` when it starts, after ``malloc_trim(0)`` returned
  the freed heap to the OS) minus the RSS at that moment, i.e.
  what training adds on top of the loaded data: model, optimiser, mu2 table, softmax, batches,
  closed-form mu2 encodings of a round. RSS also counts freed heap that glibc keeps resident,
  which depends on how fragmented loading left the heap (see ``factorseq.heap``);
- ``training-loop live heap peak``: the peak of live C-heap memory (glibc ``mallinfo2``: bytes
  handed out and not yet freed, by Python, numpy and torch alike), sampled every 2 ms during
  ``Trainer.fit``, minus its value when ``fit`` starts: what the loop really holds.

    nice -n 10 python benchmarks/fhvae_memory.py [--scales 1 10] [--hidden 128 --layers 1]
    nice -n 10 python benchmarks/fhvae_memory.py --scales 1 --epochs 10   # same steps as 10x
    nice -n 10 python benchmarks/fhvae_memory.py --scales 1 10 --round 450  # same round size
    nice -n 10 python benchmarks/fhvae_memory.py --scales 1 10 --round 450 --store
    python benchmarks/fhvae_memory.py --table x1_e1 x10_e1 x1_e10

With ``--store`` the windows live on disk (``data.store``, :mod:`factorseq.data.store`): a
first child process (``--prepare``) loads the set and writes it to
benchmarks/out/fhvae_memory/store/, then the measured child trains from it, reading only the
rows each batch and each sampling round need. The process peak then is the training's peak.
"""
from __future__ import annotations

import argparse
import ctypes
import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
OUT = ROOT / "out" / "fhvae_memory"
BASE_SEQUENCES = 450  # fsdd-strings' default number of training strings


def _status_kb(key: str) -> int:
    return int(re.search(rf"{key}:\s+(\d+)", Path("/proc/self/status").read_text()).group(1))


class _Mallinfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]


def _live_heap_mb() -> float:
    """Bytes the C heap has handed out and not yet freed (glibc mallinfo2: uordblks + hblkhd),
    i.e. live memory of Python, numpy and torch on CPU, whatever the allocator keeps resident."""
    f = ctypes.CDLL("libc.so.6").mallinfo2
    f.restype = _Mallinfo2
    m = f()
    return (m.uordblks + m.hblkhd) / 2 ** 20


class _PeakSampler(threading.Thread):
    """Peak of the live heap, sampled every 2 ms while the training loop runs."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak, self.running = _live_heap_mb(), True

    def run(self) -> None:
        while self.running:
            self.peak = max(self.peak, _live_heap_mb())
            time.sleep(0.002)


def child(scale: int, args: argparse.Namespace) -> None:
    import lightning as L
    import torch

    from factorseq.train import TrainConfig, fit

    torch.set_num_threads(1)
    seen: dict[str, float] = {}
    fit_orig = L.Trainer.fit

    def measured_fit(self, *a, **kw):  # peak RSS of the training loop alone
        # hand freed heap (the data loading's float64 temporaries) back to the OS first, so
        # the loop cannot hide its allocations in memory that RSS already counts
        ctypes.CDLL("libc.so.6").malloc_trim(0)
        seen["rss_before_fit_mb"] = _status_kb("VmRSS") / 1024
        Path("/proc/self/clear_refs").write_text("5")  # reset the high-water mark VmHWM
        seen["live_before_fit_mb"] = _live_heap_mb()
        sampler = _PeakSampler()
        sampler.start()
        try:
            return fit_orig(self, *a, **kw)
        finally:
            seen["peak_during_fit_mb"] = _status_kb("VmHWM") / 1024
            sampler.running = False
            sampler.join()
            seen["live_peak_during_fit_mb"] = sampler.peak

    L.Trainer.fit = measured_fit
    n_seq = BASE_SEQUENCES * scale
    out = OUT / cell_name(scale, args) / "run"
    t0 = time.perf_counter()
    run = fit("fhvae", data_config(scale, args),
              TrainConfig(epochs=args.epochs, batch_size=args.batch_size, tensorboard=False,
                          threads=1, progress=False, patience=args.epochs, trim_heap=True),
              {"hidden": args.hidden, "layers": args.layers,
               "sequences_per_round": args.round}, out, force=True)
    data = run.load_data()
    res = {"scale": scale, "epochs": args.epochs, "n_sequences": n_seq,
           "n_windows": int(data.n_windows),
           "data_x_mb": round(data.x.nbytes / 2 ** 20, 1),
           "mu2_table_rows": int(run.model.mu2_table.shape[0]),
           "train_seconds": run.config["training"]["train_seconds"],
           "wall_seconds": round(time.perf_counter() - t0, 1),
           **{k: round(v, 1) for k, v in seen.items()},
           "training_loop_peak_mb": round(seen["peak_during_fit_mb"]
                                          - seen["rss_before_fit_mb"], 1),
           "training_loop_live_peak_mb": round(seen["live_peak_during_fit_mb"]
                                               - seen["live_before_fit_mb"], 1)}
    print("RESULT " + json.dumps(res), flush=True)


def data_config(scale: int, args: argparse.Namespace):
    from factorseq.data import DataConfig
    return DataConfig(source="fsdd-strings", options={"n_sequences": BASE_SEQUENCES * scale},
                      store=str(OUT / "store") if args.store else None)


def prepare(scale: int, args: argparse.Namespace) -> None:
    """Write the set to the store (its own process: loading is not training)."""
    from factorseq.data import load_data
    data = load_data(data_config(scale, args))
    print(f"stored {data.x}", flush=True)


def cell_name(scale: int, args: argparse.Namespace) -> str:
    # the default round (2000 sequences) keeps the original cell names
    return (f"x{scale}_e{args.epochs}" + ("" if args.round == 2000 else f"_r{args.round}")
            + ("_store" if args.store else ""))


def measure(scale: int, args: argparse.Namespace) -> dict:
    result = OUT / cell_name(scale, args) / "result.json"
    if result.is_file():
        return json.loads(result.read_text())
    result.parent.mkdir(parents=True, exist_ok=True)
    common = ["--hidden", str(args.hidden), "--layers", str(args.layers), "--batch-size",
              str(args.batch_size), "--epochs", str(args.epochs), "--round", str(args.round)]
    common += ["--store"] if args.store else []
    if args.store:
        subprocess.run([sys.executable, __file__, "--prepare", str(scale), *common], check=True)
    cmd = [sys.executable, __file__, "--child", str(scale), *common]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    out = p.stdout.read()
    _, status, usage = os.wait4(p.pid, 0)
    if os.waitstatus_to_exitcode(status):
        raise RuntimeError(f"child failed: {' '.join(cmd)}")
    res = json.loads(next(line for line in out.splitlines() if line.startswith("RESULT "))[7:])
    res["process_peak_rss_mb"] = round(usage.ru_maxrss / 1024, 1)
    res["config"] = {"hidden": args.hidden, "layers": args.layers,
                     "batch_size": args.batch_size, "store": bool(args.store)}
    result.write_text(json.dumps(res, indent=2))
    return res


def _ratio(a: float | None, b: float | None) -> str:
    return "-" if a is None or not b else f"{a / b:.2f}"


def table(results: list[dict]) -> str:
    base = results[0]
    lines = ["| training sequences | epochs | segments | data x (MB) | mu2 table rows | "
             "training-loop live heap peak (MB) | ratio | training-loop RSS peak (MB) | ratio | "
             "process peak RSS (MB) | ratio | train s |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    live = base.get("training_loop_live_peak_mb")
    for r in results:
        lines.append(
            f"| {r['n_sequences']} ({r['scale']}x) | {r['epochs']} | {r['n_windows']} | "
            f"{r['data_x_mb']} | "
            f"{r['mu2_table_rows']} | {r.get('training_loop_live_peak_mb', '-')} | "
            f"{_ratio(r.get('training_loop_live_peak_mb'), live)} | "
            f"{r['training_loop_peak_mb']} | "
            f"{r['training_loop_peak_mb'] / base['training_loop_peak_mb']:.2f} | "
            f"{r['process_peak_rss_mb']} | "
            f"{r['process_peak_rss_mb'] / base['process_peak_rss_mb']:.2f} | "
            f"{r['train_seconds']:.0f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--child", type=int, default=None)
    ap.add_argument("--prepare", type=int, default=None)
    ap.add_argument("--store", action="store_true", help="train from windows on disk")
    ap.add_argument("--scales", type=int, nargs="+", default=[1, 10])
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--layers", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--epochs", type=int, default=1, help="epochs of every scale")
    ap.add_argument("--round", type=int, default=2000,
                    help="--sequences-per-round: the mu2 table rows and softmax width")
    ap.add_argument("--table", nargs="*", metavar="CELL", help="print the table of these "
                    "result folders (x1_e1 x10_e1 x1_e10) without running anything")
    args = ap.parse_args()
    if args.table is not None:
        print(table([json.loads((OUT / c / "result.json").read_text()) for c in args.table]))
        return
    if args.prepare is not None:
        prepare(args.prepare, args)
        return
    if args.child is not None:
        child(args.child, args)
        return
    results = [measure(s, args) for s in args.scales]
    print(table(results))


if __name__ == "__main__":
    main()
