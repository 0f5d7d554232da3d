"""The digits settings of each chapter: configs/digits_demo.py's CPU scale, the thesis's layout.

Width 16, batch 50, eps 0.1 and XLA off are the demo's, for its reasons. Chapter 4 trains 20
epochs on the whole digits train split (1297 images; about 2 CPU minutes a run) and evaluates
only the final model, all its tables use; chapter 5 pretrains on `pretrain` (997) and tunes on
`tune` (300) as the demo does, evaluating every epoch for Figures 5-x. Checkpoints are kept as
in configs/thesis/base.py.
"""

import ml_collections

from configs import digits_demo

SEEDS = 3  # runs per cell: each table cell is a mean ± sd over these seeds


def chapter4() -> ml_collections.ConfigDict:
    config = digits_demo.get_config()
    config.pretrain_split = "train"
    config.tune_dataset = ""
    config.pretrain_epochs = 20  # about 2 CPU minutes
    config.eval_every = 0  # 0: the final epoch only
    config.keep_checkpoints = 1
    config.workdir = "runs/digits/chapter4"
    return config


def chapter5(every_checkpoint: bool = False) -> ml_collections.ConfigDict:
    config = digits_demo.get_config()
    config.keep_checkpoints = 0 if every_checkpoint else 1
    config.workdir = "runs/digits/chapter5"
    return config
