"""Checking a training config before anything is written, and guarding existing workdirs."""

import json
import math
import os
import shutil
from pathlib import Path

import ml_collections

from tf_advreg import data, files, losses, models, objectives
from tf_advreg.attacks import AttackSettings
from tf_advreg.data import augment
from tf_advreg.objectives import objective_class
from tf_advreg.training import legacy, schema
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


def validate(config: ml_collections.ConfigDict) -> None:
    """Raises ValueError with one sentence naming the bad field, its value and the fix.

    Checks the data's splits and sizes from metadata too, so that nothing fails after the
    workdir has been prepared (or, with --overwrite, replaced).
    """
    for path, value in schema.flatten(config.to_dict()).items():
        _require(
            not isinstance(value, float) or math.isfinite(value),
            f"{path} must be a finite number, got {value}.",
        )
    for phase in schema.PHASES:
        _validate_phase(phase, config[phase])
        attack_settings(config, phase)
    _require(
        bool(config.pretrain.dataset) or bool(config.tune.init_checkpoint),
        "pretrain.dataset is empty: set it, or set tune.init_checkpoint to tune an existing model.",
    )
    _require(config.batch_size >= 1, f"batch_size must be >= 1, got {config.batch_size}.")
    _require(
        config.lr_schedule in LR_SCHEDULES,
        f"Unknown lr_schedule {config.lr_schedule!r}; choose one of {', '.join(LR_SCHEDULES)}.",
    )
    _require(0 <= config.momentum < 1, f"momentum must be in [0, 1), got {config.momentum}.")
    _require(config.weight_decay >= 0, f"weight_decay must be >= 0, got {config.weight_decay}.")
    _require(
        config.strategy in STRATEGIES,
        f"Unknown strategy {config.strategy!r}; choose one of {', '.join(STRATEGIES)}.",
    )
    for path in ("eval.train_subset", "eval.test_subset", "eval.every", "keep_checkpoints"):
        value = schema.get(config, path)
        _require(value >= 0, f"{path} must be >= 0, got {value}.")
    _require(
        config.steps_per_execution >= 1,
        f"steps_per_execution must be >= 1, got {config.steps_per_execution}.",
    )
    resolve_jit_compile(config.jit_compile)
    augment.check_policy(config.augment)
    models.check_name(config.model.name)
    models.check_width(config.model.width)
    _check_data(config)


def _validate_phase(name: str, phase: ml_collections.ConfigDict) -> None:
    """One phase block; errors name its fields as <phase>.<field>."""
    datasets = data.available_datasets()
    _require(
        phase.dataset == "" or phase.dataset.split("/")[0] in datasets,
        f"Unknown {name}.dataset {phase.dataset!r}; available: {', '.join(datasets)}.",
    )
    objective = objective_class(phase.objective)
    _require(phase.beta >= 0, f"{name}.beta must be >= 0, got {phase.beta}.")
    _require(
        phase.regularizer in losses.REGULARIZERS,
        f"Unknown {name}.regularizer {phase.regularizer!r}; choose one of "
        f"{', '.join(losses.REGULARIZERS)}.",
    )
    _require(
        phase.regularizer == "kl" or objective.takes_regularizer,
        f"{name}.regularizer {phase.regularizer!r} applies to "
        f"{' and '.join(objectives.regularized())} only; set it to kl for {name}.objective "
        f"{phase.objective!r}.",
    )
    for field in ("epochs", "subset"):
        _require(phase[field] >= 0, f"{name}.{field} must be >= 0, got {phase[field]}.")
    _require(phase.lr > 0, f"{name}.lr must be > 0, got {phase.lr}.")


def attack_settings(config, phase: str) -> AttackSettings:
    """The phase's attack (config.attack with the phase's overrides), checked."""
    try:
        return AttackSettings(**schema.phase_attack(config, phase))
    except ValueError as error:
        raise ValueError(f"{phase} attack: {error}") from error


def _check_data(config: ml_collections.ConfigDict) -> None:
    """Each phase's training and test split exists and holds at least one batch (metadata only:
    nothing is read or downloaded)."""
    data_dir = config.data_dir or None
    for name in schema.PHASES:
        phase = config[name]
        if not phase.dataset:
            continue
        splits = {f"{name}.split": phase.split, "eval.test_split": config.eval.test_split}
        for label, split in splits.items():
            try:
                data.split_size(phase.dataset, split, data_dir)
            except ValueError as error:
                raise ValueError(f"{label}: {error}") from error
        size = data.split_size(phase.dataset, phase.split, data_dir)
        if phase.subset:
            _require(
                phase.subset <= size,
                f"{name}.subset {phase.subset} exceeds the {size} examples of "
                f"{phase.dataset}:{phase.split}; choose at most {size} (0: all).",
            )
            size = phase.subset
        _require(
            config.batch_size <= size,
            f"batch_size {config.batch_size} exceeds the {size} training examples of "
            f"{phase.dataset}:{phase.split}; choose a batch_size <= {size}.",
        )


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
        if differences:
            shutil.rmtree(workdir)
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
