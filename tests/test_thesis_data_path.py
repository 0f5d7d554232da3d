"""The thesis's data path end to end on 32x32x3 data: CINIC-10 -> CIFAR-10, export, evaluate.

`tools.train --config=configs/default.py` (the thesis settings at width 4, one epoch per
phase), then `tools.export` and `tools.evaluate`, each a subprocess reading TFDS cinic10 and
cifar10 from --data_dir, where the real TFDS builders prepared tiny fake downloads; flax's
ImageNet example tests its trainer on TFDS mock data the same way.
"""

import json

import numpy as np
import pytest
import tensorflow as tf
from fake_datasets import prepare_fake_cifar10, write_fake_cinic
from support import run_tool

from tf_advreg import data
from tf_advreg.data import augment
from tf_advreg.training import callbacks, checkpoints

pytestmark = pytest.mark.slow
BATCH = 20
TEST_EXAMPLES = 20  # prepare_fake_cifar10's and write_fake_cinic's test splits


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("tfds")
    prepare_fake_cifar10(root)  # 50 train, 20 test images
    # CINIC-10 cannot be downloaded; tools.train prepares it from the manual directory.
    write_fake_cinic(root / "downloads" / "manual" / "CINIC-10")  # 20 per split
    return root


@pytest.fixture(scope="module")
def workdir(data_dir, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("run") / "thesis"
    result = run_tool(
        "train",
        "--config=configs/default.py",
        f"--workdir={workdir}",
        f"--data_dir={data_dir}",
        "--width=4",
        f"--batch_size={BATCH}",
        "--pretrain_epochs=1",
        "--tune_epochs=1",
        "--attack_steps=2",
        "--eval_attack_steps=2",
        f"--train_eval_subset={BATCH}",
        "--test_eval_subset=10",  # smaller than the test split: the final epoch reads it all
        "--jit_compile=false",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return workdir


def test_pretrains_on_cinic10_and_tunes_on_cifar10(workdir):
    config = json.loads((workdir / "config.json").read_text())
    assert (config["pretrain"]["dataset"], config["tune"]["dataset"]) == ("cinic10", "cifar10")
    for phase in ("pretrain", "tune"):
        (record,) = callbacks.read_metrics(workdir / phase / "metrics.jsonl")
        assert record["test/num_examples"] == TEST_EXAMPLES
        assert 0.0 <= record["test/adversarial_accuracy"] <= record["test/natural_accuracy"] <= 1
        network = json.loads(
            (checkpoints.list_checkpoints(workdir / phase)[-1] / "network.json").read_text()
        )
        assert network["input_shape"] == [32, 32, 3] and network["num_classes"] == 10
    (tune,) = callbacks.read_metrics(workdir / "tune" / "metrics.jsonl")
    assert tune["pretrain_train/num_examples"] == BATCH
    (pretrained,) = callbacks.read_metrics(workdir / "pretrain" / "metrics.jsonl")
    assert pretrained["tune_test/num_examples"] == TEST_EXAMPLES  # the untuned model on CIFAR-10
    assert pretrained["tune_train/num_examples"] == BATCH


def _crop_flip_of(augmented, original, padding):
    """(row, column, flipped) such that `augmented` is that crop of the padded `original`."""
    padded = np.pad(original, [(padding, padding), (padding, padding), (0, 0)])
    size = original.shape[0]
    for row in range(2 * padding + 1):
        for col in range(2 * padding + 1):
            crop = padded[row : row + size, col : col + size]
            for flipped, candidate in ((False, crop), (True, crop[:, ::-1])):
                if np.array_equal(augmented, candidate):
                    return row - padding, col - padding, flipped
    return None


def test_cifar10_training_batches_are_randomly_cropped_and_flipped(workdir, data_dir):
    config = json.loads((workdir / "config.json").read_text())
    assert config["augment"] == "default"

    def tune_batches(policy):
        batches = data.load(
            "cifar10",
            config["tune"]["split"],
            batch_size=BATCH,
            training=True,
            data_dir=str(data_dir),
            seed=config["seed"],
            augment=policy,
        )
        return np.concatenate([images for images, _ in batches.as_numpy_iterator()])

    plain, augmented = tune_batches("none"), tune_batches(config["augment"])

    assert augmented.shape == (2 * BATCH, 32, 32, 3)
    padding = augment.crop_padding(32)
    assert padding == 4
    found = [_crop_flip_of(a, p, padding) for a, p in zip(augmented, plain)]
    assert None not in found
    assert {flipped for _, _, flipped in found} == {False, True}
    assert any((row, col) != (0, 0) for row, col, _ in found)


def test_export_and_evaluate_give_the_trained_models_results(workdir, data_dir, tmp_path):
    exported = tmp_path / "export"
    result = run_tool("export", f"--checkpoint={workdir / 'tune'}", f"--output={exported}")
    assert result.returncode == 0, result.stderr[-3000:]

    images, _ = next(
        iter(data.load("cifar10", "test", batch_size=8, training=False, data_dir=str(data_dir)))
    )
    network = checkpoints.build_network(checkpoints.list_checkpoints(workdir / "tune")[-1])
    serving = tf.saved_model.load(str(exported)).signatures["serving_default"]
    np.testing.assert_allclose(
        serving(images=images)["logits"].numpy(),
        network(images, training=False).numpy(),
        rtol=1e-5,
        atol=1e-5,
    )

    output = tmp_path / "evaluation.json"
    result = run_tool(
        "evaluate",
        f"--model={exported}",
        "--dataset=cifar10",
        f"--data_dir={data_dir}",
        "--attack=pgd",
        "--steps=2",
        "--step_size=0.01",
        "--jit_compile=false",
        f"--output={output}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (evaluation,) = json.loads(output.read_text())["evaluations"]
    assert evaluation["data"]["num_examples"] == TEST_EXAMPLES
    natural = next(r for r in evaluation["results"] if r["attack"] == "natural")
    (tune,) = callbacks.read_metrics(workdir / "tune" / "metrics.jsonl")
    # The final epoch evaluated the same weights on the same whole test split.
    assert natural["accuracy"] == pytest.approx(tune["test/natural_accuracy"], abs=1e-6)
