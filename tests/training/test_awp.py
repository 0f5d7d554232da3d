"""Adversarial weight perturbation: the step against a float64 reference, consecutive steps
against the authors' perturb-and-restore, off means today's step bit for bit, and two replicas
take the one-device step."""

import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf
from support import separable_images, two_replicas

from tf_advreg import objectives
from tf_advreg.attacks import AttackSettings
from tf_advreg.training import awp

ATTACK = AttackSettings(
    eps=0.1, norm="linf", steps=3, step_size=0.04, eval_steps=3, eval_step_size=0.003
)


def _two_layer(seed):
    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [keras.Input((5,)), keras.layers.Dense(4, activation="tanh"), keras.layers.Dense(3)]
    )


def _reference_step(weights, x, y, gamma, lr, wd):
    """One AWP + SGD step of tanh(x W1 + b1) W2 + b2 under mean CE, in float64 NumPy."""
    w1, b1, w2, b2 = (np.asarray(w, np.float64) for w in weights)
    x = np.asarray(x, np.float64)
    onehot = np.eye(w2.shape[1])[y]

    def gradients(w1, b1, w2, b2):
        hidden = np.tanh(x @ w1 + b1)
        logits = hidden @ w2 + b2
        p = np.exp(logits - logits.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        d_logits = (p - onehot) / len(x)
        d_hidden = d_logits @ w2.T * (1 - hidden**2)
        return x.T @ d_hidden, d_hidden.sum(0), hidden.T @ d_logits, d_logits.sum(0)

    g1, _, g2, _ = gradients(w1, b1, w2, b2)
    v1 = gamma * np.linalg.norm(w1) / np.linalg.norm(g1) * g1
    v2 = gamma * np.linalg.norm(w2) / np.linalg.norm(g2) * g2
    grads = gradients(w1 + v1, b1, w2 + v2, b2)  # biases are not perturbed
    return [w - lr * (g + wd * w) for w, g in zip((w1, b1, w2, b2), grads)]


@pytest.mark.parametrize("jit_compile", [False, True])
def test_one_step_matches_a_float64_reference(jit_compile):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 5)).astype("float32")
    y = rng.integers(0, 3, 8).astype("int32")
    network = _two_layer(1)
    initial = [w.numpy() for w in network.weights]
    model = objectives.NaturalTraining(network, awp_gamma=0.2, weight_decay=0.01, attack=ATTACK)
    model.compile(optimizer=keras.optimizers.SGD(0.5), jit_compile=jit_compile)
    model.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False)
    expected = _reference_step(initial, x, y, gamma=0.2, lr=0.5, wd=0.01)
    plain = _reference_step(initial, x, y, gamma=0.0, lr=0.5, wd=0.01)
    assert np.abs(expected[0] - plain[0]).max() > 1e-3  # the perturbation matters here
    for got, want in zip(network.weights, expected):
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-5, atol=1e-6)


def _small_convnet(seed, batchnorm=True):
    keras.utils.set_random_seed(seed)
    norm = [keras.layers.BatchNormalization()] if batchnorm else []
    return keras.Sequential(
        [keras.Input((8, 8, 1)), keras.layers.Conv2D(8, 3), *norm, keras.layers.ReLU()]
        + [keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(4)]
    )


def _train(name, strategy=None, epochs=1, gamma_value=None, jit_compile=False, **kwargs):
    images, labels = separable_images(16, seed=5)
    dataset = tf.data.Dataset.from_tensor_slices((images, labels)).batch(16)
    with (strategy or tf.distribute.get_strategy()).scope():
        model = objectives.objective_class(name)(
            _small_convnet(2, batchnorm=kwargs.pop("batchnorm", True)),
            beta=1.0,
            attack=dataclasses.replace(ATTACK, steps=kwargs.pop("attack_steps", ATTACK.steps)),
            **kwargs,
        )
        model.compile(optimizer=keras.optimizers.SGD(0.5, momentum=0.9), jit_compile=jit_compile)
    if gamma_value is not None:
        model.awp_gamma.assign(gamma_value)
    model.fit(dataset, epochs=epochs, verbose=0, shuffle=False)
    return [w.numpy() for w in model.network.weights]


