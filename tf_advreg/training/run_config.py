"""Checking a training config before anything is written, and guarding existing workdirs."""

import contextlib
import json
import math
import os
import shutil
from pathlib import Path

import ml_collections

from tf_advreg import data, files, losses, models, objectives
from tf_advreg.attacks import AttackSettings
from tf_advreg.data import augment
from tf_advreg.errors import SLOT, FieldError
from tf_advreg.objectives import objective_class
from tf_advreg.training import best_checkpoint, legacy, schema
from tf_advreg.training.strategy import STRATEGIES
from tf_advreg.xla import resolve_jit_compile

LR_SCHEDULES = ("step", "cosine", "constant")
# Written into every workdir before anything else: the sign that a directory is a run of ours,
# which a re-run may resume and --overwrite may delete. Nothing else is ever deleted.
RUN_MARKER = ".tf_advreg_run"
# Every field of the first release's config: a config.json holding all of them marks a run made
# before RUN_MARKER existed (a foreign config.json sharing a few keys does not).
_FIRST_RELEASE_FIELDS = frozenset(
    """pretrain_dataset pretrain_split pretrain_subset tune_dataset tune_split test_split data_dir
    augment width pretrain_objective pretrain_beta tune_objective tune_beta tune_init_checkpoint
    pretrain_epochs tune_epochs batch_size pretrain_lr tune_lr lr_schedule momentum nesterov
    weight_decay eps attack_norm attack_steps attack_step_size eval_attack_steps
    eval_attack_step_size attack_bn_training eval_every train_eval_subset workdir
    keep_checkpoints seed strategy jit_compile mixed_precision steps_per_execution""".split()
)


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def _require_field(condition: bool, path: str, message: str) -> None:
    """`message` names the field as errors.SLOT, which a tool spells as its user did."""
    if not condition:
        raise FieldError(path, message)


@contextlib.contextmanager
def _checking(path: str):
    """A ValueError of a check another module owns, as an error of the field at `path`."""
    try:
        yield
    except FieldError:
        raise
    except ValueError as error:
        raise FieldError(path, f"{SLOT}: {error}") from error


def validate(config: ml_collections.ConfigDict) -> None:
    """Raises ValueError with one sentence naming the bad field, its value and the fix.

    An error of one field is an errors.FieldError: tools.train names the field by the flag that
    set it. Checks the data's splits and sizes from metadata too, so that nothing fails after
    the workdir has been prepared (or, with --overwrite, replaced).
    """
    for path, value in schema.flatten(config.to_dict()).items():
        _require_field(
            not isinstance(value, float) or math.isfinite(value),
            path,
            f"{SLOT} must be a finite number, got {value}.",
        )
    for phase in schema.PHASES:
        _validate_phase(phase, config[phase])
        attack_settings(config, phase)
    _require(
        bool(config.pretrain.dataset) or bool(config.tune.init_checkpoint),
        "pretrain.dataset is empty: set it, or set tune.init_checkpoint to tune an existing model.",
    )
    _require_field(
        config.batch_size >= 1, "batch_size", f"{SLOT} must be >= 1, got {config.batch_size}."
    )
    _require_field(
        config.lr_schedule in LR_SCHEDULES,
        "lr_schedule",
        f"Unknown {SLOT} {config.lr_schedule!r}; choose one of {', '.join(LR_SCHEDULES)}.",
    )
    _require_field(
        0 <= config.momentum < 1, "momentum", f"{SLOT} must be in [0, 1), got {config.momentum}."
    )
    _require_field(
        config.weight_decay >= 0,
        "weight_decay",
        f"{SLOT} must be >= 0, got {config.weight_decay}.",
    )
    _require_field(
        config.strategy in STRATEGIES,
        "strategy",
        f"Unknown {SLOT} {config.strategy!r}; choose one of {', '.join(STRATEGIES)}.",
    )
    for path in ("eval.train_subset", "eval.test_subset", "eval.every", "keep_checkpoints"):
        value = schema.get(config, path)
        _require_field(value >= 0, path, f"{SLOT} must be >= 0, got {value}.")
    _check_eval_sets(config)
    _require_field(
        config.steps_per_execution >= 1,
        "steps_per_execution",
        f"{SLOT} must be >= 1, got {config.steps_per_execution}.",
    )
    with _checking("jit_compile"):
        resolve_jit_compile(config.jit_compile)
    with _checking("augment"):
        augment.check_policy(config.augment)
    with _checking("model.name"):
        models.check_name(config.model.name)
    with _checking("model.width"):
        models.check_width(config.model.width)
    _check_data(config)


