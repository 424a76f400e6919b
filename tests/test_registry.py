"""The one generic registry and the registries built on it (models, data sets, file formats,
scalers, evaluators)."""
from __future__ import annotations

import sys
import types

import pytest

from factorseq.errors import FactorseqError
from factorseq.registry import Registry


def test_register_get_and_errors():
    reg: Registry = Registry("widget")
    assert reg.register("a", "b")(len) is len  # the decorator returns the object unchanged
    reg.add("c", abs)
    assert reg.get("b") is len and reg.names() == ["a", "b", "c"]
    assert "a" in reg and "z" not in reg and len(reg) == 3 and list(reg) == ["a", "b", "c"]
    reg.add("a", len)  # the same object again is a no-op (a module imported twice)
    with pytest.raises(ValueError, match="widget name 'a' registered twice"):
        reg.add("a", abs)
    with pytest.raises(FactorseqError, match=r"unknown widget 'z' \(x\); available: a, b, c"):
        reg.get("z", hint=" (x)")
    assert reg.pop("c") is abs and reg.names() == ["a", "b"]
    assert "(none)" in str(pytest.raises(FactorseqError, Registry("gizmo").get, "q").value)


def test_lazy_loading_imports_the_registering_module_once(tmp_path, monkeypatch):
    holder = types.ModuleType("reg_holder_for_test")
    holder.REG = Registry("plug-in", "plugins_for_test")
    holder.CALLS = []
    monkeypatch.setitem(sys.modules, "reg_holder_for_test", holder)
    (tmp_path / "plugins_for_test.py").write_text(
        "import reg_holder_for_test as h\nh.CALLS.append(1)\nh.REG.add('p', 42)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "plugins_for_test", raising=False)
    assert holder.CALLS == []  # nothing imported before the first look-up
    assert holder.REG.get("p") == 42 and holder.REG.names() == ["p"]
    assert holder.CALLS == [1]
    seen: list = []
    reg: Registry = Registry("thing", lambda: seen.append(reg.names()))  # a look-up while
    assert reg.names() == [] and reg.names() == [] and seen == [[]]  # loading: no recursion


def test_every_registry_is_one_instance_behind_its_old_names():
    from factorseq.data.formats import FORMATS
    from factorseq.data.registry import DATASETS, get_dataset, is_bundled, list_datasets
    from factorseq.data.scaler import SCALERS, MinMaxScaler, make_scaler
    from factorseq.metrics.evaluators import EVALUATORS, available_evaluators, get_evaluator
    from factorseq.registry import MODELS, available, get_model_class, registry_items

    for reg in (FORMATS, DATASETS, SCALERS, EVALUATORS, MODELS):
        assert isinstance(reg, Registry)
    assert "timevae" in available() and get_model_class("timevae").name == "timevae"
    assert list(registry_items()) == available()
    assert is_bundled("stockv") and get_dataset("stockv").scaler == "minmax"
    assert [d.name for d in list_datasets()] == DATASETS.names()
    assert isinstance(make_scaler("minmax"), MinMaxScaler)
    assert "generative" in available_evaluators()
    assert get_evaluator("generative").name == "generative"
    assert {".csv", ".npz", ".npy", ".parquet", ".wav", "dir"} <= set(FORMATS.names())
    for call, msg in ((lambda: get_model_class("nope"), "unknown model 'nope'; available: "),
                      (lambda: make_scaler("nope"), "unknown scaler 'nope'; available: minmax"),
                      (lambda: get_evaluator("nope"), "unknown evaluator 'nope'"),
                      (lambda: get_dataset("nope"), "unknown data set 'nope' .*stockv")):
        with pytest.raises(FactorseqError, match=msg):
            call()


def test_dataset_decorator_still_registers_a_set(tmp_path):
    import numpy as np

    from factorseq.data import DataConfig, load_data
    from factorseq.data.container import SequenceData
    from factorseq.data.registry import DATASETS, dataset

    @dataset("test-reg-set", description="d", citation="c", licence="l", scaler="standard")
    def _load(cfg):
        return SequenceData(x=np.ones((3, 4, 2)), name="x")

    try:
        data = load_data(DataConfig(source="test-reg-set"))
        assert data.name == "test-reg-set" and data.meta["scaler"] == "standard"
        with pytest.raises(ValueError, match="registered twice"):
            dataset("test-reg-set", description="other", citation="c", licence="l")(_load)
    finally:
        DATASETS.pop("test-reg-set")
