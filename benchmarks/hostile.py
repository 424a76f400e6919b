"""Hostile inputs (issue #21): replay a table of named bad inputs across every verb and the
Python API, and classify each outcome as

* ``clean``: exit 0 with a valid result (checked here with numpy/pandas/safetensors only, not
  with the checkout's own code), or exit 2 with exactly one ``error: ...`` line on stderr and no
  file created, changed or lost;
* ``traceback``: any other exit code, a traceback, or an exit 2 with more than that one line;
* ``wrong``: exit 0 with a wrong or invalid result, a bad input accepted, a valid one refused,
  a refusal that left files behind, or a command that ran past its time limit;
* ``lost``: a file that was there before (the user's) changed or removed.

The cases are data (``hostile_cases.py``: argv or Python code, files to create, the expected
outcome, what a valid result is). Any checkout can be measured: ``--src PATH`` puts that
checkout's ``src`` first on the import path. The checkout is imported once; every case runs in
a forked child (its own folder, stdout/stderr, memory limit and time limit), so a case costs
what its command costs, not a fresh import of torch.

    PYTHONPATH=src /work/tools/cpu python benchmarks/hostile.py --label after \
        --json benchmarks/results/hostile_after.json
    /work/tools/cpu python benchmarks/hostile.py --src /tmp/before/src --label before ...
"""
from __future__ import annotations

import argparse
import fnmatch
import hashlib
import json
import os
import re
import resource
import shutil
import signal
import sys
import tempfile
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
CLASSES = ("clean", "traceback", "wrong", "lost")
# what training writes into a run folder (may change on a --force); anything else is the user's
RUN_ENTRIES = ("config.json", "model.safetensors", "split.npz", "checkpoints", "checkpoints/*",
               "logs", "logs/*", "tensorboard", "tensorboard/*", ".factorseq-*", ".*.tmp*")


LOCKS = "*.factorseq-lock"  # the lock beside a run folder (one writer; a stale one is taken)

# ---------------------------------------------------------------- running one command (child)

def _child(step: dict, cwd: Path, out_file: Path, err_file: Path) -> None:
    """In the forked child: run one CLI command or Python snippet, exit with its code."""
    rc = 1
    try:
        os.chdir(cwd)
        for fd, f in ((1, out_file), (2, err_file)):
            h = os.open(f, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(h, fd)
            os.close(h)
        # the streams on those descriptors (under pytest sys.stdout/err are capture objects)
        sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115
        sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115
        mem = step.get("memory_gb", 8)
        resource.setrlimit(resource.RLIMIT_AS, (int(mem * 2**30), resource.RLIM_INFINITY))
        if step.get("fsize"):  # a full disk: writes past this size fail with EFBIG
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (step["fsize"], resource.RLIM_INFINITY))
        if step.get("kill_at"):
            _kill_at(*step["kill_at"])
        if step.get("kill_at_save"):
            _kill_at_save(step["kill_at_save"])
        if "py" in step:
            rc = _run_py(step["py"])
        else:
            from factorseq.cli import main
            rc = main([str(a) for a in step["argv"]])
            rc = 0 if rc is None else rc
    except SystemExit as e:
        rc = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException:  # noqa: BLE001 (what the console script would show)
        traceback.print_exc()
        rc = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(rc)


def _run_py(code: str) -> int:
    """A Python API snippet: FactorseqError is the API's user error (exit 2, one line)."""
    from factorseq.errors import FactorseqError
    try:
        exec(compile(code, "<case>", "exec"), {"__name__": "__case__"})
    except FactorseqError as e:
        print(f"error: {str(e).splitlines()[0] if str(e) else type(e).__name__}",
              file=sys.stderr)
        return 2
    return 0


