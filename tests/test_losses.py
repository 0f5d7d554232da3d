"""Each loss against an independent float64 numpy reference, including extreme logits."""

import numpy as np
import pytest
import tensorflow as tf

from tf_advreg import losses


def _log_softmax(z):
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def _ce(z, y):
    return -_log_softmax(z)[np.arange(len(y)), y]


def _kl(zp, zq):
    log_p, log_q = _log_softmax(zp), _log_softmax(zq)
    return (np.exp(log_p) * (log_p - log_q)).sum(axis=-1)


def _trades(zn, za, y, beta):
    return _ce(zn, y) + beta * _kl(zn, za)


def _ar(zn, za, y, beta):
    return _ce(za, y) + beta * _kl(zn, za)


def _alp(zn, za, y, beta):
    return _ce(zn, y) + beta * ((za - zn) ** 2).sum(axis=-1)


def _alp_kannan(zn, za, y, beta):
    return 0.5 * (_ce(zn, y) + _ce(za, y)) + beta * ((za - zn) ** 2).mean(axis=-1)


def _mart(zn, za, y, beta):
    rows = np.arange(len(y))
    others = za.copy()
    others[rows, y] = -np.inf
    runner_up = others.argmax(axis=-1)
    # log(1 - p_k) = log(sum_{j != k} e^{z_j}) - log(sum_j e^{z_j}), in float64.
    masked = za.copy()
    masked[rows, runner_up] = -np.inf
    log_not_k = np.logaddexp.reduce(masked, axis=-1) - np.logaddexp.reduce(za, axis=-1)
    p_true = np.exp(_log_softmax(zn))[rows, y]
    return _ce(za, y) - log_not_k + beta * _kl(zn, za) * (1.0 - p_true)


def _margin(z, y):
    rows = np.arange(len(y))
    others = z.copy()
    others[rows, y] = -np.inf
    return others.max(axis=-1) - z[rows, y]


def _logits(scale, seed):
    rng = np.random.default_rng(seed)
    nat = rng.normal(0, scale, (16, 10))
    adv = rng.normal(0, scale, (16, 10))
    labels = rng.integers(0, 10, 16)
    if scale >= 50:  # push to the extremes: +-50 exactly, where naive log(softmax) breaks
        nat, adv = np.sign(nat) * 50.0, np.sign(adv) * 50.0
    return nat, adv, labels


PAIRED = {
    "trades": (losses.trades_loss, _trades),
    "ar": (losses.ar_loss, _ar),
    "alp": (losses.alp_loss, _alp),
    "alp_kannan": (losses.alp_kannan_loss, _alp_kannan),
    "mart": (losses.mart_loss, _mart),
}


@pytest.mark.parametrize("scale", [1.0, 5.0, 50.0])
@pytest.mark.parametrize("name", sorted(PAIRED))
def test_objective_losses_match_numpy(name, scale):
    loss_fn, reference = PAIRED[name]
    nat, adv, labels = _logits(scale, seed=sorted(PAIRED).index(name))
    for beta in (0.0, 0.7, 6.0):
        got = loss_fn(tf.constant(nat, tf.float32), tf.constant(adv, tf.float32), labels, beta)
        want = reference(nat.astype(np.float32).astype(np.float64), adv, labels, beta).mean()
        assert np.isfinite(got.numpy())
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("scale", [1.0, 50.0])
def test_kl_ce_margin_match_numpy(scale):
    nat, adv, labels = _logits(scale, seed=3)
    kl = losses.kl_divergence(tf.constant(nat), tf.constant(adv)).numpy()
    np.testing.assert_allclose(kl, _kl(nat, adv).mean(), rtol=1e-4, atol=1e-4)
    ce = losses.cross_entropy(tf.constant(adv), labels, reduction="none").numpy()
    np.testing.assert_allclose(ce, _ce(adv, labels), rtol=1e-4, atol=1e-4)
    margin = losses.margin(tf.constant(adv), labels, reduction="none").numpy()
    np.testing.assert_allclose(margin, _margin(adv, labels), rtol=1e-5, atol=1e-4)


def test_kl_is_zero_for_equal_distributions_and_not_symmetric():
    nat, adv, _ = _logits(2.0, seed=4)
    assert abs(losses.kl_divergence(nat, nat).numpy()) < 1e-6
    forward = losses.kl_divergence(nat, adv).numpy()
    backward = losses.kl_divergence(adv, nat).numpy()
    assert forward > 0 and backward > 0 and abs(forward - backward) > 1e-3


def test_ar_with_zero_beta_is_adversarial_cross_entropy():
    nat, adv, labels = _logits(3.0, seed=5)
    np.testing.assert_allclose(
        losses.ar_loss(nat, adv, labels, 0.0).numpy(), _ce(adv, labels).mean(), rtol=1e-5
    )


def test_gradients_finite_at_extreme_logits():
    nat, adv, labels = _logits(50.0, seed=6)
    nat, adv = tf.Variable(nat, dtype=tf.float32), tf.Variable(adv, dtype=tf.float32)
    for loss_fn, _ in PAIRED.values():
        with tf.GradientTape() as tape:
            value = loss_fn(nat, adv, labels, 1.0)
        for grad in tape.gradient(value, [nat, adv]):
            assert np.all(np.isfinite(grad.numpy()))


def test_mean_reduction_averages_over_global_batch_in_a_replica():
    """Inside a 2-replica strategy each replica's mean divides by the global batch."""
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    nat, adv, labels = _logits(1.0, seed=7)
    per_replica = strategy.run(
        lambda: losses.trades_loss(tf.constant(nat[:8]), tf.constant(adv[:8]), labels[:8], 1.0)
    )
    local = strategy.experimental_local_results(per_replica)[0].numpy()
    np.testing.assert_allclose(local, _trades(nat[:8], adv[:8], labels[:8], 1.0).sum() / 16, 1e-5)


