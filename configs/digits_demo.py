"""The embedded offline demo: pretrain -> tune on scikit-learn's digits in a few CPU minutes.

The thesis pipeline at toy scale: TRADES (lambda 3) pretraining on one half of the digits
training images, TRADES (lambda 5) tuning on the other half (the thesis's best pair), a
width-8 ResNet18, and a larger eps (0.1) because 8x8 digits survive 0.03 trivially.
"""

from configs import default


def get_config():
    config = default.get_config()
    config.pretrain_dataset = "digits"
    config.pretrain_split = "pretrain"
    config.tune_dataset = "digits"
    config.tune_split = "tune"
    config.width = 8
    config.pretrain_objective = "trades"
    config.pretrain_beta = 3.0
    config.tune_objective = "trades"
    config.tune_beta = 5.0
    config.pretrain_epochs = 6
    config.tune_epochs = 3
    config.pretrain_lr = 0.1
    config.tune_lr = 0.01
    config.eps = 0.1
    config.attack_step_size = 0.025
    config.eval_attack_step_size = 0.01
    config.train_eval_subset = 0
    config.workdir = "runs/digits_demo"
    return config
