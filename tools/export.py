"""Export a training checkpoint as a SavedModel: float32 NHWC images in [0, 1] -> logits.

    python -m tools.export --checkpoint=runs/x/tune/checkpoints/epoch_0042 --output=exports/x42
    python -m tools.export --checkpoint=runs/x/tune --output=exports/x   # the newest epoch

The export is written to a temporary directory and renamed into place.
"""

import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags, logging  # noqa: E402

_CHECKPOINT = flags.DEFINE_string(
    "checkpoint", None, "A checkpoints/epoch_NNNN directory, or a phase directory (newest epoch)."
)
_OUTPUT = flags.DEFINE_string("output", None, "Directory to write the SavedModel to.")
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "Replace an existing directory at --output.")


def _checkpoint_path(path: Path) -> Path:
    from tf_advreg.training import checkpoints

    if checkpoints.is_checkpoint(path):
        return path
    found = checkpoints.list_checkpoints(path)
    if not found:
        raise ValueError(
            f"{path} is neither a checkpoint (network.json and network.weights.h5) nor a phase "
            "directory with checkpoints/epoch_NNNN; point --checkpoint at one of those."
        )
    return found[-1]


def _check_apart(source: Path, checkpoint: Path, output: Path) -> None:
    """Refuses an --output that is, holds or lies inside what is exported: --overwrite would
    delete the very run or checkpoint it reads."""
    target = output.resolve()
    for path in {source.resolve(), checkpoint.resolve()}:
        if target == path or target.is_relative_to(path) or path.is_relative_to(target):
            raise ValueError(
                f"--output={output} overlaps the checkpoint being exported ({path}); "
                "write the export to a directory outside the run."
            )


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    if not flags.FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)
    from tf_advreg import export
    from tf_advreg.training import checkpoints

    try:
        if not _CHECKPOINT.value or not _OUTPUT.value:
            raise ValueError("pass both --checkpoint and --output.")
        output = Path(_OUTPUT.value)
        if output.exists() and not _OVERWRITE.value:
            raise ValueError(f"{output} exists; pass --overwrite to replace it.")
        checkpoint = _checkpoint_path(Path(_CHECKPOINT.value))
        _check_apart(Path(_CHECKPOINT.value), checkpoint, output)
        network = checkpoints.build_network(checkpoint)
        export.export_saved_model(network, output)
    except (ValueError, OSError) as error:
        logging.debug("Full traceback:", exc_info=True)
        sys.exit(f"error: {error}")
    print(f"Exported {checkpoint} to {output}")


if __name__ == "__main__":
    app.run(main)