def test_unknown_reduction_is_rejected():
    with pytest.raises(ValueError, match="reduction"):
        losses.cross_entropy(tf.zeros([2, 3]), [0, 1], reduction="sum")


def _symmetric_kl(zp, zq):
    return _kl(zp, zq) + _kl(zq, zp)


def _total_variation(zp, zq):
    return 0.5 * np.abs(np.exp(_log_softmax(zp)) - np.exp(_log_softmax(zq))).sum(axis=-1)


def _jensen_shannon(zp, zq):
    p, q = np.exp(_log_softmax(zp)), np.exp(_log_softmax(zq))
    m = 0.5 * (p + q)

    def kl_to_m(a):  # 0 log 0 = 0
        return np.where(a > 0, a * (np.log(np.where(a > 0, a, 1.0)) - np.log(m)), 0.0).sum(-1)

    return 0.5 * kl_to_m(p) + 0.5 * kl_to_m(q)


DISTANCES = {
    "kl": _kl,
    "symmetric_kl": _symmetric_kl,
    "total_variation": _total_variation,
    "jensen_shannon": _jensen_shannon,
}


def test_every_regularizer_has_a_reference():
    assert set(DISTANCES) == set(losses.REGULARIZERS)


@pytest.mark.parametrize("scale", [1.0, 5.0, 50.0])
@pytest.mark.parametrize("name", sorted(DISTANCES))
def test_regularizers_match_numpy(name, scale):
    nat, adv, _ = _logits(scale, seed=8 + sorted(DISTANCES).index(name))
    got = losses.regularizer(name, tf.constant(nat, tf.float32), tf.constant(adv, tf.float32))
    want = DISTANCES[name](nat, adv)
    assert np.isfinite(got.numpy())
    np.testing.assert_allclose(got.numpy(), want.mean(), rtol=1e-4, atol=1e-4)
    per_example = losses.regularizer(name, nat, adv, reduction="none").numpy()
    np.testing.assert_allclose(per_example, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", sorted(DISTANCES))
@pytest.mark.parametrize("loss_fn, ce_side", [(losses.trades_loss, 0), (losses.ar_loss, 1)])
def test_trades_and_ar_take_each_distance(name, loss_fn, ce_side):
    nat, adv, labels = _logits(50.0, seed=12)
    got = loss_fn(nat, adv, labels, 2.0, distance=name, reduction="none").numpy()
    want = _ce((nat, adv)[ce_side], labels) + 2.0 * DISTANCES[name](nat, adv)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_symmetric_distances_are_symmetric_and_bounded():
    nat, adv, _ = _logits(50.0, seed=13)
    for name in ("symmetric_kl", "total_variation", "jensen_shannon"):
        forward = losses.regularizer(name, nat, adv, reduction="none").numpy()
        backward = losses.regularizer(name, adv, nat, reduction="none").numpy()
        np.testing.assert_allclose(forward, backward, rtol=1e-5, atol=1e-6)
    assert losses.total_variation(nat, adv, reduction="none").numpy().max() <= 1 + 1e-6
    assert losses.jensen_shannon(nat, adv, reduction="none").numpy().max() <= np.log(2) + 1e-6


@pytest.mark.parametrize("name", sorted(DISTANCES))
def test_regularizer_gradients_at_equal_and_extreme_logits(name):
    """At x' = x every distance is 0 with gradient 0 in z(x') (total variation: TensorFlow's
    subgradient 0 of |t| at 0), which is why the TRADES attack starts off x; at +-50 the
    gradient is finite."""
    nat, adv, _ = _logits(3.0, seed=14)
    same = tf.Variable(nat, dtype=tf.float32)
    with tf.GradientTape() as tape:
        value = losses.regularizer(name, tf.constant(nat, tf.float32), same)
    assert abs(value.numpy()) < 1e-6
    np.testing.assert_allclose(tape.gradient(value, same).numpy(), 0.0, atol=1e-6)
    nat, adv, _ = _logits(50.0, seed=15)
    nat, adv = tf.Variable(nat, dtype=tf.float32), tf.Variable(adv, dtype=tf.float32)
    with tf.GradientTape() as tape:
        value = losses.regularizer(name, nat, adv)
    for grad in tape.gradient(value, [nat, adv]):
        assert np.all(np.isfinite(grad.numpy()))


def test_regularizer_gradients_match_float64_finite_differences():
    nat, adv, _ = _logits(2.0, seed=16)
    for name, reference in DISTANCES.items():
        variable = tf.Variable(adv, dtype=tf.float64)
        with tf.GradientTape() as tape:
            value = losses.regularizer(name, tf.constant(nat), variable, reduction="none")
            total = tf.reduce_sum(value)
        grad = tape.gradient(total, variable).numpy()
        step = 1e-4
        bumped = adv.copy()
        bumped[0, 3] += step
        lowered = adv.copy()
        lowered[0, 3] -= step
        numeric = (reference(nat, bumped).sum() - reference(nat, lowered).sum()) / (2 * step)
        np.testing.assert_allclose(grad[0, 3], numeric, rtol=1e-3, atol=1e-4, err_msg=name)


def test_unknown_regularizer_is_rejected():
    with pytest.raises(ValueError, match="Unknown regularizer 'hellinger'; choose one of kl"):
        losses.regularizer("hellinger", tf.zeros([2, 3]), tf.zeros([2, 3]))
