"""Training: one Lightning adapter for every model, and ``fit``."""
from .config import TrainConfig
from .fit import fit

__all__ = ["TrainConfig", "fit"]
