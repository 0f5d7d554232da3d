"""Turns what a user points the evaluation at into a classifier and a record of its identity.

Three kinds of path are accepted: a SavedModel directory (ours, or anyone's with an
images -> logits serving signature), one epoch's checkpoint, and a training workdir (or one of
its phase directories), which stands for its final exported model.
"""

import dataclasses
import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import tensorflow as tf

from tf_advreg.evaluation import model_safety
from tf_advreg.export import SavedModelClassifier
from tf_advreg.training import checkpoints
from tf_advreg.training.schema import PHASES  # a workdir stands for the last one present

_SAVED_MODEL = "saved_model"


@dataclasses.dataclass(frozen=True)
class LoadedModel:
    """A classifier (images in [0, 1] -> logits) and what identifies it in reports."""

    classifier: Callable
    path: Path
    kind: str  # "saved_model" or "checkpoint"
    input_shape: tuple  # (height, width, channels); None where the model accepts any size
    fingerprint: str
    epoch: int | None = None

    def identity(self) -> dict:
        return {
            "path": str(self.path),
            "kind": self.kind,
            "fingerprint": self.fingerprint,
            "epoch": self.epoch,
            "input_shape": list(self.input_shape),
        }


def _is_saved_model(path: Path) -> bool:
    return (path / "saved_model.pb").is_file()


def resolve(path: str | os.PathLike) -> Path:
    """The SavedModel or checkpoint directory that `path` stands for.

    A workdir resolves to the SavedModel of its last phase (tune if present, else pretrain);
    a phase directory to its own SavedModel.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"No such file or directory: {path}")
    if _is_saved_model(path) or checkpoints.is_checkpoint(path):
        return path
    for phase_dir in [path / phase for phase in reversed(PHASES)] + [path]:
        if _is_saved_model(phase_dir / _SAVED_MODEL):
            return phase_dir / _SAVED_MODEL
        if (phase_dir / checkpoints.CHECKPOINTS).is_dir():
            raise ValueError(
                f"{phase_dir} has checkpoints but no exported {_SAVED_MODEL}/ (training may still "
                f"be running); evaluate one checkpoint with --model="
                f"{phase_dir / checkpoints.CHECKPOINTS}/epoch_NNNN, or all with --checkpoints."
            )
    raise ValueError(
        f"{path} is not a model: expected a SavedModel directory (with saved_model.pb), a "
        "checkpoint (with network.json and network.weights.h5) or a training workdir (with "
        f"{'/ or '.join(PHASES)}/ holding {_SAVED_MODEL}/)."
    )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return f"sha256:{digest.hexdigest()}"


TRUST_MODEL_HELP = (
    "Run a SavedModel even if its graph holds ops beyond pure tensor math (file, Python or "
    "network ops); by default such a model is refused before it is loaded."
)


def load(path: str | os.PathLike, trust_model: bool = False) -> LoadedModel:
    """Loads the model `path` stands for (see `resolve`).

    A SavedModel holding ops beyond pure tensor math is refused unless `trust_model`
    (see model_safety).
    """
    path = resolve(path).resolve()
    if checkpoints.is_checkpoint(path):
        network = checkpoints.build_network(path)
        state_file = path / "state.json"
        epoch = checkpoints.read_state(path)["epoch"] if state_file.is_file() else None
        return LoadedModel(
            network,
            path,
            "checkpoint",
            tuple(network.input_shape[1:]),
            _sha256(path / "network.weights.h5"),
            epoch,
        )
    if not trust_model:
        model_safety.check(path)
    classifier = SavedModelClassifier(path)
    try:
        fingerprint = tf.saved_model.experimental.read_fingerprint(str(path)).singleprint()
    except FileNotFoundError:  # SavedModels written before TF 2.12 carry no fingerprint.pb
        fingerprint = _sha256(path / "saved_model.pb")
    return LoadedModel(
        classifier, path, "saved_model", tuple(classifier.input_shape[1:]), fingerprint
    )


def check_input_shape(model: LoadedModel, image_shape, dataset: str) -> None:
    """Raises ValueError naming both shapes when the dataset's images do not fit the model."""
    expected = model.input_shape
    fits = len(expected) == len(image_shape) and all(
        e is None or e == int(i) for e, i in zip(expected, image_shape)
    )
    if not fits:
        shown = tuple(image_shape)
        raise ValueError(
            f"The model {model.path} takes images of shape {expected}, but {dataset!r} has "
            f"images of shape {shown}."
        )


def checkpoint_series(directory: str | os.PathLike) -> list[Path]:
    """Every epoch's checkpoint of a training phase, oldest first.

    `directory` is a phase directory (e.g. <workdir>/pretrain) or its checkpoints/ folder.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"No such directory: {directory}")
    phase_dir = directory.parent if directory.name == checkpoints.CHECKPOINTS else directory
    found = checkpoints.list_checkpoints(phase_dir)
    if not found:
        phases = [p for p in PHASES if (directory / p / checkpoints.CHECKPOINTS).is_dir()]
        hint = f" Did you mean {directory / phases[-1]}?" if phases else ""
        raise ValueError(
            f"{directory} holds no checkpoints: expected a training phase directory with "
            f"{checkpoints.CHECKPOINTS}/epoch_NNNN/ inside, or that {checkpoints.CHECKPOINTS}/ "
            f"folder.{hint}"
        )
    return found
