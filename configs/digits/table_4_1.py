"""Table 4.1 at digits scale: TRADES at each lambda (lambda = 0: robust optimization)."""

from configs.digits import base
from configs.thesis.table_4_1 import REPORT, get_sweep

__all__ = ["REPORT", "SEEDS", "get_config", "get_sweep"]
SEEDS = base.SEEDS


def get_config():
    return base.chapter4()
