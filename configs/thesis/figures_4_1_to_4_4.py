"""Figures 4-1..4-4: each metric vs lambda, TRADES and AR; the runs of Tables 4.1 and 4.2."""

from configs.thesis import base, grids

REPORT = "figures_4"


def get_config():
    return base.chapter4()


def get_sweep() -> list[dict]:
    return grids.lambda_grid("trades") + grids.lambda_grid("ar")
