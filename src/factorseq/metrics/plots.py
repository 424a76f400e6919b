"""Figures of real vs synthetic sequences and of training curves (matplotlib, Agg backend).

Figures are built with the object-oriented API (``Figure`` + Agg canvas), never pyplot, so
nothing is registered globally, no display is needed and figures are freed with their last
reference. Arrays are ``(windows, time, features)``.
"""
from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..errors import FactorseqError, ShapeError, check_shape

REAL_COLOUR, SYNTHETIC_COLOUR = "tab:red", "tab:blue"  # TimeGAN's red = original, blue = synthetic


def new_figure(width: float = 6.0, height: float = 4.5) -> Figure:
    """A figure with an Agg canvas attached (renderable to PNG without pyplot)."""
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def figure_to_base64_png(fig: Figure, dpi: int = 100) -> str:
    """The figure as a base64 PNG string (for ``<img src="data:image/png;base64,...">``)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _pair(real: np.ndarray, synthetic: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r = np.asarray(real, dtype=np.float64)
    s = np.asarray(synthetic, dtype=np.float64)
    check_shape("real", r, 3)
    check_shape("synthetic", s, 3)
    if r.shape[1:] != s.shape[1:]:
        raise ShapeError(f"synthetic has shape {s.shape} but real has {r.shape}: "
                         "time and feature dimensions must match")
    return r, s


def _feature_means(x: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """TimeGAN's preprocessing for the 2-D views: up to ``n`` random windows, each averaged over
    its features -> (n, time)."""
    idx = rng.permutation(len(x))[:n]
    return x[idx].mean(axis=2)


def _scatter(title: str, real_xy: np.ndarray, syn_xy: np.ndarray, axis: str) -> Figure:
    fig = new_figure()
    ax = fig.add_subplot()
    ax.scatter(real_xy[:, 0], real_xy[:, 1], c=REAL_COLOUR, alpha=0.2, s=12, label="Original")
    ax.scatter(syn_xy[:, 0], syn_xy[:, 1], c=SYNTHETIC_COLOUR, alpha=0.2, s=12,
               label="Synthetic")
    ax.legend()
    ax.set_title(title)
    ax.set_xlabel(f"x-{axis}")
    ax.set_ylabel(f"y-{axis}")
    return fig


def pca_tsne_figures(real: np.ndarray, synthetic: np.ndarray, *, n: int = 1000,
                     seed: int = 0) -> list[tuple[str, Figure]]:
    """TimeGAN's visualisation: ``[("PCA", fig), ("t-SNE", fig)]``.

    ``real`` (N, T, D) and ``synthetic`` (M, T, D), scaled. Up to ``n`` random windows of each
    are averaged over features to (n, T); PCA (2 components) is fitted on the real ones and
    applied to both; t-SNE (perplexity 40, 300 iterations as the reference) embeds both
    together.
    """
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    r, s = _pair(real, synthetic)
    if n < 1:
        raise FactorseqError(f"n must be >= 1, got {n}")
    rng = np.random.default_rng(seed)
    pr, ps = _feature_means(r, n, rng), _feature_means(s, n, rng)
    out = []
    if min(len(pr), pr.shape[1]) >= 2:  # PCA needs two samples and two time steps
        pca = PCA(n_components=2).fit(pr)
        out.append(("PCA", _scatter("PCA plot", pca.transform(pr), pca.transform(ps), "pca")))
    both = np.concatenate([pr, ps])
    if len(both) >= 4:
        # perplexity must stay below the number of points (only matters for tiny sets);
        # sklearn >= 1.5 calls the iteration count max_iter (n_iter is gone in 1.7)
        tsne = TSNE(n_components=2, perplexity=min(40.0, (len(both) - 1) / 3), max_iter=300,
                    random_state=seed)
        emb = tsne.fit_transform(both)
        out.append(("t-SNE", _scatter("t-SNE plot", emb[: len(pr)], emb[len(pr):], "tsne")))
    return out


def samples_figure(real: np.ndarray, synthetic: np.ndarray, feature_names: list[str] | None,
                   *, n: int = 4, seed: int = 0, max_features: int = 8) -> Figure:
    """A grid of ``n`` random real (left) and synthetic (right) windows, one row per feature
    (the first ``max_features`` features), shared y-range per row.

    ``real`` (N, T, D) and ``synthetic`` (M, T, D), in the same units.
    """
    r, s = _pair(real, synthetic)
    d = r.shape[2]
    names = list(feature_names) if feature_names is not None else [f"f{i}" for i in range(d)]
    if len(names) != d:
        raise ShapeError(f"{len(names)} feature names for {d} features")
    rng = np.random.default_rng(seed)
    picks = [x[rng.permutation(len(x))[:n]] for x in (r, s)]
    rows = min(d, max_features)
    fig = new_figure(9.0, 1.7 * rows + 0.8)
    axes = fig.subplots(rows, 2, sharex=True, squeeze=False)
    steps = np.arange(r.shape[1])
    for f in range(rows):
        lo = min(p[:, :, f].min() for p in picks)
        hi = max(p[:, :, f].max() for p in picks)
        pad = 0.05 * (hi - lo) or 0.5
        for col, (p, colour) in enumerate(zip(picks, (REAL_COLOUR, SYNTHETIC_COLOUR),
                                              strict=True)):
            ax = axes[f, col]
            ax.plot(steps, p[:, :, f].T, color=colour, alpha=0.7, linewidth=1)
            ax.set_ylim(lo - pad, hi + pad)
            if col == 0:
                ax.set_ylabel(names[f])
    axes[0, 0].set_title("real")
    axes[0, 1].set_title("synthetic")
    axes[-1, 0].set_xlabel("time step")
    axes[-1, 1].set_xlabel("time step")
    if rows < d:
        fig.suptitle(f"first {rows} of {d} features")
    return fig


def loss_curves_figure(csv_path: str | Path) -> Figure | None:
    """Every ``*loss*`` column of a Lightning CSVLogger ``metrics.csv`` against the epoch.

    Epochs are numbered from 1, as in the run's summary (``epochs_run``, ``best_epoch``), with
    integer ticks. Rows where a column is NaN are skipped for that column (Lightning writes
    step- and epoch-level metrics on different rows); several values in one epoch are averaged.
    The first epoch's loss often dwarfs the rest: the y-range then follows the later epochs
    (the title says so) or, for positive losses spanning decades, the axis is logarithmic.
    Falls back to the step when there is no epoch column. None when the file is missing or has
    no loss column.
    """
    import pandas as pd
    from matplotlib.ticker import MaxNLocator

    path = Path(csv_path)
    if not path.is_file():
        return None
    try:
        df = pd.read_csv(path)
    except (pd.errors.EmptyDataError, pd.errors.ParserError):
        return None
    x_col = "epoch" if "epoch" in df.columns else "step" if "step" in df.columns else None
    cols = [c for c in df.columns if "loss" in c.lower()]
    if x_col is None or not cols:
        return None
    curves = {}
    for c in cols:
        sub = df[[x_col, c]].apply(pd.to_numeric, errors="coerce").dropna()
        if not sub.empty:
            curve = sub.groupby(x_col)[c].mean()
            curves[c] = curve.set_axis(curve.index + (1 if x_col == "epoch" else 0))
    if not curves:
        return None
    fig = new_figure(7.0, 4.5)
    ax = fig.add_subplot()
    for c, curve in curves.items():
        ax.plot(curve.index, curve.values, marker="o" if len(curve) < 30 else None,
                markersize=3, label=c)
    title = "training curves"
    values = np.concatenate([v.values for v in curves.values()])
    first = min(float(v.index.min()) for v in curves.values())
    later = np.concatenate([v.values[v.index > first] for v in curves.values()])
    if len(later) and values.min() > 0 and values.max() / values.min() > 100:
        ax.set_yscale("log")  # losses spanning decades (e.g. KL vs reconstruction)
    elif len(later):
        lo, hi = float(later.min()), float(later.max())
        pad = 0.1 * (hi - lo) or 0.1 * abs(hi) or 0.1
        if values.max() > hi + pad or values.min() < lo - pad:  # the first epoch is off-scale
            ax.set_ylim(lo - pad, hi + pad)
            title += f" (y-range of {x_col}s after the first; the first is off the scale)"
    if x_col == "epoch":
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlim(left=first - 0.5)
    ax.set_xlabel(x_col)
    ax.set_ylabel("loss")
    ax.set_title(title, fontsize="medium")
    ax.legend(fontsize="small")
    return fig
