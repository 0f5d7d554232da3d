"""Tables 5.1-5.4 at digits scale: digits:pretrain pretraining x digits:tune tuning."""

from configs.digits import base
from configs.thesis.tables_5_1_to_5_4 import REPORT, get_sweep

__all__ = ["REPORT", "SEEDS", "get_config", "get_sweep"]
SEEDS = base.SEEDS


def get_config():
    return base.chapter5()
