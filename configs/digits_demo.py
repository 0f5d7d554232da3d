"""The embedded offline demo: pretrain -> tune on scikit-learn's digits in ~2.5 CPU minutes.

The thesis pipeline at toy scale: TRADES (lambda 3) pretraining on one part of the digits
training images (997), TRADES (lambda 5) tuning on the rest (300), the thesis's best pair.
Scaled for 8x8 digits on two CPU cores: a width-16 ResNet18, batch 50 (more steps per epoch
on so few images), eps 0.1 (8x8 digits shrug off 0.03) with the thesis's step-to-eps ratios,
and XLA off, because on CPU XLA runs the attack's while-loop slower than graph mode does
(see docs/performance.md).
"""

from configs import default


def get_config():
    config = default.get_config()
    config.pretrain_dataset = "digits"
    config.pretrain_split = "pretrain"
    config.tune_dataset = "digits"
    config.tune_split = "tune"
    config.width = 16
    config.pretrain_objective = "trades"
    config.pretrain_beta = 3.0
    config.tune_objective = "trades"
    config.tune_beta = 5.0
    config.pretrain_epochs = 8
    config.tune_epochs = 4
    config.batch_size = 50
    config.pretrain_lr = 0.1
    config.tune_lr = 0.01
    config.eps = 0.1
    config.attack_step_size = 0.025
    config.eval_attack_step_size = 0.01
    config.train_eval_subset = 500
    config.workdir = "runs/digits_demo"
    return config
