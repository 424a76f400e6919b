"""The generated buildings table of the issue #24 benchmark (benchmarks/multi_entity_data.py):
its attributes are constant within an entity, its categories are the stated ones, its
Markov chain follows the stated schedules, and the split keeps entities whole and disjoint."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from multi_entity_data import (  # noqa: E402
    KINDS,
    LEVEL,
    MULT,
    REGIONS,
    STATES,
    buildings,
    region_term,
    schedule,
    split,
)


@pytest.fixture(scope="module")
def table():
    return buildings(n=40, steps=48, seed=3)


def test_layout_categories_and_static_attributes(table):
    assert list(table.columns) == ["entity", "t", "kind", "region", "area", "load", "state"]
    assert table.entity.nunique() == 40 and len(table) == 40 * 48
    assert set(table.kind) <= set(KINDS) and set(table.region) <= set(REGIONS)
    assert set(table.state) == set(STATES)
    per_entity = table.groupby("entity")[["kind", "region", "area"]].nunique()
    assert (per_entity == 1).all().all()  # one value of every attribute per entity
    assert (table.groupby("entity").t.apply(list) == [list(range(48))] * 40).all()


def test_schedules_are_distributions_and_offices_never_high_at_night(table):
    for kind in KINDS:
        for h in range(24):
            assert sum(schedule(kind, h)) == pytest.approx(1.0)
    # office at 2 h: redraws give P(high) = 0 and t = 0 draws from it, so every office's
    # first step (hour 0) is off or low
    offices = table[(table.kind == "office") & (table.t == 0)]
    assert len(offices) and set(offices.state) <= {"off", "low"}


def test_load_follows_the_stated_formula_up_to_the_noise():
    # one building: the load minus its deterministic part is area / 100 times AR(1) noise,
    # whose stationary sd is 0.15 / sqrt(1 - 0.7^2) = 0.21
    t = buildings(n=200, steps=48, seed=1)
    scale = t.area / 100.0
    level = t.state.map(dict(zip(STATES, LEVEL, strict=True)))
    det = scale * t.kind.map(MULT) * level + [region_term(r, h % 24, s) for r, h, s in
                                              zip(t.region, t.t, scale, strict=True)]
    noise = (t.load - det) / scale
    assert abs(noise.mean()) < 0.03
    assert noise.std() == pytest.approx(0.15 / np.sqrt(1 - 0.49), rel=0.1)


def test_split_is_disjoint_and_keeps_entities_whole(table):
    train, test = split(table, seed=0)
    assert set(train.entity).isdisjoint(test.entity)
    assert test.entity.nunique() == round(40 / 3) and len(train) + len(test) == len(table)
    assert (test.groupby("entity").size() == 48).all()
