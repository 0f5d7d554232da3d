"""The thesis settings of each chapter, which every experiment file starts from.

Each chapter keeps its runs under one root (`workdir`), so experiments that share a run (the
robust-optimization baseline of Tables 4.1 and 4.2, the pairs of Figures 5-x that are also
cells of Tables 5.1-5.4 and 5.5) train it once.
"""

import ml_collections

from configs import default


def chapter4() -> ml_collections.ConfigDict:
    """Chapter 4: one phase, 100 epochs on CIFAR-10 train, final model evaluated."""
    config = default.get_config()
    config.pretrain.dataset = "cifar10"
    config.pretrain.split = "train"
    config.tune.dataset = ""
    config.keep_checkpoints = 1  # only the final model is evaluated; 100 per run fill ~9 GB
    config.workdir = "runs/thesis/chapter4"
    return config


def chapter5(per_epoch: bool = False) -> ml_collections.ConfigDict:
    """Chapter 5: CINIC-10 train+valid pretraining -> CIFAR-10 tuning.

    Tables evaluate only the final model and keep the newest checkpoint only (enough to tune
    from and to resume; 100 per run, ~90 MB each, would fill ~300 GB for Tables 5.1-5.4).
    Figures 5-x (`per_epoch`) evaluate every epoch and keep every epoch's checkpoint, as the
    thesis did, for evaluating each epoch again (tools.evaluate --checkpoints). A run two
    experiments share must be trained by the figure's sweep first: tools.sweep refuses to
    count a run as finished when it lacks evaluations its config asks for.
    """
    config = default.get_config()
    config.eval.every = 1 if per_epoch else 0
    config.keep_checkpoints = 0 if per_epoch else 1
    config.workdir = "runs/thesis/chapter5"
    return config
