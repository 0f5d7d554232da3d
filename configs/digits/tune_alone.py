"""Table 4.1 as chapter 5 compares with it, at digits scale: trained on the tune data alone.

The thesis's "pretrain -> tune beats training on the tune data alone" compares Tables 5.x with
Table 4.1, which trains on CIFAR-10, chapter 5's tune data. On digits Table 4.1 trains on all
1,297 training images and chapter 5 tunes on 300 of them, so this experiment trains Table
4.1's rows at the tunings' lambdas from scratch on those 300 (table T.1, which the claims read
in place of Table 4.1).
"""

from configs.digits import base
from configs.thesis import grids

__all__ = ["REPORT", "SEEDS", "get_config", "get_sweep"]
REPORT = "tune_alone"
SEEDS = base.SEEDS


def get_config():
    return base.tune_alone()


def get_sweep() -> list[dict]:
    return grids.tune_alone_grid()
