"""Projected gradient descent (Madry et al. 2018) and FGSM, graph- and XLA-friendly.

The loop is a `tf.while_loop` over a fixed number of steps, so a `tf.function` traces it once
whatever the step count, and `jit_compile=True` compiles the whole attack. Gradients are taken
with respect to the input only: the tape watches x' and nothing else.
"""

from numbers import Real

import keras
import tensorflow as tf

from tf_advreg import losses
from tf_advreg.attacks import settings
from tf_advreg.attacks.geometry import GEOMETRIES

# The official TRADES code starts its KL attack at x + 0.001 * N(0, I): at x' = x the KL
# gradient is exactly zero and sign(0) would never move.
KL_START_STDDEV = 0.001


def validate_attack_args(
    *, eps, step_size, steps, loss: str = "ce", beta=0.0, norm: str = "linf", regularizer="kl"
) -> None:
    """Raises ValueError naming the first bad argument, its value and what is allowed (by the
    rules of attacks.settings; tensors and variables are the caller's to check)."""
    settings.check_norm(norm)
    settings.check_eps(eps, norm)
    settings.check_step_size(step_size)
    settings.check_count(steps, 0, "steps")
    if isinstance(beta, Real) and beta < 0:
        raise ValueError(f"beta must be >= 0, got {beta}.")
    settings.check_loss(loss)
    losses.check_regularizer(regularizer)


def attack_loss(
    loss: str,
    logits_adv: tf.Tensor,
    labels: tf.Tensor,
    logits_nat: tf.Tensor | None,
    beta,
    regularizer: str = "kl",
) -> tf.Tensor:
    """The per-example quantity an attack maximises; "kl" and "ce+kl" use the distance
    `regularizer` (losses.REGULARIZERS) in place of KL."""
    if loss == "ce":
        return losses.cross_entropy(logits_adv, labels, reduction="none")
    if loss == "kl":
        return losses.regularizer(regularizer, logits_nat, logits_adv, reduction="none")
    if loss == "ce+kl":
        return losses.ar_loss(
            logits_nat, logits_adv, labels, beta, distance=regularizer, reduction="none"
        )
    return losses.margin(logits_adv, labels, reduction="none")


def _as_seed(seed) -> tf.Tensor:
    """A stateless-RNG seed of shape [2]; None draws one, so every call differs."""
    if seed is None:
        return tf.random.uniform([2], maxval=2**31 - 1, dtype=tf.int32)
    if isinstance(seed, int):
        return tf.constant([seed, 0], tf.int32)
    return tf.cast(seed, tf.int32)


def pgd(
    model: keras.Model,
    x: tf.Tensor,
    y: tf.Tensor,
    *,
    eps,
    step_size,
    steps: int,
    loss: str = "ce",
    beta=0.0,
    regularizer: str = "kl",
    random_start: bool = True,
    norm: str = "linf",
    training: bool = False,
    track_best: bool = False,
    seed=None,
) -> tf.Tensor:
    """Returns adversarial images x' with ||x' - x|| <= eps (in `norm`) and x' in [0, 1].

    Args:
      model: maps images in [0, 1] to logits.
      x, y: a batch of images in [0, 1] and their integer labels.
      eps, step_size: radius of the threat model and size of each step (floats or scalar
        tensors/variables, so changing them does not retrace a compiled caller).
      steps: number of gradient steps; 0 returns x unchanged.
      loss: what the attack maximises: "ce" (robust optimization), "kl" (TRADES:
        KL(p(x) || p(x')), p(x) fixed), "ce+kl" (AR: CE(z(x'), y) + beta * KL), or "cw" (margin).
      beta: weight of the KL term for "ce+kl".
      regularizer: the distance "kl" and "ce+kl" use in place of KL: kl, symmetric_kl,
        total_variation or jensen_shannon (losses.REGULARIZERS).
      random_start: start uniformly in the ball ("kl": at x + 0.001 N(0, I), as TRADES does).
        Every regularizer is minimal at x' = x. Without a random start, "kl" under linf
        follows the sign of rounding noise for the smooth distances (their gradient there is 0
        up to rounding) and never leaves x for total variation (|p - q| takes TensorFlow's
        subgradient 0 at p = q, and sign(0) = 0).
      norm: "linf" or "l2".
      training: run BatchNorm in training mode during the attack (default: inference mode).
      track_best: return, per example, the iterate with the highest attack loss seen rather
        than the last one (costs one extra forward pass).
      seed: int or shape-[2] tensor for the random start; None draws a fresh one.
    """
    validate_attack_args(
        eps=eps,
        step_size=step_size,
        steps=steps,
        loss=loss,
        beta=beta,
        norm=norm,
        regularizer=regularizer,
    )
    x = tf.convert_to_tensor(x, tf.float32)
    if isinstance(steps, Real) and steps == 0:
        return x
    geometry = GEOMETRIES[norm]
    eps = tf.cast(eps, tf.float32)
    step_size = tf.cast(step_size, tf.float32)
    beta = tf.cast(beta, tf.float32)

    logits_nat = None
    if loss in ("kl", "ce+kl"):
        logits_nat = tf.stop_gradient(model(x, training=training))

    def loss_and_grad(x_adv):
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(x_adv)
            per_example = attack_loss(
                loss, model(x_adv, training=training), y, logits_nat, beta, regularizer
            )
            # Summing keeps each example's gradient its own (examples do not interact).
            total = tf.reduce_sum(per_example)
        return per_example, tape.gradient(total, x_adv)

    x_adv = x
    if random_start:
        seed = _as_seed(seed)
        if loss == "kl":
            start = x + KL_START_STDDEV * tf.random.stateless_normal(tf.shape(x), seed)
        else:
            start = geometry.random_start(x, eps, seed)
        x_adv = geometry.project(start, x, eps)

    def keep_best(best_x, best_loss, candidate_x, candidate_loss):
        improved = candidate_loss > best_loss
        mask = tf.reshape(improved, [-1] + [1] * (len(x.shape) - 1))
        return tf.where(mask, candidate_x, best_x), tf.where(improved, candidate_loss, best_loss)

    def body(i, x_adv, best_x, best_loss):
        per_example, grad = loss_and_grad(x_adv)
        if track_best:
            best_x, best_loss = keep_best(best_x, best_loss, x_adv, per_example)
        x_adv = geometry.project(geometry.step(x_adv, grad, step_size), x, eps)
        return i + 1, x_adv, best_x, best_loss

    best_loss = tf.fill(tf.shape(x)[:1], -float("inf"))
    _, x_adv, best_x, best_loss = tf.while_loop(
        lambda i, *_: i < steps,
        body,
        (tf.constant(0), x_adv, x_adv, best_loss),
        maximum_iterations=steps,
    )
    if track_best:
        final_loss = attack_loss(
            loss, model(x_adv, training=training), y, logits_nat, beta, regularizer
        )
        x_adv, _ = keep_best(best_x, best_loss, x_adv, final_loss)
    return tf.stop_gradient(x_adv)


def fgsm(
    model: keras.Model,
    x: tf.Tensor,
    y: tf.Tensor,
    *,
    eps,
    loss: str = "ce",
    norm: str = "linf",
    training: bool = False,
) -> tf.Tensor:
    """Fast gradient sign method (Goodfellow et al. 2015): one step of size eps from x."""
    settings.check_eps(eps, norm)
    if isinstance(eps, Real) and eps == 0:
        return tf.convert_to_tensor(x, tf.float32)
    return pgd(
        model,
        x,
        y,
        eps=eps,
        step_size=eps,
        steps=1,
        loss=loss,
        norm=norm,
        random_start=False,
        training=training,
    )
