"""The thesis's future work: TRADES and AR with each distance in place of KL, at each lambda."""

from configs.thesis import base, grids

REPORT = "regularizers"


def get_config():
    return base.chapter4()


def get_sweep() -> list[dict]:
    return grids.regularizer_grid()
