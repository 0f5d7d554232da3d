"""Auto-PGD (Croce & Hein 2020, "Reliable evaluation of adversarial robustness with an ensemble
of diverse parameter-free attacks"), the step-size-free attack behind AutoAttack, untargeted
(APGD-CE, APGD-DLR) and targeted (APGD-T).

PGD with a fixed step size under-reports robustness when the step is badly chosen; APGD starts
at 2 eps, halves the step at checkpoints where progress stalls and then restarts from the best
point found, and adds momentum. Each example keeps its own step size. The loop is one
`tf.while_loop`, so a `tf.function(jit_compile=True)` caller compiles the whole attack.

Where the paper and the authors' code differ, the code is followed, so that numbers are
comparable with RobustBench's. References "autopgd_base.py:N" are lines of
fra31/auto-attack's autoattack/autopgd_base.py at commit a392200.
"""

from collections.abc import Callable
from numbers import Real

import keras
import tensorflow as tf

from tf_advreg import losses
from tf_advreg.attacks import GEOMETRIES

MOMENTUM = 0.75  # alpha in the paper: weight of the new gradient step against the last move
RHO = 0.75  # a step size is kept while more than this fraction of steps raised the loss
# AutoAttack's APGD-T attacks the 9 classes with the highest logits after the predicted one.
TARGET_CLASSES = 9


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


def targeted_dlr_loss(logits: tf.Tensor, labels: tf.Tensor, targets: tf.Tensor) -> tf.Tensor:
    """Targeted DLR, per example: -(z_y - z_t) / (z_pi1 - (z_pi3 + z_pi4) / 2 + 1e-12).

    autopgd_base.py:595-600. Rises as the target logit z_t overtakes the true one; like the
    DLR loss it is invariant to shifting and rescaling the logits.
    """
    logits = tf.cast(logits, tf.float32)
    if logits.shape[-1] is not None and logits.shape[-1] < 4:
        raise ValueError(f"The targeted DLR loss needs at least 4 classes, got {logits.shape[-1]}.")
    top4 = tf.math.top_k(logits, k=4).values
    true_logit = tf.gather(logits, tf.cast(labels, tf.int32), batch_dims=1)
    target_logit = tf.gather(logits, tf.cast(targets, tf.int32), batch_dims=1)
    scale = top4[:, 0] - 0.5 * (top4[:, 2] + top4[:, 3]) + 1e-12
    return -(true_logit - target_logit) / scale


_LOSSES = {
    "ce": lambda logits, labels, _: losses.cross_entropy(logits, labels, reduction="none"),
    "dlr": lambda logits, labels, _: dlr_loss(logits, labels),
    "dlr-targeted": targeted_dlr_loss,
}


def checkpoints(steps: int) -> list[int]:
    """Iterations at which APGD checks its progress, 0 first.

    The first window is 22 % of the budget and each next one 3 % shorter, down to 6 %: checks
    are far apart at first, when the loss still rises quickly. The paper writes this as
    w_j = ceil(p_j * N); the code (autopgd_base.py:153-155, 424) truncates each length to an
    integer instead, which differs for budgets other than 100 (N = 20: 4, 7, 9, 10, ...).
    """
    first = max(int(0.22 * steps), 1)
    shortest = max(int(0.06 * steps), 1)
    shrink = max(int(0.03 * steps), 1)
    marks, window = [0], first
    while marks[-1] + window <= steps:
        marks.append(marks[-1] + window)
        window = max(window - shrink, shortest)
    return marks


def random_start(x: tf.Tensor, eps: tf.Tensor, norm: str, seed: tf.Tensor) -> tf.Tensor:
    """APGD's starting point: on the boundary of the ball, then clipped to the image box.

    autopgd_base.py:204-213: uniform noise rescaled so its largest entry is eps (L-inf), or a
    Gaussian direction of length eps (L2). Unlike PGD's start it is not uniform in the ball.
    """
    if norm == "linf":
        noise = tf.random.stateless_uniform(tf.shape(x), seed, minval=-1.0, maxval=1.0)
        scale = tf.reduce_max(tf.abs(noise), axis=tf.range(1, tf.rank(x)), keepdims=True)
    else:
        noise = tf.random.stateless_normal(tf.shape(x), seed)
        scale = tf.norm(tf.reshape(noise, [tf.shape(x)[0], -1]), axis=-1)
        scale = tf.reshape(scale, tf.concat([[-1], tf.ones([tf.rank(x) - 1], tf.int32)], 0))
    return tf.clip_by_value(x + eps * noise / (scale + 1e-12), 0.0, 1.0)