def _perturb_and_restore(name, gamma):
    """The objective `name` with AWP as csdongxian/AWP's utils_awp.py steps: an ascent gradient
    whose BatchNorm statistics are thrown away, w + v written into the variables, the gradient
    taken there, w restored, then the update (weight decay on w, as ours). Eager."""

    class PerturbAndRestore(objectives.objective_class(name)):
        def train_step(self, data):
            images, labels = data
            images_adv = self.attack(images, labels)
            network = self.network
            kernels = [w for w in network.trainable_variables if len(w.shape) >= 2]

            def loss():
                logits_nat = network(images, training=True) if name == "trades" else None
                logits_adv = network(images_adv, training=True)
                return tf.reduce_mean(self.training_loss(logits_nat, logits_adv, labels))

            statistics = [s.numpy() for s in network.non_trainable_variables]
            with tf.GradientTape() as tape:
                ascent = loss()
            gradients = tape.gradient(ascent, kernels)
            for s, value in zip(network.non_trainable_variables, statistics):
                s.assign(value)
            weights = [w.numpy() for w in kernels]
            for w, g in zip(kernels, gradients):
                w.assign_add(gamma * tf.norm(w) / tf.norm(g) * g)
            with tf.GradientTape() as tape:
                descent = loss()
            gradients = tape.gradient(descent, network.trainable_variables)
            for w, value in zip(kernels, weights):
                w.assign(value)
            gradients = [
                g + self.weight_decay * w for g, w in zip(gradients, network.trainable_variables)
            ]
            self.optimizer.apply_gradients(zip(gradients, network.trainable_variables))
            return {"loss": descent}

    return PerturbAndRestore


@pytest.mark.parametrize("name", ["robopt", "trades"])
def test_consecutive_steps_match_perturb_and_restore(name):
    """Eight steps (momentum, weight decay, BatchNorm statistics) agree with the authors' way
    of perturbing: no v left in the weights or carried into the next step. x' is the random
    start alone: PGD's sign steps would turn float rounding into a different x'."""
    images, labels = separable_images(32, seed=3)
    settings = dict(beta=1.0, weight_decay=0.05, attack=dataclasses.replace(ATTACK, steps=0))

    def train(model):
        model.fit(images, labels, batch_size=8, epochs=2, verbose=0, shuffle=False)
        return [w.numpy() for w in model.network.weights]

    ours = objectives.objective_class(name)(_small_convnet(4), awp_gamma=0.05, **settings)
    ours.compile(optimizer=keras.optimizers.SGD(0.2, momentum=0.9), jit_compile=False)
    reference = _perturb_and_restore(name, 0.05)(_small_convnet(4), **settings)
    reference.compile(optimizer=keras.optimizers.SGD(0.2, momentum=0.9), run_eagerly=True)
    plain = objectives.objective_class(name)(_small_convnet(4), **settings)
    plain.compile(optimizer=keras.optimizers.SGD(0.2, momentum=0.9), jit_compile=False)
    want, got, unperturbed = train(reference), train(ours), train(plain)
    assert any(not np.allclose(p, w, atol=1e-3) for p, w in zip(unperturbed, want))
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["robopt", "trades"])
def test_zero_gamma_is_todays_step_exactly(name):
    """With the perturbation path on but gamma = 0 (the warm-up), the step, BatchNorm
    statistics included, is bit for bit the step without AWP."""
    plain = _train(name, epochs=2)
    warming_up = _train(name, epochs=2, awp_gamma=0.05, gamma_value=0.0)
    perturbed = _train(name, epochs=2, awp_gamma=0.05)
    for a, b in zip(plain, warming_up):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(plain, perturbed))


