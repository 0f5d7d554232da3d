"""Tuning from a checkpoint with another class count: the body transfers, the head is new."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from configs import digits_demo
from tf_advreg import data
from tf_advreg.models import resnet18
from tf_advreg.training import checkpoints, head, legacy, phases

DIGITS = data.info("digits")
ARGS = {
    "num_classes": 3,
    "width": 2,
    "input_shape": list(DIGITS.image_shape),
    "mean": list(DIGITS.mean),
    "std": list(DIGITS.std),
}


def _checkpoint(tmp_path):
    keras.utils.set_random_seed(1)
    network = resnet18(**ARGS)
    optimizer = keras.optimizers.SGD(0.1)
    optimizer.build(network.trainable_variables)
    return network, checkpoints.save(tmp_path / "pretrain", 1, network, ARGS, optimizer, {})


def test_body_is_the_checkpoints_and_the_head_is_fresh_and_seeded(tmp_path):
    source, checkpoint = _checkpoint(tmp_path)
    tuned = [resnet18(**{**ARGS, "num_classes": 10}) for _ in range(2)]
    for network, seed in zip(tuned, (5, 5)):
        head.restore_body(checkpoint, network, seed)
    network = tuned[0]
    for layer in network.layers:
        if layer.name != head.HEAD:
            for a, b in zip(layer.get_weights(), source.get_layer(layer.name).get_weights()):
                np.testing.assert_array_equal(a, b)
    kernel, bias = network.get_layer(head.HEAD).get_weights()
    assert kernel.shape == (source.get_layer(head.HEAD).input.shape[-1], 10)
    assert np.all(bias == 0) and np.std(kernel) > 0
    np.testing.assert_array_equal(kernel, tuned[1].get_layer(head.HEAD).get_weights()[0])
    other = resnet18(**{**ARGS, "num_classes": 10})
    head.restore_body(checkpoint, other, 6)
    assert not np.array_equal(kernel, other.get_layer(head.HEAD).get_weights()[0])


@pytest.mark.slow
def test_tune_phase_starts_from_a_checkpoint_with_other_classes(tmp_path, capsys):
    _, checkpoint = _checkpoint(tmp_path)
    config = digits_demo.get_config()
    legacy.override(
        config,
        {
            "pretrain.epochs": 0,
            "tune.init_checkpoint": str(checkpoint),
            "tune.epochs": 1,
            "model.width": 2,
            "batch_size": 100,
            "attack.steps": 1,
            "attack.eval_steps": 1,
            "eval.train_subset": 50,
            "eval.test_subset": 50,
            "jit_compile": "false",
        },
    )
    (phase,) = phases.phases_from_config(config)
    phases.run_phase(config, phase, tmp_path, tf.distribute.get_strategy())
    assert "tune: new 10-way classifier (seed 0)" in capsys.readouterr().out
    tuned = checkpoints.list_checkpoints(tmp_path / "tune")[-1]
    assert json.loads((tuned / "network.json").read_text())["num_classes"] == 10
