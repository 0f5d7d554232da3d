"""The thesis settings (Zhang 2019, chapters 4-5): CINIC-10 pretraining, CIFAR-10 tuning.

Every field, its default and its help are defined once, in tf_advreg/training/schema.py; this
file names what differs per phase. Set any field with `--config.<block>.<field>=<value>`
(e.g. `--config.tune.beta=5`); the first release's plain flags (`--tune_beta=5`) still work.
"""

import ml_collections

from tf_advreg.training import schema


def get_config() -> ml_collections.ConfigDict:
    config = schema.new_config()
    # The thesis pretrains on CINIC-10 train+valid (180k images) and tunes on CIFAR-10 with a
    # 100x smaller learning rate, 100 epochs each, batch 100.
    config.pretrain.dataset = "cinic10"
    config.pretrain.split = "train+validation"
    config.pretrain.lr = 0.1
    config.tune.dataset = "cifar10"
    config.tune.split = "train"
    config.tune.lr = 0.001
    return config
