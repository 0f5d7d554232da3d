"""Table 5.5: the three pairs of Figures 5-x, pretrained on all of CINIC-10 and on 50k of it."""

from configs.thesis import base, grids

REPORT = "table_5_5"
SUBSET = 50_000  # the thesis's sample of the 180k CINIC-10 trainset


def get_config():
    return base.chapter5()


def get_sweep() -> list[dict]:
    return grids.subset_pairs(SUBSET)
