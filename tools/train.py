"""Train an adversarially robust ResNet18: pretrain -> tune, as the config says.

    python -m tools.train                                   # the embedded digits demo, offline
    python -m tools.train --config=configs/default.py       # the thesis: CINIC-10 -> CIFAR-10
    python -m tools.train --config.tune.objective=ar --config.tune.beta=5 --workdir=runs/ar5

Any config field is set with `--config.<path>=<value>` (the fields and their help: --helpfull,
or tf_advreg/training/schema.py). The flat flags of the first releases (`--tune_beta=5`,
`--eps=0.031`) are aliases of their nested fields. Config files are Python: only run ones you
trust.
"""

import contextlib
import signal
import sys
from pathlib import Path

from absl import app, flags, logging
from ml_collections import config_flags

from tf_advreg.errors import FieldError
from tf_advreg.training import legacy, schema

ROOT = Path(__file__).resolve().parents[1]


def _fields_help() -> str:
    lines = [f"  {path}: {field.help}" for path, field in schema.FIELDS.items()]
    return "\n".join(["Its fields, each set with --config.<field>=<value>:", *lines])


def _unknown_field(argv: list[str]) -> str:
    """The first --config.<path> override of `argv` that names no field of the schema."""
    for arg in argv:
        path = arg.removeprefix("--config.").split("=")[0]
        if arg.startswith("--config.") and path not in schema.FIELDS:
            return path
    return ""


try:  # config_flags applies the --config.<path> overrides as it defines the flag
    _CONFIG = config_flags.DEFINE_config_file(
        "config",
        str(ROOT / "configs" / "digits_demo.py"),
        "Experiment config file (Python, returning a ConfigDict). Default: the digits demo.\n"
        + _fields_help(),
    )
except (AttributeError, KeyError):
    if not _unknown_field(sys.argv):
        raise
    sys.exit(
        f"error: --config.{_unknown_field(sys.argv)} names no config field; see --helpfull for "
        "the fields."
    )
_OVERWRITE = flags.DEFINE_bool(
    "overwrite", False, "Replace a workdir that holds a run with a different config."
)

_DEFINE_BY_TYPE = {
    bool: flags.DEFINE_bool,
    int: flags.DEFINE_integer,
    float: flags.DEFINE_float,
    str: flags.DEFINE_string,
}


def _alias_help(path: str, name: str) -> str:
    field = schema.FIELDS[path]
    return field.help if name == path else f"{field.help} (= --config.{path})"


# The flat flags: every top-level field, and the first releases' names of nested ones.
_PLAIN_FLAGS = {
    name: _DEFINE_BY_TYPE[type(schema.FIELDS[path].default)](name, None, _alias_help(path, name))
    for name, path in legacy.FLAT_NAMES.items()
}


def _effective_config():
    """The config file with --config.* overrides, then the plain flags on top.

    Both spellings of one field with different values are refused: which was meant is unclear.
    """
    config = _CONFIG.value
    for name, holder in _PLAIN_FLAGS.items():
        if holder.value is None:
            continue
        path = legacy.FLAT_NAMES[name]
        override = f"config.{path}"
        if override in flags.FLAGS and flags.FLAGS[override].present:
            if schema.get(config, path) != holder.value:
                raise ValueError(
                    f"--{name}={holder.value} and --{override}={schema.get(config, path)} "
                    "disagree; pass only one of them."
                )
        schema.set_value(config, path, holder.value)
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


def _error_message(error: Exception) -> str:
    """A bad field (errors.FieldError) is named as the command line set it: `--tune_beta`,
    `--config.tune.beta`, or (from the config file) `tune.beta`."""
    if not isinstance(error, FieldError):
        return str(error)
    given = {name for name in flags.FLAGS if flags.FLAGS[name].present}
    return error.spelled(lambda path: legacy.flag_spelling(path, given))


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

    from tf_advreg.training import determinism, phases, run_config, strategy, workdir_lock
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
        phases.check_starts(config, config.workdir)
        distribution = strategy.make_strategy(config.strategy)
        with config.ignore_type():  # config.json records what "auto" resolved to
            config.jit_compile = resolve_jit_compile(config.jit_compile)
        with contextlib.ExitStack() as held:
            if strategy.is_chief(distribution):
                held.enter_context(workdir_lock.hold(config.workdir))
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
        sys.exit(f"error: {_error_message(error)}")
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
