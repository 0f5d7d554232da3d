"""Dataset names to tf.data pipelines of (float32 images in [0, 1], int32 labels) batches.

TFDS provides cifar10, its extra test sets and cinic10; "digits" is scikit-learn's bundled
8x8 digits, so every tool has a dataset that works offline.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds
from sklearn.datasets import load_digits

from tf_advreg.data import augment as augment_lib
from tf_advreg.data.cinic10 import CIFAR10_CLASSES
from tf_advreg.data.imagenet32 import kept_synsets

# Published per-channel statistics of the training images, in [0, 1] units.
_CIFAR10_MEAN, _CIFAR10_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
_CINIC10_MEAN = (0.47889522, 0.47227842, 0.43047404)
_CINIC10_STD = (0.24205776, 0.23828046, 0.25874835)
# Our choice for downsampled ImageNet: the usual full-resolution ImageNet statistics.
_IMAGENET_MEAN, _IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)

# Per class: the first _DIGITS_TEST examples in hash order are test, the next _DIGITS_TUNE are
# tune, the rest pretrain; train = pretrain + tune.
_DIGITS_TEST, _DIGITS_TUNE = 50, 30


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """What models and tools need to know about a dataset before reading it."""

    name: str
    image_shape: tuple[int, int, int]
    num_classes: int
    class_names: tuple[str, ...]
    split_sizes: dict[str, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    allow_hflip: bool = True  # False where mirroring changes the class (digits).


def _cifar_like(name: str, split_sizes: dict[str, int], mean=_CIFAR10_MEAN, std=_CIFAR10_STD):
    return DatasetInfo(name, (32, 32, 3), 10, CIFAR10_CLASSES, split_sizes, mean, std)


# Published split sizes; replaced by the prepared TFDS metadata once the data exists.
# The extra CIFAR-10 test sets normalise like the CIFAR-10 training data they are tested against.
_TFDS_DATASETS = {
    "cifar10": _cifar_like("cifar10", {"train": 50_000, "test": 10_000}),
    "cifar10_1": _cifar_like("cifar10_1", {"test": 2_000}),
    "cifar10_corrupted": _cifar_like("cifar10_corrupted", {"test": 10_000}),
    "cinic10": _cifar_like(
        "cinic10",
        {"train": 90_000, "validation": 90_000, "test": 90_000},
        _CINIC10_MEAN,
        _CINIC10_STD,
    ),
    # Its training split size is known only once prepared (ImageNet's classes differ in size),
    # so `info` prepares it; the test split (ImageNet validation) has 50 images per class.
    "imagenet32_no_cifar10": DatasetInfo(
        "imagenet32_no_cifar10",
        (32, 32, 3),
        len(kept_synsets()),
        kept_synsets(),
        {"train": 0, "test": 50 * len(kept_synsets())},
        _IMAGENET_MEAN,
        _IMAGENET_STD,
    ),
}
_SIZES_ONCE_PREPARED = ("imagenet32_no_cifar10",)


def available_datasets() -> tuple[str, ...]:
    return (*sorted(_TFDS_DATASETS), "digits")


def info(name: str, data_dir: str | None = None) -> DatasetInfo:
    """Describes a dataset without reading its examples (or downloading it; only
    imagenet32_no_cifar10 is prepared first, as its split sizes exist only once prepared)."""
    base = _check_name(name)
    if base == "digits":
        return _digits_info()
    published = _TFDS_DATASETS[base]
    builder = tfds.builder(name, data_dir=data_dir)
    if base in _SIZES_ONCE_PREPARED:
        _prepare(builder, None)
    prepared = builder.info.splits
    sizes = {split: prepared[split].num_examples for split in prepared}
    return dataclasses.replace(published, name=name, split_sizes=sizes or published.split_sizes)


def load(
    name: str,
    split: str,
    *,
    batch_size: int,
    training: bool,
    data_dir: str | None = None,
    subset: int | None = None,
    seed: int = 0,
    augment: str = "default",
    manual_dir: str | None = None,
    start_epoch: int = 0,
    num_epochs: int = 1,
    hold_out: int = 0,
    held_out: bool = False,
) -> tf.data.Dataset:
    """Batches of (float32 images [B, H, W, C] in [0, 1], int32 labels [B]).

    Images are decoded once and cached as uint8 in memory. Evaluation (`training=False`) reads
    the split once, in order, keeping the last partial batch. Training yields epochs
    `start_epoch .. start_epoch + num_epochs - 1`, each of `split_size(...) // batch_size`
    full batches: epoch e is shuffled and augmented from (`seed`, e) alone, so a run resumed
    with `start_epoch=e` sees exactly the batches an uninterrupted run would.
    `subset` keeps a class-balanced sample of that many examples, chosen by `seed`.
    `hold_out` sets that many examples of the split aside (`holdout_split`: class-balanced, the
    same for every seed); `held_out` reads them instead of the rest. `subset` then samples
    within the part read.
    `split` may join splits with "+", e.g. "train+validation". For TFDS datasets, `data_dir`
    is the TFDS data directory and `manual_dir` holds manually downloaded files (default
    <data_dir>/downloads/manual).
    """
    dataset_info = info(name, data_dir)
    _check_split(dataset_info, split)
    augment_lib.check_policy(augment)
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}.")
    if dataset_info.name == "digits":
        source = _digits_source(split)
    else:
        source = _tfds_source(name, split, data_dir, manual_dir)
    chosen = None  # positions read; None: all
    if hold_out or subset is not None:
        labels = source.labels()
        chosen = np.arange(len(labels))
        if hold_out:
            kept, held = holdout_split(labels, hold_out, dataset_info.num_classes)
            chosen = held if held_out else kept
        if subset is not None:
            chosen = chosen[balanced_subset(labels[chosen], subset, dataset_info.num_classes, seed)]
    size = source.size if chosen is None else len(chosen)
    # A TFDS sample is a filter, of unknown length to tf.data; Keras needs it to know when an
    # evaluation pass ends rather than warn that the data "ran out".
    examples = source.examples(chosen).apply(tf.data.experimental.assert_cardinality(size))
    examples = examples.cache()
    if not training:
        batches = examples.batch(batch_size, num_parallel_calls=tf.data.AUTOTUNE)
        return batches.map(_to_unit_float, num_parallel_calls=tf.data.AUTOTUNE).prefetch(
            tf.data.AUTOTUNE
        )
    if batch_size > size:
        raise ValueError(
            f"batch_size {batch_size} exceeds the {size} training examples of {name}:{split}; "
            "training drops partial batches, so choose a batch_size <= the split size."
        )

    steps = size // batch_size
    # One dataset per epoch, each shuffled with its own Python-int seed (a tensor seed breaks
    # under a global TF seed), read one after another.
    epochs = [
        examples.shuffle(size, seed=_epoch_seed(seed, epoch), reshuffle_each_iteration=False).batch(
            batch_size, drop_remainder=True, num_parallel_calls=tf.data.AUTOTUNE
        )
        for epoch in range(start_epoch, start_epoch + num_epochs)
    ]
    order = tf.data.Dataset.range(num_epochs).flat_map(
        lambda epoch: tf.data.Dataset.from_tensors(epoch).repeat(steps)
    )
    batches = tf.data.Dataset.choose_from_datasets(epochs, order)
    batches = batches.map(_to_unit_float, num_parallel_calls=tf.data.AUTOTUNE)
    batches = augment_lib.augment_batches(
        batches,
        augment,
        image_shape=dataset_info.image_shape,
        allow_hflip=dataset_info.allow_hflip,
        seed=seed,
        first_batch=start_epoch * steps,
    )
    return batches.prefetch(tf.data.AUTOTUNE)


def _epoch_seed(seed: int, epoch: int) -> int:
    """A shuffle seed that depends on (seed, epoch) alone, stable across processes."""
    digest = hashlib.sha256(f"{seed}:{epoch}".encode()).digest()
    return int.from_bytes(digest[:7], "little")


def split_size(name: str, split: str, data_dir: str | None = None) -> int:
    """Examples in a split ("a+b" adds up), from metadata alone."""
    dataset_info = info(name, data_dir)
    _check_split(dataset_info, split)
    return sum(dataset_info.split_sizes[part] for part in split.split("+"))


def _class_quotas(counts: np.ndarray, size: int) -> np.ndarray:
    """Examples per class: dealt one per class per round, in class order, skipping classes
    that ran out; so no class's quota shrinks when `size` grows."""
    # After r full rounds the classes hold min(counts, r); take the most rounds that fit.
    dealt = np.minimum(counts[None, :], np.arange(counts.max() + 1)[:, None]).sum(axis=1)
    rounds = np.searchsorted(dealt, size, side="right") - 1
    quotas = np.minimum(counts, rounds)
    open_classes = np.flatnonzero(counts > rounds)
    quotas[open_classes[: size - quotas.sum()]] += 1
    return quotas