def _kill_at(patterns: list[str], n: int) -> None:
    """kill -9 at the ``n``-th rename/replace whose source name matches one of ``patterns``
    (before it happens): no clean-up of the command runs."""
    seen = [0]
    real = {"rename": os.rename, "replace": os.replace}

    def wrap(kind):
        def fake(src, dst, *a, **k):
            if any(fnmatch.fnmatchcase(Path(src).name, p) for p in patterns):
                seen[0] += 1
                if seen[0] == n:
                    sys.stdout.flush()
                    sys.stderr.flush()
                    os.kill(os.getpid(), signal.SIGKILL)
            return real[kind](src, dst, *a, **k)
        return fake

    os.rename, os.replace = wrap("rename"), wrap("replace")


def _kill_at_save(n: int) -> None:
    """kill -9 inside the ``n``-th ``torch.save`` (a training's checkpoint write, mid-run)."""
    import torch
    seen, real = [0], torch.save

    def fake(*a, **k):
        seen[0] += 1
        if seen[0] == n:
            sys.stdout.flush()
            sys.stderr.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        return real(*a, **k)

    torch.save = fake


def run_step(step: dict, cwd: Path, timeout: float) -> dict:
    """Fork, run ``step`` in ``cwd``; its exit code (or ``timeout``/``signal N``), out, err."""
    with tempfile.TemporaryDirectory(prefix="hostile-io-") as io_dir:
        out_f, err_f = Path(io_dir) / "out", Path(io_dir) / "err"
        t0 = time.monotonic()
        pid = os.fork()
        if pid == 0:
            _child(step, cwd, out_f, err_f)
        status = None
        while status is None:
            done, st = os.waitpid(pid, os.WNOHANG)
            if done:
                status = st
            elif time.monotonic() - t0 > timeout:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                status = "timeout"
            else:
                time.sleep(0.02)
        if status == "timeout":
            code = "timeout"
        elif os.WIFSIGNALED(status):
            code = f"signal {os.WTERMSIG(status)}"
        else:
            code = os.WEXITSTATUS(status)
        def read(p):
            return (p.read_text(errors="replace") if p.exists() else "")
        return {"code": code, "out": read(out_f), "err": read(err_f),
                "seconds": round(time.monotonic() - t0, 2)}


def start_step(step: dict, cwd: Path) -> tuple[int, Path]:
    """Fork ``step`` without waiting (a concurrent writer); returns (pid, io folder)."""
    io_dir = Path(tempfile.mkdtemp(prefix="hostile-io-"))
    pid = os.fork()
    if pid == 0:
        _child(step, cwd, io_dir / "out", io_dir / "err")
    return pid, io_dir


# ---------------------------------------------------------------- folders and their changes

def snapshot(folder: Path) -> dict[str, str]:
    """Every entry under ``folder`` (hidden ones too): its content hash, ``dir`` or link."""
    snap = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            p = Path(root) / name
            rel = p.relative_to(folder).as_posix()
            if p.is_symlink():
                snap[rel] = "link:" + os.readlink(p)
            elif p.is_dir():
                snap[rel] = "dir"
            else:
                try:
                    snap[rel] = hashlib.sha1(p.read_bytes()).hexdigest()
                except OSError:
                    snap[rel] = "unreadable"
    return snap


def may_change(case: dict) -> list[str]:
    """The paths a successful command may replace: ``--out`` (a file, or what training writes
    into a run folder, and its hidden neighbours), plus the case's own list."""
    pats = list(case.get("may_change", []))
    argv = case.get("argv") or []
    if "--out" in argv and argv.index("--out") + 1 < len(argv):
        out = str(argv[argv.index("--out") + 1]).rstrip("/")
        pats += [out, f".{out}.factorseq-*", f".{out}.factorseq-*/*", f".{out}.*.tmp*"]
        pats += [f"{out}/{e}" for e in RUN_ENTRIES]
    return pats


def _matches(rel: str, pats: list[str]) -> bool:
    return any(fnmatch.fnmatchcase(rel, p) for p in pats)


# ---------------------------------------------------------------- valid results (harness side)

def _finite_numbers(obj) -> bool:
    if isinstance(obj, dict):
        return all(_finite_numbers(v) for v in obj.values())
    if isinstance(obj, list):
        return all(_finite_numbers(v) for v in obj)
    if isinstance(obj, float):
        return obj == obj and abs(obj) != float("inf")
    return True


