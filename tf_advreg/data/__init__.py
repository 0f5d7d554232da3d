"""Datasets for training and evaluating robust classifiers: `load` a split as batches, or read
its `info`. Importing this package registers the TFDS builders "cinic10" and
"imagenet32_no_cifar10"."""

from tf_advreg.data.augment import POLICIES as AUGMENTATION_POLICIES
from tf_advreg.data.cinic10 import CIFAR10_CLASSES
from tf_advreg.data.datasets import (
    DatasetInfo,
    available_datasets,
    balanced_subset,
    holdout_split,
    info,
    load,
    split_size,
)

__all__ = [
    "AUGMENTATION_POLICIES",
    "CIFAR10_CLASSES",
    "DatasetInfo",
    "available_datasets",
    "balanced_subset",
    "holdout_split",
    "info",
    "load",
    "split_size",
]
