"""Training and attack losses as pure functions of logits.

Every function works from log-softmax (never log(softmax)), so logits of +-50 give finite
values. `reduction="mean"` averages over the *global* batch through `tf.nn.compute_average_loss`:
outside a distribution strategy that is the plain batch mean ("batchmean"); inside a replica
it divides by the global batch, so summing gradients across replicas is exact.
`reduction="none"` returns one value per example (what attacks and metrics need).
"""

import tensorflow as tf

_REDUCTIONS = ("mean", "none")


def _reduce(per_example: tf.Tensor, reduction: str) -> tf.Tensor:
    if reduction == "none":
        return per_example
    if reduction == "mean":
        return tf.nn.compute_average_loss(per_example)
    raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}.")


def _float32(logits: tf.Tensor) -> tf.Tensor:
    return tf.cast(logits, tf.float32)


def _class_mask(classes: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
    """Boolean [batch, num_classes] mask, True at each example's given class."""
    class_ids = tf.range(tf.shape(logits)[-1], dtype=tf.int32)
    return tf.equal(tf.cast(classes, tf.int32)[:, None], class_ids[None, :])


def cross_entropy(logits: tf.Tensor, labels: tf.Tensor, *, reduction: str = "mean") -> tf.Tensor:
    """Softmax cross-entropy with integer labels."""
    per_example = tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=tf.cast(labels, tf.int32), logits=_float32(logits)
    )
    return _reduce(per_example, reduction)


def kl_divergence(
    logits_p: tf.Tensor, logits_q: tf.Tensor, *, reduction: str = "mean"
) -> tf.Tensor:
    """KL(p || q) = sum_k p_k (log p_k - log q_k), with p = softmax(logits_p).

    TRADES and AR call it with p the natural and q the adversarial distribution, which is what
    PyTorch's `KLDivLoss(log_softmax(z(x')), softmax(z(x)))` in the official TRADES code computes.
    """
    log_p = tf.nn.log_softmax(_float32(logits_p))
    log_q = tf.nn.log_softmax(_float32(logits_q))
    per_example = tf.reduce_sum(tf.exp(log_p) * (log_p - log_q), axis=-1)
    return _reduce(per_example, reduction)


def symmetric_kl(logits_p: tf.Tensor, logits_q: tf.Tensor, *, reduction: str = "mean") -> tf.Tensor:
    """KL(p || q) + KL(q || p): Jeffreys divergence, the same whichever side is natural."""
    per_example = kl_divergence(logits_p, logits_q, reduction="none") + kl_divergence(
        logits_q, logits_p, reduction="none"
    )
    return _reduce(per_example, reduction)


def total_variation(
    logits_p: tf.Tensor, logits_q: tf.Tensor, *, reduction: str = "mean"
) -> tf.Tensor:
    """1/2 sum_k |p_k - q_k|, in [0, 1]. Not differentiable where p_k = q_k: TensorFlow's
    gradient of |t| at t = 0 is 0, so at x' = x the gradient is 0 (as KL's is there)."""
    p = tf.nn.softmax(_float32(logits_p))
    q = tf.nn.softmax(_float32(logits_q))
    return _reduce(0.5 * tf.reduce_sum(tf.abs(p - q), axis=-1), reduction)


def jensen_shannon(
    logits_p: tf.Tensor, logits_q: tf.Tensor, *, reduction: str = "mean"
) -> tf.Tensor:
    """KL(p || m) / 2 + KL(q || m) / 2 with m = (p + q) / 2, in [0, log 2]; log m is a
    logsumexp of log p and log q, finite however far apart the logits are."""
    log_p = tf.nn.log_softmax(_float32(logits_p))
    log_q = tf.nn.log_softmax(_float32(logits_q))
    log_m = tf.reduce_logsumexp(tf.stack([log_p, log_q]), axis=0) - tf.math.log(2.0)
    per_example = 0.5 * tf.reduce_sum(
        tf.exp(log_p) * (log_p - log_m) + tf.exp(log_q) * (log_q - log_m), axis=-1
    )
    return _reduce(per_example, reduction)


# The distances between p(x) and p(x') a logit-regularized objective (TRADES, AR) may use; the
# thesis names as future work symmetric KL and total variation.
REGULARIZERS = {
    "kl": kl_divergence,
    "symmetric_kl": symmetric_kl,
    "total_variation": total_variation,
    "jensen_shannon": jensen_shannon,
}


def check_regularizer(name: str) -> None:
    if name not in REGULARIZERS:
        raise ValueError(f"Unknown regularizer {name!r}; choose one of {', '.join(REGULARIZERS)}.")


def regularizer(
    name: str, logits_p: tf.Tensor, logits_q: tf.Tensor, *, reduction: str = "mean"
) -> tf.Tensor:
    """The distance `name` (a key of REGULARIZERS) between softmax(logits_p), softmax(logits_q)."""
    check_regularizer(name)
    return REGULARIZERS[name](logits_p, logits_q, reduction=reduction)