def _validate_phase(name: str, phase: ml_collections.ConfigDict) -> None:
    """One phase block; errors name its fields as <phase>.<field>."""
    datasets = data.available_datasets()
    _require_field(
        phase.dataset == "" or phase.dataset.split("/")[0] in datasets,
        f"{name}.dataset",
        f"Unknown {SLOT} {phase.dataset!r}; available: {', '.join(datasets)}.",
    )
    with _checking(f"{name}.objective"):
        objective = objective_class(phase.objective)
    _require_field(phase.beta >= 0, f"{name}.beta", f"{SLOT} must be >= 0, got {phase.beta}.")
    _require_field(
        phase.regularizer in losses.REGULARIZERS,
        f"{name}.regularizer",
        f"Unknown {SLOT} {phase.regularizer!r}; choose one of {', '.join(losses.REGULARIZERS)}.",
    )
    _require_field(
        phase.regularizer == "kl" or objective.takes_regularizer,
        f"{name}.regularizer",
        f"{SLOT} {phase.regularizer!r} applies to {' and '.join(objectives.regularized())} "
        f"only; set it to kl for {name}.objective {phase.objective!r}.",
    )
    fields = ("epochs", "subset", "lr_warmup_epochs", "awp_gamma", "awp_warmup_epochs", "hold_out")
    for field in fields:
        _require_field(
            phase[field] >= 0, f"{name}.{field}", f"{SLOT} must be >= 0, got {phase[field]}."
        )
    _require_field(phase.lr > 0, f"{name}.lr", f"{SLOT} must be > 0, got {phase.lr}.")
    _require_field(
        0 <= phase.ema_decay < 1,
        f"{name}.ema_decay",
        f"{SLOT} must be in [0, 1) (0: no weight averaging), got {phase.ema_decay}.",
    )
    _require_field(
        phase.best_metric in best_checkpoint.METRICS,
        f"{name}.best_metric",
        f"Unknown {SLOT} {phase.best_metric!r}; choose one of "
        f"{', '.join(best_checkpoint.METRICS)}.",
    )
    _require_field(
        not best_checkpoint.of_average(phase.best_metric) or phase.ema_decay > 0,
        f"{name}.best_metric",
        f"{SLOT} {phase.best_metric!r} rates the weight average; set {name}.ema_decay > 0 or "
        "choose a metric of the network.",
    )


def _check_eval_sets(config: ml_collections.ConfigDict) -> None:
    sets = schema.eval_sets(config)
    for name in sets:
        _require_field(
            name in schema.EVAL_SETS,
            "eval.sets",
            f"{SLOT} names an unknown set {name!r}; choose from {', '.join(schema.EVAL_SETS)}.",
        )
    _require_field(
        "test" in sets,
        "eval.sets",
        f"{SLOT} must include test (each evaluation's example images are test images), got "
        f"{config.eval.sets!r}.",
    )


def attack_settings(config, phase: str) -> AttackSettings:
    """The phase's attack (config.attack with the phase's overrides), checked; an error names
    the field the bad value came from: the phase's own, or config.attack's."""
    try:
        return AttackSettings(**schema.phase_attack(config, phase))
    except FieldError as error:
        own = config[phase].attack.get(error.field) is not None
        path = f"{phase}.attack.{error.field}" if own else f"attack.{error.field}"
        raise error.renamed(path) from None


