"""A self-contained HTML report of a run: training, metrics, real vs synthetic, model plots.

Figures are embedded as base64 PNG so the page is one file a user can mail or archive.
"""
from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from .checkpoint import load  # noqa: E402
from .errors import FactorseqError  # noqa: E402
from .io import atomic_output  # noqa: E402

_CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}
h1{font-size:1.6em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.25em .6em;
text-align:left;font-size:.92em}th{background:#f4f4f4}img{max-width:100%;margin:.4em 0}
figure{margin:1em 0}figcaption{color:#555;font-size:.9em}code{background:#f4f4f4;padding:0 .2em}
.muted{color:#777}"""


def _flatten(d: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and {"mean", "std"} <= set(v):
            rows.append((key, f"{v['mean']:.4f} &plusmn; {v['std']:.4f}"))
        elif isinstance(v, dict):
            rows.extend(_flatten(v, key + "."))
        elif isinstance(v, float):
            rows.append((key, f"{v:.4g}"))
        elif isinstance(v, (int, str, bool)) or v is None:
            rows.append((key, html.escape(str(v))))
    return rows


def read_scores(mpath: Path) -> dict[str, Any]:
    """A metrics JSON: an object of scores whose ``mean``/``std`` pairs are numbers."""
    try:
        scores = json.loads(mpath.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise FactorseqError(f"{mpath} is not valid JSON") from None
    if not isinstance(scores, dict):
        raise FactorseqError(f"{mpath} must hold a JSON object of scores (name: value), "
                             f"not a {type(scores).__name__}")

    def check(d: dict[str, Any], prefix: str) -> None:
        for k, v in d.items():
            if isinstance(v, dict) and {"mean", "std"} <= set(v):
                bad = [s for s in ("mean", "std") if isinstance(v[s], bool)
                       or not isinstance(v[s], (int, float))]
                if bad:
                    raise FactorseqError(f"{mpath}: {prefix}{k}.{bad[0]} must be a number, "
                                         f"got {v[bad[0]]!r}")
            elif isinstance(v, dict):
                check(v, f"{prefix}{k}.")

    check(scores, "")
    return scores


def _table(rows: list[tuple[str, str]]) -> str:
    body = "".join(f"<tr><th>{html.escape(k)}</th><td>{v}</td></tr>" for k, v in rows)
    return f"<table>{body}</table>"


def _figure(title: str, fig) -> str:
    from .metrics.plots import figure_to_base64_png
    data = figure_to_base64_png(fig)
    plt.close(fig)
    return (f'<figure><img alt="{html.escape(title)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{html.escape(title)}</figcaption></figure>")


def _split_rows(cfg: dict) -> list[tuple[str, str]]:
    """Which windows trained, chose settings, were held out (``data_split``)."""
    split = cfg.get("data_split")
    if split is None:
        return [("split", "not saved (a run from before splits were saved): its seeded "
                          "random split is re-derived when it is scored")]
    keep = ("kind", "n_train", "n_val", "n_holdout", "n_dropped", "gap_steps", "held_out",
            "note", "legacy")
    return [(f"split.{k}", html.escape(str(split[k]))) for k in keep if k in split]


def _missing_values(schema: dict[str, Any], data_cfg: dict[str, Any]) -> list[str]:
    """One section when the training data had gaps: the policy and each feature's fraction
    missing before it was applied (``data_schema.missing_rate``)."""
    rate = schema.get("missing_rate")
    if not rate:
        return []
    rows = [("--impute", html.escape(str(schema.get("impute")))),
            ("all features", f"{sum(rate.values()) / len(rate):.1%}")]
    if data_cfg.get("remove_rate"):
        seed = data_cfg.get("remove_seed")
        seed = data_cfg.get("seed") if seed is None else seed
        rows.append(("removed on purpose", html.escape(
            f"{data_cfg['remove_rate']:g} ({data_cfg.get('remove_pattern')}, seed {seed})")))
    rows += [(name, f"{v:.1%}") for name, v in rate.items()]
    return ["<h2>Missing values</h2><p>Fraction of each feature's training values that were "
            "missing, before <code>--impute</code> handled them.</p>" + _table(rows)]


def _stale(scores: dict[str, Any]) -> list[str]:
    """A warning when metrics.json was scored under older rules than this version's."""
    from .metrics.scoring import SCORING_VERSION, version_of

    v = version_of(scores)
    if v >= SCORING_VERSION:
        return []
    return [f'<p class="muted"><b>Scored under an older scoring version (v{v}; this version '
            f"scores with v{SCORING_VERSION}): re-run <code>factorseq evaluate</code> before "
            "comparing these numbers with new ones.</b></p>"]


def _mark_scaled(fig):
    """Label the value axes of a model's time plots as scaled (left column of the figure)."""
    if any("time" in ax.get_xlabel() for ax in fig.axes):
        for ax in fig.axes:
            spec = ax.get_subplotspec()
            if spec is not None and spec.is_first_col():
                label = ax.get_ylabel()
                ax.set_ylabel(f"{label} (scaled)" if label else "scaled value")
    return fig


def write_report(run_dir: str | Path, out: str | Path, *, metrics: str | Path | None = None,
                 data: str | None = None, samples: str | Path | None = None) -> Path:
    """Render the report of ``run_dir`` into the HTML file ``out``."""
    from .io import read_windows
    from .metrics.gaps import fill_within_windows
    from .metrics.plots import loss_curves_figure

    mpath = Path(metrics) if metrics else Path(run_dir) / "metrics.json"
    if metrics and not mpath.is_file():
        raise FactorseqError(f"metrics file not found: {mpath}")
    scores = read_scores(mpath) if mpath.is_file() else None  # checked before any work
    run = load(run_dir)
    cfg = run.config

    parts = [f"<h1>factorseq report: <code>{html.escape(cfg['model'])}</code> on "
             f"<code>{html.escape(cfg['data_config']['source'])}</code></h1>"]
    training = cfg.get("training", {})
    schema = cfg["data_schema"]
    parts.append("<h2>Run</h2>" + _table(
        [("run", html.escape(str(run.path))), ("factorseq version", cfg.get("version", "?")),
         ("windows (time x features)", f"{schema['seq_len']} x {schema['n_features']}")]
        + _flatten(training, "training.") + _split_rows(cfg)))
    parts.extend(_missing_values(schema, cfg.get("data_config", {})))
    parts.append("<details><summary>Resolved configuration</summary><pre>"
                 + html.escape(json.dumps({k: cfg[k] for k in ("model_config", "train_config",
                                                               "data_config") if k in cfg},
                                          indent=2)) + "</pre></details>")
    parts.append("<h2>Metrics</h2>")
    if scores is not None:
        parts.extend(_stale(scores))
        parts.append(_table(_flatten(scores)))
    else:
        parts.append('<p class="muted">No metrics.json: run <code>factorseq evaluate RUN --out '
                     'RUN/metrics.json</code> first.</p>')

    curves = loss_curves_figure(run.path / "logs" / "metrics.csv")
    if curves is not None:
        parts.append("<h2>Training curves</h2>" + _figure(
            "loss per epoch; epochs are numbered from 1, as epochs_run and best_epoch above",
            curves))

    real = run.load_data(data)
    synth = read_windows(samples) if samples is not None else None
    named = scores.get("evaluator") if scores else None  # the one that wrote metrics.json
    ev = run.evaluator(real, evaluator=named if isinstance(named, str) else None, repeats=1,
                       samples=synth)
    figs = ev.figures()
    if figs:
        parts.append("<h2>Real and synthetic / latent structure</h2>")
        parts.extend(_figure(t, f) for t, f in figs)
    x = real.x[: min(len(real.x), 256)]
    if real.x_mask is not None:  # gaps: filled within each window, not the mean placeholders
        x = fill_within_windows(x, real.x_mask[: len(x)])
    x = torch.as_tensor(run.scaler.transform(x))
    with torch.no_grad():
        model_figs = run.model.report_figures(x)
    if model_figs:
        kind = run.scaler.to_dict().get("kind", "?")
        parts.append(f"<h2>Inside {html.escape(cfg['model'])}</h2><p class='muted'>The model "
                     f"works on scaled data ({html.escape(str(kind))} scaler): values in these "
                     "figures are in that scaled space, not in the data's units.</p>")
        parts.extend(_figure(f"{t} (scaled values)", _mark_scaled(f)) for t, f in model_figs)

    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>factorseq: "
            f"{html.escape(cfg['model'])}</title><style>{_CSS}</style></head><body>"
            + "\n".join(parts) + "</body></html>")
    out = Path(out)
    with atomic_output(out) as tmp:
        tmp.write_text(page)
    return out
