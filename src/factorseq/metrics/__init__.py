"""factorseq.metrics: TimeGAN's scores, Diffusion-TS's fidelity scores, privacy scores, figures
and the evaluator registry.

Arrays are (windows, time, features). Every module of this package is imported by
:func:`get_evaluator`, so evaluators defined here register themselves.
"""
from .evaluators import Evaluator, available_evaluators, evaluator, get_evaluator
from .fidelity import context_fid, correlational_score
from .privacy import dcr, membership_auc
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
           "available_evaluators", "Evaluator", "evaluator", "context_fid",
           "correlational_score", "dcr", "membership_auc"]
