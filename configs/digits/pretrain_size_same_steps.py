"""configs/digits/pretrain_size.py with every pretraining as long as the whole split's.

pretrain_size.py keeps Table 5.5's 8 pretraining epochs at every size, as the thesis's protocol
does, so at digits scale a smaller sample is also a much shorter pretraining (50 images: 8
steps, against 152 for all 997 digits), and its curve mixes the amount of data with the length
of training (Table 5.5 in docs/results/digits/README.md). Here each sample is pretrained for
about the whole split's steps (grids.pretrain_size_same_steps_grid), so only the number of
distinct images changes. The runs differ from Table 5.5's in their epochs
but not in their names, hence a root of their own.
"""

from configs.digits import base, pretrain_size
from configs.thesis import grids

__all__ = ["REPORT", "SEEDS", "SIZES", "get_config", "get_sweep"]
REPORT = pretrain_size.REPORT
SEEDS = base.SEEDS
SIZES = pretrain_size.SIZES


def get_config():
    config = base.chapter5()
    config.workdir = "runs/digits/pretrain_size_same_steps"
    return config


def get_sweep() -> list[dict]:
    return grids.pretrain_size_same_steps_grid(SIZES, get_config())
