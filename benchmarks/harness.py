"""One benchmark harness (issue #22, part 5): a cell is one ``factorseq train`` command and one
``factorseq evaluate`` command, run into ``benchmarks/out/<study>/<cell>/s<seed>/``; its
``result.json`` keeps both exact commands, the run's training summary, the seconds, the peak
resident memory of the training process (``train_peak_rss_mb``), the load and the evaluator's
scores (with their scoring version).

Skip-if-done is keyed by the commands and the scoring version, not by the file's existence:
a cell whose training command changed is trained again; one whose evaluation command changed,
or whose scores are of an older scoring version than this checkout's, is re-scored from its
run without training. A cell may accept a refusal (``refusal_ok``: its training exits 2 with
one ``error:`` line, the CLI's user error): its result is then ``status: "refused"`` with that
line, both commands and the scoring version (current for stale_results.py; a newer scoring
version tries the cell again). Studies describe their cells (:class:`Cell`) and render tables
with :func:`over_seeds` (mean ± sample std over training seeds).
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from factorseq.metrics.scoring import SCORING_VERSION, version_of

REPO = Path(__file__).resolve().parents[1]
OUT = Path("benchmarks") / "out"  # relative to REPO: the commands read the same anywhere
RESULTS = REPO / "benchmarks" / "results"  # the committed copies tables are rendered from
EXE = str(Path(sys.executable).with_name("factorseq"))


@dataclasses.dataclass(frozen=True)
class Cell:
    """``train``: the arguments after ``factorseq train`` (model, data, options) without
    ``--out``/``--seed``; ``evaluate``: those after ``factorseq evaluate RUN`` without
    ``--out``; ``refusal_ok``: a training that exits 2 (a user error, e.g. the data layer
    refusing an option for this data) is the cell's result, not a failure."""
    study: str
    name: str
    seed: int
    train: tuple[str, ...]
    evaluate: tuple[str, ...] = ()
    refusal_ok: bool = False

    @property
    def folder(self) -> Path:
        return OUT / self.study / self.name / f"s{self.seed}"

    def commands(self) -> tuple[list[str], list[str]]:
        run = self.folder / "run"
        train = ["train", *self.train, "--out", str(run), "--force", "--seed", str(self.seed)]
        evaluate = ["evaluate", str(run), "--out", str(self.folder / "metrics.json"),
                    "--force", *self.evaluate]
        return train, evaluate


def shown(argv: list[str]) -> str:
    """A command as a user types it (from the repository's folder)."""
    return " ".join(["factorseq", *argv])


