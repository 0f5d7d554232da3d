"""The best epoch by held-out PGD accuracy: chosen each epoch, kept whole, and right after a
resume whatever instant the previous run was killed at."""

import json

import keras
import numpy as np
import pytest

from tf_advreg import data, objectives
from tf_advreg.attacks import AttackSettings
from tf_advreg.models import resnet18
from tf_advreg.training import best_checkpoint, callbacks, checkpoints

ARGS = {"num_classes": 10, "width": 2, "input_shape": [8, 8, 1], "mean": [0.5], "std": [0.25]}
METRIC = "heldout/adversarial_accuracy"


def test_training_on_digits_keeps_the_epoch_with_the_best_held_out_pgd_accuracy(tmp_path):
    keras.utils.set_random_seed(0)
    attack = AttackSettings(
        eps=0.1, norm="linf", steps=2, step_size=0.05, eval_steps=2, eval_step_size=0.003
    )
    model = objectives.RobustOptimization(resnet18(**ARGS), attack=attack)
    model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9), jit_compile=False)
    epochs = 4
    train = data.load(
        "digits", "train", batch_size=50, training=True, subset=200, hold_out=100,
        num_epochs=epochs,
    )  # fmt: skip
    heldout = data.load(
        "digits", "train", batch_size=100, training=False, hold_out=100, held_out=True
    )
    fit_callbacks = [
        callbacks.PeriodicEvaluation({"heldout": callbacks.EvalSet(heldout, 100)}, 1, epochs),
        callbacks.EpochCheckpoint(tmp_path, ARGS, keep=0),
        best_checkpoint.BestCheckpoint(tmp_path, METRIC, initial_epoch=0),
    ]
    history = model.fit(
        train, epochs=epochs, steps_per_epoch=4, callbacks=fit_callbacks, shuffle=False, verbose=0
    )

    values = history.history[METRIC]
    assert len(set(values)) > 1  # a choice to make
    best_epoch = int(np.argmax(values)) + 1  # the first of equal values
    best = best_checkpoint.best_dir(tmp_path)
    state = checkpoints.read_state(best)
    assert state["epoch"] == best_epoch and state["metrics"][METRIC] == pytest.approx(max(values))
    rebuilt = checkpoints.build_network(best)
    of_that_epoch = checkpoints.build_network(checkpoints.checkpoint_dir(tmp_path, best_epoch))
    for a, b in zip(rebuilt.weights, of_that_epoch.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging left


def _checkpoint(phase_dir, epoch, value):
    keras.utils.set_random_seed(epoch)
    network = resnet18(**ARGS)
    optimizer = keras.optimizers.SGD(0.1)
    optimizer.build(network.trainable_variables)
    return checkpoints.save(phase_dir, epoch, network, ARGS, optimizer, {METRIC: value})


def _best_epoch(phase_dir):
    return json.loads((best_checkpoint.best_dir(phase_dir) / "state.json").read_text())["epoch"]


@pytest.fixture
def three_epochs(tmp_path):
    for epoch, value in ((1, 0.5), (2, 0.7), (3, 0.6)):
        _checkpoint(tmp_path, epoch, value)
    return tmp_path


def test_a_kill_between_the_epoch_checkpoint_and_the_copy_is_caught_up_on_resume(three_epochs):
    tracker = best_checkpoint.BestCheckpoint(three_epochs, METRIC, initial_epoch=3)
    tracker.on_train_begin()
    assert _best_epoch(three_epochs) == 2


def test_a_best_from_beyond_the_resumed_epoch_is_replaced(three_epochs):
    stale = _checkpoint(three_epochs, 4, 0.9)
    best_checkpoint._copy_atomically(stale, best_checkpoint.best_dir(three_epochs))
    tracker = best_checkpoint.BestCheckpoint(three_epochs, METRIC, initial_epoch=3)
    tracker.on_train_begin()  # epoch 4's checkpoint was unreadable: training redoes it
    assert _best_epoch(three_epochs) == 2


def test_later_epochs_replace_the_best_only_when_strictly_better(three_epochs):
    tracker = best_checkpoint.BestCheckpoint(three_epochs, METRIC, initial_epoch=3)
    tracker.on_train_begin()
    _checkpoint(three_epochs, 4, 0.7)
    tracker.on_epoch_end(3, {METRIC: 0.7})
    assert _best_epoch(three_epochs) == 2
    _checkpoint(three_epochs, 5, 0.8)
    tracker.on_epoch_end(4, {METRIC: 0.8})
    assert _best_epoch(three_epochs) == 5


def test_a_missing_metric_is_named(tmp_path):
    tracker = best_checkpoint.BestCheckpoint(tmp_path, METRIC, initial_epoch=0)
    tracker.on_train_begin()
    with pytest.raises(KeyError, match="needs 'heldout/adversarial_accuracy' every epoch"):
        tracker.on_epoch_end(0, {"loss": 1.0})
