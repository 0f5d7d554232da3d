"""SavedModel export and loading: float32 NHWC images in [0, 1] -> float32 logits.

The export is written to a temporary sibling directory and renamed into place, so a crash or
kill mid-write never leaves a half-written model at the final path. Loading uses
`tf.saved_model.load` only: a SavedModel is a graph, and loading one runs no Python from it.
"""

import os
import shutil
import tempfile
from pathlib import Path

import keras
import tensorflow as tf

from tf_advreg import files

SIGNATURE_KEY = "serving_default"
OUTPUT_KEY = "logits"


def export_saved_model(network: keras.Model, path: str | os.PathLike) -> Path:
    """Writes `network` as a SavedModel with a `serving_default` signature; returns the path.

    An existing export at `path` is replaced only once the new one is complete.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    height, width, channels = network.input_shape[1:]
    spec = tf.TensorSpec([None, height, width, channels], tf.float32, name="images")

    archive = keras.export.ExportArchive()
    archive.track(network)

    def serve(images):
        return {OUTPUT_KEY: tf.cast(network(images, training=False), tf.float32)}

    archive.add_endpoint(SIGNATURE_KEY, serve, input_signature=[spec])
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    try:
        archive.write_out(str(staging), verbose=False)
        files.replace_directory(staging, path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return path


class SavedModelClassifier:
    """A loaded SavedModel used as images -> logits, like a Keras model's call.

    Works for our exports and for others' whose serving signature takes one float image tensor
    and returns one logits tensor (or a dict holding one under "logits").
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._loaded = tf.saved_model.load(str(path))  # owns the variables
        if SIGNATURE_KEY not in self._loaded.signatures:
            raise ValueError(
                f"{path} has no '{SIGNATURE_KEY}' signature; export it with an images -> logits "
                "serving signature (python -m tools.export does)."
            )
        self._signature = self._loaded.signatures[SIGNATURE_KEY]
        inputs = self._signature.structured_input_signature[1]
        if len(inputs) != 1:
            raise ValueError(
                f"{path}: the serving signature must take one input, not {len(inputs)}."
            )
        ((self._input_name, spec),) = inputs.items()
        self.input_shape = tuple(spec.shape)
        outputs = self._signature.structured_outputs
        self._output_name = OUTPUT_KEY if OUTPUT_KEY in outputs else next(iter(outputs))

    def __call__(self, images: tf.Tensor, training: bool = False) -> tf.Tensor:
        del training  # a SavedModel signature is always in inference mode
        outputs = self._signature(**{self._input_name: tf.cast(images, tf.float32)})
        return outputs[self._output_name]
