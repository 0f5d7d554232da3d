"""SavedModels whose graph can act outside the model are refused before they are loaded."""

import dataclasses

import pytest
import tensorflow as tf
from support import assert_one_line_error, run_tool_in_process

from tf_advreg.evaluation import model_safety, models, runner
from tf_advreg.export import export_saved_model
from tf_advreg.models import resnet18

REQUEST = runner.Request(dataset="digits", subset=8, attack="natural", jit_compile=False)


class FileWriter(tf.Module):
    """A digits classifier whose serving function also writes a file."""

    def __init__(self, target):
        super().__init__()
        self.target = str(target)

    @tf.function(input_signature=[tf.TensorSpec([None, 8, 8, 1], tf.float32)])
    def serve(self, images):
        tf.io.write_file(self.target, "written by the model")
        return {"logits": tf.tile(tf.reduce_mean(images, [1, 2]), [1, 10])}


@pytest.fixture
def file_writer(tmp_path):
    target, path = tmp_path / "written.txt", tmp_path / "file_writer"
    module = FileWriter(target)
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.serve})
    return path, target


def test_our_exports_hold_only_allowed_ops(tmp_path):
    network = resnet18(num_classes=10, width=2, input_shape=(8, 8, 1))
    path = export_saved_model(network, tmp_path / "saved_model")
    assert model_safety.disallowed_ops(path) == []
    assert models.load(path).kind == "saved_model"


def test_a_model_that_writes_a_file_is_refused_unless_trusted(file_writer):
    path, target = file_writer
    assert model_safety.disallowed_ops(path) == ["WriteFile"]
    with pytest.raises(model_safety.UntrustedModelError, match="contains the op WriteFile"):
        runner.run(dataclasses.replace(REQUEST, model=str(path)))
    assert not target.exists()
    runner.run(dataclasses.replace(REQUEST, model=str(path), trust_model=True))
    assert target.read_text() == "written by the model"  # what the check prevented


def test_the_cli_names_the_op_in_one_line(file_writer):
    path, target = file_writer
    result = run_tool_in_process(
        "evaluate", f"--model={path}", "--dataset=digits", "--attack=natural"
    )
    assert_one_line_error(result, "contains the op WriteFile")
    assert "--trust_model" in result.stderr
    assert not target.exists()
