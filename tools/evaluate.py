"""Evaluate a classifier's robustness: natural and adversarial accuracy with 95 % intervals.

    python -m tools.evaluate --model=runs/digits_demo --dataset=digits --eps=0.1
    python -m tools.evaluate --model=runs/x --dataset=cifar10 --attack=strongest --steps=100
    python -m tools.evaluate --model=runs/x --dataset=cifar10 --attack=autoattack --eps=0.0314
    python -m tools.evaluate --model=runs/x --thesis_metrics --subset=1000 --output=x.json
    python -m tools.evaluate --checkpoints=runs/x/pretrain --thesis_metrics --csv=series.csv
    python -m tools.evaluate --model=runs/x --sanity_checks --transfer_model=runs/y
    python -m tools.evaluate --model=runs/x --examples=pictures/ --attack=pgd,apgd-ce
    python -m tools.evaluate --model=runs/x,runs/y --eps_curve=0,0.01,0.02,0.03,0.05

Flags map one to one onto tf_advreg.evaluation.runner.Request.

--model is a SavedModel directory, a checkpoint (epoch_NNNN/) or a training workdir. Exit
status: 0 on success, 1 on bad input (one line on stderr), 2 when a sanity check fails.
docs/evaluation.md describes the attacks, the JSON schema and how to cite results.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402
from absl import app, flags, logging  # noqa: E402

from tf_advreg import files  # noqa: E402
from tf_advreg.errors import FieldError  # noqa: E402
from tf_advreg.evaluation import models, pictures, report, runner  # noqa: E402
from tf_advreg.xla import JIT_COMPILE_CHOICES, JIT_COMPILE_HELP  # noqa: E402

_DEFAULTS = runner.Request()
_MODEL = flags.DEFINE_string(
    "model",
    None,
    "SavedModel directory, checkpoint directory or training workdir; several, comma-separated.",
)
_CHECKPOINTS = flags.DEFINE_string(
    "checkpoints",
    None,
    "Evaluate every epoch's checkpoint of a training phase (e.g. <workdir>/pretrain).",
)
_DATASET = flags.DEFINE_string(
    "dataset", _DEFAULTS.dataset, "Dataset (digits, cifar10, cinic10, ...)."
)
_DATA_DIR = flags.DEFINE_string("data_dir", None, "TFDS data directory (default: TFDS's).")
_SPLIT = flags.DEFINE_string("split", _DEFAULTS.split, "Split to evaluate.")
_SUBSET = flags.DEFINE_integer(
    "subset", None, "Evaluate a class-balanced sample of this many examples."
)
_SEED = flags.DEFINE_integer(
    "seed", _DEFAULTS.seed, "Seed of the subset and of the attacks' random starts."
)
_BATCH_SIZE = flags.DEFINE_integer("batch_size", _DEFAULTS.batch_size, "Examples per batch.")
_ATTACK = flags.DEFINE_string(
    "attack",
    _DEFAULTS.attack,
    "Comma-separated attacks: natural, noise, fgsm, pgd (CE loss), pgd-cw (margin loss), "
    "apgd-ce, apgd-dlr, apgd-t (targeted), fab-t (targeted minimum-norm), square (black-box; "
    "--steps counts queries). Add "
    "'strongest' for the per-example worst case over them; 'strongest' alone runs fgsm, pgd, "
    "pgd-cw, apgd-ce and apgd-dlr. 'autoattack' (or 'autoattack-rand' for randomized models) "
    "alone runs the AutoAttack sequence with its fixed settings. Natural accuracy is always "
    "reported.",
)
_EPS = flags.DEFINE_float(
    "eps", _DEFAULTS.eps, "Radius of the threat model, in [0, 1] pixel units."
)
_NORM = flags.DEFINE_enum("norm", _DEFAULTS.norm, ["linf", "l2"], "Threat-model norm.")
_STEPS = flags.DEFINE_integer("steps", _DEFAULTS.steps, "Iterations of PGD and APGD.")
_STEP_SIZE = flags.DEFINE_float(
    "step_size", _DEFAULTS.step_size, "PGD step size (APGD adapts its own)."
)
_RESTARTS = flags.DEFINE_integer(
    "restarts",
    _DEFAULTS.restarts,
    "Random restarts; an example counts as robust only if it survives all.",
)
_THESIS_METRICS = flags.DEFINE_bool(
    "thesis_metrics",
    False,
    "Report the thesis's four columns instead: natural and PGD-20 (eps 0.03, step 0.003) "
    "accuracy on the train and test splits.",
)
_SANITY_CHECKS = flags.DEFINE_bool(
    "sanity_checks", False, "Also run the checks against gradient masking (a PASS/FAIL table)."
)
_TRANSFER_MODEL = flags.DEFINE_string(
    "transfer_model",
    None,
    "A separately trained model: the sanity checks verify the white-box attack beats "
    "adversarial examples transferred from it.",
)
_TRUST_MODEL = flags.DEFINE_bool("trust_model", False, models.TRUST_MODEL_HELP)
_OUTPUT = flags.DEFINE_string("output", None, "Write the results as JSON here.")
_CSV = flags.DEFINE_string("csv", None, "Write one CSV row per (model, split, attack) here.")
_ROBUSTBENCH_JSON = flags.DEFINE_string(
    "robustbench_json",
    None,
    "With --attack=autoattack: write the fields of a RobustBench model card (clean and "
    "AutoAttack accuracy, eps, threat model, architecture, data) as JSON here.",
)
_ARCHITECTURE = flags.DEFINE_string(
    "architecture", None, "Architecture name for --robustbench_json (e.g. ResNet-18)."
)
_JIT_COMPILE = flags.DEFINE_enum(
    "jit_compile",
    "auto",
    list(JIT_COMPILE_CHOICES),
    JIT_COMPILE_HELP,
)
_EXAMPLES = flags.DEFINE_string(
    "examples",
    None,
    "Write here a PNG grid per attack of the first examples: clean, adversarial, perturbation "
    "magnified, with labels and predictions.",
)
_EPS_CURVE = flags.DEFINE_list(
    "eps_curve",
    [],
    "Run each attack at every one of these eps (e.g. 0,0.01,0.02,0.03) and write accuracy "
    "against eps, one curve per model, to --eps_curve_output .csv and .png.",
)
_EPS_CURVE_OUTPUT = flags.DEFINE_string(
    "eps_curve_output", "eps_curve", "Path prefix of the --eps_curve files."
)


def _write_robustbench(doc: dict, path: str) -> None:
    report.write_json(report.robustbench_record(doc, _ARCHITECTURE.value), path)


_WRITERS = (
    (_OUTPUT, report.write_json),
    (_CSV, report.write_csv),
    (_ROBUSTBENCH_JSON, _write_robustbench),
)


def _request() -> runner.Request:
    return runner.Request(
        model=_MODEL.value,
        checkpoints=_CHECKPOINTS.value,
        dataset=_DATASET.value,
        data_dir=_DATA_DIR.value,
        split=_SPLIT.value,
        subset=_SUBSET.value,
        seed=_SEED.value,
        batch_size=_BATCH_SIZE.value,
        attack=_ATTACK.value,
        eps=_EPS.value,
        norm=_NORM.value,
        steps=_STEPS.value,
        step_size=_STEP_SIZE.value,
        restarts=_RESTARTS.value,
        thesis_metrics=_THESIS_METRICS.value,
        sanity_checks=_SANITY_CHECKS.value,
        transfer_model=_TRANSFER_MODEL.value,
        trust_model=_TRUST_MODEL.value,
        jit_compile=_JIT_COMPILE.value,
        eps_curve=tuple(_radius(value) for value in _EPS_CURVE.value),
    )


def _radius(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"--eps_curve takes numbers, e.g. 0,0.01,0.03; got {text!r}.") from None


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    if not flags.FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)
        # One tf.function per attack trips TensorFlow's note about retracing.
        tf.get_logger().setLevel("ERROR")
    outputs = [(path.value, write) for path, write in _WRITERS if path.value]
    try:
        request = _request()
        if request.eps_curve:
            outputs.append((_EPS_CURVE_OUTPUT.value, pictures.write_eps_curve))
        for path, _ in outputs:  # before the evaluation, which may take hours
            files.check_writable(path)
        if _ROBUSTBENCH_JSON.value and (
            runner.autoattack_version(request) is None or len(runner.model_paths(request)) != 1
        ):
            raise ValueError(
                "--robustbench_json needs --attack=autoattack (or autoattack-rand) on one --model."
            )
        if _EXAMPLES.value:
            files.check_writable(os.path.join(_EXAMPLES.value, "example.png"))
        doc = runner.run(request)
    except (ValueError, OSError) as error:
        logging.debug("Full traceback:", exc_info=True)
        if isinstance(error, FieldError):  # a bad attack setting: named by its flag
            error = error.spelled(lambda field: f"--{field}")
        sys.exit(f"error: {error}")
    print(report.format_results(doc))
    if "sanity_checks" in doc:
        print()
        print(report.format_checks(doc["sanity_checks"]))
    try:  # after the tables are printed, so that a write failing now loses nothing shown
        for path, write in outputs:
            write(doc, path)
        if _EXAMPLES.value:
            pictures.write_request_examples(request, doc, _EXAMPLES.value)
    except OSError as error:
        sys.exit(f"error: {error}")
    if "unreadable_checkpoints" in doc:
        broken = "; ".join(f"{c['path']} ({c['error']})" for c in doc["unreadable_checkpoints"])
        sys.exit(
            f"error: could not load {broken}; the other epochs were evaluated above. Restore "
            "or delete the broken checkpoint."
        )
    return 0 if doc.get("sanity_checks", {}).get("passed", True) else 2


if __name__ == "__main__":
    app.run(main)
