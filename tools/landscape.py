"""Draw a classifier's loss landscape and decision regions around a few test images.

    python -m tools.landscape --model=runs/digits_demo --dataset=digits --eps=0.1 --output_dir=out
    python -m tools.landscape --model=runs/x --dataset=cifar10 --num_images=8 --output_dir=out

For each image, the slice spanned by the adversarial (sign-gradient) direction and a random
Rademacher direction (Engstrom et al. 2018), in units of eps; tf_advreg/evaluation/landscape.py
defines it and the summary numbers. Writes <output_dir>/landscape.png and landscape.json and
prints the summary. Exit status 0 on success, 1 on bad input (one line on stderr).
"""

import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import app, flags, logging  # noqa: E402

from tf_advreg import data  # noqa: E402
from tf_advreg.evaluation import landscape, landscape_report, models  # noqa: E402
from tf_advreg.xla import JIT_COMPILE_CHOICES, JIT_COMPILE_HELP, resolve_jit_compile  # noqa: E402

_DEFAULTS = landscape.Settings()
_MODEL = flags.DEFINE_string(
    "model", None, "SavedModel directory, checkpoint directory or training workdir."
)
_DATASET = flags.DEFINE_string("dataset", "cifar10", "Dataset (digits, cifar10, cinic10, ...).")
_DATA_DIR = flags.DEFINE_string("data_dir", None, "TFDS data directory (default: TFDS's).")
_SPLIT = flags.DEFINE_string("split", "test", "Split the images come from.")
_NUM_IMAGES = flags.DEFINE_integer(
    "num_images", 4, "Images to slice through: a class-balanced sample chosen by --seed."
)
_EPS = flags.DEFINE_float(
    "eps", _DEFAULTS.eps, "L-inf radius of the threat model: the unit of both axes."
)
_SPAN = flags.DEFINE_float(
    "span", _DEFAULTS.span, "Each axis runs over [-span, span] eps (>= 1 to show the ball)."
)
_RESOLUTION = flags.DEFINE_integer(
    "resolution", _DEFAULTS.resolution, "Grid points per axis (odd, so the image is one)."
)
_SEED = flags.DEFINE_integer(
    "seed", _DEFAULTS.seed, "Seed of the image sample and random direction."
)
_BATCH_SIZE = flags.DEFINE_integer(
    "batch_size", _DEFAULTS.batch_size, "Plane points evaluated per call."
)
_OUTPUT_DIR = flags.DEFINE_string(
    "output_dir", None, "Directory for landscape.png and landscape.json."
)
_JIT_COMPILE = flags.DEFINE_enum("jit_compile", "auto", list(JIT_COMPILE_CHOICES), JIT_COMPILE_HELP)
_TRUST_MODEL = flags.DEFINE_bool("trust_model", False, models.TRUST_MODEL_HELP)


def _settings() -> landscape.Settings:
    return landscape.Settings(
        eps=_EPS.value,
        span=_SPAN.value,
        resolution=_RESOLUTION.value,
        seed=_SEED.value,
        batch_size=_BATCH_SIZE.value,
        jit_compile=resolve_jit_compile(_JIT_COMPILE.value),
    )


def _check_output_dir() -> Path:
    if not _OUTPUT_DIR.value:
        raise ValueError("--output_dir is required: the directory for the PNG and JSON.")
    out = Path(_OUTPUT_DIR.value)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--output_dir {out} is a file; name a directory.")
    return out


def _images(dataset_info: data.DatasetInfo) -> tuple[np.ndarray, np.ndarray]:
    if _NUM_IMAGES.value < 1:
        raise ValueError(f"--num_images must be positive, got {_NUM_IMAGES.value}.")
    batches = data.load(
        _DATASET.value,
        _SPLIT.value,
        batch_size=_NUM_IMAGES.value,
        training=False,
        data_dir=_DATA_DIR.value,
        subset=_NUM_IMAGES.value,
        seed=_SEED.value,
    )
    images, labels = next(iter(batches))
    return images.numpy(), labels.numpy()


def _run() -> None:
    """Validates everything, then computes, then writes."""
    settings = _settings()
    settings.check()
    out = _check_output_dir()
    if not _MODEL.value:
        raise ValueError("--model is required: a SavedModel, checkpoint or training workdir.")
    model = models.load(_MODEL.value, trust_model=_TRUST_MODEL.value)
    dataset_info = data.info(_DATASET.value, _DATA_DIR.value)
    models.check_input_shape(model, dataset_info.image_shape, _DATASET.value)
    images, labels = _images(dataset_info)

    def progress(line: str) -> None:
        print(f"landscape: {line}", file=sys.stderr, flush=True)

    slices = landscape.slices(model.classifier, images, labels, settings, progress)
    doc = landscape_report.document(
        model.identity(),
        {"dataset": _DATASET.value, "split": _SPLIT.value, "seed": _SEED.value},
        settings,
        slices,
    )
    num_classes = max(dataset_info.num_classes, *(int(s.prediction.max()) + 1 for s in slices))
    title = f"{model.path} on {_DATASET.value}:{_SPLIT.value}, eps {settings.eps}"
    fig = landscape_report.figure(images, slices, num_classes, title)
    written = landscape_report.write(out, doc, fig)
    for key, value in doc["summary"].items():
        print(f"{key:>17}: {value:.4g}")
    print("wrote " + ", ".join(str(path) for path in written))


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    if not flags.FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)
        tf.get_logger().setLevel("ERROR")
    try:
        _run()
    except (ValueError, OSError) as error:
        logging.debug("Full traceback:", exc_info=True)
        sys.exit(f"error: {error}")
    return 0


if __name__ == "__main__":
    app.run(main)