def balanced_subset(labels: np.ndarray, size: int, num_classes: int, seed: int) -> np.ndarray:
    """Sorted positions of `size` examples, as close to equal per class as the data allows.

    Each class gets size // num_classes; the remainder goes one each to the lowest class ids
    that still have examples left, so the sample is balanced, seed-stable and still possible
    when classes are uneven. Nested: with one seed, a sample is part of every larger sample.
    """
    if not 0 < size <= len(labels):
        raise ValueError(
            f"subset={size} is not possible for a split of {len(labels)} examples; "
            f"choose a subset between 1 and {len(labels)}."
        )
    quotas = _class_quotas(np.bincount(labels, minlength=num_classes), size)
    # Each class's examples in an order fixed by (seed, class) alone; a sample takes a prefix,
    # so with one seed a smaller sample lies inside every larger one (quotas only grow).
    picked = [
        np.random.default_rng([seed, label]).permutation(np.flatnonzero(labels == label))[:quota]
        for label, quota in enumerate(quotas)
    ]
    return np.sort(np.concatenate(picked))


_HOLDOUT_SEED = 0  # fixed: every run of a split holds out the same examples


def holdout_split(labels: np.ndarray, size: int, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """(kept, held out): sorted positions of a split without and with a class-balanced sample
    of `size` examples, the validation set for choosing an epoch (Rice et al. 2020).

    The sample depends on the labels alone, not on the training seed, so runs of several seeds
    train on the same examples and are compared on the same held-out set.
    """
    if not 0 < size < len(labels):
        raise ValueError(
            f"hold_out={size} is not possible for a split of {len(labels)} examples; "
            f"choose between 1 and {len(labels) - 1}, leaving examples to train on."
        )
    held = balanced_subset(labels, size, num_classes, _HOLDOUT_SEED)
    return np.setdiff1d(np.arange(len(labels)), held), held


def _check_name(name: str) -> str:
    """Returns the base dataset name; TFDS datasets may carry a config, e.g. "cifar10_1/v4"."""
    base, _, config = name.partition("/")
    if base not in available_datasets():
        raise ValueError(
            f"Unknown dataset {name!r}; choose one of: {', '.join(available_datasets())} "
            "(cifar10_corrupted takes a corruption, e.g. 'cifar10_corrupted/gaussian_noise_5')."
        )
    if config:
        configs = tfds.builder_cls(base).builder_configs if base != "digits" else {}
        if config not in configs:
            choices = f"choose one of: {', '.join(configs)}" if configs else f"use {base!r}"
            raise ValueError(f"Dataset {base!r} has no configuration {config!r}; {choices}.")
    return base


def _check_split(dataset_info: DatasetInfo, split: str) -> None:
    unknown = [part for part in split.split("+") if part not in dataset_info.split_sizes]
    if unknown:
        raise ValueError(
            f"Unknown split {split!r} for {dataset_info.name!r}; choose one of: "
            f"{', '.join(dataset_info.split_sizes)} (join them with '+')."
        )


def _to_unit_float(images: tf.Tensor, labels: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    return tf.cast(images, tf.float32) / 255.0, labels


@dataclasses.dataclass(frozen=True)
class _Source:
    """One split of one dataset: its labels on demand and its examples, optionally a subset."""

    size: int
    labels: Callable[[], np.ndarray]
    # Positions to keep (sorted) or None for all -> dataset of (uint8 image, int32 label).
    examples: Callable[[np.ndarray | None], tf.data.Dataset]


def _tfds_source(name: str, split: str, data_dir: str | None, manual_dir: str | None) -> _Source:
    builder = tfds.builder(name, data_dir=data_dir)
    _prepare(builder, manual_dir)
    decode_image = builder.info.features["image"].decode_example

    def encoded() -> tf.data.Dataset:
        # Images stay PNG bytes until the subset is chosen: only kept images get decoded.
        return builder.as_dataset(
            split=split,
            shuffle_files=False,
            decoders={"image": tfds.decode.SkipDecoding()},
            read_config=tfds.ReadConfig(try_autocache=False),
        )

    def labels() -> np.ndarray:
        batches = encoded().map(lambda example: example["label"]).batch(16_384)
        return np.concatenate(list(batches.as_numpy_iterator())).astype(np.int32)

    def examples(keep: np.ndarray | None) -> tf.data.Dataset:
        records = encoded()
        if keep is not None:
            mask = np.zeros(size, bool)
            mask[keep] = True
            kept = tf.constant(mask)
            records = records.enumerate().filter(lambda i, _: kept[i]).map(lambda _, ex: ex)
        return records.map(
            lambda ex: (decode_image(ex["image"]), tf.cast(ex["label"], tf.int32)),
            num_parallel_calls=tf.data.AUTOTUNE,
        )

    size = int(encoded().cardinality())  # TFDS records the size of every (joined) split.
    return _Source(size, labels, examples)


def _prepare(builder: tfds.core.DatasetBuilder, manual_dir: str | None) -> None:
    """Downloads and prepares once; turns a failed download into advice on offline copies."""
    manual = Path(manual_dir) if manual_dir else Path(builder.data_dir_root, "downloads", "manual")
    try:
        builder.download_and_prepare(
            download_config=tfds.download.DownloadConfig(manual_dir=str(manual))
        )
    except (OSError, tfds.download.DownloadError) as err:
        files = sorted({url.filename for url in (builder.url_infos or {}).values()})
        wanted = builder.MANUAL_DOWNLOAD_INSTRUCTIONS or f"Put {', '.join(files)} into it."
        raise ValueError(
            f"{builder.name} is not prepared under {builder.data_dir_root} and could not be "
            f"downloaded ({err}). To prepare it offline, use the manual directory {manual} "
            f"(or pass manual_dir): {wanted}"
        ) from err


def _digits_info() -> DatasetInfo:
    images, _, splits = _digits()
    train = images[splits["train"]] / 255.0
    return DatasetInfo(
        name="digits",
        image_shape=images.shape[1:],
        num_classes=10,
        class_names=tuple(str(digit) for digit in range(10)),
        split_sizes={split: len(positions) for split, positions in splits.items()},
        mean=(float(train.mean()),),
        std=(float(train.std()),),
        allow_hflip=False,
    )


def _digits_source(split: str) -> _Source:
    images, labels, splits = _digits()
    positions = np.concatenate([splits[part] for part in split.split("+")])

    def examples(keep: np.ndarray | None) -> tf.data.Dataset:
        chosen = positions if keep is None else positions[keep]
        return tf.data.Dataset.from_tensor_slices((images[chosen], labels[chosen]))

    return _Source(len(positions), lambda: labels[positions], examples)


@functools.cache
def _digits() -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """uint8 images [1797, 8, 8, 1] (0..16 rescaled to 0..255), int32 labels, split positions."""
    digits = load_digits()
    images = np.rint(digits.images * (255 / 16)).astype(np.uint8)[..., None]
    labels = digits.target.astype(np.int32)
    return images, labels, _digits_splits(labels)


def _digits_splits(labels: np.ndarray) -> dict[str, np.ndarray]:
    """Stratified splits in an order fixed by hashing example indices.

    A hash rather than a seeded RNG keeps the splits identical across processes, NumPy versions
    and the user's `seed`, so "test" never leaks into "train".
    """
    order = sorted(range(len(labels)), key=lambda i: hashlib.sha256(b"digits%d" % i).digest())
    seen = collections.Counter()
    splits = {"train": [], "test": [], "pretrain": [], "tune": []}
    for index in order:
        rank = seen[labels[index]]
        seen[labels[index]] += 1
        if rank < _DIGITS_TEST:
            splits["test"].append(index)
        elif rank < _DIGITS_TEST + _DIGITS_TUNE:
            splits["tune"].append(index)
        else:
            splits["pretrain"].append(index)
    splits["train"] = splits["pretrain"] + splits["tune"]
    return {name: np.sort(positions) for name, positions in splits.items()}
