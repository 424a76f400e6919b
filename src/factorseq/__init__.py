"""factorseq: deep generative models with disentangled, interpretable representations of
sequences and time series. Arrays are (batch, time, features) throughout.

    import factorseq as fs
    run = fs.fit("timevae", fs.DataConfig(source="stockv"), fs.TrainConfig(epochs=50),
                 fs.TimeVAEConfig(trend_poly=2), out="runs/tv")
    synthetic = run.sample(1000)          # original units

Names are imported lazily so that ``import factorseq.data`` does not pay for Lightning. Every
registered model's config class is reachable by its name (``fs.TimeVAEConfig``,
``fs.FHVAEConfig``, ...).
"""
from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "Run": ".run", "load": ".checkpoint",
    "Codes": ".models.outputs", "CodeSpec": ".models.outputs", "Decomposition": ".models.outputs",
    "Factor": ".models.outputs", "CAPABILITIES": ".models.base",
    "DataConfig": ".data", "SequenceData": ".data", "load_data": ".data",
    "FactorseqError": ".errors", "ShapeError": ".errors",
    "available": ".registry", "get_model_class": ".registry", "register": ".registry",
    "TrainConfig": ".train", "fit": ".train",
}

__all__ = ["__version__", *_LAZY]


def _model_configs() -> dict[str, type]:
    from .registry import registry_items
    return {cls.Config.__name__: cls.Config for cls in registry_items().values()}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name], __name__), name)
    elif name.endswith("Config") and name in (configs := _model_configs()):
        value = configs[name]
    else:
        raise AttributeError(f"module 'factorseq' has no attribute {name!r}")
    globals()[name] = value
    return value