def _check_data(config: ml_collections.ConfigDict) -> None:
    """Each phase's training and test split exists and holds at least one batch (metadata only:
    nothing is read or downloaded)."""
    data_dir = config.data_dir or None
    for name in schema.PHASES:
        phase = config[name]
        if not phase.dataset:
            continue
        for path in (f"{name}.split", "eval.test_split"):
            with _checking(path):
                data.split_size(phase.dataset, schema.get(config, path), data_dir)
        size = data.split_size(phase.dataset, phase.split, data_dir)
        if phase.hold_out:
            _require_field(
                phase.hold_out < size,
                f"{name}.hold_out",
                f"{SLOT} {phase.hold_out} leaves none of the {size} examples of "
                f"{phase.dataset}:{phase.split} to train on; choose at most {size - 1} (0: off).",
            )
            size -= phase.hold_out
        if phase.subset:
            _require_field(
                phase.subset <= size,
                f"{name}.subset",
                f"{SLOT} {phase.subset} exceeds the {size} examples of "
                f"{phase.dataset}:{phase.split}{_after_hold_out(phase)}; choose at most {size} "
                "(0: all).",
            )
            size = phase.subset
        _require_field(
            config.batch_size <= size,
            "batch_size",
            f"{SLOT} {config.batch_size} exceeds the {size} training examples of "
            f"{phase.dataset}:{phase.split}{_after_hold_out(phase)}; choose a batch_size <= "
            f"{size}.",
        )


def _after_hold_out(phase) -> str:
    return f" left after hold_out={phase.hold_out}" if phase.hold_out else ""


def config_differences(saved: dict, current: dict) -> list[str]:
    """The settings in which `current` would not continue the run `saved` describes.

    Either may be in the flat layout of the first releases. Resumable fields may differ. A
    field the saved run predates is not compared: fields are added with defaults that keep the
    earlier behaviour.
    """
    saved = schema.flatten(legacy.migrate(saved))
    current = schema.flatten(legacy.migrate(current))
    return sorted(
        f"{path}: {saved[path]!r} -> {value!r}"
        for path, value in current.items()
        if path in saved and saved[path] != value and not _resumable(path)
    )


def _resumable(path: str) -> bool:
    field = schema.FIELDS.get(path)
    return field is not None and field.resumable


def is_run_dir(path: str | os.PathLike) -> bool:
    """Whether `path` is a workdir of tools.train: it holds RUN_MARKER, or (a run made before
    the marker) a config.json with every field of the first release."""
    path = Path(path)
    if (path / RUN_MARKER).is_file():
        return True
    try:
        saved = saved_config(path)
    except (OSError, ValueError):
        return False
    return _FIRST_RELEASE_FIELDS <= saved.keys()


def saved_config(workdir: str | os.PathLike) -> dict:
    """The config a run recorded in its config.json ({} when it has none yet)."""
    path = Path(workdir) / "config.json"
    return files.read_json(path) if path.exists() else {}


def _remove_contents(workdir: Path) -> None:
    """Everything in `workdir`: RUN_MARKER first, then config.json, so that a kill midway leaves
    a directory no run claims (refused), never a run that would resume the old checkpoints."""
    first = (RUN_MARKER, "config.json")
    order = {name: rank for rank, name in enumerate(first)}
    for child in sorted(workdir.iterdir(), key=lambda path: order.get(path.name, len(first))):
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


def prepare_workdir(
    workdir: str | os.PathLike, config: ml_collections.ConfigDict, overwrite: bool
) -> Path:
    """Creates the workdir and records the config, or refuses a workdir of another run.

    A run whose saved config differs (in a field that is not resumable) is left untouched unless
    `overwrite`, which removes the old run first. A non-empty directory without RUN_MARKER is
    never touched, whatever it holds.
    """
    workdir = Path(workdir)
    if is_run_dir(workdir):
        differences = config_differences(saved_config(workdir), config.to_dict())
        if differences and not overwrite:
            raise ValueError(
                f"{workdir} holds a run with a different config ({'; '.join(differences)}); "
                "pass --overwrite to replace it, or choose another --workdir."
            )
        if differences:  # its contents only: the directory holds the workdir lock
            _remove_contents(workdir)
    elif workdir.exists() and any(workdir.iterdir()):
        raise ValueError(
            f"{workdir} is not empty and holds no tf_advreg run (no {RUN_MARKER} file); "
            "choose a new or empty --workdir."
        )
    workdir.mkdir(parents=True, exist_ok=True)
    files.write_text(workdir / RUN_MARKER, "A tools.train run: re-runs resume it.\n")
    files.write_text(
        workdir / "config.json", json.dumps(config.to_dict(), indent=2, sort_keys=True)
    )
    return workdir