def _per_example(values: tf.Tensor, x: tf.Tensor) -> tf.Tensor:
    """Reshapes [batch] values to broadcast against images [batch, ...]."""
    return tf.reshape(values, [-1] + [1] * (len(x.shape) - 1))


def _validate(loss, norm, steps, eps, eot):
    if loss not in _LOSSES:
        raise ValueError(f"APGD loss must be one of {tuple(_LOSSES)}, got {loss!r}.")
    if norm not in GEOMETRIES:
        raise ValueError(f"norm must be one of {tuple(GEOMETRIES)}, got {norm!r}.")
    if not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps must be an integer >= 0, got {steps!r}.")
    if isinstance(eps, Real) and eps < 0:
        raise ValueError(f"eps must be >= 0, got {eps}.")
    if not isinstance(eot, int) or eot < 1:
        raise ValueError(f"eot must be an integer >= 1, got {eot!r}.")


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
    targets: tf.Tensor | None = None,
    eot: int = 1,
) -> tf.Tensor:
    """Returns adversarial images within `eps` of x (in `norm`) and in [0, 1].

    For each example: the last iterate that was misclassified, or if none was, the iterate
    with the highest loss. Costs (steps + 1) * eot forward and backward passes.

    Args:
      model: maps images in [0, 1] to logits.
      x, y: images in [0, 1] and integer labels.
      eps: radius of the threat model (float or scalar tensor).
      steps: iterations (N_iter in the paper; AutoAttack uses 100); 0 returns x.
      loss: "ce" (APGD-CE), "dlr" (APGD-DLR) or "dlr-targeted" (one target of APGD-T).
      norm: "linf" or "l2".
      seed: shape-[2] stateless-RNG seed of the random start.
      targets: target class per example, for loss "dlr-targeted".
      eot: gradients averaged per iterate (expectation over transformation, for randomized
        models; AutoAttack's "rand" version uses 20). Loss and prediction are the last draw's,
        as in autopgd_base.py:362-378.
    """
    _validate(loss, norm, steps, eps, eot)
    if (loss == "dlr-targeted") != (targets is not None):
        raise ValueError("Pass targets exactly when the loss is 'dlr-targeted'.")
    x = tf.convert_to_tensor(x, tf.float32)
    if steps == 0:
        return x
    geometry = GEOMETRIES[norm]
    eps = tf.cast(eps, tf.float32)
    y = tf.cast(y, tf.int32)
    objective = _LOSSES[loss]

    def draw(x_adv):
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(x_adv)
            logits = model(x_adv, training=False)
            per_example = objective(logits, y, targets)
            total = tf.reduce_sum(per_example)  # examples do not interact: per-example grads
        return per_example, tape.gradient(total, x_adv), logits

    def evaluate(x_adv):
        per_example, grad, logits = draw(x_adv)
        if eot > 1:
            _, per_example, grad, logits = tf.while_loop(
                lambda i, *_: i < eot,
                lambda i, _, g, __: (i + 1, *_add_grad(draw(x_adv), g)),
                (tf.constant(1), per_example, grad, logits),
            )
            grad /= float(eot)
        fooled = tf.not_equal(tf.argmax(logits, axis=-1, output_type=tf.int32), y)
        return per_example, grad, fooled

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

    x_start = random_start(x, eps, norm, tf.cast(seed, tf.int32))
    loss_start, grad_start, fooled_start = evaluate(x_start)
    state = dict(
        x_adv=x_start,
        x_prev=x_start,
        grad=grad_start,
        # The loss of the last iterate, against which the next one counts as an increase. The
        # code compares the first iterate with an unwritten entry of its loss log, i.e. with 0
        # (autopgd_base.py:168-169 reads loss_steps[-1]); so do we.
        loss=tf.zeros_like(loss_start),
        step_size=tf.fill(tf.shape(loss_start), 2.0) * eps,
        x_best=x_start,
        loss_best=loss_start,
        grad_best=grad_start,
        x_fooled=x_start,
        fooled=fooled_start,
        increases=tf.zeros_like(loss_start),
        loss_best_at_check=loss_start,
        # True at first, so condition 2 cannot fire at the first check (autopgd_base.py:315).
        reduced_at_check=tf.ones_like(fooled_start),
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
        # stalled: at most RHO of the steps raised the loss (condition 1, `<=` as in
        # autopgd_base.py:171), or neither the step size nor the best loss changed since the
        # previous checkpoint (condition 2, autopgd_base.py:409-410). The iterate's loss is
        # not reset: the next step is compared with the abandoned iterate, as in the code.
        at_check = is_check[k + 1]
        too_few_increases = n["increases"] <= RHO * window[k + 1]
        no_progress = ~s["reduced_at_check"] & (n["loss_best"] <= s["loss_best_at_check"])
        reduce = at_check & (too_few_increases | no_progress)
        n["step_size"] = tf.where(reduce, s["step_size"] / 2.0, s["step_size"])
        n["x_adv"] = where(reduce, n["x_best"], n["x_adv"])
        n["grad"] = where(reduce, n["grad_best"], n["grad"])
        n["increases"] = tf.where(at_check, 0.0, n["increases"])
        n["loss_best_at_check"] = tf.where(at_check, n["loss_best"], s["loss_best_at_check"])
        n["reduced_at_check"] = tf.where(at_check, reduce, s["reduced_at_check"])
        return k + 1, n

    # Stops early once every example of the batch is fooled.
    _, state = tf.while_loop(
        lambda k, s: (k < steps) & ~tf.reduce_all(s["fooled"]),
        body,
        (tf.constant(0), state),
        maximum_iterations=steps,
    )
    return tf.stop_gradient(where(state["fooled"], state["x_fooled"], state["x_best"]))


def _add_grad(drawn, grad_sum):
    """One more EOT draw: its loss and logits, and the running sum of gradients."""
    per_example, grad, logits = drawn
    return per_example, grad_sum + grad, logits


def apgd_targeted(
    model: keras.Model,
    x: tf.Tensor,
    y: tf.Tensor,
    *,
    eps,
    steps: int,
    norm: str = "linf",
    seed=(0, 0),
    target_classes: int = TARGET_CLASSES,
    eot: int = 1,
) -> tf.Tensor:
    """APGD-T: APGD on the targeted DLR loss, once per target class, keeping the first success.

    The targets are the classes ranked 2nd, 3rd, ... by the model's logits on the clean image
    (autopgd_base.py:655-668); `target_classes` is capped at the number of classes - 1. Each
    target's run starts from its own random point. Costs target_classes * (steps + 1) passes
    at most; a target is skipped once the whole batch is fooled.
    """
    _validate("dlr-targeted", norm, steps, eps, eot)
    if not isinstance(target_classes, int) or target_classes < 1:
        raise ValueError(f"target_classes must be an integer >= 1, got {target_classes!r}.")
    x = tf.convert_to_tensor(x, tf.float32)
    y = tf.cast(y, tf.int32)
    seed = tf.cast(seed, tf.int32)

    def attack(t, targets, _):
        x_try = apgd(
            model,
            x,
            y,
            eps=eps,
            steps=steps,
            loss="dlr-targeted",
            norm=norm,
            seed=tf.random.experimental.stateless_fold_in(seed, t),
            targets=targets,
            eot=eot,
        )
        fooled = tf.not_equal(
            tf.argmax(model(x_try, training=False), axis=-1, output_type=tf.int32), y
        )
        return x_try, fooled

    return over_targets(model, x, y, target_classes, attack)


TargetedAttack = Callable[[tf.Tensor, tf.Tensor, tf.Tensor], tuple[tf.Tensor, tf.Tensor]]


def over_targets(
    model: keras.Model, x: tf.Tensor, y: tf.Tensor, target_classes: int, attack: TargetedAttack
) -> tf.Tensor:
    """The targeted attacks' common loop (autopgd_base.py:655-668, fab_base.py:303-323):
    `attack(t, targets, settled) -> (candidates, successes)` against the classes ranked
    t + 2 by the clean logits, keeping each example's first success; examples misclassified
    without attack are settled from the start, and the loop ends once every example is."""
    logits = model(x, training=False)
    ranked = tf.argsort(logits, axis=-1, direction="DESCENDING", stable=True)
    count = min(target_classes, logits.shape[-1] - 1)
    settled = tf.not_equal(ranked[:, 0], y)

    def body(t, x_adv, settled):
        candidates, successes = attack(t, ranked[:, t + 1], settled)
        success = ~settled & successes
        return t + 1, tf.where(_per_example(success, x), candidates, x_adv), settled | success

    _, x_adv, _ = tf.while_loop(
        lambda t, _, settled: (t < count) & ~tf.reduce_all(settled),
        body,
        (tf.constant(0), x, settled),
        maximum_iterations=count,
    )
    return tf.stop_gradient(x_adv)
