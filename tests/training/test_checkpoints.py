"""Checkpoints: complete or absent, self-describing, pruned on request, corrupt ones skipped."""

import json

import keras
import numpy as np
import pytest

from tf_advreg.models import resnet18
from tf_advreg.training import callbacks, checkpoints

ARGS = {"num_classes": 3, "width": 2, "input_shape": [8, 8, 1], "mean": [0.5], "std": [0.25]}


def _trained_pair(seed):
    keras.utils.set_random_seed(seed)
    network = resnet18(**ARGS)
    optimizer = keras.optimizers.SGD(0.1, momentum=0.9)
    optimizer.apply_gradients(
        [(np.ones(v.shape, "float32") * seed, v) for v in network.trainable_variables]
    )
    return network, optimizer


def test_roundtrip_restores_weights_and_optimizer_state(tmp_path):
    network, optimizer = _trained_pair(1)
    checkpoints.save(tmp_path, 1, network, ARGS, optimizer, {"loss": 1.5})
    fresh, fresh_optimizer = _trained_pair(2)
    state = checkpoints.restore(checkpoints.checkpoint_dir(tmp_path, 1), fresh, fresh_optimizer)
    assert state == {"epoch": 1, "metrics": {"loss": 1.5}}
    for a, b in zip(network.weights, fresh.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    for a, b in zip(optimizer.variables, fresh_optimizer.variables):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    rebuilt = checkpoints.build_network(checkpoints.checkpoint_dir(tmp_path, 1))
    image = np.random.default_rng(0).uniform(size=(2, 8, 8, 1)).astype("float32")
    np.testing.assert_allclose(rebuilt(image), network(image), rtol=1e-6)


def test_keep_prunes_the_oldest(tmp_path):
    network, optimizer = _trained_pair(1)
    for epoch in range(1, 5):
        checkpoints.save(tmp_path, epoch, network, ARGS, optimizer, {}, keep=2)
    assert [p.name for p in checkpoints.list_checkpoints(tmp_path)] == [
        "epoch_0003",
        "epoch_0004",
    ]


def test_leftover_staging_directories_are_not_checkpoints(tmp_path):
    """A kill mid-save leaves only a hidden staging directory, never a partial epoch_*."""
    network, optimizer = _trained_pair(1)
    checkpoints.save(tmp_path, 1, network, ARGS, optimizer, {})
    (tmp_path / "checkpoints" / ".epoch_0002.tmp-abc").mkdir()
    assert [p.name for p in checkpoints.list_checkpoints(tmp_path)] == ["epoch_0001"]


@pytest.mark.parametrize("damage", ["truncate_weights", "garble_state", "drop_optimizer"])
def test_corrupt_newest_checkpoint_falls_back_with_a_warning(tmp_path, damage, caplog):
    first, optimizer = _trained_pair(1)
    checkpoints.save(tmp_path, 1, first, ARGS, optimizer, {})
    second, optimizer2 = _trained_pair(2)
    newest = checkpoints.save(tmp_path, 2, second, ARGS, optimizer2, {})
    if damage == "truncate_weights":
        weights = newest / "network.weights.h5"
        weights.write_bytes(weights.read_bytes()[:1000])
    elif damage == "garble_state":
        (newest / "state.json").write_text("{not json")
    else:
        (newest / "optimizer.npz").unlink()

    network, fresh_optimizer = _trained_pair(3)
    with caplog.at_level("WARNING"):
        state = checkpoints.restore_latest(tmp_path, network, fresh_optimizer)
    assert state["epoch"] == 1
    assert str(newest) in caplog.text
    for a, b in zip(first.weights, network.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_no_checkpoint_restores_nothing(tmp_path):
    network, optimizer = _trained_pair(1)
    assert checkpoints.restore_latest(tmp_path, network, optimizer) is None


def test_metrics_log_ignores_a_torn_last_line(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text(json.dumps({"epoch": 1}) + "\n" + '{"epoch": 2, "lo')
    assert callbacks.read_metrics(path) == [{"epoch": 1}]
