"""Train an adversarially robust ResNet18: pretrain -> tune, as the config says.

    python -m tools.train                                   # the embedded digits demo, offline
    python -m tools.train --config=configs/default.py       # the thesis: CINIC-10 -> CIFAR-10
    python -m tools.train --tune_objective=ar --tune_beta=5 --workdir=runs/ar5

Every config field is also a plain flag of the same name (`--eps=0.031`), and
`--config.<field>=<value>` works too. Config files are Python: only run ones you trust.
"""

import signal
import sys
from pathlib import Path

from absl import app, flags, logging
from ml_collections import config_flags

from configs import default

ROOT = Path(__file__).resolve().parents[1]

_CONFIG = config_flags.DEFINE_config_file(
    "config",
    str(ROOT / "configs" / "digits_demo.py"),
    "Experiment config file (Python, returning a ConfigDict). Default: the digits demo.",
)
_OVERWRITE = flags.DEFINE_bool(
    "overwrite", False, "Replace a workdir that holds a run with a different config."
)

_HELP = {
    "pretrain_dataset": "Dataset of the pretrain phase (digits, cifar10, cinic10, ...).",
    "pretrain_split": "Training split of the pretrain phase, e.g. train+validation.",
    "pretrain_subset": "Class-balanced sample size of the pretrain split (0: all).",
    "tune_dataset": (
        "Dataset of the tune phase; empty: no tune phase. With tune_epochs=0 nothing is "
        "tuned, but the pretrained model is also evaluated on it."
    ),
    "tune_split": "Training split of the tune phase.",
    "test_split": "Split evaluated each epoch as the test set.",
    "data_dir": "TFDS data directory (empty: the TFDS default).",
    "augment": "Augmentation policy (none, default, ...).",
    "width": "ResNet18 first-stage width (64 is the thesis model).",
    "sync_batchnorm": "BatchNorm statistics over the global batch under a distribution strategy.",
    "pretrain_objective": "natural, robopt, trades, ar, alp, alp_kannan or mart.",
    "pretrain_beta": "Regularization weight (the thesis's lambda) of the pretrain objective.",
    "pretrain_regularizer": (
        "Distance between p(x) and p(x') of trades and ar: kl, symmetric_kl, total_variation or "
        "jensen_shannon."
    ),
    "tune_objective": "natural, robopt, trades, ar, alp, alp_kannan or mart.",
    "tune_beta": "Regularization weight of the tune objective.",
    "tune_regularizer": "Distance of the tune objective (trades, ar): as pretrain_regularizer.",
    "tune_init_checkpoint": (
        "Checkpoint to tune from (empty: this run's last pretrain epoch); another class count "
        "keeps its body and gets a new classifier."
    ),
    "pretrain_epochs": "Epochs of the pretrain phase.",
    "tune_epochs": "Epochs of the tune phase.",
    "batch_size": "Global batch size (split across replicas).",
    "pretrain_lr": "Initial learning rate of the pretrain phase.",
    "tune_lr": "Initial learning rate of the tune phase.",
    "lr_schedule": "step (x0.1 at 50% and 75%), cosine or constant.",
    "momentum": "SGD momentum.",
    "nesterov": "Use Nesterov momentum.",
    "weight_decay": "L2 weight decay added to the gradient (as PyTorch SGD).",
    "eps": "Radius of the threat model, in [0, 1] pixel units.",
    "attack_norm": "Threat-model norm: linf or l2.",
    "attack_steps": "PGD steps of the training attack.",
    "attack_step_size": "PGD step size of the training attack.",
    "eval_attack_steps": "PGD steps of the per-epoch evaluation attack.",
    "eval_attack_step_size": "PGD step size of the per-epoch evaluation attack.",
    "attack_bn_training": "Run BatchNorm in training mode during the training attack.",
    "eval_every": "Evaluate every N epochs (and always after the last).",
    "train_eval_subset": "Examples of each training split evaluated per epoch (0: all).",
    "test_eval_subset": "Test examples evaluated per epoch; the final epoch reads all (0: all).",
    "workdir": "Directory of the run's checkpoints, logs and exports.",
    "keep_checkpoints": "Keep only the newest N epoch checkpoints (0: all).",
    "seed": "Seed of weights, data order, augmentation and attack starts.",
    "strategy": "auto, default, mirrored or multi_worker (TF_CONFIG).",
    "jit_compile": "Compile the train and test steps with XLA: auto (on GPUs and TPUs, not on "
    "CPUs), true or false; config.json records the resolved true or false.",
    "mixed_precision": "Compute in mixed_bfloat16 (logits and losses stay float32).",
    "steps_per_execution": "Train steps per compiled call.",
    "deterministic": "TF op determinism and fixed thread pools: bit-identical reruns (slower).",
}

