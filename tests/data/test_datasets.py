"""Dataset pipelines: TFDS datasets on mock data, the embedded digits, subsets, bad input."""

import hashlib

import numpy as np
import pytest
import tensorflow_datasets as tfds

from tf_advreg import data
from tf_advreg.data import datasets


def collect(dataset):
    batches = list(dataset.as_numpy_iterator())
    images = np.concatenate([images for images, _ in batches])
    labels = np.concatenate([labels for _, labels in batches])
    return batches, images, labels


@pytest.fixture
def mock_tfds(tmp_path):
    with tfds.testing.mock_data(num_examples=10, data_dir=str(tmp_path)):
        yield


def test_cifar10_training_batches(mock_tfds):
    dataset = data.load("cifar10", "train", batch_size=4, training=True, augment="randaugment")
    batches, images, labels = collect(dataset)

    assert [len(batch[1]) for batch in batches] == [4, 4]  # the remainder of 2 is dropped
    assert images.shape == (8, 32, 32, 3) and images.dtype == np.float32
    assert labels.dtype == np.int32 and set(labels) <= set(range(10))
    assert 0.0 <= images.min() and images.max() <= 1.0


def test_cifar10_evaluation_keeps_order_and_remainder(mock_tfds):
    def load():
        return data.load("cifar10", "test", batch_size=4, training=False)

    batches, images, labels = collect(load())

    assert [len(batch[1]) for batch in batches] == [4, 4, 2]
    np.testing.assert_array_equal(collect(load())[1], images)
    assert 0.0 <= images.min() and images.max() <= 1.0


def test_cifar10_subset_is_the_balanced_sample(mock_tfds):
    _, all_images, all_labels = collect(
        data.load("cifar10", "train", batch_size=10, training=False)
    )

    _, images, labels = collect(
        data.load("cifar10", "train", batch_size=10, training=False, subset=6, seed=2)
    )

    expected = data.balanced_subset(all_labels, 6, 10, seed=2)
    np.testing.assert_array_equal(images, all_images[expected])
    np.testing.assert_array_equal(labels, all_labels[expected])


@pytest.mark.parametrize("name", ["cifar10_1", "cifar10_corrupted/gaussian_noise_5"])
def test_extra_cifar10_test_sets(mock_tfds, name):
    _, images, labels = collect(data.load(name, "test", batch_size=8, training=False))

    assert images.shape == (10, 32, 32, 3) and labels.shape == (10,)
    assert data.info(name).class_names == data.CIFAR10_CLASSES


def test_published_info_without_data(tmp_path):
    cifar = data.info("cifar10", data_dir=str(tmp_path))
    cinic = data.info("cinic10", data_dir=str(tmp_path))

    assert data.CIFAR10_CLASSES == (
        "airplane",
        "automobile",
        "bird",
        "cat",
        "deer",
        "dog",
        "frog",
        "horse",
        "ship",
        "truck",
    )
    assert cifar.class_names == cinic.class_names == data.CIFAR10_CLASSES
    assert cifar.split_sizes == {"train": 50_000, "test": 10_000}
    assert cinic.split_sizes == {"train": 90_000, "validation": 90_000, "test": 90_000}
    assert cifar.image_shape == (32, 32, 3) and len(cifar.mean) == len(cifar.std) == 3
    assert set(data.available_datasets()) >= {"cifar10", "cinic10", "digits"}


def test_digits_splits_sizes_and_disjointness():
    info = data.info("digits")
    splits = datasets._digits_splits(datasets._digits()[1])
    sets = {name: set(positions.tolist()) for name, positions in splits.items()}

    assert info.image_shape == (8, 8, 1) and not info.allow_hflip
    assert info.split_sizes == {"train": 1297, "test": 500, "pretrain": 997, "tune": 300}
    assert sets["train"].isdisjoint(sets["test"])
    assert sets["pretrain"].isdisjoint(sets["tune"])
    assert sets["pretrain"] | sets["tune"] == sets["train"]
    assert len(sets["train"] | sets["test"]) == 1797
    assert np.bincount(datasets._digits()[1][splits["test"]]).tolist() == [50] * 10


def test_digits_splits_never_change():
    """Pinned digest: a change here would silently mix old test images into training."""
    splits = datasets._digits_splits(datasets._digits()[1])
    digest = hashlib.sha256()
    for name in ("train", "test", "pretrain", "tune"):
        digest.update(name.encode() + splits[name].astype("<i8").tobytes())

    assert digest.hexdigest()[:16] == "bdf4603166b4a149"


def test_digits_pipeline_does_not_depend_on_seed():
    _, first, _ = collect(data.load("digits", "test", batch_size=64, training=False, seed=0))
    _, second, _ = collect(data.load("digits", "test", batch_size=64, training=False, seed=9))

    np.testing.assert_array_equal(first, second)
    assert first.shape == (500, 8, 8, 1) and first.max() == 1.0


def test_training_shuffle_is_seeded_and_changes_every_epoch():
    def first_epochs(seed):
        dataset = data.load(
            "digits", "tune", batch_size=300, training=True, augment="none", seed=seed, num_epochs=2
        )
        return [labels for _, labels in dataset.as_numpy_iterator()]

    epoch1, epoch2 = first_epochs(0)

    np.testing.assert_array_equal(first_epochs(0)[0], epoch1)
    assert not np.array_equal(epoch1, epoch2)
    assert not np.array_equal(first_epochs(1)[0], epoch1)
    np.testing.assert_array_equal(np.sort(epoch1), np.sort(epoch2))


