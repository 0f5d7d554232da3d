"""The distances of configs/thesis/regularizers.py at digits scale (chapter 4's runs)."""

from configs.digits import base
from configs.thesis.regularizers import REPORT, get_sweep

__all__ = ["REPORT", "SEEDS", "get_config", "get_sweep"]
SEEDS = base.SEEDS


def get_config():
    return base.chapter4()
