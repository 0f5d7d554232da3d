"""Square Attack (Andriushchenko et al. 2020), the score-based black-box attack of AutoAttack.

It never looks at a gradient, only at the logits, so gradient masking cannot hide a model's
weakness from it: a model that resists the white-box attacks but falls to Square is masking
its gradients. Each query changes one random square window of the current best image and keeps
the change if the margin z_y - max_{i!=y} z_i went down. The window shrinks on a fixed
schedule. The loop is one `tf.while_loop` that stops once every example is fooled.

Follows fra31/auto-attack's autoattack/square.py at commit a392200 ("square.py:N" below), as
AutoAttack runs it: margin loss, p_init 0.8, and the schedule not rescaled to the budget
(autoattack.py:42-43 passes resc_schedule=False). L-inf moves a window to the corners of the
eps-box; L2 writes a pseudo-Gaussian pattern into one window and erases another, keeping the
perturbation's norm at eps.
"""

import math

import keras
import numpy as np
import tensorflow as tf

from tf_advreg import losses

QUERIES = 5000  # AutoAttack's standard budget (autoattack.py:320)
P_INIT = 0.8  # initial fraction of the image a square covers (autoattack.py:42)
# p halves after these iterations (square.py:192-219; not rescaled, see above).
_P_HALVINGS = (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000)
NORMS = ("linf", "l2")


def window_sizes(queries: int, p_init: float, height: int, width: int, norm: str) -> list[int]:
    """Side of the square at each iteration, from p = p_init halved after 10, 50, 200, ...
    iterations: round(sqrt(p * pixels)), at least 1 (L-inf, square.py:254-256) or at least 3
    and odd (L2, square.py:340-344), at most the image side. Python's round as in the code."""
    sizes = []
    for i in range(queries):
        p = p_init / 2 ** sum(i > mark for mark in _P_HALVINGS)
        side = int(round(math.sqrt(p * height * width)))
        if norm == "l2":
            side = max(side, 3)
            side += 1 - side % 2
        sizes.append(min(max(side, 1), height, width))
    return sizes


