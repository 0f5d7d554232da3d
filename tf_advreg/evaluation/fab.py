"""FAB-T, the targeted Fast Adaptive Boundary attack (Croce & Hein 2020, "Minimally distorted
adversarial examples with a fast adaptive boundary attack"), the third attack of AutoAttack.

Unlike APGD, FAB does not climb a loss inside the eps-ball: it looks for the smallest
perturbation that crosses the decision boundary. Each iteration linearizes z_t - z_y around
the iterate, projects both the iterate and the clean image onto that hyperplane intersected
with the image box, and moves to a mix of the two projections (biased towards the clean image,
so the perturbation stays small), overshooting by eta. When the iterate is misclassified it is
kept if it is the closest found so far, and pulled back towards the clean image by beta. An
example counts as broken when the closest misclassified point lies within eps.

Follows fra31/auto-attack at commit a392200: the loop is fab_base.py:attack_single_run (lines
"fab_base.py:N" below), the targeted gradient fab_pt.py:100-114, the projections
fab_projections.py:7-114. AutoAttack's standard version runs it with 9 targets, 100
iterations and one restart, so no random start (autoattack.py:316-318, fab_base.py:310).
"""

import math
from collections.abc import Callable
from numbers import Real

import keras
import tensorflow as tf

from tf_advreg.evaluation.apgd import _per_example, over_targets

ITERATIONS = 100  # n_iter (autoattack.py:38, fab_base.py:41)
TARGET_CLASSES = 9  # n_target_classes of the standard version (autoattack.py:318)
ALPHA_MAX = 0.1  # largest weight of the clean image's projection in a step (fab_base.py:43)
ETA = 1.05  # overshoot past the linearized boundary (fab_base.py:44)
BETA = 0.9  # pull-back towards the clean image after a success (fab_base.py:45)
_UNSET = 1e10  # distance of an example with no adversarial point yet (fab_base.py:126)


def _gather(values: tf.Tensor, index: tf.Tensor) -> tf.Tensor:
    """values[i, index[i, ...]] per row."""
    return tf.gather(values, index, batch_dims=1)


def _at(values: tf.Tensor, column: tf.Tensor) -> tf.Tensor:
    """values[i, column[i]] per row."""
    return _gather(values, column[:, None])[:, 0]


def _bisect(rows: tf.Tensor, count: tf.Tensor, below: Callable) -> tf.Tensor:
    """The reference's binary search over a sorted index (fab_projections.py:39-50, 95-102):
    per row, the last position k in [0, count - 1] with below(k) true, given below(0);
    ceil(log2(count)) halvings, as in the code."""
    halvings = tf.cast(
        tf.math.ceil(tf.math.log(tf.cast(count, tf.float32)) / math.log(2.0)), tf.int32
    )

    def halve(i, lower, upper):
        middle = tf.floor((lower + upper) / 2.0)
        go_up = below(tf.cast(middle, tf.int32))
        return i + 1, tf.where(go_up, middle, lower), tf.where(go_up, upper, middle)

    lower = tf.zeros([rows], tf.float32)
    upper = tf.fill([rows], tf.cast(count - 1, tf.float32))
    _, lower, _ = tf.while_loop(lambda i, *_: i < halvings, halve, (0, lower, upper))
    return tf.cast(lower, tf.int32)