_DEFINE_BY_TYPE = {
    bool: flags.DEFINE_bool,
    int: flags.DEFINE_integer,
    float: flags.DEFINE_float,
    str: flags.DEFINE_string,
}
_PLAIN_FLAGS = {
    name: _DEFINE_BY_TYPE[type(value)](name, None, _HELP[name])
    for name, value in default.get_config().items()
}


def _effective_config():
    """The config file with --config.* overrides, then the plain flags on top.

    Both spellings of one field with different values are refused: which was meant is unclear.
    """
    config = _CONFIG.value
    for name, holder in _PLAIN_FLAGS.items():
        if holder.value is None:
            continue
        override = f"config.{name}"
        if override in flags.FLAGS and flags.FLAGS[override].present:
            if config[name] != holder.value:
                raise ValueError(
                    f"--{name}={holder.value} and --{override}={config[name]} disagree; "
                    "pass only one of them."
                )
        config[name] = holder.value
    return config


def _parse_flags(argv: list[str]) -> list[str]:
    """absl's flag parsing, with every failure (a --config file that does not load included)
    as one `error:` line instead of a traceback."""
    try:
        return flags.FLAGS(argv)
    except flags.Error as error:  # a bad flag value, or a config file raising ValueError
        lines = [line.strip() for line in str(error).splitlines() if line.strip()]
        if len(lines) == 1:
            sys.exit(f"error: {lines[0]}; see --helpshort.")
        detail = lines[-1]
    except Exception as error:  # the --config file itself fails: a syntax error, a NameError
        detail = f"{type(error).__name__}: {error}"
    sys.exit(f"error: the --config file {_config_file(argv)} does not load ({detail}); fix it.")


def _config_file(argv: list[str]) -> str:
    """The --config file named on the command line (absl has not recorded it when it fails)."""
    for i, arg in enumerate(argv):
        if arg.startswith("--config="):
            return arg.split("=", 1)[1]
        if arg == "--config" and i + 1 < len(argv):
            return argv[i + 1]
    return flags.FLAGS["config"].default_as_str.strip("'")


def _print_summary(workdir: Path, results: dict) -> None:
    phase, metrics = list(results.items())[-1]
    accuracies = " | ".join(
        f"{name} {value:.4f}" for name, value in metrics.items() if name.endswith("accuracy")
    )
    print(f"\nFinal metrics ({phase}, epoch {metrics.get('epoch', 0)}): {accuracies}")
    print(f"TensorBoard: tensorboard --logdir {workdir}")
    print(f"SavedModel:  {workdir / phase / 'saved_model'}")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    # Imported here so that --help answers without initialising TensorFlow.
    import keras

    from tf_advreg.training import determinism, phases, run_config, strategy
    from tf_advreg.xla import resolve_jit_compile

    if not flags.FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)  # TensorFlow's INFO chatter hides the summary
    try:
        config = _effective_config()
        if config.deterministic:  # first: before TensorFlow runs any op
            determinism.enable_determinism()
        run_config.validate(config)
        if config.mixed_precision:
            keras.mixed_precision.set_global_policy("mixed_bfloat16")
        phases.check_tune_start(config, config.workdir)
        distribution = strategy.make_strategy(config.strategy)
        with config.ignore_type():  # config.json records what "auto" resolved to
            config.jit_compile = resolve_jit_compile(config.jit_compile)
        if strategy.is_chief(distribution):
            workdir = run_config.prepare_workdir(config.workdir, config, _OVERWRITE.value)
        else:  # other workers read the chief's workdir and write only to scratch directories
            workdir = Path(config.workdir)
        keras.utils.set_random_seed(config.seed)
        with strategy.stop_when_a_worker_is_lost(distribution):
            results = {
                phase.name: phases.run_phase(config, phase, workdir, distribution)
                for phase in phases.phases_from_config(config)
            }
    except (ValueError, OSError, FloatingPointError, strategy.WorkerLostError) as error:
        logging.debug("Full traceback:", exc_info=True)
        sys.exit(f"error: {error}")
    except KeyboardInterrupt:
        print(
            "error: interrupted; the checkpoints of finished epochs are intact "
            "(re-run the same command to resume).",
            file=sys.stderr,
        )
        sys.exit(128 + signal.SIGINT)
    _print_summary(workdir, results)


if __name__ == "__main__":
    app.run(main, flags_parser=_parse_flags)
