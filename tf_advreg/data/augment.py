"""Training-time augmentation policies, applied to whole batches inside tf.data.

Every policy maps float32 images in [0, 1] to images of the same shape and range and leaves
the integer labels alone, because the adversarial losses need hard labels. Randomness comes
from stateless ops keyed by a per-batch seed derived from the epoch's seed, so a run is
reproducible, replays exactly when resumed, and still sees new crops every epoch.
"""

from __future__ import annotations

from collections.abc import Callable

import keras_cv
import tensorflow as tf

POLICIES = ("none", "default", "cutout", "randaugment")

_Policy = Callable[[tf.Tensor, tf.Tensor], tf.Tensor]


def check_policy(name: str) -> None:
    """Raises ValueError for an unknown policy, before any data is read."""
    if name not in POLICIES:
        raise ValueError(
            f"Unknown augmentation policy {name!r}; choose one of: {', '.join(POLICIES)}."
        )


def crop_padding(size: int) -> int:
    """Madry/TRADES pad 32-pixel images by 4; smaller images get proportionally less (8 -> 1)."""
    return max(1, round(size * 4 / 32))


def random_crop(images: tf.Tensor, seed: tf.Tensor, padding: int) -> tf.Tensor:
    """Zero-pads by `padding` and crops back to the original size at a per-image offset."""
    batch, height, width = tf.shape(images)[0], images.shape[1], images.shape[2]
    padded = tf.pad(images, [[0, 0], [padding, padding], [padding, padding], [0, 0]])
    offsets = tf.random.stateless_uniform(
        [2, batch], seed, minval=0, maxval=2 * padding + 1, dtype=tf.int32
    )
    rows = offsets[0][:, None] + tf.range(height)
    cols = offsets[1][:, None] + tf.range(width)
    cropped = tf.gather(padded, rows, axis=1, batch_dims=1)
    return tf.gather(cropped, cols, axis=2, batch_dims=1)


def random_hflip(images: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """Mirrors each image left-right with probability 1/2."""
    flip = tf.random.stateless_uniform([tf.shape(images)[0], 1, 1, 1], seed) < 0.5
    return tf.where(flip, tf.reverse(images, axis=[2]), images)


def random_cutout(images: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """Blacks out a square of half the image side at a random centre (DeVries & Taylor, 2017).

    The square may hang over the border, as in the original, so some images lose less.
    """
    batch, height, width = tf.shape(images)[0], images.shape[1], images.shape[2]
    centres = tf.random.stateless_uniform([2, batch, 1], seed)
    inside = [
        _within_window(tf.cast(centres[axis] * size, tf.int32), size)
        for axis, size in enumerate((height, width))
    ]
    mask = inside[0][:, :, None, None] & inside[1][:, None, :, None]
    return tf.where(mask, tf.zeros_like(images), images)


def _within_window(centres: tf.Tensor, size: int) -> tf.Tensor:
    """[batch, size] booleans: which positions lie in a window of size // 2 around each centre."""
    start = centres - size // 4
    positions = tf.range(size)[None, :]
    return (positions >= start) & (positions < start + size // 2)


def _crop_flip(image_shape: tuple[int, int, int], allow_hflip: bool) -> _Policy:
    padding = crop_padding(image_shape[0])

    def policy(images: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
        crop_seed, flip_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
        images = random_crop(images, crop_seed, padding)
        return random_hflip(images, flip_seed) if allow_hflip else images

    return policy


def _then(first: _Policy, second: _Policy) -> _Policy:
    def policy(images: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
        first_seed, second_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
        return second(first(images, first_seed), second_seed)

    return policy


def _randaugment() -> _Policy:
    """keras_cv RandAugment with its default strength; grayscale images go through as RGB.

    Its randomness comes from keras-cv's own generator, not the per-batch seed, so unlike the
    other policies it does not replay exactly when a run resumes.
    """
    layer = keras_cv.layers.RandAugment(value_range=(0, 1))

    def apply(images: tf.Tensor, _: tf.Tensor) -> tf.Tensor:
        grayscale = images.shape[-1] == 1
        rgb = tf.image.grayscale_to_rgb(images) if grayscale else images
        out = tf.cast(layer(rgb, training=True), tf.float32)
        out = tf.image.rgb_to_grayscale(out) if grayscale else out
        return tf.ensure_shape(tf.clip_by_value(out, 0.0, 1.0), images.shape)

    return apply


def _build(name: str, image_shape: tuple[int, int, int], allow_hflip: bool) -> _Policy:
    crop_flip = _crop_flip(image_shape, allow_hflip)
    if name == "default":
        return crop_flip
    if name == "cutout":
        return _then(crop_flip, random_cutout)
    return _then(crop_flip, _randaugment())


def augment_batches(
    batches: tf.data.Dataset,
    policy: str,
    *,
    image_shape: tuple[int, int, int],
    allow_hflip: bool,
    seed: int,
    first_batch: int = 0,
) -> tf.data.Dataset:
    """Applies `policy` to a dataset of (float images in [0, 1], labels) batches.

    Batch i of the stream draws from the stateless seed fold_in([seed, 0], first_batch + i):
    a stream resumed at batch k with `first_batch=k` replays the original exactly.
    """
    check_policy(policy)
    if policy == "none":
        return batches
    stream_seed = tf.constant([seed, 0], tf.int64)
    augment = _build(policy, image_shape, allow_hflip)
    return batches.enumerate(start=first_batch).map(
        lambda index, batch: (
            augment(batch[0], tf.random.experimental.stateless_fold_in(stream_seed, index)),
            batch[1],
        ),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
