"""A generated multi-entity table for the issue #24 benchmark: buildings with attributes.

Nothing is downloaded: the table is drawn by the process below (code of this project, MIT
licence), so every statement about it can be checked against its definition.

Per building (entity), static attributes:
- ``kind`` in {home, office, shop} with probabilities (0.5, 0.25, 0.25);
- ``region`` in {north, south}, each 1/2;
- ``area`` (m^2, numeric): log-normal, median 100 (home), 800 (office), 300 (shop), log-sd
  0.3 / 0.4 / 0.4.

Per hour t = 0..steps-1 (hour of day h = t mod 24), time-varying columns:
- ``state`` in {off, low, high}: an inhomogeneous Markov chain; it keeps its state with
  probability ``STAY`` (0.6), else redraws from the kind's schedule ``pi_kind(h)``
  (``SCHEDULES``: offices busy 8-18 h, shops 9-20 h, homes mornings and evenings);
- ``load`` (kW) = s * m_kind * level[state] + region term + s * e_t, with s = area / 100,
  level = (0.3, 1.0, 2.5) for (off, low, high), m = (1.0, 1.5, 2.0) for (home, office,
  shop); the region term is cooling in the south, 0.8 s sin(pi (h - 10) / 10) for
  10 <= h < 20, and heating in the north, 0.5 s for h < 7; e_t is AR(1) noise,
  e_t = 0.7 e_{t-1} + N(0, 0.15^2).

So the attributes shape both columns: the kind sets the state's daily rhythm and the load's
level, the area the load's scale, the region a midday or night bump.
"""
from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

KINDS = ("home", "office", "shop")
KIND_P = (0.5, 0.25, 0.25)
REGIONS = ("north", "south")
STATES = ("off", "low", "high")
AREA = {"home": (100.0, 0.3), "office": (800.0, 0.4), "shop": (300.0, 0.4)}
LEVEL = np.array([0.3, 1.0, 2.5])
MULT = {"home": 1.0, "office": 1.5, "shop": 2.0}
STAY = 0.6
ATTRS = ["kind", "region", "area"]  # the static attributes, in column order


def competitor_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line of the competitors' scripts (run in their own environments)."""
    p = argparse.ArgumentParser()
    for name in ("--train", "--attributes", "--out", "--info"):
        p.add_argument(name, required=True)
    p.add_argument("--minutes", type=float, required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--length", type=int, default=48)
    return p.parse_args(argv)
AR, NOISE = 0.7, 0.15


def schedule(kind: str, hour: int) -> tuple[float, float, float]:
    """pi_kind(h): the (off, low, high) probabilities a redraw uses at hour ``hour``."""
    if kind == "office":
        return (0.05, 0.25, 0.70) if 8 <= hour < 18 else (0.7, 0.3, 0.0)
    if kind == "shop":
        return (0.0, 0.4, 0.6) if 9 <= hour < 20 else (0.8, 0.2, 0.0)
    if 6 <= hour < 9 or 17 <= hour < 23:  # home: mornings and evenings
        return (0.05, 0.35, 0.6)
    return (0.2, 0.75, 0.05) if (hour >= 23 or hour < 6) else (0.3, 0.6, 0.1)


def region_term(region: str, hour: int, scale: float) -> float:
    """Cooling at midday in the south, heating at night in the north (kW)."""
    if region == "south":
        return 0.8 * scale * np.sin(np.pi * (hour - 10) / 10) if 10 <= hour < 20 else 0.0
    return 0.5 * scale if hour < 7 else 0.0


def building(rng: np.random.Generator, kind: str, region: str, area: float, steps: int
             ) -> tuple[list[str], np.ndarray]:
    """One building's (states, loads) over ``steps`` hours."""
    scale, states, loads, e, s = area / 100.0, [], np.empty(steps), 0.0, -1
    for t in range(steps):
        h = t % 24
        if s < 0 or rng.random() >= STAY:  # redraw from the schedule (always at t = 0)
            s = int(rng.choice(3, p=schedule(kind, h)))
        e = AR * e + rng.normal(0.0, NOISE)
        loads[t] = scale * MULT[kind] * LEVEL[s] + region_term(region, h, scale) + scale * e
        states.append(STATES[s])
    return states, loads


def buildings(n: int = 480, steps: int = 48, seed: int = 0) -> pd.DataFrame:
    """The long table: columns entity, t, kind, region, area, load, state; ``n`` buildings."""
    rng = np.random.default_rng(seed)
    frames = []
    for i in range(n):
        kind = KINDS[rng.choice(3, p=KIND_P)]
        region = REGIONS[rng.integers(2)]
        median, sd = AREA[kind]
        area = float(np.round(median * np.exp(rng.normal(0.0, sd)), 1))
        states, loads = building(rng, kind, region, area, steps)
        frames.append(pd.DataFrame({"entity": f"b{i:04d}", "t": np.arange(steps), "kind": kind,
                                    "region": region, "area": area,
                                    "load": np.round(loads, 4), "state": states}))
    return pd.concat(frames, ignore_index=True)


def split(table: pd.DataFrame, test_fraction: float = 1 / 3, seed: int = 0
          ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, test): disjoint random sets of whole entities."""
    ids = table["entity"].unique()
    rng = np.random.default_rng(seed)
    test = set(rng.choice(ids, int(round(len(ids) * test_fraction)), replace=False))
    is_test = table["entity"].isin(test)
    return table[~is_test].reset_index(drop=True), table[is_test].reset_index(drop=True)