@pytest.mark.parametrize("name", ["robopt", "trades"])
def test_mirrored_step_matches_single_device(name):
    """The ascent gradient is summed across replicas: each applies the global batch's v."""
    # As in test_objectives: TRADES's KL attack from x has a zero gradient up to rounding.
    settings = dict(
        awp_gamma=0.05,
        weight_decay=0.05,
        random_start=False,
        batchnorm=False,
        epochs=2,
        attack_steps=0 if name == "trades" else ATTACK.steps,
    )
    mirrored = _train(name, two_replicas(), **settings)
    single = _train(name, **settings)
    plain = _train(name, **settings | dict(awp_gamma=0.0))
    assert any(not np.allclose(s, p, atol=1e-4) for s, p in zip(single, plain))
    for m, s in zip(mirrored, single):
        np.testing.assert_allclose(m, s, rtol=1e-5, atol=1e-6)


def test_only_kernels_are_perturbed_and_their_relative_size_is_gamma():
    network = _small_convnet(0)
    variables = awp.perturbed_variables(network)
    assert [v.path for v in variables] == [
        v.path for v in network.trainable_variables if "kernel" in v.path
    ]
    gradients = [tf.random.normal(v.shape, seed=i) for i, v in enumerate(variables)]
    for v, w in zip(awp.weight_perturbation(gradients, variables, 0.01), variables):
        np.testing.assert_allclose(np.linalg.norm(v), 0.01 * np.linalg.norm(w), rtol=1e-5)


def test_warmup_sets_gamma_per_epoch():
    images, labels = separable_images(16, seed=5)
    model = objectives.RobustOptimization(_small_convnet(0), awp_gamma=0.05, attack=ATTACK)
    model.compile(optimizer=keras.optimizers.SGD(0.1), jit_compile=False)
    seen = []
    record = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: seen.append(float(model.awp_gamma.numpy()))
    )
    warmup = awp.AwpWarmup(0.05, start_epoch=2)
    model.fit(images, labels, batch_size=16, epochs=3, callbacks=[warmup, record], verbose=0)
    np.testing.assert_allclose(seen, [0.0, 0.0, 0.05])


@pytest.mark.parametrize("gamma, start", [(-0.1, 0), (0.01, -1)])
def test_bad_warmup_settings_are_rejected(gamma, start):
    with pytest.raises(ValueError, match="AWP needs gamma >= 0 and start_epoch >= 0"):
        awp.AwpWarmup(gamma, start)


def test_negative_gamma_is_rejected():
    with pytest.raises(ValueError, match="awp_gamma must be >= 0"):
        objectives.RobustOptimization(_small_convnet(0), awp_gamma=-1e-3, attack=ATTACK)


def test_batchnorm_statistics_come_from_the_perturbed_forward_only():
    """The ascent's forward pass leaves the moving statistics alone (the authors' proxy network
    takes them); the update's forward at w + v sets them."""
    images, labels = separable_images(16, seed=8)
    network = _small_convnet(6)
    conv, norm = network.layers[0], network.layers[1]
    kernel, bias = (w.numpy() for w in conv.weights)

    def perturbation():
        def loss():
            logits = network(images, training=True)
            return tf.nn.compute_average_loss(
                keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)
            )

        return awp.perturbation(network, loss, 0.5)

    v = perturbation()[0].numpy()  # the conv kernel's
    model = objectives.NaturalTraining(network, awp_gamma=0.5, attack=ATTACK)
    model.compile(optimizer=keras.optimizers.SGD(0.1), jit_compile=False)
    model.fit(images, labels, batch_size=16, epochs=1, verbose=0, shuffle=False)

    features = tf.nn.conv2d(images, kernel + v, 1, "VALID") + bias
    batch_mean = tf.reduce_mean(features, axis=(0, 1, 2)).numpy()
    np.testing.assert_allclose(
        norm.moving_mean.numpy(), (1 - norm.momentum) * batch_mean, rtol=1e-4, atol=1e-7
    )
