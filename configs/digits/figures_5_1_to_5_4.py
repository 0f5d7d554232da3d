"""Figures 5-1..5-4 at digits scale: per tuning epoch, the three pairs on both digits parts."""

from configs.digits import base
from configs.thesis.figures_5_1_to_5_4 import REPORT, get_sweep

__all__ = ["REPORT", "SEEDS", "get_config", "get_sweep"]
SEEDS = base.SEEDS


def get_config():
    return base.chapter5(per_epoch=True)
