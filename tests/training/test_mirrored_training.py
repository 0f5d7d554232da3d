"""Two replicas on the real input pipeline take the single-device steps, augmentation on."""

import keras
import numpy as np
import tensorflow as tf
from support import thesis_attack, two_replicas

from tf_advreg import data, objectives
from tf_advreg.models import resnet18
from tf_advreg.training import phases


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
