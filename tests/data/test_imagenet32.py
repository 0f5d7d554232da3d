"""imagenet32_no_cifar10: ImageNet32 without CINIC-10's CIFAR-10 synsets, on a fake download."""

import numpy as np
from fake_datasets import write_fake_imagenet32

from tf_advreg import data
from tf_advreg.data import imagenet32

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
    assert info.split_sizes == {"train": 3, "validation": 2}
    for split, originals in (("train", train), ("validation", validation)):
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
