"""Checkpoints: complete or absent, self-describing, pruned on request, corrupt ones skipped."""

import json
import re

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


def _assert_same_weights(a, b):
    for x, y in zip(a.weights, b.weights):
        np.testing.assert_array_equal(x.numpy(), y.numpy())


@pytest.mark.parametrize(
    "state, message",
    [
        ({}, "its epoch is None"),
        ({"epoch": 99, "metrics": {}}, "its epoch is 99, but the directory is that of epoch 3"),
        ({"epoch": "2", "metrics": {}}, "its epoch is '2'"),
        ({"epoch": True}, "its epoch is True"),
        ({"epoch": 3, "metrics": {"loss": "low"}}, "metrics are not a mapping"),
        ('{"epoch": 3, "metrics": {"loss": NaN}}', "holds NaN"),
        ("[3]", "holds a JSON array"),
    ],
)
def test_a_wrong_state_is_named(tmp_path, state, message):
    checkpoint = checkpoints.checkpoint_dir(tmp_path, 3)
    checkpoint.mkdir(parents=True)
    (checkpoint / "state.json").write_text(state if isinstance(state, str) else json.dumps(state))
    with pytest.raises(ValueError, match=re.escape(message)) as raised:
        checkpoints.read_state(checkpoint)
    assert str(checkpoint / "state.json") in str(raised.value)


def test_a_state_without_its_epoch_skips_the_checkpoint(tmp_path, caplog):
    """Valid JSON without an epoch once restarted at epoch 1 on the newest weights."""
    first, optimizer = _trained_pair(1)
    checkpoints.save(tmp_path, 1, first, ARGS, optimizer, {})
    second, optimizer2 = _trained_pair(2)
    newest = checkpoints.save(tmp_path, 2, second, ARGS, optimizer2, {})
    (newest / "state.json").write_text("{}")
    network, fresh_optimizer = _trained_pair(3)
    with caplog.at_level("WARNING"):
        assert checkpoints.restore_latest(tmp_path, network, fresh_optimizer)["epoch"] == 1
    assert str(newest / "state.json") in caplog.text
    _assert_same_weights(first, network)


def test_a_restart_from_scratch_keeps_the_initial_weights_and_says_so(tmp_path, caplog):
    """Every checkpoint's weights load, then its optimizer state fails: nothing is kept."""
    for epoch in (1, 2):
        network, optimizer = _trained_pair(epoch)
        saved = checkpoints.save(tmp_path, epoch, network, ARGS, optimizer, {})
        (saved / "optimizer.npz").write_bytes(b"not an npz file")
    network, optimizer = _trained_pair(3)
    initial = [v.numpy().copy() for v in network.weights]
    optimizer_before = [np.asarray(v).copy() for v in optimizer.variables]
    with caplog.at_level("WARNING"):
        assert checkpoints.restore_latest(tmp_path, network, optimizer) is None
    for before, after in zip(initial, network.weights):
        np.testing.assert_array_equal(before, after.numpy())
    for before, after in zip(optimizer_before, optimizer.variables):
        np.testing.assert_array_equal(before, np.asarray(after))
    assert "training starts from scratch" in caplog.text


def test_weights_that_fail_halfway_are_put_back(tmp_path, monkeypatch):
    network, optimizer = _trained_pair(1)
    newest = checkpoints.save(tmp_path, 1, network, ARGS, optimizer, {})
    target, target_optimizer = _trained_pair(2)
    initial = [v.numpy().copy() for v in target.weights]
    load_weights = target.load_weights

    def load_then_fail(path):
        load_weights(path)
        raise OSError("read error after the weights were assigned")

    monkeypatch.setattr(target, "load_weights", load_then_fail)
    with pytest.raises(OSError):
        checkpoints.restore(newest, target, target_optimizer)
    for before, after in zip(initial, target.weights):
        np.testing.assert_array_equal(before, after.numpy())


def test_non_finite_optimizer_state_skips_the_checkpoint(tmp_path, caplog):
    first, optimizer = _trained_pair(1)
    checkpoints.save(tmp_path, 1, first, ARGS, optimizer, {})
    optimizer.variables[-1].assign(np.full(optimizer.variables[-1].shape, np.nan, "float32"))
    checkpoints.save(tmp_path, 2, first, ARGS, optimizer, {})
    network, fresh = _trained_pair(3)
    with caplog.at_level("WARNING"):
        assert checkpoints.restore_latest(tmp_path, network, fresh)["epoch"] == 1
    assert "NaN/Inf" in caplog.text


@pytest.mark.parametrize(
    "change, message",
    [
        ({"width": None}, "missing keys ['width']"),
        ({"depth": 18}, "unknown keys ['depth']"),
        ({"width": "2"}, "width must be an integer in [1, 512], got '2'"),
        ({"width": 100_000}, "width must be an integer in [1, 512], got 100000"),
        ({"width": float("inf")}, "holds Infinity, which is not a finite number"),
        ({"num_classes": 0}, "num_classes must be a positive integer"),
        ({"input_shape": [8, 8]}, "input_shape must be 3 positive integers"),
        ({"std": [0.0]}, "std must be positive"),
    ],
)
def test_a_malformed_network_json_is_named(tmp_path, change, message):
    checkpoint = checkpoints.checkpoint_dir(tmp_path, 1)
    checkpoint.mkdir(parents=True)
    args = {k: v for k, v in (ARGS | change).items() if v is not None}
    (checkpoint / "network.json").write_text(json.dumps(args))
    with pytest.raises(ValueError) as raised:
        checkpoints.build_network(checkpoint)
    assert str(checkpoint / "network.json") in str(raised.value)
    assert message in str(raised.value)


def test_metrics_lines_after_a_garbled_one_are_kept_with_a_warning(tmp_path, caplog):
    path = tmp_path / "metrics.jsonl"
    lines = ['{"epoch": 1}', '{"epo#ch": 2,,', '{"epoch": 3}', "[4]", '{"loss": 1}', '{"epoch": 6}']
    path.write_text("\n".join(lines) + "\n")
    with caplog.at_level("WARNING"):
        records = callbacks.read_metrics(path)
    assert [r["epoch"] for r in records] == [1, 3, 6]
    for number in (2, 4, 5):
        assert f"{path} line {number}" in caplog.text
