"""Checking a training config before anything is written, and guarding existing workdirs."""

import json
import math
import os
import shutil
from pathlib import Path

import ml_collections

from tf_advreg import data, files, losses
from tf_advreg.attacks import validate_attack_args
from tf_advreg.data import augment
from tf_advreg.models.resnet import check_width
from tf_advreg.objectives import objective_class
from tf_advreg.training.strategy import STRATEGIES
from tf_advreg.xla import resolve_jit_compile

# Fields a re-run may change and still continue the same run: more epochs, other hardware.
RESUMABLE_FIELDS = frozenset(
    {
        "pretrain_epochs",
        "tune_epochs",
        "keep_checkpoints",
        "eval_every",
        "strategy",
        "jit_compile",
        "steps_per_execution",
        "deterministic",
        "data_dir",
        "workdir",
    }
)
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
    for field, value in config.items():
        _require(
            not isinstance(value, float) or math.isfinite(value),
            f"{field} must be a finite number, got {value}.",
        )
    datasets = data.available_datasets()
    for phase in ("pretrain", "tune"):
        name = config[f"{phase}_dataset"]
        _require(
            name == "" or name.split("/")[0] in datasets,
            f"Unknown {phase}_dataset {name!r}; available: {', '.join(datasets)}.",
        )
        objective = objective_class(config[f"{phase}_objective"])
        _require(
            config[f"{phase}_beta"] >= 0,
            f"{phase}_beta must be >= 0, got {config[f'{phase}_beta']}.",
        )
        regularizer = config[f"{phase}_regularizer"]
        _require(
            regularizer in losses.REGULARIZERS,
            f"Unknown {phase}_regularizer {regularizer!r}; choose one of "
            f"{', '.join(losses.REGULARIZERS)}.",
        )
        _require(
            regularizer == "kl" or objective.takes_regularizer,
            f"{phase}_regularizer {regularizer!r} applies to trades and ar only; set it to kl "
            f"for {phase}_objective {config[f'{phase}_objective']!r}.",
        )
        _require(
            config[f"{phase}_epochs"] >= 0,
            f"{phase}_epochs must be >= 0, got {config[f'{phase}_epochs']}.",
        )
        _require(config[f"{phase}_lr"] > 0, f"{phase}_lr must be > 0, got {config[f'{phase}_lr']}.")
    _require(
        bool(config.pretrain_dataset) or bool(config.tune_init_checkpoint),
        "pretrain_dataset is empty: set it, or set tune_init_checkpoint to tune an existing model.",
    )
    _require(
        0 <= config.eps <= 1, f"eps must be in [0, 1] (images are in [0, 1]), got {config.eps}."
    )
    validate_attack_args(
        eps=config.eps,
        step_size=config.attack_step_size,
        steps=config.attack_steps,
        norm=config.attack_norm,
    )
    validate_attack_args(
        eps=config.eps, step_size=config.eval_attack_step_size, steps=config.eval_attack_steps
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
    for field in (
        "pretrain_subset",
        "train_eval_subset",
        "test_eval_subset",
        "eval_every",
        "keep_checkpoints",
    ):
        _require(config[field] >= 0, f"{field} must be >= 0, got {config[field]}.")
    _require(
        config.steps_per_execution >= 1,
        f"steps_per_execution must be >= 1, got {config.steps_per_execution}.",
    )
    resolve_jit_compile(config.jit_compile)
    augment.check_policy(config.augment)
    check_width(config.width)
    _check_data(config)


def _check_data(config: ml_collections.ConfigDict) -> None:
    """Each phase's training and test split exists and holds at least one batch (metadata only:
    nothing is read or downloaded)."""
    data_dir = config.data_dir or None
    for phase in ("pretrain", "tune"):
        name, split = config[f"{phase}_dataset"], config[f"{phase}_split"]
        if not name:
            continue
        for field in (f"{phase}_split", "test_split"):
            try:
                data.split_size(name, config[field], data_dir)
            except ValueError as error:
                raise ValueError(f"{field}: {error}") from error
        size = data.split_size(name, split, data_dir)
        if phase == "pretrain" and config.pretrain_subset:
            _require(
                config.pretrain_subset <= size,
                f"pretrain_subset {config.pretrain_subset} exceeds the {size} examples of "
                f"{name}:{split}; choose at most {size} (0: all).",
            )
            size = config.pretrain_subset
        _require(
            config.batch_size <= size,
            f"batch_size {config.batch_size} exceeds the {size} training examples of "
            f"{name}:{split}; choose a batch_size <= {size}.",
        )


def config_differences(saved: dict, current: dict) -> list[str]:
    """The settings in which `current` would not continue the run `saved` describes.

    Resumable fields may differ. A field the saved run predates is not compared: fields are
    added with defaults that keep the earlier behaviour.
    """
    return sorted(
        f"{key}: {saved[key]!r} -> {value!r}"
        for key, value in current.items()
        if key not in RESUMABLE_FIELDS and key in saved and saved[key] != value
    )


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

    A run whose saved config differs (outside RESUMABLE_FIELDS) is left untouched unless
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
