"""The loss landscape around test images, in the plane of Engstrom et al. (2018).

For an image x with label y the slice is x + eps * (a * g + b * r): g = sign(grad_x CE(z(x), y))
is the adversarial (FGSM) direction, r a seeded Rademacher (+-1) direction, and a, b run over
[-span, span] (units of eps). Both directions have L-inf norm 1, so the points with
|a| + |b| <= 1 lie inside the L-inf eps-ball: the diamond on the pictures. The slice is not
clipped to [0, 1], so it stays a plane and the first-order prediction below stays exact.

Per model, the means over images of three numbers read inside that diamond:
  loss_increase    max CE(x + d) - CE(x): how far the loss climbs within the threat model;
  linearity_error  max |CE(x + d) - CE(x) - d . grad CE(x)|: how far the loss departs from its
                   tangent plane (Qin et al. 2019's local linearity, restricted to the slice);
  flipped_fraction the share of points predicted as another class than y.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

import numpy as np
import tensorflow as tf

from tf_advreg import losses


@dataclasses.dataclass(frozen=True)
class Settings:
    """The slice's geometry and how it is evaluated. See tools/landscape.py's flags."""

    eps: float = 0.03
    span: float = 2.0
    resolution: int = 21
    seed: int = 0
    batch_size: int = 256
    jit_compile: bool = False  # the tool resolves "auto" (XLA on GPUs and TPUs only)

    def check(self) -> None:
        """Raises ValueError naming the first bad setting and what is allowed."""
        if not self.eps > 0:
            raise ValueError(f"--eps must be > 0, got {self.eps}.")
        if not self.span >= 1:
            raise ValueError(
                f"--span must be >= 1 (the plane must hold the eps-ball), got {self.span}."
            )
        if self.resolution < 3 or self.resolution % 2 == 0:
            raise ValueError(
                f"--resolution must be odd and >= 3 (the image itself is the centre point), "
                f"got {self.resolution}."
            )
        if self.batch_size < 1:
            raise ValueError(f"--batch_size must be positive, got {self.batch_size}.")

    def coordinates(self) -> np.ndarray:
        """Grid coordinates along each axis, in units of eps; the middle one is 0."""
        return np.linspace(-self.span, self.span, self.resolution)


@dataclasses.dataclass(frozen=True)
class Slice:
    """One image's slice: loss[i, j] and prediction[i, j] at a = coordinates[i] (adversarial
    axis), b = coordinates[j] (random axis)."""

    label: int
    coordinates: np.ndarray
    loss: np.ndarray
    prediction: np.ndarray
    # d(loss)/da and d(loss)/db at the image: eps * grad . g and eps * grad . r.
    slopes: tuple[float, float]

    def in_ball(self) -> np.ndarray:
        """Mask of the grid points inside the L-inf eps-ball (|a| + |b| <= 1)."""
        a, b = np.meshgrid(self.coordinates, self.coordinates, indexing="ij")
        return np.abs(a) + np.abs(b) <= 1 + 1e-9

    def summary(self) -> dict:
        centre = self.resolution // 2
        natural = float(self.loss[centre, centre])
        a, b = np.meshgrid(self.coordinates, self.coordinates, indexing="ij")
        tangent = natural + self.slopes[0] * a + self.slopes[1] * b
        ball = self.in_ball()
        return {
            "label": self.label,
            "natural_loss": natural,
            "correct": bool(self.prediction[centre, centre] == self.label),
            "loss_increase": float(np.max(self.loss[ball] - natural)),
            "linearity_error": float(np.max(np.abs(self.loss - tangent)[ball])),
            "flipped_fraction": float(np.mean(self.prediction[ball] != self.label)),
        }

    @property
    def resolution(self) -> int:
        return len(self.coordinates)


SUMMARY_KEYS = ("natural_loss", "loss_increase", "linearity_error", "flipped_fraction")


def mean_summary(slices: list[Slice]) -> dict:
    """The per-model numbers: each summary key averaged over the images."""
    summaries = [s.summary() for s in slices]
    means = {key: float(np.mean([s[key] for s in summaries])) for key in SUMMARY_KEYS}
    return {"num_images": len(slices), **means}


def directions(
    classifier: Callable, images: np.ndarray, labels: np.ndarray, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per image: the CE gradient, its sign (the adversarial direction) and a Rademacher one."""
    x = tf.convert_to_tensor(images, tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(x)
        total = tf.reduce_sum(
            losses.cross_entropy(classifier(x, training=False), labels, reduction="none")
        )
    gradient = tape.gradient(total, x).numpy()
    random = np.random.default_rng(seed).choice([-1.0, 1.0], size=images.shape)
    return gradient, np.sign(gradient), random.astype(np.float32)


def _grid_function(classifier: Callable, jit_compile: bool) -> Callable:
    """A compiled (x, y, g, r, ab [k, 2]) -> (loss [k], prediction [k]) over k plane points."""

    def evaluate(x, y, g, r, ab):
        shape = [-1] + [1] * len(x.shape)
        points = x[None] + tf.reshape(ab[:, 0], shape) * g + tf.reshape(ab[:, 1], shape) * r
        logits = classifier(points, training=False)
        labels = tf.fill(tf.shape(ab)[:1], y)
        return (
            losses.cross_entropy(logits, labels, reduction="none"),
            tf.argmax(logits, axis=-1, output_type=tf.int32),
        )

    return tf.function(evaluate, jit_compile=jit_compile)


def image_slice(
    grid_function: Callable,
    image: np.ndarray,
    label: int,
    gradient: np.ndarray,
    adversarial: np.ndarray,
    random: np.ndarray,
    settings: Settings,
) -> Slice:
    """Evaluates the slice through one image, `settings.batch_size` plane points per call."""
    coordinates = settings.coordinates()
    a, b = np.meshgrid(coordinates, coordinates, indexing="ij")
    ab = settings.eps * np.stack([a.ravel(), b.ravel()], axis=1).astype(np.float32)
    count = len(ab)
    # Pad to whole batches, so every call has the same shape and the function traces once.
    padded = np.concatenate([ab, np.zeros((-count % settings.batch_size, 2), np.float32)])
    loss, prediction = [], []
    for start in range(0, len(padded), settings.batch_size):
        chunk = padded[start : start + settings.batch_size]
        chunk_loss, chunk_prediction = grid_function(
            image, tf.constant(label, tf.int32), adversarial, random, chunk
        )
        loss.append(chunk_loss.numpy())
        prediction.append(chunk_prediction.numpy())
    shape = (len(coordinates), len(coordinates))
    return Slice(
        label=int(label),
        coordinates=coordinates,
        loss=np.concatenate(loss)[:count].reshape(shape).astype(np.float64),
        prediction=np.concatenate(prediction)[:count].reshape(shape),
        slopes=(
            settings.eps * float(np.sum(gradient * adversarial)),
            settings.eps * float(np.sum(gradient * random)),
        ),
    )


def slices(
    classifier: Callable,
    images: np.ndarray,
    labels: np.ndarray,
    settings: Settings,
    progress: Callable[[str], None] | None = None,
) -> list[Slice]:
    """The slice through each image; `progress` hears one line per finished image."""
    settings.check()
    gradients, adversarial, random = directions(classifier, images, labels, settings.seed)
    grid_function = _grid_function(classifier, settings.jit_compile)
    result = []
    for i, label in enumerate(labels):
        began = time.perf_counter()
        result.append(
            image_slice(
                grid_function, images[i], label, gradients[i], adversarial[i], random[i], settings
            )
        )
        if progress:
            numbers = result[-1].summary()
            progress(
                f"image {i + 1}/{len(labels)} (label {int(label)}): loss +"
                f"{numbers['loss_increase']:.3f} within eps, "
                f"{time.perf_counter() - began:.1f} s"
            )
    return result
