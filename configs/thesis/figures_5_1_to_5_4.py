"""Figures 5-1..5-4: per tuning epoch, CINIC-10 train and CIFAR-10 test accuracy of 3 pairs.

Robust opt. -> robust opt., TRADES 3 -> TRADES 5 and AR 1 -> AR 5; every epoch is evaluated
while tuning (on CINIC-10 too) and every epoch's checkpoint is kept, as in the thesis.
"""

from configs.thesis import base, grids

REPORT = "figures_5"


def get_config():
    return base.chapter5(per_epoch=True)


def get_sweep() -> list[dict]:
    return grids.pairs()