def margin(logits: tf.Tensor, labels: tf.Tensor, *, reduction: str = "mean") -> tf.Tensor:
    """Carlini-Wagner margin max_{j != y} z_j - z_y: positive exactly when misclassified."""
    logits = _float32(logits)
    true_mask = _class_mask(labels, logits)
    true_logit = tf.reduce_sum(tf.where(true_mask, logits, 0.0), axis=-1)
    other_logit = tf.reduce_max(tf.where(true_mask, -float("inf"), logits), axis=-1)
    return _reduce(other_logit - true_logit, reduction)


def trades_loss(
    logits_nat: tf.Tensor,
    logits_adv: tf.Tensor,
    labels: tf.Tensor,
    beta: float,
    *,
    distance: str = "kl",
    reduction: str = "mean",
) -> tf.Tensor:
    """TRADES (Zhang et al. 2019): CE(z(x), y) + beta * KL(p(x) || p(x')); `distance` names
    another of REGULARIZERS in place of KL."""
    per_example = cross_entropy(logits_nat, labels, reduction="none") + beta * regularizer(
        distance, logits_nat, logits_adv, reduction="none"
    )
    return _reduce(per_example, reduction)


def ar_loss(
    logits_nat: tf.Tensor,
    logits_adv: tf.Tensor,
    labels: tf.Tensor,
    beta: float,
    *,
    distance: str = "kl",
    reduction: str = "mean",
) -> tf.Tensor:
    """Adversarial Regularization (thesis Alg. 3): CE(z(x'), y) + beta * KL(p(x) || p(x'));
    `distance` names another of REGULARIZERS in place of KL.

    With beta = 0 this is exactly the robust-optimization loss CE(z(x'), y).
    """
    per_example = cross_entropy(logits_adv, labels, reduction="none") + beta * regularizer(
        distance, logits_nat, logits_adv, reduction="none"
    )
    return _reduce(per_example, reduction)


def alp_loss(
    logits_nat: tf.Tensor,
    logits_adv: tf.Tensor,
    labels: tf.Tensor,
    beta: float,
    *,
    reduction: str = "mean",
) -> tf.Tensor:
    """Adversarial logit pairing as the thesis states it (§2.2): CE(z(x), y) + beta * ||z(x') -
    z(x)||^2, the squared gap summed over classes. Kannan et al.'s code trains another form:
    `alp_kannan_loss`."""
    squared_gap = tf.square(_float32(logits_adv) - _float32(logits_nat))
    per_example = cross_entropy(logits_nat, labels, reduction="none") + beta * tf.reduce_sum(
        squared_gap, axis=-1
    )
    return _reduce(per_example, reduction)


def alp_kannan_loss(
    logits_nat: tf.Tensor,
    logits_adv: tf.Tensor,
    labels: tf.Tensor,
    beta: float,
    *,
    reduction: str = "mean",
) -> tf.Tensor:
    """Adversarial logit pairing as Kannan et al.'s (2018) code trains it:
    CE(z(x), y) / 2 + CE(z(x'), y) / 2 + beta * mean_k (z_k(x') - z_k(x))^2.

    Their batch is half clean, half adversarial, and the pairing term is a mean squared error
    over classes, so beta means 1 / num_classes of what it means in `alp_loss`.
    """
    squared_gap = tf.square(_float32(logits_adv) - _float32(logits_nat))
    mixed_ce = 0.5 * (
        cross_entropy(logits_nat, labels, reduction="none")
        + cross_entropy(logits_adv, labels, reduction="none")
    )
    return _reduce(mixed_ce + beta * tf.reduce_mean(squared_gap, axis=-1), reduction)


def mart_loss(
    logits_nat: tf.Tensor,
    logits_adv: tf.Tensor,
    labels: tf.Tensor,
    beta: float,
    *,
    reduction: str = "mean",
) -> tf.Tensor:
    """MART (Wang et al. 2020): BCE(p(x'), y) + beta * KL(p(x) || p(x')) * (1 - p_y(x)).

    BCE(p, y) = -log p_y - log(1 - max_{k != y} p_k), the "boosted" cross-entropy of the MART
    paper. log(1 - p_k) is computed as logsumexp over the other logits minus logsumexp over
    all, which stays finite where 1 - p_k rounds to zero.
    """
    logits_nat = _float32(logits_nat)
    logits_adv = _float32(logits_adv)
    true_mask = _class_mask(labels, logits_adv)
    runner_up = tf.argmax(tf.where(true_mask, -float("inf"), logits_adv), axis=-1)
    runner_up_mask = _class_mask(runner_up, logits_adv)
    log_not_runner_up = tf.reduce_logsumexp(
        tf.where(runner_up_mask, -float("inf"), logits_adv), axis=-1
    ) - tf.reduce_logsumexp(logits_adv, axis=-1)
    boosted_ce = cross_entropy(logits_adv, labels, reduction="none") - log_not_runner_up

    p_true_nat = tf.reduce_sum(tf.where(true_mask, tf.nn.softmax(logits_nat), 0.0), axis=-1)
    weighted_kl = kl_divergence(logits_nat, logits_adv, reduction="none") * (1.0 - p_true_nat)
    return _reduce(boosted_ce + beta * weighted_kl, reduction)
