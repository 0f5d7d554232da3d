"""Callbacks that guard a run: divergence stops before a bad checkpoint is written."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from support import thesis_attack

from tf_advreg.models import resnet18
from tf_advreg.objectives import NaturalTraining
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
