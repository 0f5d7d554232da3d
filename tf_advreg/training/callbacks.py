"""Keras callbacks of a training phase: evaluation, logs, TensorBoard, checkpoints, summary.

Each has one job. They share the epoch's `logs` dict in list order, so `Throughput` and
`PeriodicEvaluation` come first and add the keys the writers after them record. Training-batch
metrics (running means over the epoch, under augmentation and the training attack) appear as
`fit/<metric>`; evaluations as `<set>/<metric>`, e.g. `test/adversarial_accuracy`, with
`<set>/num_examples` saying how many examples they read.
"""

import dataclasses
import json
import math
import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import keras
import tensorflow as tf
from absl import logging
from tensorboard.plugins.hparams import api as hparams_api

from tf_advreg import files
from tf_advreg.training import checkpoints

_FIT_METRICS = ("loss", "natural_accuracy", "adversarial_accuracy")


def _current_learning_rate(optimizer: keras.optimizers.Optimizer) -> float:
    rate = optimizer.learning_rate
    return float(rate(optimizer.iterations) if callable(rate) else rate)


class NonFiniteLoss(FloatingPointError):
    """Training diverged; raised before the epoch's checkpoint, so the last one stays good."""


class StopOnNonFiniteLoss(keras.callbacks.Callback):
    """Stops at the first NaN/Inf loss with the epoch and step, instead of Keras's quiet stop.

    Raising (rather than setting `stop_training`) skips the epoch-end callbacks, so no
    checkpoint of the diverged weights is ever written.
    """

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = float(logs["loss"])
        if not math.isfinite(loss):
            raise NonFiniteLoss(
                f"the training loss became {loss} at epoch {self._epoch + 1}, step {batch + 1}; "
                "lower the learning rate or beta. The checkpoints of earlier epochs are intact."
            )


class Throughput(keras.callbacks.Callback):
    """Adds `examples_per_second` (training only, evaluation excluded) and `learning_rate`."""

    def __init__(self, batch_size: int):
        super().__init__()
        self.batch_size = batch_size

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()
        self._batches = 0

    def on_train_batch_end(self, batch, logs=None):
        self._batches = batch + 1

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.perf_counter() - self._start
        logs["examples_per_second"] = self._batches * self.batch_size / max(seconds, 1e-9)
        logs["learning_rate"] = _current_learning_rate(self.model.optimizer)
        for name in _FIT_METRICS:
            if name in logs:
                logs[f"fit/{name}"] = logs.pop(name)


@dataclasses.dataclass(frozen=True)
class EvalSet:
    """Batches to evaluate, and how many examples they hold: a sample or the whole split."""

    batches: tf.data.Dataset
    num_examples: int


def evaluation_due(epoch: int, every: int, final_epoch: int) -> bool:
    """Whether `eval.every` evaluates (1-based) `epoch`: each every-th, and always the last."""
    return epoch == final_epoch or (every > 0 and epoch % every == 0)


class PeriodicEvaluation(keras.callbacks.Callback):
    """Natural and PGD accuracy on each evaluation set every `every` epochs and at the end.

    `final_sets` replace sets of the same label at the final epoch, so that the epochs between
    can read a sample while the final model is measured on the whole split. `every_epoch_sets`
    (the held-out split that picks the best epoch) are evaluated every epoch whatever `every`
    says. Each set's attacks start from points of its own (`label_evaluation`), whichever
    others are due.
    """

    prefix = ""  # before each set's label in the logs

    def __init__(
        self,
        eval_sets: Mapping[str, EvalSet],
        every: int,
        final_epoch: int,
        final_sets: Mapping[str, EvalSet] | None = None,
        every_epoch_sets: Mapping[str, EvalSet] | None = None,
    ):
        super().__init__()
        self.eval_sets = dict(eval_sets)
        self.final_sets = dict(final_sets or {})
        self.every_epoch_sets = dict(every_epoch_sets or {})
        self.every = every
        self.final_epoch = final_epoch

    def due(self, epoch: int) -> bool:
        return evaluation_due(epoch + 1, self.every, self.final_epoch)

    def evaluated_model(self) -> keras.Model:
        return self.model

    def on_epoch_end(self, epoch, logs=None):
        sets = {}
        if self.due(epoch):
            sets = self.eval_sets
            if epoch + 1 == self.final_epoch:
                sets = sets | self.final_sets
        for label, eval_set in (self.every_epoch_sets | sets).items():
            model = self.evaluated_model()
            model.label_evaluation(label)
            results = model.evaluate(eval_set.batches, verbose=0, return_dict=True)
            label = self.prefix + label
            logs.update({f"{label}/{name}": float(value) for name, value in results.items()})
            logs[f"{label}/num_examples"] = eval_set.num_examples


