"""configs/thesis/pretrain_size.py at digits scale: the 997 pretrain digits and nested samples.

10k, 25k, 50k and 100k of 180k are 0.056, 0.14, 0.28 and 0.56 of the data: of 997 digits,
55, 138, 277 and 554, rounded to whole batches of 50 (300 is Table 5.5's digits sample).
"""

from configs.digits import base
from configs.thesis import grids
from configs.thesis.pretrain_size import REPORT

__all__ = ["REPORT", "SEEDS", "SIZES", "get_config", "get_sweep"]
SEEDS = base.SEEDS
SIZES = (50, 150, 300, 550, 0)  # 0: all 997, Table 5.5's full-data runs


def get_config():
    return base.chapter5()


def get_sweep() -> list[dict]:
    return grids.pretrain_size_grid(SIZES)
