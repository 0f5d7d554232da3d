"""Objectives: they learn, AR(0) is robust optimization, XLA works, strategies are exact."""

import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf
from support import separable_images, two_replicas

from tf_advreg import objectives
from tf_advreg.attacks import AttackSettings
from tf_advreg.models import resnet18

ATTACK = AttackSettings(
    eps=0.1, norm="linf", steps=3, step_size=0.04, eval_steps=3, eval_step_size=0.003
)


def _network(seed=0):
    keras.utils.set_random_seed(seed)
    return resnet18(num_classes=4, width=4, input_shape=(8, 8, 1))


def _small_convnet(seed, batchnorm=True):
    """Compiles in seconds; without BatchNorm each example's gradient is independent of how
    the batch is split across replicas."""
    keras.utils.set_random_seed(seed)
    norm = [keras.layers.BatchNormalization()] if batchnorm else []
    return keras.Sequential(
        [keras.Input((8, 8, 1)), keras.layers.Conv2D(8, 3), *norm, keras.layers.ReLU()]
        + [keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(4)]
    )


@pytest.mark.parametrize("name", sorted(objectives.OBJECTIVES))
def test_each_objective_lowers_its_training_loss_under_xla(name):
    images, labels = separable_images(64)
    model = objectives.objective_class(name)(_small_convnet(0), beta=1.0, attack=ATTACK)
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9), jit_compile=True)
    history = model.fit(images, labels, batch_size=16, epochs=10, verbose=0, shuffle=False)
    loss = history.history["loss"]
    assert np.all(np.isfinite(loss))
    assert loss[-1] < 0.7 * loss[0], loss
    expected = {"loss", "natural_accuracy"} | (
        {"adversarial_accuracy"} if name != "natural" else set()
    )
    assert set(history.history) == expected
    results = model.evaluate(images, labels, batch_size=32, verbose=0, return_dict=True)
    assert set(results) == {"loss", "natural_accuracy", "adversarial_accuracy"}
    assert results["adversarial_accuracy"] <= results["natural_accuracy"] + 1e-6


def _one_step(cls, **kwargs):
    images, labels = separable_images(16, seed=1)
    model = cls(_small_convnet(3), attack=ATTACK, **kwargs)
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9), jit_compile=False)
    model.fit(images, labels, batch_size=16, epochs=1, verbose=0, shuffle=False)
    return [w.numpy() for w in model.network.weights]


def test_ar_with_zero_beta_is_robust_optimization():
    ar = _one_step(objectives.AdversarialRegularization, beta=0.0, seed=11)
    robopt = _one_step(objectives.RobustOptimization, seed=11)
    changed = _one_step(objectives.AdversarialRegularization, beta=1.0, seed=11)
    for a, r in zip(ar, robopt):
        np.testing.assert_array_equal(a, r)
    assert any(not np.array_equal(a, c) for a, c in zip(ar, changed))


@pytest.mark.parametrize("name", sorted(objectives.OBJECTIVES))
def test_mirrored_step_matches_single_device_with_weight_decay(name):
    """Each replica's gradient is summed: the decay must still count once, not per replica."""
    images, labels = separable_images(16, seed=2)
    dataset = tf.data.Dataset.from_tensor_slices((images, labels)).batch(16)

    # Without a random start TRADES's KL attack begins where its gradient is zero up to
    # rounding, and the sign of rounding noise depends on the batch split: no attack for it.
    attack = dataclasses.replace(ATTACK, steps=0) if name == "trades" else ATTACK

    def train(strategy):
        with strategy.scope():
            model = objectives.objective_class(name)(
                _small_convnet(4, batchnorm=False),
                beta=2.0,
                random_start=False,
                weight_decay=0.05,
                attack=attack,
            )
            model.compile(optimizer=keras.optimizers.SGD(0.5), jit_compile=False)
        model.fit(dataset, epochs=2, verbose=0, shuffle=False)
        return [w.numpy() for w in model.network.weights]

    mirrored = train(two_replicas())
    single = train(tf.distribute.get_strategy())
    initial = [w.numpy() for w in _small_convnet(4, batchnorm=False).weights]
    assert any(not np.allclose(i, s) for i, s in zip(initial, single))
    for m, s in zip(mirrored, single):
        np.testing.assert_allclose(m, s, rtol=1e-5, atol=1e-6)


