"""The thesis's future work: the three pairs of Table 5.5 pretrained on nested, class-balanced
samples of CINIC-10 train+validation (180k), then tuned on CIFAR-10."""

from configs.thesis import base, grids

REPORT = "pretrain_size"
SIZES = (10_000, 25_000, 50_000, 100_000, 0)  # 0: all 180k, Table 5.5's full-data runs


def get_config():
    return base.chapter5()


def get_sweep() -> list[dict]:
    return grids.pretrain_size_grid(SIZES)
