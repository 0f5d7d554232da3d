"""Table 4.2: Adversarial Regularization at each lambda on CIFAR-10 (lambda = 0: robust opt.)."""

from configs.thesis import base, grids

REPORT = "table_4_2"


def get_config():
    return base.chapter4()


def get_sweep() -> list[dict]:
    return grids.lambda_grid("ar")
