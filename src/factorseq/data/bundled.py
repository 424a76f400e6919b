"""Bundled time-series sets (``sines``, ``stocks``, ``stockv``, ``energy``): windows (N, T, D).

Files live in the repository's ``data/`` folder (see ``data/README.md`` for provenance and
licences); all sets are returned in raw units, scaling is the trainer's job.
"""
from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd

from ..errors import FactorseqError
from .config import DataConfig
from .container import SequenceData
from .paths import bundled_file, data_dir
from .registry import dataset
from .windows import sliding_windows

STOCK_FEATURES = ["Open", "High", "Low", "Close", "Adj_Close", "Volume"]
# UCI "Appliances energy prediction" columns without the date: the 28 columns of TimeGAN's
# energy_data.csv, in file order (identified by their value ranges in the TimeVAE windows).
ENERGY_FEATURES = ["Appliances", "lights", "T1", "RH_1", "T2", "RH_2", "T3", "RH_3", "T4",
                   "RH_4", "T5", "RH_5", "T6", "RH_6", "T7", "RH_7", "T8", "RH_8", "T9", "RH_9",
                   "T_out", "Press_mm_hg", "RH_out", "Windspeed", "Visibility", "Tdewpoint",
                   "rv1", "rv2"]

TIMEGAN = ("J. Yoon, D. Jarrett, M. van der Schaar, \"Time-series Generative Adversarial "
           "Networks\", NeurIPS 2019")
TIMEVAE = ("A. Desai, C. Freeman, Z. Wang, I. Beaver, \"TimeVAE: A Variational Auto-Encoder "
           "for Multivariate Time Series Generation\", arXiv:2111.08095, 2021")
UCI_ENERGY = ("L. M. Candanedo, V. Feldheim, D. Deramaix, \"Data driven prediction models of "
              "energy use of appliances in a low-energy house\", Energy and Buildings 140, 2017")


def _int_option(cfg: DataConfig, key: str, default: int) -> int:
    """An integer data option (``--set data.options.<key>=...`` may give "10" or 10.0)."""
    value: Any = cfg.options.get(key, default)
    try:
        as_float = float(value)
    except (TypeError, ValueError):
        as_float = float("nan")
    if not as_float.is_integer():
        raise FactorseqError(f"data option {key} must be an integer, got {value!r}")
    return int(as_float)


def sine_windows(n: int, length: int, dim: int = 5, seed: int = 0) -> np.ndarray:
    """TimeGAN's ``sine_data_generation``: windows (n, length, dim) in [0, 1].

    Each sample and channel draws freq ~ U(0, 0.1) and phase ~ U(0, 0.1) and is
    x_t = (sin(freq * t + phase) + 1) / 2 for t = 0..length-1. The draws come from a legacy
    ``RandomState(seed)`` in TimeGAN's order (sample, channel, freq then phase), so the
    windows equal TimeGAN's after ``np.random.seed(seed)``.
    """
    if n < 1 or length < 1 or dim < 1:
        raise FactorseqError(f"sines needs n, window and dim >= 1, got {n}, {length}, {dim}")
    draws = np.random.RandomState(seed).uniform(0, 0.1, size=(n, dim, 2))
    freq, phase = draws[..., 0], draws[..., 1]
    t = np.arange(length, dtype=np.float64)
    x = np.sin(freq[:, None, :] * t[None, :, None] + phase[:, None, :])
    return (x + 1) * 0.5


@dataset("sines", description="synthetic 5-channel sines with random frequency and phase "
         "(TimeGAN's generator); options: n (windows, default 10000), dim (default 5)",
         citation=TIMEGAN,
         licence="synthetic, generated on the fly (no data licence)")
def sines(cfg: DataConfig) -> SequenceData:
    """``options["n"]`` windows (default 10000) of ``cfg.window`` steps, seeded by ``cfg.seed``.

    Values lie in [0.5, 1] for 24 steps (freq * t + phase <= 2.4); TimeGAN still min-max
    scales them inside its trainer, so the set keeps the default MinMax scaler.
    """
    n, dim = _int_option(cfg, "n", 10000), _int_option(cfg, "dim", 5)
    return SequenceData(x=sine_windows(n, cfg.window, dim, cfg.seed),
                        feature_names=[f"s{i}" for i in range(dim)], name="sines",
                        meta={"generator": "timegan_sines", "n": n,
                              # TimeGAN scores its sines unscaled, (sin + 1) / 2 in [0.5, 1]
                              "eval_space": "raw"})


