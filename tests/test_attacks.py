"""Attack invariants: stay in the ball and the box, raise the loss, validate arguments."""

import numpy as np
import pytest
import tensorflow as tf
from support import assert_in_ball_and_box

from tf_advreg import attacks, losses

EPS = 0.1


def _attack_loss(network, images_adv, images, labels, loss="ce"):
    return attacks.attack_loss(loss, network(images_adv), labels, network(images), 1.0).numpy()


@pytest.mark.parametrize("norm", ["linf", "l2"])
@pytest.mark.parametrize("loss", attacks.ATTACK_LOSSES)
def test_pgd_stays_in_ball_and_box(untrained, loss, norm):
    network, images, labels = untrained
    adv = attacks.pgd(
        network, images, labels, eps=EPS, step_size=0.05, steps=4, loss=loss, beta=1.0, norm=norm
    )
    assert_in_ball_and_box(adv, images, EPS, norm)


def test_fgsm_stays_in_ball_and_box(untrained):
    network, images, labels = untrained
    adv = attacks.fgsm(network, images, labels, eps=EPS).numpy()
    assert np.abs(adv - images).max() <= EPS + 1e-6
    assert adv.min() >= 0.0 and adv.max() <= 1.0


@pytest.mark.parametrize("kwargs", [dict(eps=0.0), dict(steps=0)])
def test_zero_eps_or_steps_returns_input(untrained, kwargs):
    network, images, labels = untrained
    settings = dict(eps=EPS, step_size=0.05, steps=3) | kwargs
    for loss in attacks.ATTACK_LOSSES:
        adv = attacks.pgd(network, images, labels, loss=loss, **settings).numpy()
        np.testing.assert_array_equal(adv, images)
    np.testing.assert_array_equal(attacks.fgsm(network, images, labels, eps=0.0), images)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (
            dict(eps=-0.1),
            r"eps must be in \[0, 1\] \(images are in \[0, 1\]; L2 allows > 1\), got -0.1",
        ),
        (dict(step_size=0.0), "step_size must be > 0, got 0.0"),
        (dict(steps=-1), "steps must be >= 0, got -1"),
        (dict(beta=-1.0), "beta must be >= 0, got -1.0"),
        (dict(loss="hinge"), "loss must be one of .* got 'hinge'"),
        (dict(norm="l1"), "norm must be one of .* got 'l1'"),
        (dict(regularizer="l1"), "Unknown regularizer 'l1'; choose one of kl"),
    ],
)
def test_bad_arguments_name_the_argument(untrained, kwargs, message):
    network, images, labels = untrained
    settings = dict(eps=EPS, step_size=0.05, steps=3) | kwargs
    with pytest.raises(ValueError, match=message):
        attacks.pgd(network, images, labels, **settings)


def test_attack_compiles_with_xla_and_does_not_retrace_on_new_eps(untrained):
    network, images, labels = untrained
    eps = tf.Variable(EPS)
    traces = []

    @tf.function(jit_compile=True)
    def attack(x, y):
        traces.append(1)
        return attacks.pgd(network, x, y, eps=eps, step_size=0.05, steps=5, seed=[1, 2])

    first = attack(images, labels).numpy()
    eps.assign(0.05)
    second = attack(images, labels).numpy()
    assert len(traces) == 1
    assert np.abs(first - images).max() <= EPS + 1e-6
    assert np.abs(second - images).max() <= 0.05 + 1e-6


def test_adversarial_images_carry_no_gradient_to_the_weights(untrained):
    """x' is a constant for the update step: training differentiates at x', not through PGD."""
    network, images, labels = untrained
    with tf.GradientTape() as outer:
        adv = attacks.pgd(network, images, labels, eps=EPS, step_size=0.05, steps=2, seed=0)
        total = tf.reduce_sum(adv)
    assert all(g is None for g in outer.gradient(total, network.trainable_variables))


def test_seeded_attack_is_reproducible(untrained):
    network, images, labels = untrained
    run = lambda seed: attacks.pgd(  # noqa: E731
        network, images, labels, eps=EPS, step_size=0.05, steps=3, seed=seed
    ).numpy()
    np.testing.assert_array_equal(run(7), run(7))
    assert not np.array_equal(run(7), run(8))


