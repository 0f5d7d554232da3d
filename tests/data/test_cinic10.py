"""The CINIC-10 TFDS builder, run end to end on a tiny fake CINIC-10 written by the tests."""

import tarfile

import numpy as np
import pytest
import requests
import tensorflow_datasets as tfds
from fake_datasets import write_fake_cinic

from tf_advreg import data
from tf_advreg.data import cinic10

PER_CLASS = 2


def load_all(split, **kwargs):
    images, labels = [], []
    for x, y in data.load("cinic10", split, batch_size=7, training=False, **kwargs):
        images.append(x.numpy())
        labels.append(y.numpy())
    return np.concatenate(images), np.concatenate(labels)


def test_extracted_folder_gives_three_splits_in_cifar10_label_order(tmp_path):
    manual = tmp_path / "manual"
    write_fake_cinic(manual / "CINIC-10")  # extracted one level down is found too
    places = {"data_dir": str(tmp_path / "tfds"), "manual_dir": str(manual)}

    images, labels = load_all("train", **places)

    assert images.shape == (10 * PER_CLASS, 32, 32, 3)
    # Pixel value 10 * label was written into the folder of that class name.
    np.testing.assert_allclose(images.max(axis=(1, 2, 3)) * 255, 10 * labels, atol=1e-3)
    assert np.bincount(labels).tolist() == [PER_CLASS] * 10
    builder = tfds.builder("cinic10", data_dir=places["data_dir"])
    assert tuple(builder.info.features["label"].names) == data.CIFAR10_CLASSES
    assert data.info("cinic10", places["data_dir"]).split_sizes == {
        "train": 10 * PER_CLASS,
        "validation": 10 * PER_CLASS,
        "test": 10 * PER_CLASS,
    }
    assert len(load_all("train+validation", **places)[1]) == 20 * PER_CLASS


def test_archive_in_manual_dir(tmp_path):
    tree = write_fake_cinic(tmp_path / "tree")
    manual = tmp_path / "manual"
    manual.mkdir()
    with tarfile.open(manual / cinic10.ARCHIVE_NAME, "w:gz") as archive:
        for folder in cinic10.SPLIT_FOLDERS.values():
            archive.add(tree / folder, arcname=folder)

    builder = tfds.builder("cinic10", data_dir=str(tmp_path / "tfds"))
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=manual))

    sizes = {name: split.num_examples for name, split in builder.info.splits.items()}
    assert sizes == {"train": 20, "validation": 20, "test": 20}
    example = next(iter(builder.as_dataset(split="validation", shuffle_files=False)))
    assert example["id"].numpy().decode().startswith("valid/")
    assert example["image"].shape == (32, 32, 3)


def test_missing_data_without_network_says_where_to_put_it(tmp_path, monkeypatch):
    def offline(self, url):
        raise requests.exceptions.ConnectionError(f"cannot reach {url}")

    monkeypatch.setattr(tfds.download.DownloadManager, "download", offline)
    manual = tmp_path / "manual"

    with pytest.raises(ValueError) as error:
        data.load(
            "cinic10",
            "train",
            batch_size=4,
            training=True,
            data_dir=str(tmp_path / "tfds"),
            manual_dir=str(manual),
        )

    message = str(error.value)
    assert str(manual) in message
    assert cinic10.ARCHIVE_NAME in message and "valid/" in message


def test_corrupted_png_stops_the_build_naming_the_file(tmp_path):
    manual = write_fake_cinic(tmp_path / "manual")
    broken = manual / "test" / "dog" / "cifar10-test-1.png"
    broken.write_bytes(b"\x89PNG truncated")

    with pytest.raises(ValueError, match="is not a readable PNG") as error:
        load_all("test", data_dir=str(tmp_path / "tfds"), manual_dir=str(manual))

    assert str(broken) in str(error.value)
