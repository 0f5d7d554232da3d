"""`python -m tools.export`: it never writes over the run or checkpoint it exports."""

import keras
import pytest
from support import assert_one_line_error, run_tool_in_process

from tf_advreg.models import resnet18
from tf_advreg.training import checkpoints

NETWORK_ARGS = dict(num_classes=10, width=2, input_shape=(8, 8, 1))


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A workdir holding one pretrain checkpoint (each test checks that it stays untouched)."""
    tmp_path = tmp_path_factory.mktemp("export")
    network = resnet18(**NETWORK_ARGS)
    optimizer = keras.optimizers.SGD(0.1)
    optimizer.build(network.trainable_variables)
    checkpoints.save(tmp_path / "run" / "pretrain", 1, network, NETWORK_ARGS, optimizer, {})
    return tmp_path / "run"


def _files(path):
    return {p: p.read_bytes() for p in path.rglob("*") if p.is_file()}


@pytest.mark.parametrize(
    "checkpoint, output",
    [
        ("pretrain/checkpoints/epoch_0001", "pretrain/checkpoints/epoch_0001"),
        ("pretrain", "pretrain"),
        ("pretrain", "."),  # the workdir holding the phase
        ("pretrain", "pretrain/checkpoints/exported"),  # inside what is exported
    ],
)
def test_an_output_overlapping_the_source_is_refused_even_with_overwrite(run, checkpoint, output):
    before = _files(run)
    result = run_tool_in_process(
        "export", f"--checkpoint={run / checkpoint}", f"--output={run / output}", "--overwrite"
    )
    assert_one_line_error(result, "overlaps the checkpoint being exported")
    assert _files(run) == before
