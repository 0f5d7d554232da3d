"""The digits settings of each chapter: configs/digits_demo.py's CPU scale, the thesis's layout.

Width 16, batch 50, eps 0.1 and XLA off are the demo's, for its reasons. Chapter 4 trains 20
epochs on the whole digits train split (1297 images; about 2 CPU minutes a run) and evaluates
only the final model, all its tables use; chapter 5 pretrains on `pretrain` (997) and tunes on
`tune` (300) as the demo does; Figures 5-x evaluate and keep every epoch, tables the final
one, as in configs/thesis/base.py. Every cell is trained with SEEDS seeds.

Pretraining lr 0.05, not the thesis's 0.1: at 0.1 the strongest regularizers can diverge early
on digits (TRADES lambda 5, seed 0: loss 2.7 -> 4.2 in epoch 2, training accuracy down to 0.16
by epoch 3, only half recovered at the step decay, ending at 0.84 natural / 0.45 adversarial
test accuracy; AR lambda 5: 0.82 / 0.59; seed 1 of TRADES trains); at 0.05 TRADES lambda 5
trains to 0.96 / 0.74 and 0.95 / 0.76 (seeds 0, 1), AR lambda 5 to 0.92 / 0.73, robust
optimization to 0.97 / 0.81 (docs/results/digits/README.md). One rate for every cell and both
chapters, so the grid stays one experiment.
"""

import ml_collections

from configs import digits_demo

SEEDS = 3  # runs per cell: each table cell is a mean ± sd over these seeds
PRETRAIN_LR = 0.05  # see above: 0.1 collapses lambda = 5 at this scale


def _digits() -> ml_collections.ConfigDict:
    config = digits_demo.get_config()
    config.pretrain.lr = PRETRAIN_LR
    return config


def chapter4() -> ml_collections.ConfigDict:
    config = _digits()
    config.pretrain.split = "train"
    config.tune.dataset = ""
    config.pretrain.epochs = 20  # about 2 CPU minutes
    config.eval.every = 0  # 0: the final epoch only
    config.keep_checkpoints = 1
    config.workdir = "runs/digits/chapter4"
    return config


def tune_alone() -> ml_collections.ConfigDict:
    """Chapter 4's training (20 epochs from scratch, lr 0.05) on chapter 5's tune images alone
    (300), tested on the same test images: what Table 4.1 is to chapter 5 in the thesis,
    where both train on CIFAR-10."""
    config = chapter4()
    config.pretrain.split = _digits().tune.split
    config.workdir = "runs/digits/tune_alone"
    return config


def chapter5(per_epoch: bool = False) -> ml_collections.ConfigDict:
    """Tables evaluate and keep only the final model; Figures 5-x (`per_epoch`) every epoch's.
    Evaluating every epoch more than doubles a table's run (the evaluation of 1,800 images
    with PGD-20 outweighs an epoch on 300) for numbers no table reads; the final evaluation is
    bit-identical either way."""
    config = _digits()
    config.eval.every = 1 if per_epoch else 0
    config.keep_checkpoints = 0 if per_epoch else 1
    config.workdir = "runs/digits/chapter5"
    return config
