"""Callbacks of a training run: divergence stops before a bad checkpoint is written; each
evaluation set draws its own attack starts."""

import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf
from support import thesis_attack, two_replicas

from tf_advreg.models import resnet18
from tf_advreg.objectives import NaturalTraining, RobustOptimization
from tf_advreg.training import callbacks, checkpoints

ARGS = {"num_classes": 3, "width": 2, "input_shape": [8, 8, 1], "mean": [0.5], "std": [0.25]}


def test_nan_loss_stops_with_epoch_and_step_and_keeps_earlier_checkpoints(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.uniform(size=(4, 16, 8, 8, 1)).astype("float32")
    images[3, 5] = np.nan  # epoch 2 (batches 2 and 3), its second step
    labels = rng.integers(0, 3, (4, 16)).astype("int32")
    batches = tf.data.Dataset.from_tensor_slices((images, labels))
    model = NaturalTraining(resnet18(**ARGS), attack=thesis_attack())
    model.compile(optimizer=keras.optimizers.SGD(0.01), jit_compile=False)
    guards = [
        callbacks.StopOnNonFiniteLoss(),
        callbacks.EpochCheckpoint(tmp_path, ARGS, keep=0),
    ]
    with pytest.raises(callbacks.NonFiniteLoss, match="became nan at epoch 2, step 2"):
        model.fit(batches, epochs=2, steps_per_epoch=2, callbacks=guards, shuffle=False, verbose=0)
    assert [p.name for p in checkpoints.list_checkpoints(tmp_path)] == ["epoch_0001"]
    restored = checkpoints.build_network(checkpoints.checkpoint_dir(tmp_path, 1))
    assert all(np.all(np.isfinite(w.numpy())) for w in restored.weights)


def _evaluate(callback_class, model, sets: dict) -> dict:
    """The logs one epoch-end evaluation of `sets` writes."""
    callback = callback_class(sets, every=1, final_epoch=1)
    callback.set_model(model)
    callback.on_train_begin()
    logs = {}
    callback.on_epoch_end(0, logs)
    return logs


@pytest.mark.parametrize(
    "make_strategy, shape",
    [(tf.distribute.get_strategy, (8, 8, 1)), (two_replicas, (32, 32, 3))],
    ids=["one device, digits", "two replicas, CIFAR shape"],
)
def test_a_sets_attacks_start_alike_whichever_sets_are_evaluated_before_it(make_strategy, shape):
    """The held-out split is evaluated every epoch, the test split only at some: the test
    split's random starts (and so its numbers) must not depend on that. The weight average's
    twin starts from the trained network's points on the same set: a paired comparison. On two
    replicas each keeps its own batch count, and every one must restart with each set; and the
    twin matches only if the replicas hold one copy of the BatchNorm statistics (the trained
    network's first copy is what the twin receives)."""
    keras.utils.set_random_seed(0)
    one_step = dataclasses.replace(thesis_attack(), eval_steps=1)  # the start shows in the loss
    args = dict(ARGS, input_shape=list(shape), mean=[0.5] * shape[-1], std=[0.25] * shape[-1])
    with make_strategy().scope():
        model = RobustOptimization(resnet18(**args), attack=one_step, ema_decay=0.5)
        model.compile(optimizer=keras.optimizers.SGD(0.1), jit_compile=False)
    rng = np.random.default_rng(4)
    images = rng.uniform(size=(64, *shape)).astype("float32")
    labels = rng.integers(0, 3, 64).astype("int32")
    model.fit(images[:32], labels[:32], batch_size=16, epochs=1, verbose=0)

    def eval_set(start: int) -> callbacks.EvalSet:
        pairs = (images[start : start + 32], labels[start : start + 32])
        return callbacks.EvalSet(tf.data.Dataset.from_tensor_slices(pairs).batch(16), 32)

    test, heldout = eval_set(0), eval_set(32)
    alone = _evaluate(callbacks.PeriodicEvaluation, model, {"test": test})
    after = _evaluate(callbacks.PeriodicEvaluation, model, {"heldout": heldout, "test": test})
    assert after["test/loss"] == alone["test/loss"]
    relabelled = _evaluate(callbacks.PeriodicEvaluation, model, {"other": test})
    assert relabelled["other/loss"] != alone["test/loss"]  # own starts

    model.weight_average.network.set_weights(model.network.get_weights())
    averaged = _evaluate(callbacks.AveragedEvaluation, model, {"heldout": heldout, "test": test})
    assert averaged["ema_test/loss"] == alone["test/loss"]