def test_training_attack_uses_the_objectives_loss_and_eval_uses_pgd_ce():
    network = _network()
    trades = objectives.Trades(network, beta=1.0, attack=ATTACK)
    trades.compile(optimizer=keras.optimizers.SGD(0.1))
    images, labels = separable_images(8)
    # The TRADES attack starts at x + 0.001 N(0, I) and maximises the KL; it moves the images.
    moved = trades.attack(images, labels).numpy()
    assert 0 < np.abs(moved - images).max() <= ATTACK.eps + 1e-6
    eval_adv = trades.attack(images, labels, evaluation=True).numpy()
    assert np.abs(eval_adv - images).max() <= ATTACK.eps + 1e-6


def test_each_evaluation_batch_gets_its_own_reproducible_random_start():
    images, labels = separable_images(16, seed=3)

    def evaluation_attacks():
        model = objectives.NaturalTraining(
            _small_convnet(0), attack=dataclasses.replace(ATTACK, eval_steps=1)
        )
        model.compile(optimizer=keras.optimizers.SGD(0.1), jit_compile=False)
        model.fit(images, labels, batch_size=16, epochs=1, verbose=0, shuffle=False)
        first, second = (model.attack(images, labels, evaluation=True) for _ in range(2))
        model.fit(images, labels, batch_size=16, epochs=1, verbose=0, shuffle=False)
        return first.numpy(), second.numpy(), model.attack(images, labels, evaluation=True)

    first, second, after_next_step = evaluation_attacks()
    assert np.abs(first - second).max() > 0.01  # two batches of one evaluation differ
    assert np.abs(first - after_next_step).max() > 0.01
    for a, b in zip((first, second, after_next_step), evaluation_attacks()):
        np.testing.assert_array_equal(a, b)  # and a second run repeats them


def test_each_evaluate_call_counts_its_batches_from_the_first():
    """Evaluating again between two steps repeats the numbers: a second evaluation (a Keras
    validation set after a callback's sets) does not draw the starts after the first one's."""
    images, labels = separable_images(32, seed=5)
    model = objectives.RobustOptimization(
        _small_convnet(0), attack=dataclasses.replace(ATTACK, eval_steps=1)
    )
    model.compile(optimizer=keras.optimizers.SGD(0.1), jit_compile=False)
    model.fit(images, labels, batch_size=16, epochs=1, verbose=0, shuffle=False)

    def loss() -> float:
        return model.evaluate(images, labels, batch_size=16, verbose=0, return_dict=True)["loss"]

    first = loss()
    assert loss() == first
    model.label_evaluation("another set")  # its own starts: the loss depends on them
    assert loss() != first


@pytest.mark.parametrize(
    "attack, kwargs, message",
    [
        (dict(eps=-0.1), {}, r"eps must be in \[0, 1\]"),
        (dict(eps=1.5), {}, r"eps must be in \[0, 1\]"),
        ({}, dict(beta=-1.0), "beta must be >= 0"),
        (dict(steps=-2), {}, "steps must be >= 0"),
        (dict(eval_steps=-2), {}, "eval_steps must be >= 1"),
        (dict(step_size=0.0), {}, "step_size must be > 0"),
        (dict(eval_step_size=0.0), {}, "eval_step_size must be > 0"),
        (dict(norm="l7"), {}, "norm must be one of"),
        ({}, dict(weight_decay=-1e-4), "weight_decay must be >= 0"),
        ({}, dict(regularizer="hellinger"), "Unknown regularizer 'hellinger'"),
    ],
)
def test_bad_settings_are_rejected(attack, kwargs, message):
    with pytest.raises(ValueError, match=message):
        objectives.Trades(_network(), attack=dataclasses.replace(ATTACK, **attack), **kwargs)