def project_linf(points: tf.Tensor, w: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
    """The smallest L-inf move d with <w, points + d> = b and points + d in [0, 1], per row.

    points, w: [n, d]; b: [n]. Where the hyperplane misses the box, d goes to the box corner
    closest to it. fab_projections.py:7-59: the moves saturate coordinate by coordinate in the
    order of their room to the box edge, found by binary search.
    """
    t = points
    side = tf.where(tf.reduce_sum(w * t, 1) - b >= 0, 1.0, -1.0)  # :11-13
    w = w * side[:, None]
    b = b * side
    a = tf.cast(w < 0, tf.float32)  # the box edge each coordinate moves towards
    nonzero = tf.cast(w != 0, tf.float32)
    d = (a - t) * nonzero  # the full move to that edge (:16)
    room = a - t * (2 * a - 1)  # :18
    order = tf.argsort(room, axis=1, stable=True)  # :19
    b = b - tf.reduce_sum(w * t, 1)  # :21
    b0 = tf.reduce_sum(w * d, 1)
    descending = tf.reverse(order, axis=[1])  # :24-29
    w_sorted = _gather(w, descending)
    s = tf.cumsum(tf.abs(w_sorted), axis=1)
    sb = tf.cumsum(-w_sorted * _gather(d, descending), axis=1) + b0[:, None]
    unsaturated = b - (sb[:, -1] - s[:, -1] * _at(room, order[:, 0])) > 0  # c_l, :31-32
    partial = (b - b0 > 0) & ~unsaturated  # c2, :33

    def below(k):
        room_k = _at(room, _at(descending, k))  # indp[n - 1 - k] (:43)
        return b - (_at(sb, k) - _at(s, k) * room_k) > 0  # :44-45

    k = _bisect(tf.shape(t)[0], tf.shape(t)[1], below)
    # :52-54: no coordinate saturates; all move by the same lambda.
    lambda_all = tf.maximum((b - sb[:, -1]) / -s[:, -1], 0.0)[:, None]
    d_all = (2 * a - 1) * lambda_all
    # :56-57: the coordinates with less room than lambda stop at the box edge.
    lambda_k = tf.maximum((b - _at(sb, k)) / -_at(s, k), 0.0)[:, None]
    d_partial = tf.minimum(lambda_k, d) * a + tf.maximum(-lambda_k, d) * (1 - a)
    d = tf.where(unsaturated[:, None], d_all, tf.where(partial[:, None], d_partial, d))
    return d * nonzero


def project_l2(points: tf.Tensor, w: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
    """The smallest L2 move d with <w, points + d> = b and points + d in [0, 1], per row.

    fab_projections.py:62-114: along -w until coordinates hit the box edge one by one (in the
    order of the step at which they do, found by binary search); where the hyperplane misses
    the box, d goes to the box point closest to it along that path.
    """
    t = points
    c = tf.reduce_sum(w * t, 1) - b
    side = tf.where(c >= 0, 1.0, -1.0)  # :67-69
    w = w * side[:, None]
    c = c * side
    tiny = tf.abs(w) < 1e-8
    safe_w = tf.where(tiny, 1.0, w)
    r = tf.clip_by_value(tf.maximum(t / safe_w, (t - 1) / safe_w), -1e12, 1e12)  # :71-73
    r = tf.where(tiny | (r == -1e12), 1e12, r)
    order = tf.argsort(r, axis=1, stable=True)  # :74-77
    rs = _gather(r, order)
    rs2 = tf.pad(rs[:, 1:], [[0, 0], [0, 1]])
    rs = tf.where(rs == 1e12, 0.0, rs)
    rs2 = tf.where(rs2 == 1e12, 0.0, rs2)
    w_squared = _gather(w**2, order)  # :79-84
    w_total = tf.reduce_sum(w_squared, 1, keepdims=True)
    w_left = w_total - tf.cumsum(w_squared, axis=1)
    d = -(r * w) * tf.cast(~tiny, tf.float32)
    s = tf.concat(
        [-w_total * rs[:, 0:1], tf.cumsum((rs - rs2) * w_left, axis=1) - w_total * rs[:, 0:1]], 1
    )
    free = s[:, 0] + c < 0  # c4: the plain projection stays in the box (:86)
    unreachable = tf.reduce_sum(d * w, 1) + c > 0  # c3 (:87)
    partial = ~(free | unreachable)  # c2 (:88)

    def below(k):
        return _at(s, k) + c > 0  # :98

    k = _bisect(tf.shape(t)[0], tf.shape(t)[1], below)
    d_free = -(c / w_total[:, 0])[:, None] * w  # :104-106
    w_left_k = _at(w_left, k)  # :108-112
    alpha = tf.where(
        w_left_k == 0, 0.0, (_at(s, k) + c) / tf.where(w_left_k == 0, 1.0, w_left_k) + _at(rs, k)
    )[:, None]
    d_partial = tf.where(alpha > r, d, -alpha * w)
    d = tf.where(free[:, None], d_free, tf.where(partial[:, None], d_partial, d))
    return d * tf.cast(~tiny, tf.float32)


PROJECTIONS = {"linf": project_linf, "l2": project_l2}


def _norms(flat: tf.Tensor, norm: str) -> tf.Tensor:
    return tf.reduce_max(tf.abs(flat), 1) if norm == "linf" else tf.norm(flat, axis=1)


def fab_run(
    model: keras.Model,
    x: tf.Tensor,
    y: tf.Tensor,
    targets: tf.Tensor,
    *,
    norm: str,
    steps: int,
    stop_below=None,
    settled: tf.Tensor | None = None,
) -> tuple[tf.Tensor, tf.Tensor]:
    """One FAB run towards `targets` from x itself (fab_base.py:attack_single_run without a
    random start): returns the closest misclassified images found and their distances to x
    (1e10 where none was found).

    Costs `steps` forward and backward passes plus `steps` forward passes. With `stop_below`,
    the loop stops once every example has a misclassified point within that distance or is
    `settled` (its result is not needed); the reference always runs `steps`, but later
    iterations can only shrink the distance.
    """
    x = tf.convert_to_tensor(x, tf.float32)
    y = tf.cast(y, tf.int32)
    project = PROJECTIONS[norm]
    batch = tf.shape(x)[0]
    x0 = tf.reshape(x, [batch, -1])

    def per_example(condition):
        return _per_example(condition, x)

    def predict(images):
        return tf.argmax(model(images, training=False), axis=-1, output_type=tf.int32)

    def linearize(x1):
        """The hyperplane where z_t - z_y is zero to first order (fab_pt.py:100-114)."""
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(x1)
            logits = model(x1, training=False)
            difference = _at(logits, targets) - _at(logits, y)  # -(z_y - z_t)
            total = tf.reduce_sum(difference)
        w = tf.reshape(tape.gradient(total, x1), [batch, -1])
        return w, -difference + tf.reduce_sum(w * tf.reshape(x1, [batch, -1]), 1)

    def body(i, x1, best, distance):
        w, b = linearize(x1)  # fab_base.py:164-188 (one hyperplane when targeted)
        flat = tf.reshape(x1, [batch, -1])
        moves = project(tf.concat([flat, x0], 0), tf.concat([w, w], 0), tf.concat([b, b], 0))
        d1, d2 = moves[:batch], moves[batch:]  # :190-206
        lengths = tf.maximum(_norms(moves, norm), 1e-8)  # :207-219
        a1, a2 = lengths[:batch], lengths[batch:]
        alpha = tf.clip_by_value(a1 / (a1 + a2), 0.0, ALPHA_MAX)[:, None]  # :220-224
        step = (flat + ETA * d1) * (1 - alpha) + (x0 + ETA * d2) * alpha  # :225-226
        x1 = tf.reshape(tf.clip_by_value(step, 0.0, 1.0), tf.shape(x))
        fooled = predict(x1) != y  # :228
        length = _norms(tf.reshape(x1, [batch, -1]) - x0, norm)  # :233-241
        closer = fooled & (length < distance)
        best = tf.where(per_example(closer), x1, best)  # :242-247
        distance = tf.where(closer, length, distance)
        x1 = tf.where(per_example(fooled), x + (x1 - x) * BETA, x1)  # :248-249
        return i + 1, x1, best, distance

    def going(i, x1, best, distance):
        if stop_below is None:
            return i < steps
        return (i < steps) & ~tf.reduce_all((distance <= stop_below) | settled)

    distance = tf.fill([batch], _UNSET)
    settled = tf.zeros([batch], tf.bool) if settled is None else settled
    _, _, best, distance = tf.while_loop(
        going, body, (tf.constant(0), x, x, distance), maximum_iterations=steps
    )
    return best, distance


def fab_targeted(
    model: keras.Model,
    x: tf.Tensor,
    y: tf.Tensor,
    *,
    eps,
    steps: int = ITERATIONS,
    norm: str = "linf",
    target_classes: int = TARGET_CLASSES,
) -> tf.Tensor:
    """FAB-T as AutoAttack runs it: returns, per example, a misclassified image within `eps`
    of x (in `norm`) and in [0, 1] where FAB found one, else x.

    One run per target, the classes ranked 2nd, 3rd, ... by the clean logits (fab_base.py:
    111-114, 303-323), each on the examples no earlier target broke; examples misclassified
    without attack are returned as they are (fab_base.py:104-108). Deterministic: the
    standard version has no random restarts.
    """
    if norm not in PROJECTIONS:
        raise ValueError(f"norm must be one of {tuple(PROJECTIONS)}, got {norm!r}.")
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be an integer >= 1, got {steps!r}.")
    if not isinstance(target_classes, int) or target_classes < 1:
        raise ValueError(f"target_classes must be an integer >= 1, got {target_classes!r}.")
    if isinstance(eps, Real) and eps < 0:
        raise ValueError(f"eps must be >= 0, got {eps}.")
    x = tf.convert_to_tensor(x, tf.float32)
    y = tf.cast(y, tf.int32)
    eps = tf.cast(eps, tf.float32)

    def attack(t, targets, settled):
        best, distance = fab_run(
            model, x, y, targets, norm=norm, steps=steps, stop_below=eps, settled=settled
        )
        return best, distance <= eps  # fab_base.py:312-323

    return over_targets(model, x, y, target_classes, attack)
