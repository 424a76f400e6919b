"""The README's quick start timed as a new user meets it: a fresh clone of this checkout's HEAD,
then ``make demo`` (creates the venv, installs torch and the project, trains, samples,
evaluates, writes the report). The wall time, the CPU time of the children, the load average
before and after and the commit are kept as a result file (``harness.record``).

    python benchmarks/demo_timing.py [--json benchmarks/results/demo_timing.json]

Run it alone on the machine: a timing taken above load 2.5 is not a valid timing (the file
says the load).
"""
from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import harness


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=Path, default=harness.RESULTS / "demo_timing.json")
    args = ap.parse_args(argv)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=harness.REPO, check=True,
                            capture_output=True, text=True).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="factorseq-demo-") as tmp:
        clone = Path(tmp) / "factorseq"
        subprocess.run(["git", "clone", "-q", str(harness.REPO), str(clone)], check=True)
        load_before = [round(v, 2) for v in os.getloadavg()]
        env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}  # as a user
        t0 = time.perf_counter()
        p = subprocess.run(["make", "demo"], cwd=clone, env=env)
        wall = time.perf_counter() - t0
    cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
    harness.record(args.json, {"commit": commit, "exit_code": p.returncode,
                               "wall_s": round(wall, 1),
                               "children_cpu_s": round(cpu.ru_utime + cpu.ru_stime, 1),
                               "loadavg_before": load_before})
    print(f"make demo on a fresh clone of {commit[:7]}: exit {p.returncode}, "
          f"{wall / 60:.1f} min wall")
    return p.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
