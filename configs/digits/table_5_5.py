"""Table 5.5 at digits scale: the three pairs pretrained on all 997 pretrain digits and on 300.

300 of 997 keeps the thesis's ratio of 50k to CINIC-10's 180k (0.28) at whole batches of 50.
"""

from configs.digits import base
from configs.thesis import grids
from configs.thesis.table_5_5 import REPORT

__all__ = ["REPORT", "SEEDS", "get_config", "get_sweep"]
SEEDS = base.SEEDS
SUBSET = 300


def get_config():
    return base.chapter5()


def get_sweep() -> list[dict]:
    return grids.subset_pairs(SUBSET)
