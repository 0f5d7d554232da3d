"""Tables 5.1-5.4: CINIC-10 pretraining x CIFAR-10 tuning (robust optimization and TRADES).

Each of the 5 pretrainings is trained once and each of its 6 tunings starts from its last
checkpoint (the sweep splits every pretrain -> tune run that way).
"""

from configs.thesis import base, grids

REPORT = "tables_5"


def get_config():
    return base.chapter5()


def get_sweep() -> list[dict]:
    return grids.pretrain_tune_grid()