def _read(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None


# Runs a command as its own child and writes that child's peak RSS (KB, ``ru_maxrss`` from
# ``os.wait4``) to a file: measured from here, the harness's own resident memory would count
# (Linux keeps the high-water mark of the memory a process had before its ``exec``).
_MEASURED = """import os, signal, sys
pid = os.posix_spawnp(sys.argv[2], sys.argv[2:], os.environ)
signal.signal(signal.SIGTERM, lambda *_: os.kill(pid, signal.SIGTERM))
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as f:
    f.write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status))
"""


def _call(argv: list[str], exe: str, root: Path, refusal_ok: bool = False
          ) -> tuple[float, str | None, float]:
    """Seconds the command took, when ``refusal_ok`` and it exited 2 its last ``error:`` line
    (else None), and the peak resident memory (MB) of its process (and of any process it
    waited for). Any other failure raises ``CalledProcessError``."""
    fd, rss_file = tempfile.mkstemp(suffix=".rss")
    os.close(fd)
    t0 = time.perf_counter()
    try:
        p = subprocess.run([sys.executable, "-c", _MEASURED, rss_file, exe, *argv], cwd=root,
                           text=True, stderr=subprocess.PIPE if refusal_ok else None)
        seconds = round(time.perf_counter() - t0, 1)
        peak_mb = round(int(Path(rss_file).read_text() or 0) / 1024, 1)
    finally:
        os.unlink(rss_file)
    if refusal_ok:
        sys.stderr.write(p.stderr)  # read for the error line, still shown
    if refusal_ok and p.returncode == 2:
        errors = [s for s in p.stderr.splitlines() if s.startswith("error: ")]
        return seconds, errors[-1] if errors else p.stderr.strip()[-300:], peak_mb
    if p.returncode:
        raise subprocess.CalledProcessError(p.returncode, [exe, *argv], stderr=p.stderr)
    return seconds, None, peak_mb


def run_cell(cell: Cell, exe: str = EXE, train_only: bool = False, root: Path = REPO
             ) -> dict | None:
    """The cell's result: the stored one when its commands and scoring version are current,
    else trained (only if the training command changed or never ran) and scored now. A
    refused training (``cell.refusal_ok``) returns its ``status: "refused"`` result, even with
    ``train_only``."""
    folder = root / cell.folder
    train, evaluate = cell.commands()
    result = _read(folder / "result.json")
    if (result and result.get("train_command") == shown(train)
            and result.get("eval_command") == shown(evaluate)
            and version_of(result) >= SCORING_VERSION
            and (cell.refusal_ok or result.get("status") != "refused")):
        return result
    folder.mkdir(parents=True, exist_ok=True)
    trained = _read(folder / "train.json")  # the training command that made ``run`` and its time
    if not trained or trained.get("command") != shown(train):
        seconds, error, peak_mb = _call(train, exe, root, cell.refusal_ok)
        if error is not None:
            refused = {"study": cell.study, "cell": cell.name, "seed": cell.seed,
                       "status": "refused", "error": error, "train_command": shown(train),
                       "eval_command": shown(evaluate), "train_wall_s": seconds,
                       "train_peak_rss_mb": peak_mb,
                       "loadavg_after_train": [round(v, 2) for v in os.getloadavg()],
                       "scoring_version": SCORING_VERSION}
            _write(folder / "result.json", refused)
            return refused
        trained = {"command": shown(train), "seconds": seconds, "peak_rss_mb": peak_mb,
                   "load_after": [round(v, 2) for v in os.getloadavg()]}
        (folder / "train.json").write_text(json.dumps(trained, indent=1) + "\n")
    if train_only:
        return None
    eval_s, _, _ = _call(evaluate, exe, root)
    config = json.loads((folder / "run" / "config.json").read_text())
    result = {"study": cell.study, "cell": cell.name, "seed": cell.seed,
              "train_command": shown(train), "eval_command": shown(evaluate),
              "train_wall_s": trained["seconds"], "eval_wall_s": eval_s,
              "train_peak_rss_mb": trained.get("peak_rss_mb"),  # None: trained before it was kept
              "loadavg_after_train": trained.get("load_after"),
              "loadavg_after_eval": [round(v, 2) for v in os.getloadavg()],
              "training": config.get("training", {}),
              "metrics": json.loads((folder / "metrics.json").read_text())}
    (folder / "result.json").write_text(json.dumps(result, indent=1) + "\n")
    return result


def results(study: str, name: str, root: Path = REPO) -> dict[int, dict]:
    """The stored results of a cell's seeds (seed -> result), whatever their version."""
    found = {}
    for path in sorted((root / OUT / study / name).glob("s*/result.json")):
        res = json.loads(path.read_text())
        found[int(res["seed"])] = res
    return found


def keep(result: dict, cell: Cell, folder: Path | None = None) -> Path:
    """Commit-ready copy of a cell's result: ``results/<study>/<cell>_s<seed>.json``."""
    folder = folder or RESULTS / cell.study
    return _write(folder / f"{cell.name}_s{cell.seed}.json", result)


def record(path: Path, payload: dict) -> Path:
    """A measurement made outside a cell (a speed, a micro-benchmark) as a result file: the
    exact command that made it, the load average after it and the scoring version."""
    script = Path(sys.argv[0]).resolve()
    shown_script = script.relative_to(REPO) if script.is_relative_to(REPO) else script
    result = {"command": " ".join(["python", str(shown_script), *sys.argv[1:]]),  # from REPO
              "loadavg_after": [round(v, 2) for v in os.getloadavg()],
              "scoring_version": SCORING_VERSION, **payload}
    return _write(path, result)


def _write(path: Path, result: dict) -> Path:
    """``result`` as JSON at ``path``, written to a temporary file and renamed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(result, indent=1) + "\n")
    tmp.replace(path)
    return path


_READ: list[set[Path]] = []  # open reading() scopes: the committed files kept() returned


@contextlib.contextmanager
def reading() -> Iterator[set[Path]]:
    """The committed result files :func:`kept` returns inside the scope: what a rendered table
    rests on (BENCHMARKS.md's provenance lists them)."""
    files: set[Path] = set()
    _READ.append(files)
    try:
        yield files
    finally:
        _READ.remove(files)


def kept(study: str, name: str, folder: Path | None = None) -> dict[int, dict]:
    """The committed results of a cell's seeds (seed -> result)."""
    folder = folder or RESULTS / study
    found = {}
    for path in sorted(folder.glob(f"{name}_s*.json")):
        seed = path.stem[len(name) + 2:]
        if seed.isdigit():
            found[int(seed)] = json.loads(path.read_text())
            for files in _READ:
                files.add(path.resolve())
    return found


def cell_names(study: str, pattern: str = "") -> list[str]:
    """The names of ``study``'s committed cells that ``pattern`` (a regular expression) finds,
    sorted; read from the file names only (nothing is read, so nothing is cited)."""
    names = {p.stem.rsplit("_s", 1)[0] for p in (RESULTS / study).glob("*_s*.json")}
    return sorted(n for n in names if re.search(pattern, n))


def kept_named(study: str, name: re.Pattern, form: str, select: Callable[[re.Match], bool]
               = lambda m: True) -> list[tuple[re.Match, dict[int, dict]]]:
    """Every committed cell of ``study`` that ``select`` takes, as (the match of its name
    against ``name``, its seeds' results); the others are not read. A result file whose cell
    name does not match stops the table (``form`` says what a name looks like): a table that
    leaves a cell out silently would mislead."""
    found = []
    for cell in cell_names(study):
        m = name.fullmatch(cell)
        if m is None:
            raise SystemExit(f"error: results/{study}/{cell}_s*.json is not the name of a {study} "
                             f"cell ({form})")
        if select(m):
            found.append((m, kept(study, cell)))
    return found


def over_seeds(values: list[float]) -> dict[str, float]:
    """Mean and sample standard deviation (n - 1; 0 for one value) over training seeds."""
    v = np.asarray(values, dtype=float)
    return {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0,
            "n": int(len(v))}


def pm(values: list[float], digits: int = 3) -> str:
    """``mean ± std`` over seeds, the mean alone for one seed, "" for none."""
    if not len(values):
        return ""
    s = over_seeds(values)
    return (f"{s['mean']:.{digits}f} ± {s['std']:.{digits}f}" if s["n"] > 1
            else f"{s['mean']:.{digits}f}")
