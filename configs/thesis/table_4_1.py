"""Table 4.1: TRADES at each lambda on CIFAR-10, 100 epochs (lambda = 0: robust optimization)."""

from configs.thesis import base, grids

REPORT = "table_4_1"


def get_config():
    return base.chapter4()


def get_sweep() -> list[dict]:
    return grids.lambda_grid("trades")