def check_windows(p: Path) -> str | None:
    import numpy as np
    import pandas as pd
    if p.suffix == ".npz":
        with np.load(p, allow_pickle=False) as z:
            x = z["data"]
    elif p.suffix == ".npy":
        x = np.load(p, allow_pickle=False)
    else:
        df = pd.read_csv(p) if p.suffix == ".csv" else pd.read_parquet(p)
        if df.empty or df.isna().any().any():
            return "empty table or empty cells"
        x = df.drop(columns=[c for c in ("sample", "step", "label") if c in df]).to_numpy()
    x = np.asarray(x)
    if x.size == 0 or x.dtype.kind not in "fiu" or not np.isfinite(x).all():
        return f"windows not finite numbers (dtype {x.dtype}, shape {x.shape})"
    return None


def check_run(p: Path) -> str | None:
    import numpy as np
    from safetensors.numpy import load_file
    cfg = json.loads((p / "config.json").read_text())
    if cfg.get("status", "trained") != "trained":
        return f"run status {cfg.get('status')!r}"
    tensors = load_file(p / "model.safetensors")
    if not tensors or not all(np.isfinite(v).all() for v in tensors.values()
                              if v.dtype.kind == "f"):
        return "weights missing or not finite"
    modes = {(p / f).stat().st_mode & 0o777 for f in ("config.json", "model.safetensors")}
    if len(modes) > 1:
        return f"config.json and model.safetensors have different modes {sorted(modes)}"
    return None


def check_json(p: Path) -> str | None:
    m = json.loads(p.read_text())
    if not isinstance(m, dict) or not m:
        return "metrics not a non-empty mapping"
    return None


def check_table(p: Path) -> str | None:
    import numpy as np
    import pandas as pd
    df = pd.read_csv(p) if p.suffix == ".csv" else pd.read_parquet(p)
    num = df.select_dtypes("number").to_numpy(dtype=float)
    if df.empty or num.size == 0 or not np.isfinite(num).all():
        return "codes table empty or not finite"
    return None


def check_html(p: Path) -> str | None:
    return None if "<html" in p.read_text(errors="replace")[:2000].lower() else "not HTML"


CHECKS = {"windows": check_windows, "run": check_run, "json": check_json,
          "table": check_table, "html": check_html}


def validate(case: dict, res: dict, cwd: Path) -> str | None:
    """Why an exit-0 result is not valid (None: valid)."""
    for spec in case.get("valid", []):
        kind, _, arg = spec.partition(":")
        if kind == "stdout":
            if arg not in res["out"]:
                return f"stdout lacks {arg!r}"
        elif kind == "absent":
            if list(cwd.glob(arg)):
                return f"{arg} left behind"
        elif kind == "text":
            rel, _, text = arg.partition("=")
            if not (cwd / rel).is_file() or (cwd / rel).read_text() != text:
                return f"{rel} lost or changed"
        else:
            p = cwd / arg
            try:
                why = CHECKS[kind](p)
            except Exception as e:  # noqa: BLE001 (unreadable result: that is the finding)
                why = f"{arg}: {type(e).__name__}: {str(e)[:80]}"
            if why:
                return f"{arg}: {why}"
    return None


# ---------------------------------------------------------------- classifying one case

