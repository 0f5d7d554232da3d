"""Square Attack (Andriushchenko et al. 2020), the score-based black-box attack of AutoAttack.

It never looks at a gradient, only at the logits, so gradient masking cannot hide a model's
weakness from it: a model that resists the white-box attacks but falls to Square is masking
its gradients. Each query changes one random square window of the current best image and keeps
the change if the margin z_y - max_{i!=y} z_i went down. The window shrinks on a fixed
schedule. The loop is one `tf.while_loop` that stops once every example is fooled.

Follows fra31/auto-attack's autoattack/square.py at commit a392200 ("square.py:N" below),
L-inf threat model.
"""

import math

import keras
import tensorflow as tf

from tf_advreg import losses

QUERIES = 5000  # AutoAttack's standard budget (autoattack.py:320)
P_INIT = 0.8  # initial fraction of the image a square covers (square.py:38)
# The schedule halves p after these iterations, counted as if the budget were 10,000.
_P_HALVINGS = (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000)  # square.py:192-219


def window_sizes(queries: int, p_init: float, height: int, width: int) -> list[int]:
    """Side of the square at each iteration: round(sqrt(p * pixels)), at least 1.

    square.py:192-219 and 255: p starts at p_init and halves at fixed fractions of the budget.
    Python's round (half to even) as in the code.
    """
    sizes = []
    for i in range(queries):
        rescaled = int(i / queries * 10000)
        p = p_init / 2 ** sum(rescaled > mark for mark in _P_HALVINGS)
        sizes.append(max(int(round(math.sqrt(p * height * width))), 1))
    return sizes


def margin(logits: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
    """z_y - max_{i!=y} z_i per example: the loss Square minimises; <= 0 means fooled."""
    return -losses.margin(logits, y, reduction="none")


def square(
    model: keras.Model,
    x: tf.Tensor,
    y: tf.Tensor,
    *,
    eps,
    queries: int = QUERIES,
    p_init: float = P_INIT,
    seed=(0, 0),
) -> tuple[tf.Tensor, tf.Tensor]:
    """Returns (adversarial images within L-inf `eps` of x and in [0, 1], queries used per example).

    x is NHWC in [0, 1]. Costs at most queries + 1 forward passes, no gradients.
    """
    if not isinstance(queries, int) or queries < 0:
        raise ValueError(f"queries must be an integer >= 0, got {queries!r}.")
    if not 0 < p_init <= 1:
        raise ValueError(f"p_init must be in (0, 1], got {p_init}.")
    x = tf.convert_to_tensor(x, tf.float32)
    y = tf.cast(y, tf.int32)
    eps = tf.cast(eps, tf.float32)
    seed = tf.cast(seed, tf.int32)
    _, height, width, channels = x.shape
    sizes = tf.constant(window_sizes(queries, p_init, height, width) or [1], dtype=tf.int32)

    def query(x_adv):
        return margin(model(x_adv, training=False), y)

    # Start: vertical stripes of +-eps, one sign per example, column and channel (square.py:234).
    stripes = tf.sign(
        tf.random.stateless_uniform([tf.shape(x)[0], 1, width, channels], seed, -1.0, 1.0)
    )
    x_best = tf.clip_by_value(x + eps * stripes, 0.0, 1.0)
    margin_min = query(x_best)
    used = tf.ones_like(margin_min)
    rows = tf.range(height)[:, None, None]
    cols = tf.range(width)[None, :, None]

    def body(i, x_best, margin_min, used):
        # One window and one sign per channel for the whole batch, as in square.py:255-261.
        step_seed = tf.random.experimental.stateless_fold_in(seed, i + 1)
        draws = tf.random.stateless_uniform([2 + channels], step_seed)
        s = sizes[i]
        top = tf.cast(draws[0] * tf.cast(height - s, tf.float32), tf.int32)
        left = tf.cast(draws[1] * tf.cast(width - s, tf.float32), tf.int32)
        inside = (rows >= top) & (rows < top + s) & (cols >= left) & (cols < left + s)
        signs = tf.sign(2.0 * draws[2:] - 1.0)
        change = tf.where(inside, 2.0 * eps * signs, 0.0)
        x_new = tf.clip_by_value(tf.clip_by_value(x_best + change, x - eps, x + eps), 0.0, 1.0)
        margin_new = query(x_new)
        # Only examples not yet fooled move (square.py:244, 272-289); with the margin loss
        # "lower loss" and "misclassified" both mean a lower margin.
        active = margin_min > 0.0
        keep = active & ((margin_new < margin_min) | (margin_new <= 0.0))
        x_best = tf.where(keep[:, None, None, None], x_new, x_best)
        margin_min = tf.where(keep, margin_new, margin_min)
        return i + 1, x_best, margin_min, used + tf.cast(active, tf.float32)

    _, x_best, _, used = tf.while_loop(
        lambda i, _, margin_min, __: (i < queries) & tf.reduce_any(margin_min > 0.0),
        body,
        (tf.constant(0), x_best, margin_min, used),
        maximum_iterations=max(queries, 1),
    )
    return tf.stop_gradient(x_best), used
