"""factorseq: deep generative models with disentangled, interpretable representations of
sequences and time series. Arrays are (batch, time, features) throughout.

    import factorseq as fs
    run = fs.fit("timevae", fs.DataConfig(source="stockv"), fs.TrainConfig(epochs=50),
                 out="runs/tv")
    synthetic = run.scaler.inverse_transform(run.sample(1000))

Names are imported lazily so that ``import factorseq.data`` does not pay for Lightning.
"""
from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "Run": ".checkpoint", "load": ".checkpoint",
    "DataConfig": ".data", "SequenceData": ".data", "load_data": ".data",
    "FactorseqError": ".errors", "ShapeError": ".errors",
    "available": ".registry", "get_model_class": ".registry", "register": ".registry",
    "TrainConfig": ".train", "fit": ".train",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'factorseq' has no attribute {name!r}")
