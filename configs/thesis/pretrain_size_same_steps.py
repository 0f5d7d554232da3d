"""configs/thesis/pretrain_size.py with every pretraining as long as the whole split's: 180k
steps (100 epochs of 1,800 batches), so a 10k sample is pretrained for 1,800 epochs, 25k for 720,
50k for 360 and 100k for 180 (grids.pretrain_size_same_steps_grid). With the thesis's fixed 100
epochs a 10k sample is also an 18x shorter pretraining, and the size curve mixes the two; here
only the number of distinct images changes. The runs differ from pretrain_size.py's in their
epochs but not in their names, hence a root of their own (the whole-split runs too).
"""

from configs.thesis import base, grids, pretrain_size

REPORT = pretrain_size.REPORT
SIZES = pretrain_size.SIZES


def get_config():
    config = base.chapter5()
    config.workdir = "runs/thesis/pretrain_size_same_steps"
    return config


def get_sweep() -> list[dict]:
    return grids.pretrain_size_same_steps_grid(SIZES, get_config())
