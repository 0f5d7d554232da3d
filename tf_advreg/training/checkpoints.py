"""Per-epoch checkpoints that survive a kill at any instant.

Layout: `<phase_dir>/checkpoints/epoch_0003/` holding
  network.json         the architecture: its name and arguments (so a checkpoint rebuilds it)
  network.weights.h5   the network's weights (loadable with `keras.Model.load_weights`)
  optimizer.npz        the optimizer's variables (iteration count, momenta), for exact resume
  network_ema.weights.h5  with weight averaging (training/ema.py): the averaged network
  state.json           epoch and metrics (and the averaging's update count); written last
Each checkpoint is written into a temporary directory and renamed into place, so a directory
named `epoch_*` is either complete or absent. A checkpoint is restored completely (weights,
optimizer, state) or not at all: one that fails to load or check (a corrupted disk, a truncated
copy, a hand-edited state.json) is skipped with a warning naming it, and the previous one is
used; with none left, training starts from the initial weights and says so.
"""

import json
import os
import shutil
import tempfile
from pathlib import Path

import keras
import numpy as np
from absl import logging

from tf_advreg import files, models
from tf_advreg.training import ema

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
    averaged: ema.WeightAverage | None = None,
) -> Path:
    """Writes the checkpoint of `epoch` atomically; keeps only the newest `keep` (0: all).

    With `averaged`, the weight average is saved too, so a resumed run continues it exactly.
    """
    target = checkpoint_dir(phase_dir, epoch)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        (staging / "network.json").write_text(json.dumps(network_args, indent=2))
        network.save_weights(staging / "network.weights.h5")
        np.savez(staging / "optimizer.npz", **_optimizer_state(optimizer))
        state = {"epoch": epoch, "metrics": {k: float(v) for k, v in metrics.items()}}
        if averaged is not None:
            averaged.network.save_weights(staging / ema.WEIGHTS_FILE)
            state["ema_updates"] = int(averaged.updates.numpy())
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


def _epoch_of(checkpoint: Path) -> int | None:
    """The epoch a directory's name says (epoch_0003: 3); None for other names."""
    number = checkpoint.name[len(_PREFIX) :]
    return int(number) if checkpoint.name.startswith(_PREFIX) and number.isdigit() else None


def read_state(checkpoint: str | os.PathLike) -> dict:
    """state.json, checked: its epoch is a positive integer (the directory's, for epoch_NNNN)
    and its metrics are numbers. ValueError names the file otherwise."""
    path = Path(checkpoint) / "state.json"
    state = files.read_json(path)
    epoch, metrics = state.get("epoch"), state.get("metrics", {})
    expected = _epoch_of(path.parent)
    problem = None
    if type(epoch) is not int or epoch < 1:
        problem = f"its epoch is {epoch!r}, not a positive integer"
    elif expected is not None and epoch != expected:
        problem = f"its epoch is {epoch}, but the directory is that of epoch {expected}"
    elif not isinstance(metrics, dict) or not all(
        type(v) in (int, float) for v in metrics.values()
    ):
        problem = "its metrics are not a mapping of names to numbers"
    if problem:
        raise ValueError(f"{path} is not a valid checkpoint state: {problem}")
    return state


_NETWORK_KEYS = frozenset({"num_classes", "width", "input_shape", "mean", "std"})
# Checkpoints written before these existed lack them; `name` then is models.DEFAULT_MODEL.
_OPTIONAL_NETWORK_KEYS = frozenset({"sync_batchnorm", "name"})


def read_network_args(checkpoint: str | os.PathLike) -> dict:
    """network.json, checked before anything is built from it (a width of 10^5 would allocate
    terabytes). ValueError names the file and the problem otherwise."""
    path = Path(checkpoint) / "network.json"
    args = files.read_json(path)
    try:
        _check_network_args(args)
    except ValueError as error:
        raise ValueError(f"{path} is not a valid network description: {error}") from error
    return args


def _check_network_args(args: dict) -> None:
    missing = sorted(_NETWORK_KEYS - args.keys())
    unknown = sorted(args.keys() - _NETWORK_KEYS - _OPTIONAL_NETWORK_KEYS)
    if missing or unknown:
        raise ValueError(f"missing keys {missing}, unknown keys {unknown}")
    models.check_name(args.get("name", models.DEFAULT_MODEL))
    models.check_width(args["width"])

    def positive_ints(value) -> bool:
        return isinstance(value, list) and all(type(v) is int and v > 0 for v in value)

    if not positive_ints([args["num_classes"]]):
        raise ValueError(f"num_classes must be a positive integer, got {args['num_classes']!r}")
    if not positive_ints(args["input_shape"]) or len(args["input_shape"]) != 3:
        raise ValueError(f"input_shape must be 3 positive integers, got {args['input_shape']!r}")
    for key in ("mean", "std"):
        if not isinstance(args[key], list) or not all(type(v) in (int, float) for v in args[key]):
            raise ValueError(f"{key} must be a list of numbers, got {args[key]!r}")
    if not all(v > 0 for v in args["std"]):
        raise ValueError(f"std must be positive, got {args['std']!r}")
    if not isinstance(args.get("sync_batchnorm", False), bool):
        raise ValueError(f"sync_batchnorm must be true or false, got {args['sync_batchnorm']!r}")


