"""Thesis section 6.3: logit-based regularization with ImageNet pretraining, CIFAR-10 classes
omitted.

Chapter 5's three pretrain -> tune pairs (robust opt. -> robust opt., TRADES 3 -> TRADES 5,
AR 1 -> AR 5) with the pretraining moved from CINIC-10 to imagenet32_no_cifar10 (858
ImageNet32 classes, ~1.1 M training images, six times CINIC-10's train+valid). Tuning on
CIFAR-10 keeps the pretrained body and starts a new 10-way classifier; the tables compare the
final CIFAR-10 models with those of Tables 5.1-5.4. Needs Imagenet32_train_npz.zip and
Imagenet32_val_npz.zip in <data_dir>/downloads/manual (docs/datasets.md).
"""

from configs.thesis import base, grids

REPORT = "tables_5"


def get_config():
    config = base.chapter5()
    config.pretrain.dataset = "imagenet32_no_cifar10"
    config.pretrain.split = "train"
    config.workdir = "runs/thesis/imagenet_no_cifar10"
    return config


def get_sweep() -> list[dict]:
    return grids.pairs()
