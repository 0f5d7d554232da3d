"""Per-epoch checkpoints that survive a kill at any instant.

Layout: `<phase_dir>/checkpoints/epoch_0003/` holding
  network.json         the architecture arguments (so a checkpoint rebuilds its own network)
  network.weights.h5   the network's weights (loadable with `keras.Model.load_weights`)
  optimizer.npz        the optimizer's variables (iteration count, momenta), for exact resume
  state.json           epoch and metrics; written last
Each checkpoint is written into a temporary directory and renamed into place, so a directory
named `epoch_*` is either complete or absent. A checkpoint that fails to load (a corrupted
disk, a truncated copy) is skipped with a warning naming it, and the previous one is used.
"""

import json
import os
import shutil
import tempfile
from pathlib import Path

import keras
import numpy as np
from absl import logging

from tf_advreg.models import resnet18

CHECKPOINTS = "checkpoints"
_PREFIX = "epoch_"


def checkpoint_dir(phase_dir: str | os.PathLike, epoch: int) -> Path:
    return Path(phase_dir) / CHECKPOINTS / f"{_PREFIX}{epoch:04d}"


def is_checkpoint(path: str | os.PathLike) -> bool:
    """Whether `path` holds a checkpoint's network: its architecture and its weights."""
    path = Path(path)
    return (path / "network.json").is_file() and (path / "network.weights.h5").is_file()


def list_checkpoints(phase_dir: str | os.PathLike) -> list[Path]:
    """Complete checkpoint directories, oldest first."""
    root = Path(phase_dir) / CHECKPOINTS
    if not root.is_dir():
        return []
    found = [p for p in root.glob(f"{_PREFIX}*") if p.is_dir() and p.name[len(_PREFIX) :].isdigit()]
    return sorted(found, key=lambda p: int(p.name[len(_PREFIX) :]))


def save(
    phase_dir: str | os.PathLike,
    epoch: int,
    network: keras.Model,
    network_args: dict,
    optimizer: keras.optimizers.Optimizer,
    metrics: dict,
    keep: int = 0,
) -> Path:
    """Writes the checkpoint of `epoch` atomically; keeps only the newest `keep` (0: all)."""
    target = checkpoint_dir(phase_dir, epoch)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        (staging / "network.json").write_text(json.dumps(network_args, indent=2))
        network.save_weights(staging / "network.weights.h5")
        np.savez(staging / "optimizer.npz", **_optimizer_state(optimizer))
        state = {"epoch": epoch, "metrics": {k: float(v) for k, v in metrics.items()}}
        (staging / "state.json").write_text(json.dumps(state, indent=2))
        _fsync_tree(staging)
        if target.exists():  # a re-run of the same epoch replaces its checkpoint
            shutil.rmtree(target)
        os.replace(staging, target)
    except OSError as error:  # a full disk, a lost mount: say which checkpoint and what is safe
        raise OSError(
            error.errno,
            f"could not write the checkpoint {target} ({error.strerror or error}); "
            "the earlier checkpoints are intact",
        ) from error
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if keep > 0:
        for old in list_checkpoints(phase_dir)[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    return target


def _fsync_tree(directory: Path) -> None:
    """Flushes files to disk before the rename publishes them (a power cut keeps them whole)."""
    for path in directory.iterdir():
        with open(path, "rb") as f:
            os.fsync(f.fileno())


def read_state(checkpoint: str | os.PathLike) -> dict:
    return json.loads((Path(checkpoint) / "state.json").read_text())


def float32_network(network_args: dict) -> keras.Model:
    """resnet18(**network_args) computing in float32, whatever the global dtype policy.

    Evaluation and export use it: a checkpoint and the SavedModel exported from it then give
    the same numbers whatever precision trained them, and attacks get float32 gradients.
    """
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("float32")
    try:
        return resnet18(**network_args)
    finally:
        keras.config.set_dtype_policy(previous)


def build_network(checkpoint: str | os.PathLike) -> keras.Model:
    """Rebuilds the checkpoint's network (in float32) from network.json; loads its weights."""
    checkpoint = Path(checkpoint)
    network = float32_network(json.loads((checkpoint / "network.json").read_text()))
    network.load_weights(checkpoint / "network.weights.h5")
    return network


def restore(
    checkpoint: str | os.PathLike,
    network: keras.Model,
    optimizer: keras.optimizers.Optimizer | None = None,
) -> dict:
    """Loads weights (and optimizer state) into existing objects; returns the saved state."""
    checkpoint = Path(checkpoint)
    state = read_state(checkpoint)
    network.load_weights(checkpoint / "network.weights.h5")
    if optimizer is not None:
        optimizer.build(network.trainable_variables)
        with np.load(checkpoint / "optimizer.npz") as saved:
            values = {key: saved[key] for key in saved.files}
        variables = _optimizer_variables(optimizer)
        if len(values) != len(variables):
            raise ValueError(
                f"{checkpoint}: its optimizer state has {len(values)} variables, this "
                f"optimizer has {len(variables)}."
            )
        for variable, key in zip(variables, sorted(values)):
            variable.assign(values[key])
    return state


def _optimizer_variables(optimizer: keras.optimizers.Optimizer) -> list:
    """The step counter and slot variables, in creation order (their names vary by process).

    The learning rate is left out: it comes from the config (a variable for a constant rate, a
    function of the step otherwise).
    """
    return [v for v in optimizer.variables if not v.path.endswith("learning_rate")]


def _optimizer_state(optimizer: keras.optimizers.Optimizer) -> dict[str, np.ndarray]:
    return {f"{i:04d}": np.asarray(v) for i, v in enumerate(_optimizer_variables(optimizer))}


def restore_latest(
    phase_dir: str | os.PathLike,
    network: keras.Model,
    optimizer: keras.optimizers.Optimizer | None = None,
) -> dict | None:
    """Restores the newest checkpoint that loads; None when there is none."""
    for checkpoint in reversed(list_checkpoints(phase_dir)):
        try:
            return restore(checkpoint, network, optimizer)
        except (OSError, ValueError, KeyError, json.JSONDecodeError) as error:
            logging.warning(
                "Skipping unreadable checkpoint %s (%s); trying the previous one.",
                checkpoint,
                error,
            )
    return None
