"""factorseq.metrics: TimeGAN's scores, figures and the evaluator registry.

Arrays are (windows, time, features). Every module of this package is imported by
:func:`get_evaluator`, so evaluators defined here register themselves.
"""
from .evaluators import Evaluator, available_evaluators, evaluator, get_evaluator
from .timegan import (
    discriminative_score,
    discriminative_scores,
    predictive_score,
    predictive_scores,
    predictive_table,
    repeated,
)

__all__ = ["discriminative_score", "discriminative_scores", "predictive_score",
           "predictive_scores", "predictive_table", "repeated", "get_evaluator",
           "available_evaluators", "Evaluator", "evaluator"]
