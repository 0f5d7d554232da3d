"""imagenet32_no_cifar10: ImageNet32 without CINIC-10's CIFAR-10 synsets, on a fake download."""

import json

import numpy as np
import pytest
import tensorflow as tf
from fake_datasets import prepare_fake_cifar10, write_fake_imagenet32

from tf_advreg import data
from tf_advreg.data import imagenet32
from tf_advreg.experiments import grid
from tf_advreg.training import callbacks, checkpoints, legacy, phases

AIRLINER, AMBULANCE, TENCH = "n02690373", "n02701002", "n01440764"


def test_the_dropped_classes_are_cinic10s_synsets_in_imagenet_1k():
    dropped = imagenet32.cifar10_synsets()
    assert len(imagenet32.imagenet_synsets()) == 1000
    assert len(dropped) == 142 and set(dropped) <= set(imagenet32.imagenet_synsets())
    assert set(dropped.values()) == set(data.CIFAR10_CLASSES)  # every class loses some
    assert dropped[AIRLINER] == "airplane" and dropped[AMBULANCE] == "automobile"
    kept = imagenet32.kept_synsets()
    assert len(kept) == 858 and TENCH in kept and AIRLINER not in kept
    assert list(kept) == [s for s in imagenet32.imagenet_synsets() if s in set(kept)]


def test_builder_drops_the_cifar10_classes_and_renumbers_the_rest(tmp_path):
    synsets = imagenet32.imagenet_synsets()
    kept = imagenet32.kept_synsets()
    # ImageNet32 labels (0-based): two kept classes, two dropped ones, the last class (kept).
    train = [synsets.index(TENCH), synsets.index(AIRLINER), 999, synsets.index(AMBULANCE), 999]
    validation = [synsets.index(AIRLINER), synsets.index(TENCH), 5]
    write_fake_imagenet32(tmp_path / "downloads" / "manual", train, validation)

    info = data.info("imagenet32_no_cifar10", str(tmp_path))  # prepares it
    assert info.num_classes == 858 and info.class_names == kept
    assert info.split_sizes == {"train": 3, "test": 2}
    for split, originals in (("train", train), ("test", validation)):
        images, labels = next(
            iter(
                data.load(
                    "imagenet32_no_cifar10",
                    split,
                    batch_size=10,
                    training=False,
                    data_dir=str(tmp_path),
                )
            )
        )
        wanted = [o for o in originals if synsets[o] in set(kept)]
        assert sorted(labels.numpy()) == sorted(kept.index(synsets[o]) for o in wanted)
        for image, label in zip(images.numpy(), labels.numpy()):
            original = synsets.index(kept[label])
            expected = [(original + c) % 256 / 255 for c in range(3)]  # CHW became HWC
            np.testing.assert_allclose(image, np.broadcast_to(expected, (32, 32, 3)), atol=1e-6)


@pytest.mark.slow
@pytest.mark.filterwarnings("error:Your input ran out of data")
def test_pretrains_on_it_and_tunes_on_cifar10_with_a_new_head(tmp_path):
    """The section 6.3 config at toy scale: 858-way pretraining, 10-way CIFAR-10 tuning."""
    synsets = imagenet32.imagenet_synsets()
    kept = [synsets.index(s) for s in imagenet32.kept_synsets()[:5]]
    write_fake_imagenet32(tmp_path / "downloads" / "manual", kept * 4, kept * 2)
    prepare_fake_cifar10(tmp_path)  # 50 train, 20 test images
    config = grid.load_experiment("configs/thesis/imagenet_no_cifar10.py").get_config()
    legacy.override(
        config,
        {
            "data_dir": str(tmp_path),
            "model.width": 2,
            "batch_size": 10,
            "pretrain.epochs": 1,
            "tune.epochs": 1,
            "attack.steps": 1,
            "attack.eval_steps": 1,
            "eval.train_subset": 10,
            "eval.test_subset": 10,
            "jit_compile": "false",
        },
    )
    workdir = tmp_path / "run"
    for phase in phases.phases_from_config(config):
        phases.run_phase(config, phase, workdir, tf.distribute.get_strategy())
    for phase, classes in (("pretrain", 858), ("tune", 10)):
        checkpoint = checkpoints.list_checkpoints(workdir / phase)[-1]
        assert json.loads((checkpoint / "network.json").read_text())["num_classes"] == classes
    (pretrain,) = callbacks.read_metrics(workdir / "pretrain" / "metrics.jsonl")
    assert not any(key.startswith("tune_") for key in pretrain)  # 858 logits, 10-class labels
    (tune,) = callbacks.read_metrics(workdir / "tune" / "metrics.jsonl")
    assert "test/adversarial_accuracy" in tune
    assert not any(key.startswith("pretrain_train/") for key in tune)  # 858 labels, 10 logits
