"""TFDS builder "imagenet32_no_cifar10": downsampled ImageNet (32x32) without the classes that
overlap CIFAR-10, registered when this module is imported.

The thesis (section 6.3) proposes pretraining on ImageNet with the CIFAR-10 classes omitted, so
that what transfers to CIFAR-10 is robustness, not the classes themselves. The dropped classes
are the ImageNet-1k synsets in CINIC-10's synset groups (cifar10_synsets.tsv names them and its
source): 142 of 1000, leaving 858, relabelled 0..857 in ImageNet32's order.

The builder is TFDS's imagenet_resized/32x32 (Chrabaszcz et al. 2017) with its examples
filtered: it reads the same two archives, Imagenet32_train_npz.zip and Imagenet32_val_npz.zip.
"""

from __future__ import annotations

import functools
from pathlib import Path

import tensorflow_datasets as tfds

_ImagenetResized = tfds.builder_cls("imagenet_resized")
SYNSETS_FILE = Path(__file__).with_name("cifar10_synsets.tsv")
# ImageNet's validation set is the test split: its test labels are not public, and the
# pipeline evaluates every phase on `eval.test_split` ("test").
ARCHIVES = {"train": "Imagenet32_train_npz.zip", "test": "Imagenet32_val_npz.zip"}
URL_PREFIX = "http://www.image-net.org/data/downsample/"


@functools.cache
def imagenet_synsets() -> tuple[str, ...]:
    """ImageNet32's 1000 synsets in label order (TFDS's label file for imagenet_resized)."""
    names = tfds.core.tfds_path("image_classification/imagenet_resized_labels.txt")
    return tuple(names.read_text().split())


@functools.cache
def cifar10_synsets() -> dict[str, str]:
    """Synset -> the CIFAR-10 class CINIC-10 files it under (the first of two for minivan)."""
    rows = [line.split("\t") for line in SYNSETS_FILE.read_text().splitlines()]
    found = {}
    for synset, cifar_class, _ in (row for row in rows if not row[0].startswith("#")):
        found.setdefault(synset, cifar_class)
    return found


@functools.cache
def kept_synsets() -> tuple[str, ...]:
    """The classes of imagenet32_no_cifar10, in ImageNet32's label order."""
    return tuple(s for s in imagenet_synsets() if s not in cifar10_synsets())


class Imagenet32NoCifar10(_ImagenetResized):
    """ImageNet32 without the 142 classes CINIC-10 maps to CIFAR-10: 858 classes."""

    name = "imagenet32_no_cifar10"
    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    BUILDER_CONFIGS = [c for c in _ImagenetResized.BUILDER_CONFIGS if c.name == "32x32"]
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        f"Put {' and '.join(ARCHIVES.values())} (from {URL_PREFIX}, ImageNet login needed) into "
        "the manual directory."
    )

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(
            builder=self,
            description=(
                "ImageNet32 (imagenet_resized/32x32) without the ImageNet-1k classes that "
                "CINIC-10 maps to CIFAR-10 classes; labels renumbered 0..857."
            ),
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(shape=(32, 32, 3)),
                    "label": tfds.features.ClassLabel(names=kept_synsets()),
                }
            ),
            supervised_keys=("image", "label"),
            homepage="https://patrykchrabaszcz.github.io/Imagenet32/",
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        return {
            split: self._generate_examples(dl_manager.iter_archive(_archive(dl_manager, name)))
            for split, name in ARCHIVES.items()
        }

    def _generate_examples(self, archive):
        """ImageNet32's examples of the kept classes, with the kept classes' labels."""
        new_label = {imagenet_synsets().index(s): i for i, s in enumerate(kept_synsets())}
        for key, record in super()._generate_examples(archive):
            if record["label"] in new_label:
                yield key, {**record, "label": new_label[record["label"]]}


def _archive(dl_manager, name: str):
    """The archive from the manual directory if it is there, else downloaded."""
    try:
        manual = Path(dl_manager.manual_dir) / name
    except AssertionError:  # TFDS's way of saying the manual directory is missing or empty.
        manual = None
    if manual is not None and manual.is_file():
        return manual
    return dl_manager.download(URL_PREFIX + name)
