"""Two replicas on the real input pipeline take the single-device steps, augmentation on."""

import keras
import numpy as np
import tensorflow as tf
from support import thesis_attack, two_replicas

from tf_advreg import data, objectives
from tf_advreg.models import resnet18
from tf_advreg.training import batchnorm, phases


def test_two_replicas_read_the_single_device_batches_and_take_its_steps():
    """Keras and tf.distribute may open an iterator on the data before training reads it; the
    batches (order and per-batch crops and flips) must not depend on that. Learning rate 0.01:
    at 0.1 this width-4 network turns float rounding into visible differences within steps."""
    initial = resnet18(num_classes=10, width=4, input_shape=(8, 8, 1)).get_weights()

    def train(strategy):
        batches = data.load(
            "digits", "train", batch_size=50, training=True, seed=1, augment="default", subset=100
        )
        with strategy.scope():
            network = resnet18(num_classes=10, width=4, input_shape=(8, 8, 1), sync_batchnorm=True)
            network.set_weights(initial)
            model = objectives.NaturalTraining(network, attack=thesis_attack())
            model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9), jit_compile=False)
        model.fit(
            phases.shard_by_example(batches), epochs=1, steps_per_epoch=2, verbose=0, shuffle=False
        )
        return network.get_weights()

    single = train(tf.distribute.get_strategy())
    mirrored = train(two_replicas())
    assert any(not np.allclose(a, b) for a, b in zip(initial, single))
    for a, b in zip(mirrored, single):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_two_replicas_keep_one_copy_of_the_moving_statistics_their_mean():
    """Per-replica BatchNorm (the default) at CIFAR's shape: after each step every replica holds
    the same moving statistics, the mean of those each replica's half of the batch gives
    (computed here on one device, half by half). Without sharing, each replica kept its own
    half's, and the evaluation, the checkpoint and the weight average saw different networks."""
    shape, steps = (32, 32, 3), 2
    rng = np.random.default_rng(0)
    images = rng.uniform(size=(steps, 16, *shape)).astype("float32")
    images[:, 8:] *= 0.5  # the second replica's halves: other statistics
    labels = rng.integers(0, 10, (steps, 16)).astype("int32")
    initial = resnet18(num_classes=10, width=2, input_shape=shape).get_weights()

    with two_replicas().scope():
        network = resnet18(num_classes=10, width=2, input_shape=shape)
        network.set_weights(initial)
        model = objectives.NaturalTraining(network, attack=thesis_attack(), ema_decay=0.5)
        model.compile(optimizer=keras.optimizers.SGD(0.0), jit_compile=False)  # weights fixed
    batches = tf.data.Dataset.from_tensor_slices((images, labels))
    model.fit(batches, epochs=1, steps_per_epoch=steps, verbose=0, shuffle=False)

    reference = resnet18(num_classes=10, width=2, input_shape=shape)
    reference.set_weights(initial)
    statistics = batchnorm.replica_statistics(reference)
    for step in range(steps):
        start = [v.numpy() for v in statistics]
        halves = []
        for half in (slice(0, 8), slice(8, 16)):
            for variable, value in zip(statistics, start):
                variable.assign(value)
            reference(images[step, half], training=True)
            halves.append([v.numpy() for v in statistics])
        for variable, *values in zip(statistics, *halves):
            variable.assign(np.mean(values, axis=0))

    trained = batchnorm.replica_statistics(network)
    averaged = batchnorm.replica_statistics(model.weight_average.network)
    assert len(trained) == len(statistics) == 40  # 20 BatchNorm layers
    for mirrored, expected in zip(trained, statistics):
        first, second = (copy.numpy() for copy in mirrored.value.values)
        np.testing.assert_array_equal(first, second)
        np.testing.assert_allclose(first, expected.numpy(), rtol=1e-5, atol=1e-7)
    for mirrored in averaged:
        np.testing.assert_array_equal(*(copy.numpy() for copy in mirrored.value.values))
