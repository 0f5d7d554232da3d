"""TFDS builder for CINIC-10, registered as "cinic10" when this module is imported.

CINIC-10 (Darlow et al., 2018) extends CIFAR-10 with downsampled ImageNet images of the same
ten classes. It is used as a large pretraining set, so its labels must mean what CIFAR-10's
labels mean: the ClassLabel names are CIFAR-10's, in CIFAR-10 order.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

CIFAR10_CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)

URL = "https://datashare.ed.ac.uk/bitstream/handle/10283/3192/CINIC-10.tar.gz"
ARCHIVE_NAME = "CINIC-10.tar.gz"
# TFDS split name -> folder in the archive.
SPLIT_FOLDERS = {"train": "train", "validation": "valid", "test": "test"}
IMAGE_SHAPE = (32, 32, 3)

_CITATION = """\
@article{darlow2018cinic,
  title={CINIC-10 is not ImageNet or CIFAR-10},
  author={Darlow, Luke N. and Crowley, Elliot J. and Antoniou, Antreas and Storkey, Amos J.},
  journal={arXiv preprint arXiv:1810.03505},
  year={2018}
}
"""

# (path shown in errors, path relative to the dataset root, PNG bytes)
_File = tuple[str, str, bytes]


class Cinic10(tfds.core.GeneratorBasedBuilder):
    """CINIC-10: 270,000 32x32 RGB images, 90,000 per split, CIFAR-10 classes."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        f"Put {ARCHIVE_NAME} (from {URL}) or its extracted train/, valid/ and test/ folders "
        "into the manual directory."
    )

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(
            builder=self,
            description=(
                "CINIC-10: CIFAR-10 images plus downsampled ImageNet images of the same ten "
                "classes; 90,000 images in each of train, validation and test."
            ),
            features=tfds.features.FeaturesDict(
                {
                    "id": tfds.features.Text(),
                    "image": tfds.features.Image(shape=IMAGE_SHAPE),
                    "label": tfds.features.ClassLabel(names=CIFAR10_CLASSES),
                }
            ),
            supervised_keys=("image", "label"),
            homepage="https://github.com/BayesWatch/cinic-10",
            citation=_CITATION,
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        folder, archive = _find_manual_copy(dl_manager)
        if folder is not None:
            files = functools.partial(_folder_files, folder)
        else:
            files = functools.partial(
                _archive_files, dl_manager, archive or dl_manager.download(URL)
            )
        return {
            split: self._generate_examples(files(folder_name))
            for split, folder_name in SPLIT_FOLDERS.items()
        }

    def _generate_examples(self, files: Iterable[_File]) -> Iterator[tuple[str, dict]]:
        for shown, relative, data in files:
            yield (
                relative,
                {
                    "id": relative,
                    "image": _decode_png(shown, data),
                    "label": relative.split("/")[1],
                },
            )


def _find_manual_copy(dl_manager) -> tuple[Path | None, Path | None]:
    """(extracted folder, archive) found in the manual directory; both None if neither is there.

    The folder may be the manual directory itself or one folder inside it, because people
    extract the archive either way.
    """
    try:
        manual_dir = Path(dl_manager.manual_dir)
    except AssertionError:  # TFDS's way of saying the manual directory is missing or empty.
        return None, None
    for root in (manual_dir, *sorted(p for p in manual_dir.iterdir() if p.is_dir())):
        if all((root / name).is_dir() for name in SPLIT_FOLDERS.values()):
            return root, None
    archive = manual_dir / ARCHIVE_NAME
    return None, archive if archive.is_file() else None


def _folder_files(root: Path, split_folder: str) -> Iterator[_File]:
    for path in sorted((root / split_folder).glob("*/*.png")):
        yield str(path), path.relative_to(root).as_posix(), path.read_bytes()


def _archive_files(dl_manager, archive: Path, split_folder: str) -> Iterator[_File]:
    """Streams one split's PNGs out of the archive, so 270,000 files never hit the disk."""
    for member, fileobj in dl_manager.iter_archive(archive):
        parts = member.replace(os.sep, "/").split("/")
        if len(parts) >= 3 and parts[-3] == split_folder and parts[-1].endswith(".png"):
            yield f"{archive}:{member}", "/".join(parts[-3:]), fileobj.read()


def _decode_png(shown: str, data: bytes) -> np.ndarray:
    """Decodes to RGB (so a grayscale PNG still fits the feature) and checks the size.

    A file that is not a 32x32 image stops the build: silently dropping it would change the
    published split sizes that results are compared on.
    """
    try:
        image = tf.io.decode_png(data, channels=3).numpy()
    except tf.errors.InvalidArgumentError:
        raise ValueError(
            f"CINIC-10 image {shown} is not a readable PNG; replace it by re-extracting or "
            "re-downloading the archive, then build again."
        ) from None
    if image.shape != IMAGE_SHAPE:
        raise ValueError(
            f"CINIC-10 image {shown} has shape {image.shape}, expected {IMAGE_SHAPE}; replace "
            "it by re-extracting or re-downloading the archive, then build again."
        )
    return image
