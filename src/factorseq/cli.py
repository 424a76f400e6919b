"""The ``factorseq`` command line: datasets, train, sample, evaluate, report (+ plug-ins).

User errors exit with code 2 and one line ``error: ...`` on stderr; outputs are never
overwritten without ``--force``. Commands of single models live in ``factorseq/commands/``.
"""
from __future__ import annotations

import errno
import importlib
import json
import os
import pkgutil
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

try:  # typer >= 0.20 vendors click; older releases use the click package
    from typer._click import exceptions as click_exc
except ImportError:  # pragma: no cover
    from click import exceptions as click_exc

from .errors import FactorseqError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Disentangled, interpretable generative models of sequences.")

Opt = typer.Option


def _version(value: bool) -> None:
    if value:
        from . import __version__

        print(f"factorseq {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: Annotated[bool, Opt("--version", callback=_version, is_eager=True,
                                       help="Print the version and exit.")] = False) -> None:
    """Disentangled, interpretable generative models of sequences."""


def Flag(*decls: str, help: str | None = None) -> Any:  # noqa: N802 (used like typer.Option)
    """A boolean flag: it takes no value, and ``--help`` shows no type for it."""
    return typer.Option(*decls, help=help, metavar="")


def _echo_err(msg: str) -> None:
    print(f"error: {msg}", file=sys.stderr)


def split_settings(config: Path | None, sets: list[str] | None) -> dict[str, dict[str, Any]]:
    """YAML file + ``--set`` into model/train/data sections.

    Keys ``train.x`` / ``data.x`` (or YAML sections ``train:`` / ``data:``) go to those configs;
    everything else (or a ``model:`` section) to the model config. ``--set`` wins over YAML.
    """
    from .config import load_yaml, parse_sets

    out: dict[str, dict[str, Any]] = {"model": {}, "train": {}, "data": {}}

    def put(key: str, value: Any) -> None:
        section, _, rest = key.partition(".")
        if not (rest and section in out):
            out["model"][key] = value
            return
        *path, last = rest.split(".")  # data.options.n=300: {"options": {"n": 300}}
        node = out[section]
        for part in path:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        node[last] = value

    for key, value in load_yaml(config).items():
        if key in out and isinstance(value, dict):
            out[key].update(value)
        else:
            put(key, value)
    for key, value in parse_sets(sets).items():
        put(key, value)
    return out


@app.command()
def datasets() -> None:
    """List the bundled data sets with their citation and licence."""
    from rich.console import Console
    from rich.table import Table

    from .data.registry import list_datasets

    table = Table("name", "description", "licence", "citation", show_lines=True)
    for info in list_datasets():
        table.add_row(info.name, info.description, info.licence, info.citation)
    Console().print(table)


@app.command()
def models() -> None:
    """List the registered models and what each can do."""
    from rich.console import Console
    from rich.table import Table

    from .registry import registry_items

    table = Table("name", "what it is", "capabilities")
    for name, cls in sorted(registry_items().items()):
        doc = (cls.__doc__ or "").strip().splitlines()
        table.add_row(name, doc[0] if doc else "", ", ".join(sorted(cls.capabilities)))
    Console().print(table)


