"""jit_compile: "auto" compiles with XLA on accelerators only; old boolean configs still read."""

import pytest
import tensorflow as tf

from tf_advreg.xla import resolve_jit_compile


def test_auto_compiles_on_gpus_and_tpus_only():
    accelerators = tf.config.list_physical_devices("GPU") + tf.config.list_physical_devices("TPU")
    assert resolve_jit_compile("auto") is bool(accelerators)
    assert resolve_jit_compile("AUTO") is bool(accelerators)


@pytest.mark.parametrize("value", [True, "true", "True"])
def test_true(value):
    assert resolve_jit_compile(value) is True


@pytest.mark.parametrize("value", [False, "false", "FALSE"])
def test_false(value):
    assert resolve_jit_compile(value) is False


def test_anything_else_is_named():
    with pytest.raises(ValueError, match="jit_compile must be one of auto, true, false, got 'on'"):
        resolve_jit_compile("on")