class AveragedEvaluation(PeriodicEvaluation):
    """The same evaluations of the weight average (training/ema.py), as `ema_<set>/<metric>`.

    A twin of the model (`with_network`: same objective and attacks) holds the averaged
    network; it shares the optimizer's step count, so its attacks start where the trained
    network's evaluation starts (a paired comparison, and the same in a resumed run).
    """

    prefix = "ema_"

    def on_train_begin(self, logs=None):
        with self.model.distribute_strategy.scope():
            self._twin = self.model.with_network(self.model.weight_average.network)
            self._twin.compile(optimizer=self.model.optimizer, jit_compile=self.model.jit_compile)

    def evaluated_model(self) -> keras.Model:
        return self._twin


class MetricsLog(keras.callbacks.Callback):
    """Appends one JSON line per epoch to metrics.jsonl, flushed to disk before the checkpoint.

    On resume, lines of epochs after the restored checkpoint (written by a run killed before
    its checkpoint) are dropped, so the file matches the weights.
    """

    def __init__(self, path: str | os.PathLike, phase: str, initial_epoch: int):
        super().__init__()
        self.path = Path(path)
        self.phase = phase
        self.initial_epoch = initial_epoch

    def on_train_begin(self, logs=None):
        kept = [r for r in read_metrics(self.path) if r["epoch"] <= self.initial_epoch]
        files.write_text(self.path, "".join(json.dumps(r) + "\n" for r in kept))

    def on_epoch_end(self, epoch, logs=None):
        values = {k: v if isinstance(v, int) else float(v) for k, v in logs.items()}
        record = {"phase": self.phase, "epoch": epoch + 1, **values}
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")
            f.flush()
            os.fsync(f.fileno())


def read_metrics(path: str | os.PathLike) -> list[dict]:
    """The epoch records of a metrics.jsonl.

    A line that is not a record (a torn last line from a kill mid-write, a garbled or
    hand-edited one) is skipped with a warning naming it; the lines after it still count.
    """
    path = Path(path)
    if not path.exists():
        return []
    records = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        try:
            record = files.parse_json(line, f"{path} line {number}")
            epoch = record.get("epoch") if isinstance(record, dict) else None
            if type(epoch) is not int or epoch < 1:
                raise ValueError(f"{path} line {number} is not an epoch record")
        except ValueError as error:
            logging.warning("Skipping %s.", error)
            continue
        records.append(record)
    return records


class TensorBoardLog(keras.callbacks.Callback):
    """Scalars every epoch, the run's hyperparameters once, and example images at evaluations.

    The images are a few test images, their PGD (evaluation settings) counterparts and the
    perturbation rescaled from [-eps, eps] to [0, 1].
    """

    def __init__(
        self,
        logdir: str | os.PathLike,
        hparams: Mapping[str, object],
        images: tf.Tensor,
        labels: tf.Tensor,
    ):
        super().__init__()
        self.writer = tf.summary.create_file_writer(str(logdir))
        self.hparams = dict(hparams)
        self.images = images
        self.labels = labels

    def on_train_begin(self, logs=None):
        with self.writer.as_default():
            hparams_api.hparams(self.hparams)
        self.writer.flush()

    def on_epoch_end(self, epoch, logs=None):
        step = epoch + 1
        with self.writer.as_default(step=step):
            for name, value in logs.items():
                tf.summary.scalar(name, value)
            if any(name.startswith("test/") for name in logs):
                adversarial = self.model.attack(self.images, self.labels, evaluation=True)
                eps = tf.maximum(self.model.eps, 1e-12)
                perturbation = (adversarial - self.images) / (2.0 * eps) + 0.5
                tf.summary.image("images/clean", self.images, max_outputs=4)
                tf.summary.image("images/adversarial", adversarial, max_outputs=4)
                tf.summary.image("images/perturbation", perturbation, max_outputs=4)
        self.writer.flush()

    def on_train_end(self, logs=None):
        self.writer.close()


class EpochCheckpoint(keras.callbacks.Callback):
    """Saves the network, optimizer and any weight average after every epoch (atomically;
    see checkpoints)."""

    def __init__(self, phase_dir: str | os.PathLike, network_args: dict, keep: int):
        super().__init__()
        self.phase_dir = phase_dir
        self.network_args = network_args
        self.keep = keep

    def on_epoch_end(self, epoch, logs=None):
        checkpoints.save(
            self.phase_dir,
            epoch + 1,
            self.model.network,
            self.network_args,
            self.model.optimizer,
            logs,
            keep=self.keep,
            averaged=self.model.weight_average,
        )


class EpochSummary(keras.callbacks.Callback):
    """One line per epoch: time, throughput and every accuracy, for logs and terminals alike."""

    def __init__(self, phase: str, epochs: int):
        super().__init__()
        self.phase = phase
        self.epochs = epochs

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        parts = [
            f"{self.phase} epoch {epoch + 1}/{self.epochs}",
            f"{time.perf_counter() - self._start:.1f}s",
            f"{logs.get('examples_per_second', 0):.0f} ex/s",
        ]
        parts += [
            f"{name.replace('_accuracy', '')} {value:.4f}"
            for name, value in logs.items()
            if name.endswith("loss") or name.endswith("accuracy")
        ]
        print(" | ".join(parts), file=sys.stdout, flush=True)