@app.command()
def train(
    model: Annotated[str, typer.Argument(help="registered model name, e.g. timevae")],
    out: Annotated[Path, Opt("--out", help="run directory to write")],
    data: Annotated[str, Opt("--data", help="bundled data set name or a file/folder")] = "stockv",
    epochs: Annotated[int | None, Opt(help="maximum epochs (early stopping ends sooner)")] = None,
    batch_size: Annotated[int | None, Opt("--batch-size")] = None,
    seed: Annotated[int | None, Opt()] = None,
    config: Annotated[Path | None, Opt("--config", help="YAML with model/train/data keys")] = None,
    set_: Annotated[list[str] | None, Opt("--set", help="key=value (train.key, data.key)")] = None,
    window: Annotated[int | None, Opt(help="window length for long tables")] = None,
    stride: Annotated[int | None, Opt(help="window stride for long tables")] = None,
    missing: Annotated[float | None, Opt(help="sentinel value meaning missing, e.g. -200")] = None,
    impute: Annotated[str | None, Opt(help="linear | ffill | mean | mask | drop (NaN and "
                                      "+-inf are missing too)")] = None,
    drop_columns: Annotated[str | None, Opt("--drop-columns", help="features to leave out: "
                                            "names or 0-based indices, a,b")] = None,
    id_column: Annotated[str | None, Opt("--id-column")] = None,
    time_column: Annotated[str | None, Opt("--time-column")] = None,
    label_column: Annotated[str | None, Opt("--label-column")] = None,
    categorical_columns: Annotated[str | None, Opt(
        "--categorical-columns", help="features holding categories, a,b (text columns are "
        "found by themselves)")] = None,
    attribute_columns: Annotated[str | None, Opt(
        "--attribute-columns", help="per-entity static attributes, a,b (needs --id-column; "
        "models with the 'attributes' capability)")] = None,
    max_length: Annotated[int | None, Opt(
        "--max-length", help="one sequence per entity of this many steps (needs --id-column): "
        "longer entities cut, shorter ones padded and masked; sample draws realistic "
        "lengths")] = None,
    labels: Annotated[int | None, Opt(help="keep exactly N labels (class-balanced)")] = None,
    target_speaker: Annotated[str | None, Opt("--target-speaker")] = None,
    sequences_per_round: Annotated[int | None, Opt("--sequences-per-round")] = None,
    devices: Annotated[int | None, Opt(help="number of processes/devices")] = None,
    strategy: Annotated[str | None, Opt(help="auto | ddp | ddp_spawn ...")] = None,
    resume: Annotated[bool, Flag("--resume", help="continue from RUN/checkpoints/last.ckpt")]
    = False,
    force: Annotated[bool, Flag("--force", help="replace an existing run (once the new one "
                                                "has trained)")] = False,
) -> None:
    """Train MODEL on DATA and write a run directory."""
    from .config import build
    from .data.config import DataConfig
    from .train import fit

    s = split_settings(config, set_)
    tr, dt, md = s["train"], s["data"], s["model"]
    for key, value in (("epochs", epochs), ("batch_size", batch_size), ("seed", seed),
                       ("devices", devices), ("strategy", strategy)):
        if value is not None:
            tr[key] = value
    dt.setdefault("seed", tr.get("seed", 0))
    for key, value in (("window", window), ("stride", stride), ("missing", missing),
                       ("impute", impute), ("id_column", id_column), ("label_column",
                       label_column), ("time_column", time_column), ("labels", labels),
                       ("drop_columns", drop_columns), ("categorical_columns",
                       categorical_columns), ("attribute_columns", attribute_columns),
                       ("max_length", max_length)):
        if value is not None:
            dt[key] = value
    if target_speaker is not None:
        dt.setdefault("options", {})["target_speaker"] = target_speaker
    if sequences_per_round is not None:
        md["sequences_per_round"] = sequences_per_round
    dt["source"] = data
    data_cfg = build(DataConfig, dt, what="data config")
    t0 = time.perf_counter()
    # the train keys the user set, as a dict: the model's train_defaults fill the others
    run = fit(model, data_cfg, tr, md, out, force=force, resume=resume)
    if run is not None:
        summary = run.config.get("training", {})
        best = summary.get("best_score")  # None: the model keeps its last (e.g. EMA) weights
        kept = (f"best {summary.get('monitor')} {best:.6g} at epoch {summary.get('best_epoch')}"
                if best is not None else "last weights kept")
        print(f"trained {model} in {time.perf_counter() - t0:.1f}s "
              f"({summary.get('epochs_run')} epochs, {kept}) -> {out}")