def test_regularizer_is_refused_where_there_is_no_distance_to_swap():
    with pytest.raises(ValueError, match="applies to trades and ar only"):
        objectives.Mart(_network(), attack=ATTACK, regularizer="total_variation")


@pytest.mark.parametrize("name", ["trades", "ar"])
def test_attack_and_update_use_the_regularizer(name):
    """The training attack maximises, and the step minimises, the chosen distance: each distance
    gives other adversarial images and other weights from the same start and seed."""
    images, labels = separable_images(16, seed=1)
    attacks, weights = {}, {}
    for distance in ("kl", "total_variation"):
        model = objectives.objective_class(name)(
            _small_convnet(3), beta=3.0, regularizer=distance, seed=5, attack=ATTACK
        )
        model.compile(optimizer=keras.optimizers.SGD(0.1), jit_compile=False)
        attacks[distance] = model.attack(images, labels).numpy()
        model.fit(images, labels, batch_size=16, epochs=1, verbose=0, shuffle=False)
        weights[distance] = model.network.weights[0].numpy()
    assert np.abs(attacks["kl"] - attacks["total_variation"]).max() > 1e-3
    assert not np.allclose(weights["kl"], weights["total_variation"])


def test_unknown_objective_lists_the_valid_ones():
    with pytest.raises(ValueError, match="natural, robopt, trades, ar, alp, alp_kannan, mart"):
        objectives.objective_class("fgsm-free")


def test_weight_decay_is_added_to_the_gradient_like_pytorch_sgd():
    """One plain-SGD step: the decayed weights differ from the plain ones by lr * wd * w."""
    images, labels = separable_images(16, seed=1)
    decayed = objectives.NaturalTraining(_small_convnet(5, False), attack=ATTACK, weight_decay=0.1)
    plain = objectives.NaturalTraining(_small_convnet(5, False), attack=ATTACK)
    for model in (decayed, plain):
        model.compile(optimizer=keras.optimizers.SGD(0.5), jit_compile=False)
        model.fit(images, labels, batch_size=16, epochs=1, verbose=0, shuffle=False)
    initial = _small_convnet(5, False).weights
    for w0, wd, wp in zip(initial, decayed.network.weights, plain.network.weights):
        np.testing.assert_allclose(wd.numpy(), wp.numpy() - 0.5 * 0.1 * w0.numpy(), atol=1e-6)


def test_resnet18_objective_compiles_with_xla():
    images, labels = separable_images(16)
    model = objectives.Trades(_network(), beta=1.0, attack=ATTACK)
    model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9), jit_compile=True)
    history = model.fit(images, labels, batch_size=8, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


def test_mixed_bfloat16_training_keeps_float32_losses_and_learns():
    images, labels = separable_images(64)
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = objectives.AdversarialRegularization(_small_convnet(0), beta=1.0, attack=ATTACK)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert model.network.layers[0].compute_dtype == "bfloat16"
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9), jit_compile=False)
    loss = model.fit(images, labels, batch_size=16, epochs=10, verbose=0).history["loss"]
    assert np.all(np.isfinite(loss)) and loss[-1] < 0.7 * loss[0], loss


def test_fit_traces_the_train_step_once():
    """compile builds the optimizer, so the first step creates no variables and is not traced
    a second time (tracing a ResNet18 step costs more than a tiny run's training)."""
    traces = []

    class Counted(objectives.NaturalTraining):
        def train_step(self, data):
            traces.append(1)
            return super().train_step(data)

    images, labels = separable_images(32)
    model = Counted(_small_convnet(0), attack=ATTACK)
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9), jit_compile=False)
    model.fit(images, labels, batch_size=16, epochs=2, verbose=0, shuffle=False)
    assert len(traces) == 1
