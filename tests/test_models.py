"""The CIFAR ResNet18: size, pixel-space inputs, small inputs, float32 logits."""

import keras
import numpy as np
import pytest

from tf_advreg.models import resnet18


def test_full_width_has_thesis_parameter_count():
    network = resnet18(num_classes=10, width=64, input_shape=(32, 32, 3))
    assert abs(network.count_params() - 11.17e6) / 11.17e6 < 0.005
    assert not any(isinstance(layer, keras.layers.MaxPooling2D) for layer in network.layers)
    assert network.get_layer("stem_conv").kernel.shape == (3, 3, 3, 64)


def test_width_scales_every_stage():
    network = resnet18(num_classes=7, width=16, input_shape=(32, 32, 3))
    widths = [network.get_layer(f"stage{s}_block2_2_conv").kernel.shape[-1] for s in range(1, 5)]
    assert widths == [16, 32, 64, 128]
    assert network.output_shape == (None, 7)


@pytest.mark.parametrize("shape", [(8, 8, 1), (16, 16, 1), (32, 32, 3)])
def test_small_and_grayscale_inputs(shape):
    network = resnet18(num_classes=10, width=4, input_shape=shape)
    logits = network(np.random.rand(3, *shape).astype("float32"))
    assert logits.shape == (3, 10)
    assert np.all(np.isfinite(logits))


def test_normalization_is_inside_the_model():
    network = resnet18(num_classes=10, width=4, input_shape=(8, 8, 3), mean=(0.2, 0.4, 0.6))
    normalize = keras.Model(network.input, network.get_layer("normalize").output)
    image = np.full((1, 8, 8, 3), 0.4, "float32")
    expected = (0.4 - np.array([0.2, 0.4, 0.6])) / np.array([0.2471, 0.2435, 0.2616])
    np.testing.assert_allclose(normalize(image).numpy()[0, 0, 0], expected, rtol=1e-5)


def test_logits_stay_float32_under_mixed_bfloat16():
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        network = resnet18(num_classes=10, width=4, input_shape=(8, 8, 1))
        assert network.get_layer("stage1_block1_1_conv").compute_dtype == "bfloat16"
        assert network(np.random.rand(2, 8, 8, 1).astype("float32")).dtype == "float32"
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_a_small_input_change_reaches_the_logits_under_mixed_bfloat16():
    """bfloat16 rounds a pixel at 0.7 to steps of 0.004: normalization must run in float32."""
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        keras.utils.set_random_seed(0)
        network = resnet18(num_classes=10, width=4, input_shape=(32, 32, 3))
    finally:
        keras.mixed_precision.set_global_policy("float32")
    images = np.random.default_rng(0).uniform(0, 1, (4, 32, 32, 3)).astype("float32")
    images[:, 16, 16, :] = 0.7
    nudged = images.copy()
    nudged[:, 16, 16, :] += 0.001
    assert np.abs(network(nudged).numpy() - network(images).numpy()).max() > 0


def test_bad_normalization_statistics_are_rejected():
    with pytest.raises(ValueError, match="one value per channel"):
        resnet18(input_shape=(8, 8, 1), mean=(0.5, 0.5, 0.5))