@dataset("stocks", description="daily Google (GOOG) stock prices and volume 2004-2019, "
         "TimeGAN's table cut into stride-1 windows and shuffled; option reverse "
         "(default true: TimeGAN's row flip)", citation=TIMEGAN,
         licence="public market prices from Yahoo Finance, as shipped in the TimeGAN reference "
         "repository (Apache-2.0)")
def stocks(cfg: DataConfig) -> SequenceData:
    """TimeGAN's ``real_data_loading('stock')``: flip the rows, window, shuffle (seeded).

    The CSV is stored oldest day first, so TimeGAN's flip (commented "to make chronological
    data") actually makes every window run from the newest day back; ``options["reverse"] =
    False`` keeps calendar order instead. Windows every ``cfg.stride`` steps (TimeGAN: 1);
    TimeGAN's loop stops one window early, here all floor((T - L) / S) + 1 windows are kept.
    """
    table = pd.read_csv(bundled_file("timegan", "stock_data.csv")).to_numpy(dtype=np.float64)
    reverse = cfg.options.get("reverse", True)
    if str(reverse).lower() in ("false", "0", "no"):
        reverse = False
    if reverse:
        table = table[::-1]
    windows = sliding_windows(table, cfg.window, cfg.stride)
    # shuffle "to make it similar to i.i.d." as TimeGAN does, but with the run's seed
    order = np.random.default_rng(cfg.seed).permutation(len(windows))
    return SequenceData(x=windows[order], feature_names=list(STOCK_FEATURES), name="stocks",
                        meta={"reversed": bool(reverse)})


def bundled_percents(name: str) -> list[int]:
    """The training percentages bundled for a TimeVAE set (from the files present)."""
    pattern = re.compile(rf"{re.escape(name)}_subsampled_train_perc_(\d+)\.npz$")
    folder = data_dir() / "timevae"
    found = [pattern.match(p.name) for p in folder.glob("*.npz")] if folder.is_dir() else []
    return sorted(int(m.group(1)) for m in found if m)


def _timevae_windows(name: str, cfg: DataConfig, features: list[str]) -> SequenceData:
    """TimeVAE's pre-cut windows (N, 24, D) for ``options["percent"]`` % of the training set."""
    percent = _int_option(cfg, "percent", 100)
    available = bundled_percents(name)
    if percent not in available:
        raise FactorseqError(f"{name} has no bundled {percent}% file; bundled percents: "
                             f"{', '.join(map(str, available)) or '(none)'}")
    if cfg.window != 24:
        raise FactorseqError(f"{name} holds TimeVAE's windows of 24 steps; window "
                             f"{cfg.window} is not available (use the default window 24)")
    path = bundled_file("timevae", f"{name}_subsampled_train_perc_{percent}.npz")
    with np.load(path, allow_pickle=False) as z:
        x = z["data"]
    return SequenceData(x=x, feature_names=list(features), name=name,
                        meta={"percent": percent})


@dataset("stockv", description="TimeVAE's daily stock windows (Open, High, Low, Close, "
         "Adj_Close, Volume), 24 steps; option percent of the training set (2, 5, 10, 20, "
         "100)", citation=TIMEVAE,
         licence="MIT (TimeVAE reference repository); public market prices (Yahoo Finance)")
def stockv(cfg: DataConfig) -> SequenceData:
    return _timevae_windows("stockv", cfg, STOCK_FEATURES)


@dataset("energy", description="TimeVAE's UCI appliances-energy windows (28 sensors, "
         "10-minute steps), 24 steps; option percent of the training set (10, 100)",
         citation=f"{TIMEVAE}; data: {UCI_ENERGY}",
         licence="MIT (TimeVAE reference repository); data CC BY 4.0 (UCI Machine Learning "
         "Repository)")
def energy(cfg: DataConfig) -> SequenceData:
    return _timevae_windows("energy", cfg, ENERGY_FEATURES)

from . import digits  # noqa: F401,E402  (registers the bundled "digits" set)
from . import fsdd as _fsdd  # noqa: F401,E402  (registers "fsdd-digits", "fsdd-strings")
from . import known_factors as _known  # noqa: F401,E402  (registers "known-factors")
from . import sprites as _sprites  # noqa: F401,E402  (registers "sprites")
