"""Augmentation policies: shapes and ranges kept, crops are crops, flips only where allowed."""

import numpy as np
import pytest
import tensorflow as tf

from tf_advreg.data import augment


def augmented(images, policy, allow_hflip=True, seed=0):
    labels = np.arange(len(images), dtype=np.int32)
    batches = tf.data.Dataset.from_tensors((images, labels))
    out_images, out_labels = next(
        augment.augment_batches(
            batches,
            policy,
            image_shape=images.shape[1:],
            allow_hflip=allow_hflip,
            seed=seed,
        ).as_numpy_iterator()
    )
    np.testing.assert_array_equal(out_labels, labels)
    return out_images


def crops_of(image, padding):
    """Every window the crop may return, as (row offset, column offset) -> image."""
    height, width = image.shape[:2]
    padded = np.pad(image, [(padding, padding), (padding, padding), (0, 0)])
    offsets = range(2 * padding + 1)
    return {(dy, dx): padded[dy : dy + height, dx : dx + width] for dy in offsets for dx in offsets}


def is_crop_of(result, image, padding):
    return any(np.array_equal(result, crop) for crop in crops_of(image, padding).values())


@pytest.mark.parametrize("shape", [(6, 32, 32, 3), (6, 8, 8, 1)])
@pytest.mark.parametrize("policy", augment.POLICIES)
def test_policies_keep_shape_dtype_and_range(policy, shape):
    images = np.random.default_rng(0).uniform(size=shape).astype(np.float32)

    result = augmented(images, policy)

    assert result.shape == shape and result.dtype == np.float32
    assert 0.0 <= result.min() and result.max() <= 1.0


def test_crop_padding_scales_with_image_size():
    assert [augment.crop_padding(size) for size in (32, 16, 8)] == [4, 2, 1]


def test_default_crops_and_flips_each_image():
    images = np.random.default_rng(1).uniform(size=(16, 8, 8, 1)).astype(np.float32)

    result = augmented(images, "default")

    for image, out in zip(images, result):
        assert is_crop_of(out, image, 1) or is_crop_of(out, image[:, ::-1], 1)
    assert any(is_crop_of(out, image[:, ::-1], 1) for image, out in zip(images, result))


def test_default_never_flips_when_the_dataset_forbids_it():
    images = np.random.default_rng(2).uniform(size=(16, 8, 8, 1)).astype(np.float32)

    result = augmented(images, "default", allow_hflip=False)

    assert all(is_crop_of(out, image, 1) for image, out in zip(images, result))


def test_cutout_blacks_out_one_square_of_half_the_side():
    images = tf.ones((64, 8, 8, 1))

    result = augment.random_cutout(images, tf.constant([1, 2])).numpy()[..., 0]

    for out in result:
        rows, cols = np.flatnonzero((out == 0).any(axis=1)), np.flatnonzero((out == 0).any(axis=0))
        assert (out == 0).sum() == len(rows) * len(cols)  # one rectangle
        assert 2 <= len(rows) <= 4 and 2 <= len(cols) <= 4  # half side, clipped at the border
    assert ((result == 0).sum(axis=(1, 2)) == 16).any()


def test_same_seed_same_augmentation_new_each_batch():
    images = np.random.default_rng(3).uniform(size=(8, 32, 32, 3)).astype(np.float32)
    batches = tf.data.Dataset.from_tensors((images, np.zeros(8, np.int32))).repeat(2)

    def augmented_batches(seed, first_batch=0):
        dataset = augment.augment_batches(
            batches,
            "default",
            image_shape=(32, 32, 3),
            allow_hflip=True,
            seed=seed,
            first_batch=first_batch,
        )
        return [out for out, _ in dataset.as_numpy_iterator()]

    first, second = augmented_batches(5)

    np.testing.assert_array_equal(augmented_batches(5)[0], first)
    assert not np.array_equal(first, second)
    assert not np.array_equal(augmented_batches(6)[0], first)
    # A stream that starts at batch 1 (a resumed run) replays batch 1 exactly.
    np.testing.assert_array_equal(augmented_batches(5, first_batch=1)[0], second)


def test_unknown_policy_lists_the_known_ones():
    with pytest.raises(ValueError, match="none, default, cutout, randaugment"):
        augment.check_policy("autoaugment")
