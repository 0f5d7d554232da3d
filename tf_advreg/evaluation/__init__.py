"""Robustness evaluation: PGD, FGSM and Auto-PGD over a dataset, worst case over attacks,
confidence intervals, sanity checks against gradient masking, and JSON/CSV reports."""

from tf_advreg.attacks.settings import ATTACKS, ITERATIVE_ATTACKS, Attack
from tf_advreg.evaluation.apgd import apgd, dlr_loss
from tf_advreg.evaluation.models import LoadedModel, check_input_shape, checkpoint_series, load
from tf_advreg.evaluation.robustness import (
    STRONGEST_DEFAULT,
    WORST_CASE,
    Outcome,
    evaluate,
    wilson_interval,
    worst_case,
)
from tf_advreg.evaluation.sanity import Check, run_checks

__all__ = [
    "ATTACKS",
    "ITERATIVE_ATTACKS",
    "STRONGEST_DEFAULT",
    "WORST_CASE",
    "Attack",
    "Check",
    "LoadedModel",
    "Outcome",
    "apgd",
    "check_input_shape",
    "checkpoint_series",
    "dlr_loss",
    "evaluate",
    "load",
    "run_checks",
    "wilson_interval",
    "worst_case",
]
