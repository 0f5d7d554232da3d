"""Tiny fake downloads of the real datasets, prepared by the real TFDS builders."""

import io
import tempfile
import zipfile
from pathlib import Path
from unittest import mock

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from tf_advreg import data
from tf_advreg.data import cinic10


def write_fake_cinic(root: Path, per_class: int = 2) -> Path:
    """train/valid/test/<class>/*.png; every pixel of an image encodes its class (10 * label)."""
    for folder in cinic10.SPLIT_FOLDERS.values():
        for label, name in enumerate(data.CIFAR10_CLASSES):
            class_dir = root / folder / name
            class_dir.mkdir(parents=True)
            for i in range(per_class):
                # One grayscale PNG per class: the builder must still deliver RGB.
                channels = 1 if i == 0 else 3
                image = np.full((32, 32, channels), 10 * label, np.uint8)
                png = tf.io.encode_png(image).numpy()
                (class_dir / f"cifar10-{folder}-{i}.png").write_bytes(png)
    return root


def prepare_fake_cifar10(data_dir: Path, per_class: int = 1, test_per_class: int = 2) -> None:
    """Prepares TFDS cifar10 in `data_dir` with TFDS's own builder, from a fake download.

    The download is CIFAR-10's binary format (a label byte, then the R, G and B planes) holding
    random images, `per_class` of each class in each of the five training files and
    `test_per_class` in the test file. Afterwards the directory is a prepared cifar10 like a
    real one, so tools run as subprocesses read it through --data_dir.
    """
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as download:
        batches = Path(download, "cifar-10-batches-bin")
        batches.mkdir()

        def write(name: str, count: int) -> None:
            labels = np.repeat(np.arange(10, dtype=np.uint8), count)
            planes = rng.integers(0, 256, (len(labels), 3 * 32 * 32), dtype=np.uint8)
            (batches / name).write_bytes(np.concatenate([labels[:, None], planes], 1).tobytes())

        for index in range(1, 6):
            write(f"data_batch_{index}.bin", per_class)
        write("test_batch.bin", test_per_class)
        (batches / "batches.meta.txt").write_text("\n".join(data.CIFAR10_CLASSES) + "\n")
        builder = tfds.builder("cifar10", data_dir=str(data_dir))
        with mock.patch.object(
            tfds.download.DownloadManager, "download_and_extract", return_value=download
        ):
            builder.download_and_prepare(
                download_config=tfds.download.DownloadConfig(try_download_gcs=False)
            )


def write_fake_imagenet32(manual_dir: Path, train_labels, validation_labels) -> None:
    """Imagenet32_{train,val}_npz.zip as image-net.org serves them: npz files of flat CHW uint8
    images ("data") and 1-based labels ("labels"). Image i's channel c is filled with
    (label + c) % 256, so the tests can check that images travel with their labels."""
    manual_dir.mkdir(parents=True, exist_ok=True)
    for archive, member, labels in (
        ("Imagenet32_train_npz.zip", "Imagenet32_train_npz/train_data_batch_1.npz", train_labels),
        ("Imagenet32_val_npz.zip", "Imagenet32_val_npz/val_data.npz", validation_labels),
    ):
        labels = np.asarray(labels)  # 0-based ImageNet32 classes
        planes = (labels[:, None, None] + np.arange(3)[None, :, None]) % 256
        images = np.broadcast_to(planes, (len(labels), 3, 1024)).reshape(len(labels), -1)
        buffer = io.BytesIO()
        np.savez(buffer, data=images.astype(np.uint8), labels=labels + 1)
        with zipfile.ZipFile(manual_dir / archive, "w") as zipped:
            zipped.writestr(member, buffer.getvalue())
