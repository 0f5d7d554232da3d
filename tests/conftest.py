"""Shared test setup: quiet TensorFlow, two logical CPUs for strategy tests, a trained model."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

# MirroredStrategy tests need two devices; logical devices must exist before TF initialises.
_cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    _cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()]
)


@pytest.fixture(scope="module")
def untrained():
    """An untrained width-4 ResNet18 on random 8x8 images, a quarter of them all 0 and a quarter
    all 1: pixels at the box edges, which projections must keep inside [0, 1]."""
    import numpy as np

    from tf_advreg.models import resnet18

    network = resnet18(num_classes=10, width=4, input_shape=(8, 8, 1))
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 1, (16, 8, 8, 1)).astype("float32")
    images[:4] = 0.0
    images[4:8] = 1.0
    return network, images, rng.integers(0, 10, 16).astype("int32")


@pytest.fixture(scope="session")
def digits_model():
    """A tiny ResNet18 trained briefly on scikit-learn's digits: enough to attack meaningfully."""
    import keras
    from sklearn.datasets import load_digits
    from support import thesis_attack

    from tf_advreg.models import resnet18
    from tf_advreg.objectives import NaturalTraining

    digits = load_digits()
    images = (digits.images[..., None] / 16.0).astype("float32")
    labels = digits.target.astype("int32")
    keras.utils.set_random_seed(0)
    network = resnet18(num_classes=10, width=8, input_shape=(8, 8, 1))
    model = NaturalTraining(network, attack=thesis_attack())
    model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9), jit_compile=True)
    model.fit(images[:1400], labels[:1400], batch_size=50, epochs=4, verbose=0)
    return network, images[1400:1528], labels[1400:1528]
