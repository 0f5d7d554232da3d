"""Auto-PGD (Croce & Hein 2020, "Reliable evaluation of adversarial robustness with an ensemble
of diverse parameter-free attacks"), the step-size-free attack behind AutoAttack.

PGD with a fixed step size under-reports robustness when the step is badly chosen; APGD starts
at 2 eps, halves the step at checkpoints where progress stalls and then restarts from the best
point found, and adds momentum. Each example keeps its own step size. The loop is one
`tf.while_loop`, so a `tf.function(jit_compile=True)` caller compiles the whole attack.
"""

import math
from numbers import Real

import keras
import tensorflow as tf

from tf_advreg import losses
from tf_advreg.attacks import GEOMETRIES

MOMENTUM = 0.75  # alpha in the paper: weight of the new gradient step against the last move
RHO = 0.75  # a step size is kept while at least this fraction of steps raised the loss


def dlr_loss(logits: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
    """Difference of logits ratio, per example: -(z_y - max_{i!=y} z_i) / (z_pi1 - z_pi3 + 1e-12).

    Unlike cross-entropy it is invariant to shifting and rescaling the logits, so saturated
    softmax outputs (a common form of gradient masking) do not hide its gradient.
    """
    logits = tf.cast(logits, tf.float32)
    if logits.shape[-1] is not None and logits.shape[-1] < 3:
        raise ValueError(f"The DLR loss needs at least 3 classes, got {logits.shape[-1]}.")
    top3 = tf.math.top_k(logits, k=3).values
    # margin() is max_{i!=y} z_i - z_y, the negated numerator.
    return losses.margin(logits, labels, reduction="none") / (top3[:, 0] - top3[:, 2] + 1e-12)


_LOSSES = {
    "ce": lambda logits, labels: losses.cross_entropy(logits, labels, reduction="none"),
    "dlr": dlr_loss,
}


def checkpoints(steps: int) -> list[int]:
    """Iterations w_j = ceil(p_j * steps) at which APGD checks its progress.

    p_0 = 0, p_1 = 0.22, p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06): checks are far apart
    at first, when the loss still rises quickly, and every 6 % of the budget at the end.
    """
    fractions = [0.0, 0.22]
    while fractions[-1] + max(fractions[-1] - fractions[-2] - 0.03, 0.06) <= 1.0:
        fractions.append(fractions[-1] + max(fractions[-1] - fractions[-2] - 0.03, 0.06))
    # Rounding first keeps float error from moving a checkpoint: 0.57 * 100 is 57.000000000000007.
    return sorted({math.ceil(round(p * steps, 9)) for p in fractions})


def _per_example(values: tf.Tensor, x: tf.Tensor) -> tf.Tensor:
    """Reshapes [batch] values to broadcast against images [batch, ...]."""
    return tf.reshape(values, [-1] + [1] * (len(x.shape) - 1))


def apgd(
    model: keras.Model,
    x: tf.Tensor,
    y: tf.Tensor,
    *,
    eps,
    steps: int,
    loss: str = "ce",
    norm: str = "linf",
    seed=(0, 0),
) -> tf.Tensor:
    """Returns adversarial images within `eps` of x (in `norm`) and in [0, 1].

    For each example: the last iterate that was misclassified, or if none was, the iterate
    with the highest loss. Costs steps + 1 forward and backward passes.

    Args:
      model: maps images in [0, 1] to logits.
      x, y: images in [0, 1] and integer labels.
      eps: radius of the threat model (float or scalar tensor).
      steps: iterations (N_iter in the paper; AutoAttack uses 100); 0 returns x.
      loss: "ce" (APGD-CE) or "dlr" (APGD-DLR).
      norm: "linf" or "l2".
      seed: shape-[2] stateless-RNG seed of the random start.
    """
    if loss not in _LOSSES:
        raise ValueError(f"APGD loss must be one of {tuple(_LOSSES)}, got {loss!r}.")
    if norm not in GEOMETRIES:
        raise ValueError(f"norm must be one of {tuple(GEOMETRIES)}, got {norm!r}.")
    if not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps must be an integer >= 0, got {steps!r}.")
    if isinstance(eps, Real) and eps < 0:
        raise ValueError(f"eps must be >= 0, got {eps}.")
    x = tf.convert_to_tensor(x, tf.float32)
    if steps == 0:
        return x
    geometry = GEOMETRIES[norm]
    eps = tf.cast(eps, tf.float32)
    y = tf.cast(y, tf.int32)
    objective = _LOSSES[loss]

    def evaluate(x_adv):
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(x_adv)
            logits = model(x_adv, training=False)
            per_example = objective(logits, y)
            total = tf.reduce_sum(per_example)  # examples do not interact: per-example grads
        fooled = tf.not_equal(tf.argmax(logits, axis=-1, output_type=tf.int32), y)
        return per_example, tape.gradient(total, x_adv), fooled

    # Check iterations, and the length of the window each check looks back over.
    marks = checkpoints(steps)
    is_check = [False] * (steps + 1)
    window = [1] * (steps + 1)
    for previous, mark in zip(marks, marks[1:]):
        is_check[mark] = True
        window[mark] = mark - previous
    is_check = tf.constant(is_check)
    window = tf.constant(window, tf.float32)

    def where(condition, a, b):
        return tf.where(_per_example(condition, a), a, b)

    x_start = geometry.project(geometry.random_start(x, eps, tf.cast(seed, tf.int32)), x, eps)
    loss_start, grad_start, fooled_start = evaluate(x_start)
    state = dict(
        x_adv=x_start,
        x_prev=x_start,
        grad=grad_start,
        loss=loss_start,
        step_size=tf.fill(tf.shape(loss_start), 2.0) * eps,
        x_best=x_start,
        loss_best=loss_start,
        grad_best=grad_start,
        x_fooled=x_start,
        fooled=fooled_start,
        increases=tf.zeros_like(loss_start),
        loss_best_at_check=loss_start,
        reduced_at_check=tf.zeros_like(fooled_start),
    )

    def body(k, s):
        # Gradient step, then momentum towards it (no momentum on the first step).
        alpha = tf.where(k == 0, 1.0, MOMENTUM)
        z = geometry.project(
            geometry.step(s["x_adv"], s["grad"], _per_example(s["step_size"], x)), x, eps
        )
        x_new = geometry.project(
            s["x_adv"] + alpha * (z - s["x_adv"]) + (1.0 - alpha) * (s["x_adv"] - s["x_prev"]),
            x,
            eps,
        )
        loss_new, grad_new, fooled_new = evaluate(x_new)
        n = dict(s, x_prev=s["x_adv"], x_adv=x_new, grad=grad_new, loss=loss_new)
        n["increases"] = s["increases"] + tf.cast(loss_new > s["loss"], tf.float32)
        improved = loss_new > s["loss_best"]
        n["x_best"] = where(improved, x_new, s["x_best"])
        n["grad_best"] = where(improved, grad_new, s["grad_best"])
        n["loss_best"] = tf.where(improved, loss_new, s["loss_best"])
        n["x_fooled"] = where(fooled_new, x_new, s["x_fooled"])
        n["fooled"] = s["fooled"] | fooled_new

        # At a checkpoint, halve the step and restart from the best point where progress
        # stalled: too few steps raised the loss (condition 1), or neither the step size nor
        # the best loss changed since the previous checkpoint (condition 2).
        at_check = is_check[k + 1]
        too_few_increases = n["increases"] < RHO * window[k + 1]
        no_progress = ~s["reduced_at_check"] & (n["loss_best"] <= s["loss_best_at_check"])
        reduce = at_check & (too_few_increases | no_progress)
        n["step_size"] = tf.where(reduce, s["step_size"] / 2.0, s["step_size"])
        n["x_adv"] = where(reduce, n["x_best"], n["x_adv"])
        n["grad"] = where(reduce, n["grad_best"], n["grad"])
        n["loss"] = tf.where(reduce, n["loss_best"], n["loss"])
        n["increases"] = tf.where(at_check, 0.0, n["increases"])
        n["loss_best_at_check"] = tf.where(at_check, n["loss_best"], s["loss_best_at_check"])
        n["reduced_at_check"] = tf.where(at_check, reduce, s["reduced_at_check"])
        return k + 1, n

    _, state = tf.while_loop(
        lambda k, _: k < steps, body, (tf.constant(0), state), maximum_iterations=steps
    )
    return tf.stop_gradient(where(state["fooled"], state["x_fooled"], state["x_best"]))