def _rectangles(rows: int, cols: int) -> np.ndarray:
    """Concentric rectangles weighted 1/(k+1)^2 around the centre, unit L2 norm
    (square.py:143-157)."""
    delta = np.zeros([rows, cols])
    top, left = rows // 2, cols // 2
    for k in range(max(rows // 2 + 1, cols // 2 + 1)):
        delta[max(top, 0) : top + 2 * k + 1, max(left, 0) : left + 2 * k + 1] += 1.0 / (k + 1) ** 2
        top, left = top - 1, left - 1
    return delta / max(np.sqrt((delta**2).sum()), 1e-300)


def pseudo_gaussian(side: int) -> np.ndarray:
    """L2 Square's s x s pattern: rectangles above, negated rectangles below, unit norm
    (square.py:172-186; the code transposes it at random, which the callers do)."""
    delta = np.concatenate([_rectangles(side // 2, side), -_rectangles(side - side // 2, side)])
    return delta / np.sqrt((delta**2).sum())


def _placed(pattern: np.ndarray, top: int, left: int, height: int, width: int) -> np.ndarray:
    """`pattern` and its transpose written at (top, left) of an empty image, cut at the edges."""
    side = len(pattern)
    canvas = np.zeros([2, max(height, top + side), max(width, left + side)])
    canvas[0, top : top + side, left : left + side] = pattern
    canvas[1, top : top + side, left : left + side] = pattern.T
    return canvas[:, :height, :width]


def margin(logits: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
    """z_y - max_{i!=y} z_i per example: the loss Square minimises; <= 0 means fooled."""
    return -losses.margin(logits, y, reduction="none")


def _window(top, left, side, height: int, width: int) -> tf.Tensor:
    """Boolean [height, width, 1]: inside the side x side square at (top, left)."""
    rows = tf.range(height)[:, None, None]
    cols = tf.range(width)[None, :, None]
    return (rows >= top) & (rows < top + side) & (cols >= left) & (cols < left + side)


def _corner(draw, side, length: int):
    """random_int(0, length - side) of square.py:117-119."""
    return tf.cast(draw * tf.cast(length - side, tf.float32), tf.int32)


def _linf_start(x, eps, seed):
    """Vertical stripes of +-eps, one sign per example, column and channel (square.py:234)."""
    _, _, width, channels = x.shape
    shape = [tf.shape(x)[0], 1, width, channels]
    stripes = tf.sign(tf.random.stateless_uniform(shape, seed, -1.0, 1.0))
    return tf.clip_by_value(x + eps * stripes, 0.0, 1.0)


def _linf_proposal(x, x_best, eps, side, _, seed):
    """One window set to +-eps, the same window and per-channel signs for the whole batch, as
    in square.py:257-266."""
    _, height, width, channels = x.shape
    draws = tf.random.stateless_uniform([2 + channels], seed)
    inside = _window(
        _corner(draws[0], side, height), _corner(draws[1], side, width), side, height, width
    )
    change = tf.where(inside, 2.0 * eps * tf.sign(2.0 * draws[2:] - 1.0), 0.0)
    return tf.clip_by_value(tf.clip_by_value(x_best + change, x - eps, x + eps), 0.0, 1.0)


def _l2_norm(t, axis):
    return tf.sqrt(tf.reduce_sum(tf.square(t), axis=axis, keepdims=True))


def _to_l2_sphere(x, delta, eps):
    """x + delta rescaled to length eps, clipped to the box (square.py:319-320, 378-379)."""
    return tf.clip_by_value(x + eps * delta / (_l2_norm(delta, [1, 2, 3]) + 1e-12), 0.0, 1.0)


def _l2_start(x, eps, seed):
    """A grid of pseudo-Gaussian tiles of side h // 5, each with a random sign per example and
    channel and a random orientation, rescaled to length eps (square.py:306-320)."""
    _, height, width, channels = x.shape
    side = max(height // 5, 1)
    offset = (height - 5 * side) // 2
    tiles = np.stack(
        [
            _placed(pseudo_gaussian(side), offset + i * side, offset + j * side, height, width)
            for i in range(height // side)
            for j in range(width // side)
        ]
    )
    tiles = tf.constant(tiles, tf.float32)  # [tiles, orientation, height, width]
    count = tiles.shape[0]
    coin_seed, sign_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    transposed = tf.cast(tf.random.stateless_uniform([count], coin_seed) > 0.5, tf.int32)
    chosen = tf.gather(tiles, transposed, batch_dims=1)  # [tiles, height, width]
    signs = tf.sign(
        tf.random.stateless_uniform([tf.shape(x)[0], count, channels], sign_seed) * 2 - 1
    )
    return _to_l2_sphere(x, tf.einsum("thw,btc->bhwc", chosen, signs), eps)


def _l2_proposal(x, x_best, eps, side, patterns, seed):
    """square.py:339-379: a new pseudo-Gaussian pattern (random sign per example and channel)
    added to the normalized old content of window 1, window 2 erased, the freed norm budget
    given to window 1, and the whole perturbation rescaled to length eps."""
    _, height, width, channels = x.shape
    draw_seed, sign_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    draws = tf.random.stateless_uniform([5], draw_seed)
    window_1 = _window(
        _corner(draws[0], side, height), _corner(draws[1], side, width), side, height, width
    )
    window_2 = _window(
        _corner(draws[2], side, height), _corner(draws[3], side, width), side, height, width
    )
    delta = x_best - x
    inside_1 = tf.where(window_1, delta, 0.0)
    norm_image = _l2_norm(delta, [1, 2, 3])
    norm_windows = _l2_norm(tf.where(window_1 | window_2, delta, 0.0), [1, 2])
    pattern = patterns[tf.cast(draws[4] > 0.5, tf.int32)]
    shift = [_corner(draws[0], side, height), _corner(draws[1], side, width)]
    pattern = tf.roll(pattern, shift, axis=[0, 1])[None, :, :, None]
    signs = tf.sign(
        tf.random.stateless_uniform([tf.shape(x)[0], 1, 1, channels], sign_seed) * 2 - 1
    )
    new = pattern * signs + inside_1 / (1e-12 + _l2_norm(inside_1, [1, 2]))
    budget = tf.maximum(eps**2 - norm_image**2, 0.0) / channels + norm_windows**2
    new = new / (1e-12 + _l2_norm(new, [1, 2])) * tf.sqrt(budget)
    delta = tf.where(window_1, new, tf.where(window_2, 0.0, delta))
    return _to_l2_sphere(x, delta, eps)


def square(
    model: keras.Model,
    x: tf.Tensor,
    y: tf.Tensor,
    *,
    eps,
    queries: int = QUERIES,
    p_init: float = P_INIT,
    seed=(0, 0),
    norm: str = "linf",
) -> tuple[tf.Tensor, tf.Tensor]:
    """Returns (adversarial images within `eps` of x in `norm` and in [0, 1], queries used per
    example).

    x is NHWC in [0, 1]. Costs at most queries + 1 forward passes, no gradients.
    """
    if not isinstance(queries, int) or queries < 0:
        raise ValueError(f"queries must be an integer >= 0, got {queries!r}.")
    if not 0 < p_init <= 1:
        raise ValueError(f"p_init must be in (0, 1], got {p_init}.")
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {NORMS}, got {norm!r}.")
    x = tf.convert_to_tensor(x, tf.float32)
    y = tf.cast(y, tf.int32)
    eps = tf.cast(eps, tf.float32)
    seed = tf.cast(seed, tf.int32)
    _, height, width, _ = x.shape
    sides = window_sizes(queries, p_init, height, width, norm) or [1]
    distinct = sorted(set(sides))
    # Per iteration: the side, and (L2) the pattern of that side at the top-left corner.
    sizes = tf.constant(sides, tf.int32)
    pattern_index = tf.constant([distinct.index(s) for s in sides], tf.int32)
    patterns = tf.constant(
        np.stack([_placed(pseudo_gaussian(s), 0, 0, height, width) for s in distinct]),
        tf.float32,
    )
    start, proposal = (_linf_start, _linf_proposal) if norm == "linf" else (_l2_start, _l2_proposal)

    def query(x_adv):
        return margin(model(x_adv, training=False), y)

    x_best = start(x, eps, seed)
    margin_min = query(x_best)
    used = tf.ones_like(margin_min)

    def body(i, x_best, margin_min, used):
        step_seed = tf.random.experimental.stateless_fold_in(seed, i + 1)
        x_new = proposal(x, x_best, eps, sizes[i], patterns[pattern_index[i]], step_seed)
        margin_new = query(x_new)
        # Only examples not yet fooled move (square.py:244, 272-289, 386-402); with the margin
        # loss "lower loss" and "misclassified" both mean a lower margin.
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
