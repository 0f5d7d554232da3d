"""Figures 4-1..4-4 at digits scale: the runs of Tables 4.1 and 4.2, plotted against lambda."""

from configs.digits import base
from configs.thesis.figures_4_1_to_4_4 import REPORT, get_sweep

__all__ = ["REPORT", "SEEDS", "get_config", "get_sweep"]
SEEDS = base.SEEDS


def get_config():
    return base.chapter4()