@app.command()
def sample(
    run: Annotated[Path, typer.Argument(help="run directory")],
    out: Annotated[Path, Opt("--out", help=".npz, .npy, .csv or .parquet")],
    n: Annotated[int | None, Opt("--n", help="number of windows (default 1000, or one per "
                                             "row of --attributes-from)")] = None,
    seed: Annotated[int, Opt()] = 0,
    label: Annotated[int | None, Opt(help="class to generate (conditional models)")] = None,
    attributes: Annotated[str | None, Opt(help="attributes of every entity, name=value,... "
                                          "(runs trained with --attribute-columns)")] = None,
    attributes_from: Annotated[Path | None, Opt(
        "--attributes-from", help=".csv/.parquet, one row per entity to generate")] = None,
    force: Annotated[bool, Flag("--force", help="overwrite an existing output")] = False,
) -> None:
    """Draw N synthetic windows from the model's prior, in the data's original units."""
    from .checkpoint import load
    from .io import FORMATS, check_output, write_frame, write_windows
    from .sampling import is_tabular

    out = check_output(out, force, formats=FORMATS)  # before any drawing
    given = _attributes_option(attributes, attributes_from)
    if attributes_from is not None and n is not None:
        raise FactorseqError("--attributes-from gives one entity per row: leave out --n")
    r = load(run)
    t0 = time.perf_counter()
    if n is None and attributes_from is None:
        n = 1000
    x, rows, ids = r.sample_entities(n, y=label, attributes=given, seed=seed)
    dt, n = time.perf_counter() - t0, len(x)
    lengths = r.sample_lengths(n, seed)  # the ones sample_entities used
    if out.suffix.lower() in (".csv", ".parquet") and is_tabular(r):  # the input's layout
        write_frame(out, r.as_frame(x, rows, ids, lengths))
    else:
        extra = {} if label is None else {"label": [label] * n}
        if out.suffix.lower() == ".npz":
            extra.update({"attributes": rows} if rows is not None else {})
            extra.update({"lengths": lengths} if "lengths" in r.schema else {})
        write_windows(out, x, r.schema.get("feature_names"), extra)
    print(f"wrote {n} windows {tuple(x.shape)} to {out} "
          f"({n * x.shape[1] / max(dt, 1e-9):,.0f} time steps/s)")


def _attributes_option(text: str | None, path: Path | None) -> Any:
    """``--attributes a=x,b=y`` as a dict, or ``--attributes-from`` as a table (not both)."""
    if text is not None and path is not None:
        raise FactorseqError("give --attributes or --attributes-from, not both")
    if path is not None:
        from .data.tables import read_table

        if not path.is_file():
            raise FactorseqError(f"attributes file not found: {path}")
        return read_table(path)
    if text is None:
        return None
    out = {}
    for item in text.split(","):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise FactorseqError(f"--attributes expects name=value,..., got {item!r}")
        out[key.strip()] = value.strip()
    return out


@app.command()
def evaluate(
    run: Annotated[Path, typer.Argument(help="run directory")],
    out: Annotated[Path, Opt("--out", help="metrics JSON to write")],
    data: Annotated[str | None, Opt(help="real data (default: the training data)")] = None,
    samples: Annotated[Path | None, Opt(help="synthetic windows file (default: sample)")] = None,
    repeats: Annotated[int, Opt(help="metric repeats (mean and std)")] = 5,
    seed: Annotated[int, Opt()] = 0,
    set_: Annotated[list[str] | None, Opt("--set", help="evaluator option key=value")] = None,
    evaluator: Annotated[str | None, Opt(help="evaluator (default: the protocol the data "
                                         "declares if the model can follow it, else the "
                                         "model's own; e.g. disentanglement, sprites)")] = None,
    force: Annotated[bool, Flag("--force", help="overwrite an existing output")] = False,
) -> None:
    """Score a trained model with the metrics of its kind; write them as JSON."""
    from .checkpoint import load
    from .config import parse_sets
    from .io import atomic_output, check_output, read_windows

    out = check_output(out, force)
    if repeats < 1:
        raise FactorseqError(f"--repeats must be >= 1, got {repeats}")
    synth = read_windows(samples) if samples is not None else None
    ev = load(run).evaluator(data, evaluator=evaluator, repeats=repeats, samples=synth,
                             seed=seed, **parse_sets(set_))
    t0 = time.perf_counter()
    metrics = ev.scores()
    metrics.setdefault("seconds", round(time.perf_counter() - t0, 2))
    with atomic_output(out) as tmp:
        tmp.write_text(json.dumps(metrics, indent=2))
    _print_scores(metrics, out)


