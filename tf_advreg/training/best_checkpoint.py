"""The best epoch by held-out robustness, kept beside the last (Rice et al. 2020, "Overfitting
in adversarially robust deep learning": robust accuracy peaks soon after the first learning-rate
decay and falls after it, so the epoch to keep is chosen on data the training never saw).

`BestCheckpoint` copies the epoch checkpoint just written to `<phase_dir>/best/` whenever
`metric` (e.g. "heldout/adversarial_accuracy": PGD accuracy on a class-balanced split of the
training data, `data.load(..., hold_out=N, held_out=True)`, measured each epoch by a
`PeriodicEvaluation`) beats every earlier epoch's. In the callback list it therefore comes
after the evaluation that writes the metric and after the `EpochCheckpoint`.

The copy is staged in a hidden sibling and renamed into place, so `best/` is always a complete
checkpoint (its state.json names the epoch). A resumed run first compares the checkpoints it
can see (`best/` and the epoch checkpoints up to the one it resumed from), so a kill between
the epoch checkpoint and the copy loses nothing; a `best/` from beyond the resumed epoch (its
epoch checkpoint was unreadable and is being trained again) no longer describes this run and
is replaced by the best of those.
"""

import math
import os
import shutil
import tempfile
from pathlib import Path

import keras
from absl import logging

from tf_advreg import files
from tf_advreg.training import checkpoints

BEST = "best"  # the directory of the best epoch's checkpoint, in the phase directory
HELDOUT = "heldout"  # the evaluation label of the held-out split (config field hold_out)
# What may pick the best epoch (config field best_metric): the trained network's held-out
# accuracies, or the weight average's (training/ema.py; then its average is the best model).
METRICS = tuple(
    f"{prefix}{HELDOUT}/{kind}_accuracy"
    for prefix in ("", "ema_")
    for kind in ("adversarial", "natural")
)


def of_average(metric: str) -> bool:
    """Whether `metric` (one of METRICS) rates the weight average rather than the network."""
    return metric.startswith("ema_")


SAVED_MODEL = "saved_model_best"  # its export, beside the phase's saved_model


def best_dir(phase_dir: str | os.PathLike) -> Path:
    return Path(phase_dir) / BEST


class BestCheckpoint(keras.callbacks.Callback):
    """Keeps the checkpoint of the epoch with the highest `metric` in `<phase_dir>/best/`."""

    def __init__(self, phase_dir: str | os.PathLike, metric: str, initial_epoch: int):
        super().__init__()
        self.phase_dir = Path(phase_dir)
        self.metric = metric
        self.initial_epoch = initial_epoch

    def on_train_begin(self, logs=None):
        self.best = _value(best_dir(self.phase_dir), self.metric, self.initial_epoch)
        if self.best is None:  # none, unreadable, or from beyond the resumed epoch
            shutil.rmtree(best_dir(self.phase_dir), ignore_errors=True)
        for checkpoint in checkpoints.list_checkpoints(self.phase_dir):
            self._keep_if_better(checkpoint, self.initial_epoch)

    def on_epoch_end(self, epoch, logs=None):
        if self.metric not in logs:
            raise KeyError(
                f"BestCheckpoint needs {self.metric!r} every epoch; evaluate its set every "
                "epoch, before the checkpoints are written."
            )
        self._keep_if_better(checkpoints.checkpoint_dir(self.phase_dir, epoch + 1), epoch + 1)

    def _keep_if_better(self, checkpoint: Path, last_epoch: int) -> None:
        """Copies `checkpoint` to best/ if its metric beats the best (ties keep the earlier)."""
        value = _value(checkpoint, self.metric, last_epoch)
        if value is not None and (self.best is None or value > self.best):
            _copy_atomically(checkpoint, best_dir(self.phase_dir))
            self.best = value


def _value(checkpoint: Path, metric: str, last_epoch: int) -> float | None:
    """The checkpoint's `metric`; None if it is absent, unreadable, not finite, or the
    checkpoint's epoch is after `last_epoch`."""
    try:
        state = checkpoints.read_state(checkpoint)
    except (OSError, ValueError) as error:
        if checkpoint.exists():
            logging.warning("Ignoring %s for the best epoch (%s).", checkpoint, error)
        return None
    value = state["metrics"].get(metric)
    if state["epoch"] > last_epoch or value is None or not math.isfinite(value):
        return None
    return float(value)


def _copy_atomically(source: Path, target: Path) -> None:
    """Copies the directory `source` to `target`, replacing it only once the copy is whole."""
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        shutil.copytree(source, staging, dirs_exist_ok=True)
        for path in staging.iterdir():
            with open(path, "rb") as f:
                os.fsync(f.fileno())
        files.replace_directory(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