@pytest.mark.parametrize("loss", attacks.ATTACK_LOSSES)
def test_pgd_raises_its_loss_above_clean_and_noise(digits_model, loss):
    network, images, labels = digits_model
    eps = 0.1
    clean = _attack_loss(network, images, images, labels, loss)
    noise = np.random.default_rng(1).choice([-eps, eps], size=images.shape).astype("float32")
    noisy = _attack_loss(network, np.clip(images + noise, 0, 1), images, labels, loss)
    adv_images = attacks.pgd(
        network, images, labels, eps=eps, step_size=0.025, steps=10, loss=loss, beta=1.0, seed=0
    )
    adversarial = _attack_loss(network, adv_images, images, labels, loss)
    assert adversarial.mean() > clean.mean() + 0.1
    assert adversarial.mean() > noisy.mean() + 0.1


@pytest.mark.parametrize("regularizer", sorted(losses.REGULARIZERS))
def test_pgd_raises_each_regularizer(digits_model, regularizer):
    """The TRADES attack ("kl") and AR's ("ce+kl") maximise the chosen distance: from
    TRADES's 0.001 N(0, I) start each gets a gradient, total variation included."""
    network, images, labels = digits_model
    for loss in ("kl", "ce+kl"):
        adv = attacks.pgd(
            network,
            images,
            labels,
            eps=0.1,
            step_size=0.025,
            steps=10,
            loss=loss,
            beta=1.0,
            regularizer=regularizer,
            seed=0,
        )
        logits_nat = network(images)
        before = attacks.attack_loss(loss, logits_nat, labels, logits_nat, 1.0, regularizer)
        after = attacks.attack_loss(loss, network(adv), labels, logits_nat, 1.0, regularizer)
        assert after.numpy().mean() > before.numpy().mean() + 0.05, loss


def test_total_variation_attack_without_random_start_stays_at_x(untrained):
    """At x' = x, p = q exactly, |p - q| takes TensorFlow's subgradient 0, and sign(0) = 0: a
    linf attack on total variation alone never leaves x without a random start. (The smooth
    distances' gradients there are 0 only up to rounding, whose sign moves x' arbitrarily.)"""
    network, images, labels = untrained
    adv = attacks.pgd(
        network,
        images,
        labels,
        eps=EPS,
        step_size=0.05,
        steps=3,
        loss="kl",
        regularizer="total_variation",
        random_start=False,
    )
    np.testing.assert_array_equal(adv.numpy(), images)


def test_pgd_lowers_accuracy_more_than_fgsm_on_trained_model(digits_model):
    network, images, labels = digits_model
    accuracy = lambda x: np.mean(np.argmax(network(x), -1) == labels)  # noqa: E731
    natural = accuracy(images)
    fgsm = accuracy(attacks.fgsm(network, images, labels, eps=0.1))
    pgd = accuracy(attacks.pgd(network, images, labels, eps=0.1, step_size=0.02, steps=20))
    assert natural > 0.8
    assert pgd <= fgsm <= natural
    assert pgd < natural - 0.2


def test_best_iterate_never_loses_loss_with_more_steps(digits_model):
    network, images, labels = digits_model
    found = []
    for steps in (1, 3, 6, 12):
        adv = attacks.pgd(
            network, images, labels, eps=0.1, step_size=0.06, steps=steps, track_best=True, seed=5
        )
        found.append(losses.cross_entropy(network(adv), labels, reduction="none").numpy())
    for fewer, more in zip(found, found[1:]):
        assert np.all(more >= fewer - 1e-5)
    # Without tracking, a large step size oscillates: the last iterate can be worse.
    last = attacks.pgd(network, images, labels, eps=0.1, step_size=0.06, steps=12, seed=5)
    last_loss = losses.cross_entropy(network(last), labels, reduction="none").numpy()
    assert np.all(found[-1] >= last_loss - 1e-5)


def test_attack_in_training_mode_updates_batchnorm_statistics_only_when_asked(untrained):
    network, images, labels = untrained
    moving = [w for w in network.non_trainable_weights if "moving_mean" in w.path]
    before = [w.numpy().copy() for w in moving]
    attacks.pgd(network, images, labels, eps=EPS, step_size=0.05, steps=2, seed=0)
    assert all(np.array_equal(b, w.numpy()) for b, w in zip(before, moving))
    attacks.pgd(network, images, labels, eps=EPS, step_size=0.05, steps=2, seed=0, training=True)
    assert any(not np.array_equal(b, w.numpy()) for b, w in zip(before, moving))