def test_subset_is_balanced_stable_and_seed_dependent():
    def sample(seed, size=105):
        dataset = data.load(
            "digits", "train", batch_size=64, training=False, subset=size, seed=seed
        )
        return collect(dataset)[1:]

    images, labels = sample(seed=0)

    assert sorted(np.bincount(labels).tolist()) == [10] * 5 + [11] * 5
    np.testing.assert_array_equal(sample(seed=0)[0], images)
    assert not np.array_equal(sample(seed=1)[0], images)


def test_subset_handles_uneven_classes():
    labels = np.array([0] * 2 + [1] * 10 + [2] * 10)

    chosen = data.balanced_subset(labels, 12, num_classes=3, seed=0)

    assert np.bincount(labels[chosen]).tolist() == [2, 5, 5]
    assert len(data.balanced_subset(labels, 22, 3, seed=0)) == 22


def test_smaller_subsets_are_inside_larger_ones():
    """Pretraining-size experiments compare nested samples: 10k inside 25k inside 50k..."""
    rng = np.random.default_rng(0)
    labels = rng.permutation(np.repeat(np.arange(4), [3, 9, 12, 16]))
    previous = set()
    for size in range(1, len(labels) + 1):
        chosen = set(data.balanced_subset(labels, size, 4, seed=7).tolist())
        assert len(chosen) == size and previous <= chosen, size
        previous = chosen


@pytest.mark.parametrize(
    ("name", "kwargs", "names_in_message"),
    [
        ("cifar100", {}, ["cifar10", "cinic10", "digits"]),
        ("cifar10_corrupted/fog_9", {}, ["fog_5"]),
        ("digits", {"split": "validation"}, ["train", "test", "pretrain", "tune"]),
        ("digits", {"subset": 0}, ["1297"]),
        ("digits", {"subset": 1298}, ["1297"]),
        ("digits", {"augment": "mixup"}, ["none", "default", "randaugment"]),
        ("digits", {"batch_size": 0}, ["batch_size"]),
        ("digits", {"split": "tune", "batch_size": 301}, ["300"]),
    ],
)
def test_bad_input_raises_a_helpful_value_error(name, kwargs, names_in_message):
    arguments = {"split": "train", "batch_size": 4, "training": True} | kwargs

    with pytest.raises(ValueError) as error:
        data.load(name, arguments.pop("split"), **arguments)

    assert all(word in str(error.value) for word in names_in_message)


def test_resumed_training_stream_replays_the_uninterrupted_one():
    """Epoch e depends on (seed, e) alone: starting at epoch 2 gives epochs 2, 3 of a full run."""

    def stream(start_epoch, epochs):
        dataset = data.load(
            "digits",
            "tune",
            batch_size=100,
            training=True,
            seed=3,
            start_epoch=start_epoch,
            num_epochs=epochs,
        )
        return list(dataset.as_numpy_iterator())

    uninterrupted, resumed = stream(0, 4), stream(2, 2)
    assert len(uninterrupted) == 12 and len(resumed) == 6
    for (images, labels), (images_resumed, labels_resumed) in zip(uninterrupted[6:], resumed):
        np.testing.assert_array_equal(images, images_resumed)
        np.testing.assert_array_equal(labels, labels_resumed)
    assert not np.array_equal(uninterrupted[0][0], uninterrupted[3][0])


def test_every_pass_over_a_training_stream_yields_the_same_batches():
    """The order depends on (seed, epoch) alone, not on how many iterators were made before:
    tf.distribute and Keras may open one to inspect the data before training reads it."""
    dataset = data.load("digits", "tune", batch_size=100, training=True, seed=3, num_epochs=2)
    first, second = (list(dataset.as_numpy_iterator()) for _ in range(2))
    for (images, labels), (images_again, labels_again) in zip(first, second):
        np.testing.assert_array_equal(labels, labels_again)
        np.testing.assert_array_equal(images, images_again)


def test_split_size_adds_joined_splits():
    assert data.split_size("digits", "pretrain+tune") == data.split_size("digits", "train")


def test_a_held_out_split_is_class_balanced_disjoint_and_the_same_for_every_seed():
    labels = datasets._digits()[1][datasets._digits_splits(datasets._digits()[1])["train"]]
    kept, held = data.holdout_split(labels, 100, 10)
    assert np.bincount(labels[held], minlength=10).tolist() == [10] * 10
    assert np.intersect1d(kept, held).size == 0 and len(kept) + len(held) == len(labels)

    def read(**kwargs):
        return collect(data.load("digits", "train", batch_size=64, training=False, **kwargs))[1:]

    images, held_labels = read(hold_out=100, held_out=True, seed=3)
    np.testing.assert_array_equal(held_labels, labels[held])
    np.testing.assert_array_equal(images, read(hold_out=100, held_out=True, seed=4)[0])
    rest_images, rest_labels = read(hold_out=100)
    np.testing.assert_array_equal(rest_labels, labels[kept])
    # A subset is sampled from the rest only.
    picked = data.balanced_subset(labels[kept], 50, 10, seed=0)
    np.testing.assert_array_equal(read(hold_out=100, subset=50)[0], rest_images[picked])


@pytest.mark.parametrize("size", [-5, 1297])
def test_a_held_out_size_that_leaves_nothing_is_named(size):
    with pytest.raises(ValueError, match=f"hold_out={size} is not possible"):
        data.load("digits", "train", batch_size=8, training=False, hold_out=size)