def score_rows(metrics: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """(name, "mean ± std" or value) of every score in a metrics dict (nested keys dotted);
    counts, lists and texts are left to the JSON file."""
    rows: list[tuple[str, str]] = []
    for k, v in metrics.items():
        name = f"{prefix}{k}"
        if isinstance(v, dict) and {"mean", "std"} <= set(v):
            rows.append((name, f"{v['mean']:.4f} ± {v['std']:.4f}"))
        elif isinstance(v, dict):
            rows.extend(score_rows(v, name + "."))
        elif isinstance(v, float) and name != "seconds":
            rows.append((name, f"{v:.4g}"))
    return rows


def _print_scores(metrics: dict[str, Any], out: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table("score", "mean ± std")
    for name, text in score_rows(metrics):
        table.add_row(name, text)
    Console(highlight=False).print(table)
    print(f"wrote {out} ({metrics.get('seconds', 0):.1f} s; every value in the file)")


@app.command()
def report(
    run: Annotated[Path, typer.Argument(help="run directory")],
    out: Annotated[Path, Opt("--out", help="HTML file to write")],
    metrics: Annotated[Path | None, Opt(help="metrics JSON (default RUN/metrics.json)")] = None,
    data: Annotated[str | None, Opt(help="real data (default: the training data)")] = None,
    samples: Annotated[Path | None, Opt(help="synthetic windows file (default: sample)")] = None,
    force: Annotated[bool, Flag("--force", help="overwrite an existing output")] = False,
) -> None:
    """Write a self-contained HTML report: samples, PCA/t-SNE, losses, metrics, model plots."""
    from .io import check_output
    from .report import write_report

    out = check_output(out, force)
    write_report(run, out, metrics=metrics, data=data, samples=samples)
    print(f"wrote {out}")


def _load_plugins() -> None:
    from . import commands
    for m in pkgutil.iter_modules(commands.__path__):
        importlib.import_module(f"{commands.__name__}.{m.name}")


# errors of the machine, not of factorseq: one line, like a user error (every writer is atomic,
# so a failed write leaves the old file or none)
_MACHINE_ERRORS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EACCES, errno.EPERM,
                             errno.EROFS})


def main(argv: list[str] | None = None) -> int:
    """Entry point: runs the app, mapping user errors to exit 2 and ``error: ...``."""
    _load_plugins()
    try:
        code = app(args=argv, standalone_mode=False)
    except FactorseqError as e:
        _echo_err(str(e).splitlines()[0] if str(e) else type(e).__name__)
        return 2
    except click_exc.UsageError as e:
        if type(e).__name__ == "NoArgsIsHelpError":  # a bare ``factorseq``: help was printed
            return 0
        _echo_err((e.format_message().splitlines() or [type(e).__name__])[0])
        return 2
    except OSError as e:  # the machine refused a write (disk full, read-only, permissions)
        if e.errno not in _MACHINE_ERRORS:
            raise
        where = f" ({e.filename})" if e.filename else ""
        _echo_err(f"{e.strerror or os.strerror(e.errno)}{where}")
        return 2
    except typer.Abort:  # typer re-exports click's, or has its own (typer >= 0.20's own click)
        _echo_err("aborted")
        return 2
    except typer.Exit as e:
        return e.exit_code
    if isinstance(code, int) and not isinstance(code, bool) and code:
        if code == 130:  # typer >= 0.2x turns Ctrl-C into exit code 130
            _echo_err("interrupted")
        return code
    return 0


if __name__ == "__main__":
    sys.exit(main())
