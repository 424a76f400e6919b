"""factorseq.data: loading, windowing, scaling and bundled data sets.

Every array is (windows, time, features).
"""
from .config import DataConfig
from .container import SequenceData
from .loaders import load_data
from .registry import dataset, get_dataset, list_datasets
from .scaler import MinMaxScaler, Scaler, StandardScaler, make_scaler

__all__ = ["DataConfig", "SequenceData", "load_data", "dataset", "get_dataset", "list_datasets",
           "MinMaxScaler", "Scaler", "StandardScaler", "make_scaler"]
