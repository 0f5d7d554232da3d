"""Threat-model geometry, apart from the attack loop and the loss (as MadryLab/robustness does).

A geometry knows three things about its norm ball around x: how to draw a random start, how to
take a steepest-ascent step of a given size, and how to project back onto the ball intersected
with the image box [0, 1].
"""

import tensorflow as tf


def _per_example_norm(t: tf.Tensor) -> tf.Tensor:
    """L2 norm of each example, shaped to broadcast against the batch."""
    flat = tf.reshape(t, [tf.shape(t)[0], -1])
    norm = tf.norm(flat, axis=-1)
    return tf.reshape(norm, tf.concat([[-1], tf.ones([tf.rank(t) - 1], tf.int32)], axis=0))


class LinfBall:
    """{x' : ||x' - x||_inf <= eps}: sign-gradient steps, elementwise clipping."""

    @staticmethod
    def random_start(x: tf.Tensor, eps: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
        noise = tf.random.stateless_uniform(tf.shape(x), seed, minval=-1.0, maxval=1.0)
        return x + eps * noise

    @staticmethod
    def step(x_adv: tf.Tensor, grad: tf.Tensor, step_size: tf.Tensor) -> tf.Tensor:
        return x_adv + step_size * tf.sign(grad)

    @staticmethod
    def project(x_adv: tf.Tensor, x: tf.Tensor, eps: tf.Tensor) -> tf.Tensor:
        return tf.clip_by_value(tf.clip_by_value(x_adv, x - eps, x + eps), 0.0, 1.0)


class L2Ball:
    """{x' : ||x' - x||_2 <= eps}: normalised-gradient steps, radial rescaling."""

    @staticmethod
    def random_start(x: tf.Tensor, eps: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
        # Uniform in the ball: a uniform direction times a radius with density ~ r^(d-1).
        direction = tf.random.stateless_normal(tf.shape(x), seed)
        direction /= _per_example_norm(direction) + 1e-12
        dims = tf.cast(tf.reduce_prod(tf.shape(x)[1:]), tf.float32)
        radius_seed = tf.random.experimental.stateless_fold_in(seed, 1)
        radius = tf.random.stateless_uniform(tf.shape(_per_example_norm(x)), radius_seed)
        return x + eps * radius ** (1.0 / dims) * direction

    @staticmethod
    def step(x_adv: tf.Tensor, grad: tf.Tensor, step_size: tf.Tensor) -> tf.Tensor:
        return x_adv + step_size * grad / (_per_example_norm(grad) + 1e-12)

    @staticmethod
    def project(x_adv: tf.Tensor, x: tf.Tensor, eps: tf.Tensor) -> tf.Tensor:
        delta = x_adv - x
        scale = tf.minimum(1.0, eps / (_per_example_norm(delta) + 1e-12))
        return tf.clip_by_value(x + delta * scale, 0.0, 1.0)


GEOMETRIES = {"linf": LinfBall, "l2": L2Ball}
