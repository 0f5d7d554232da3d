"""The landscape slice against a float64 numpy reference, and `python -m tools.landscape`."""

import json

import keras
import numpy as np
import pytest

from tests.support import assert_one_line_error, run_tool, run_tool_in_process
from tf_advreg.evaluation import landscape
from tf_advreg.export import export_saved_model
from tf_advreg.models import resnet18

SETTINGS = landscape.Settings(eps=0.1, span=2.0, resolution=5, batch_size=7, jit_compile=False)


def _linear_classifier(seed=0):
    """logits = W x + c on 4x4x1 images: smooth, with a loss numpy can compute exactly."""
    rng = np.random.default_rng(seed)
    weights = rng.normal(0, 1.0, (16, 3))
    bias = rng.normal(0, 0.1, 3)
    inputs = keras.Input((4, 4, 1))
    dense = keras.layers.Dense(3)
    model = keras.Model(inputs, dense(keras.layers.Flatten()(inputs)))
    dense.set_weights([weights.astype("float32"), bias.astype("float32")])
    return model, weights, bias


def _ce64(x, label, weights, bias):
    """Cross-entropy and its gradient in float64, for one flattened image."""
    logits = x @ weights + bias
    logits -= logits.max()
    p = np.exp(logits) / np.exp(logits).sum()
    onehot = np.eye(len(bias))[label]
    return -np.log(p[label]), weights @ (p - onehot), int(np.argmax(logits))


def test_slices_match_a_float64_reference():
    model, weights, bias = _linear_classifier()
    rng = np.random.default_rng(1)
    images = rng.uniform(0, 1, (3, 4, 4, 1)).astype("float32")
    labels = np.array([0, 1, 2], "int32")
    got = landscape.slices(model, images, labels, SETTINGS)
    _, _, random = landscape.directions(model, images, labels, SETTINGS.seed)
    coordinates = SETTINGS.coordinates()
    for i, s in enumerate(got):
        x = images[i].reshape(-1).astype(np.float64)
        natural, gradient, _ = _ce64(x, labels[i], weights, bias)
        g, r = np.sign(gradient), random[i].reshape(-1)
        loss = np.empty((5, 5))
        prediction = np.empty((5, 5), int)
        for p, a in enumerate(coordinates):
            for q, b in enumerate(coordinates):
                point = x + SETTINGS.eps * (a * g + b * r)
                loss[p, q], _, prediction[p, q] = _ce64(point, labels[i], weights, bias)
        np.testing.assert_allclose(s.loss, loss, rtol=1e-4, atol=1e-5)
        np.testing.assert_array_equal(s.prediction, prediction)
        a, b = np.meshgrid(coordinates, coordinates, indexing="ij")
        tangent = natural + SETTINGS.eps * (a * (gradient @ g) + b * (gradient @ r))
        ball = np.abs(a) + np.abs(b) <= 1
        summary = s.summary()
        assert summary["natural_loss"] == pytest.approx(natural, rel=1e-4)
        assert summary["loss_increase"] == pytest.approx((loss[ball] - natural).max(), abs=1e-4)
        assert summary["linearity_error"] == pytest.approx(
            np.abs(loss - tangent)[ball].max(), abs=1e-4
        )
        assert summary["flipped_fraction"] == np.mean(prediction[ball] != labels[i])


def test_the_ball_is_the_diamond_and_the_centre_is_the_image():
    model, _, _ = _linear_classifier()
    images = np.full((1, 4, 4, 1), 0.5, "float32")
    (s,) = landscape.slices(model, images, np.array([0], "int32"), SETTINGS)
    # Coordinates -2, -1, 0, 1, 2: inside |a| + |b| <= 1 are the centre and its 4 neighbours.
    assert s.in_ball().sum() == 5
    assert s.summary()["natural_loss"] == pytest.approx(
        float(
            keras.losses.sparse_categorical_crossentropy(
                np.array([0]), model(images), from_logits=True
            )[0]
        ),
        rel=1e-5,
    )
    # Along the adversarial axis the loss rises at first: g is the ascent direction.
    assert s.loss[3, 2] > s.loss[2, 2] and s.summary()["loss_increase"] > 0


def test_batched_grid_equals_one_call_on_all_points():
    """Padding to whole batches changes nothing: batch 7 (padded) equals batch 25 (one call)."""
    network = resnet18(num_classes=10, width=4, input_shape=(8, 8, 1))
    images = np.random.default_rng(0).uniform(0, 1, (2, 8, 8, 1)).astype("float32")
    labels = np.array([3, 7], "int32")
    padded = landscape.slices(network, images, labels, SETTINGS)
    whole = landscape.slices(
        network, images, labels, landscape.Settings(**{**SETTINGS.__dict__, "batch_size": 25})
    )
    for p, w in zip(padded, whole):
        np.testing.assert_allclose(p.loss, w.loss, rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(p.prediction, w.prediction)


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("eps", 0.0, "--eps must be > 0"),
        ("span", 0.5, "--span must be >= 1"),
        ("resolution", 4, "--resolution must be odd"),
        ("batch_size", 0, "--batch_size must be positive"),
    ],
)
def test_bad_settings_are_named(field, value, message):
    with pytest.raises(ValueError, match=message):
        landscape.Settings(**{field: value}).check()


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "saved_model"
    export_saved_model(resnet18(num_classes=10, width=4, input_shape=(8, 8, 1)), path)
    return path


def test_cli_writes_png_and_json_with_progress(saved_model, tmp_path):
    out = tmp_path / "out"
    result = run_tool(
        "landscape",
        f"--model={saved_model}",
        "--dataset=digits",
        "--num_images=2",
        "--resolution=5",
        "--eps=0.1",
        f"--output_dir={out}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "landscape: image 2/2" in result.stderr
    doc = json.loads((out / "landscape.json").read_text())
    assert doc["summary"]["num_images"] == 2 and len(doc["images"]) == 2
    assert np.array(doc["images"][0]["loss"]).shape == (5, 5)
    assert (out / "landscape.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(
    "flag, message",
    [
        ("--resolution=4", "--resolution must be odd"),
        ("--num_images=0", "--num_images must be positive"),
    ],
)
def test_cli_bad_values_are_one_line_errors_and_write_nothing(saved_model, tmp_path, flag, message):
    out = tmp_path / "out"
    result = run_tool_in_process(
        "landscape", f"--model={saved_model}", "--dataset=digits", flag, f"--output_dir={out}"
    )
    assert_one_line_error(result, message)
    assert not out.exists()