def classify(case: dict, res: dict, before: dict, after: dict, cwd: Path) -> tuple[str, str]:
    """(class, reason) of one outcome; see the module docstring."""
    code, err = res["code"], res["err"].strip().splitlines()
    allowed = may_change(case) if code == 0 else []
    allowed.append(LOCKS)  # factorseq's own writer lock: its holder's pid, not user data
    lost = [k for k, v in before.items() if after.get(k) != v and not _matches(k, allowed)]
    if res.get("lost"):
        return "lost", res["lost"]
    if lost:
        return case.get("fail_class", "lost"), f"changed/removed: {', '.join(lost[:3])}"
    if code not in (0, 2) or any("Traceback (most recent call last)" in ln for ln in err):
        tail = next((ln for ln in reversed(err) if ln.strip()), "")
        if code == "timeout":
            return "wrong", f"ran past {case.get('timeout', 120)} s"
        return "traceback", f"exit {code}: {tail[:160]}"
    for text in case.get("never_say", []):
        if text in res["err"]:
            return "wrong", f"says {text!r}"
    if code == 2:
        if len(err) != 1 or not err[0].startswith("error: "):
            return "traceback", f"exit 2 with {len(err)} stderr lines: {err[:1]}"
        created = [k for k in after if k not in before and not _matches(k, [LOCKS])]
        if created:
            return "wrong", f"refused but left {', '.join(created[:3])}"
        if case["expect"] == "ok":
            return case.get("fail_class", "wrong"), f"refused a valid input: {err[0][:160]}"
        return "clean", err[0][:160]
    if case["expect"] == "error":
        return case.get("fail_class", "wrong"), "accepted (exit 0)"
    why = validate(case, res, cwd)
    return ("wrong", why) if why else ("clean", "exit 0, valid")


def run_case(case: dict, fixtures: Path, root: Path) -> dict:
    cwd = root / case["name"]
    shutil.rmtree(cwd, ignore_errors=True)
    cwd.mkdir(parents=True)
    for name, spec in {"w.npz": "@w.npz", **case.get("files", {})}.items():
        make_file(cwd / name, spec, fixtures)
    for step in case.get("prep", []):  # set-up (e.g. a killed command); not classified
        run_step(step, cwd, case.get("timeout", 120))
    before = snapshot(cwd)
    if "parallel" in case:
        res = run_parallel(case, cwd)
    else:
        res = run_step(case, cwd, case.get("timeout", 120))
    after = snapshot(cwd)
    cls, why = classify(case, res, before, after, cwd)
    line = next((ln for ln in (res["err"] + res["out"]).splitlines() if ln.strip()), "")
    return {"name": case["name"], "verb": case.get("verb", _verb(case)), "class": cls,
            "why": why, "code": res["code"], "seconds": res["seconds"],
            "first_line": line[:200]}


def run_parallel(case: dict, cwd: Path) -> dict:
    """Two writers at once. Each must exit 0 or give a clean one-line refusal; two exit 0s
    into one new place (``one_writer``) mean the first run was overwritten: ``lost``."""
    started = [start_step(s, cwd) for s in ({"argv": case["argv"]}, *case["parallel"])]
    results = []
    for pid, io_dir in started:
        _, st = os.waitpid(pid, 0)
        code = os.WEXITSTATUS(st) if os.WIFEXITED(st) else f"signal {os.WTERMSIG(st)}"
        results.append({"code": code, "err": (io_dir / "err").read_text(errors="replace"),
                        "out": (io_dir / "out").read_text(errors="replace"), "seconds": 0})
        shutil.rmtree(io_dir, ignore_errors=True)
    for r in results:  # a traceback or a messy refusal first
        lines = r["err"].strip().splitlines()
        if r["code"] not in (0, 2) or "Traceback" in r["err"] or (
                r["code"] == 2 and len(lines) != 1):
            return r
    if case.get("one_writer") and all(r["code"] == 0 for r in results):
        return {**results[1], "lost": "both writers exited 0: the first run was overwritten"}
    return next((r for r in results if r["code"] == 0), results[0])


def _verb(case: dict) -> str:
    if "py" in case:
        return "api"
    argv = case.get("argv") or ["(none)"]
    return str(argv[0])


# ---------------------------------------------------------------- files a case starts with