def float32_network(network_args: dict) -> keras.Model:
    """The network `network_args` (network.json) describe, in float32 whatever the dtype policy.

    Evaluation and export use it: a checkpoint and the SavedModel exported from it then give
    the same numbers whatever precision trained them, and attacks get float32 gradients.
    """
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("float32")
    try:
        return models.build(**network_args)
    finally:
        keras.config.set_dtype_policy(previous)


def build_network(checkpoint: str | os.PathLike, averaged: bool = False) -> keras.Model:
    """Rebuilds the checkpoint's network (in float32) from network.json; loads its weights,
    or with `averaged` its weight average (ValueError if it was saved without one)."""
    checkpoint = Path(checkpoint)
    network = float32_network(read_network_args(checkpoint))
    if averaged:
        _check_has_average(checkpoint)
    network.load_weights(checkpoint / (ema.WEIGHTS_FILE if averaged else "network.weights.h5"))
    return network


def _check_has_average(checkpoint: Path) -> None:
    if not (checkpoint / ema.WEIGHTS_FILE).is_file():
        raise ValueError(
            f"{checkpoint} holds no weight average ({ema.WEIGHTS_FILE}); it was trained "
            "without weight averaging, so use its network instead."
        )


def restore(
    checkpoint: str | os.PathLike,
    network: keras.Model,
    optimizer: keras.optimizers.Optimizer | None = None,
    averaged: ema.WeightAverage | None = None,
) -> dict:
    """Loads weights (optimizer state, weight average) into existing objects; returns the
    saved state.

    Completely or not at all: everything is read and checked before the optimizer changes,
    and the networks' weights are put back if a weights file fails to load. A checkpoint saved
    without an average (averaging turned on for a resumed run) restores the rest, and the
    average starts afresh at the next step, with a warning.
    """
    checkpoint = Path(checkpoint)
    state = read_state(checkpoint)
    weights = [(network, checkpoint / "network.weights.h5")]
    has_average = averaged is not None and (checkpoint / ema.WEIGHTS_FILE).is_file()
    if has_average:
        if type(state.get("ema_updates")) is not int or state["ema_updates"] < 0:
            raise ValueError(f"{checkpoint / 'state.json'} lacks a valid ema_updates count")
        weights.append((averaged.network, checkpoint / ema.WEIGHTS_FILE))
    saved_optimizer = None
    if optimizer is not None:
        optimizer.build(network.trainable_variables)
        saved_optimizer = _read_optimizer_state(checkpoint, optimizer)
    _load_weights_or_none(weights)
    if optimizer is not None:
        for variable, value in zip(_optimizer_variables(optimizer), saved_optimizer):
            variable.assign(value)
    if has_average:
        averaged.updates.assign(state["ema_updates"])
    elif averaged is not None:
        averaged.updates.assign(0)
        logging.warning(
            "%s holds no weight average; the average starts afresh from the next step.",
            checkpoint,
        )
    return state


def _load_weights_or_none(weights: list[tuple[keras.Model, Path]]) -> None:
    """Loads each (network, weights file); if one fails or holds NaN/Inf, all are put back."""
    before = [[variable.numpy() for variable in network.weights] for network, _ in weights]
    try:
        for network, path in weights:
            network.load_weights(path)
            if not all(np.isfinite(variable.numpy()).all() for variable in network.weights):
                raise ValueError(f"{path} holds NaN or Inf weights")
    except BaseException:
        for (network, _), values in zip(weights, before):
            for variable, value in zip(network.weights, values):
                variable.assign(value)
        raise


def _read_optimizer_state(
    checkpoint: Path, optimizer: keras.optimizers.Optimizer
) -> list[np.ndarray]:
    """The saved optimizer variables, checked to fit `optimizer` and to be finite."""
    path = checkpoint / "optimizer.npz"
    with np.load(path) as saved:
        values = [saved[key] for key in sorted(saved.files)]
    variables = _optimizer_variables(optimizer)
    if len(values) != len(variables):
        raise ValueError(
            f"{checkpoint}: its optimizer state has {len(values)} variables, this "
            f"optimizer has {len(variables)}."
        )
    for variable, value in zip(variables, values):
        if tuple(value.shape) != tuple(variable.shape) or not np.isfinite(value).all():
            raise ValueError(f"{path} does not fit this optimizer or holds NaN/Inf values.")
    return values


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
    averaged: ema.WeightAverage | None = None,
) -> dict | None:
    """Restores the newest checkpoint that loads; None when there is none.

    When checkpoints exist but none loads, the network and optimizer keep their initial state
    and one warning says that training starts from scratch.
    """
    found = list_checkpoints(phase_dir)
    for checkpoint in reversed(found):
        try:
            return restore(checkpoint, network, optimizer, averaged)
        except (OSError, ValueError, KeyError) as error:
            logging.warning(
                "Skipping unreadable checkpoint %s (%s); trying the previous one.",
                checkpoint,
                error,
            )
    if found:
        logging.warning(
            "No checkpoint in %s could be restored; training starts from scratch (epoch 1, "
            "the seed's initial weights) and replaces them.",
            Path(phase_dir) / CHECKPOINTS,
        )
    return None