def make_file(path: Path, spec, fixtures: Path) -> None:
    """``spec``: bytes/str (written), ``@NAME`` (a copy of a fixture file or folder) or a
    callable(path, fixtures) (builds it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if callable(spec):
        spec(path, fixtures)
    elif isinstance(spec, str) and spec.startswith("@"):
        src = fixtures / spec[1:]
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, path)
    else:
        path.write_bytes(spec.encode() if isinstance(spec, str) else spec)


def build_fixtures(fixtures: Path) -> None:
    """The tiny data set and the trained runs every case copies, made by the checkout under
    test itself."""
    from hostile_cases import FIXTURE_FILES, FIXTURE_RUNS
    fixtures.mkdir(parents=True, exist_ok=True)
    for name, spec in FIXTURE_FILES.items():
        make_file(fixtures / name, spec, fixtures)
    for name, argv in FIXTURE_RUNS.items():
        res = run_step({"argv": argv + ["--out", name]}, fixtures, 600)
        if res["code"] != 0:
            raise SystemExit(f"fixture {name} failed: {res['err'][-400:]}")


# ---------------------------------------------------------------- main

def _harness_version() -> int:
    """The scoring version of the checkout this harness belongs to (its rules classify the
    cases), not of the one measured with ``--src``, which may predate versioning."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        "_harness_scoring", HERE.parent / "src" / "factorseq" / "metrics" / "scoring.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.SCORING_VERSION


def _preload() -> None:
    """Import what every command imports, once, before the forks (the CLI's plug-ins too)."""
    import importlib
    for name in ("factorseq.checkpoint", "factorseq.train", "factorseq.io", "factorseq.report",
                 "factorseq.metrics.evaluators", "lightning"):
        try:
            importlib.import_module(name)
        except ImportError:
            pass
    import factorseq.cli as cli
    if hasattr(cli, "_load_plugins"):
        cli._load_plugins()



def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--summarize", nargs=2, metavar=("BEFORE", "AFTER"),
                    help="write benchmarks/results/hostile.json and HOSTILE_RESULTS.md from "
                         "two --json files")
    ap.add_argument("--base", help="with --summarize: a third --json file, measured between")
    ap.add_argument("--src", help="a checkout's src folder to measure (default: as imported)")
    ap.add_argument("--label", default="run", help="name of this measurement in the JSON")
    ap.add_argument("--only", help="regex on case names")
    ap.add_argument("--json", help="write the totals and every case here")
    ap.add_argument("--work", help="scratch folder (default: a fresh temporary one)")
    ap.add_argument("--list", action="store_true", help="list the cases and exit")
    args = ap.parse_args()
    if args.summarize:
        from hostile_report import summarize
        summarize(*map(Path, args.summarize), HERE / "results" / "hostile.json",
                  HERE / "HOSTILE_RESULTS.md", Path(args.base) if args.base else None)
        return 0
    if args.src:
        sys.path.insert(0, str(Path(args.src).resolve()))
    sys.path.insert(0, str(HERE))
    from hostile_cases import CASES
    cases = [c for c in CASES if not args.only or re.search(args.only, c["name"])]
    if args.list:
        for c in cases:
            print(f"{c['name']:40s} {c['expect']:6s} {c.get('argv') or '(python)'}")
        return 0
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch  # noqa: F401

    import factorseq
    import factorseq.cli  # noqa: F401 (imported once, before any fork)
    torch.set_num_threads(1)
    _preload()
    work = Path(args.work or tempfile.mkdtemp(prefix=f"hostile-{args.label}-"))
    t0 = time.time()
    load0 = Path("/proc/loadavg").read_text().split()[:3]
    build_fixtures(work / "fixtures")
    rows = []
    for case in cases:
        row = run_case(case, work / "fixtures", work / "cases")
        rows.append(row)
        print(f"{row['class']:9s} {row['name']:40s} {row['seconds']:6.1f}s  {row['why'][:90]}",
              flush=True)
    totals = {k: sum(r["class"] == k for r in rows) for k in CLASSES}
    summary = {"label": args.label, "scoring_version": _harness_version(),
               "src": str(Path(factorseq.__file__).parent.parent),
               "cases": len(rows), "totals": totals,
               "seconds": round(time.time() - t0, 1), "loadavg_start": load0,
               "loadavg_end": Path("/proc/loadavg").read_text().split()[:3],
               "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "rows": rows}
    print(json.dumps({k: v for k, v in summary.items() if k != "rows"}))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(summary, indent=1))
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
