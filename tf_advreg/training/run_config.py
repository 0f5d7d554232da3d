"""Checking a training config before anything is written, and guarding existing workdirs."""

import json
import os
import shutil
from pathlib import Path

import ml_collections

from tf_advreg import data, files
from tf_advreg.attacks import validate_attack_args
from tf_advreg.data import augment
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


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def validate(config: ml_collections.ConfigDict) -> None:
    """Raises ValueError with one sentence naming the bad field, its value and the fix."""
    datasets = data.available_datasets()
    for phase in ("pretrain", "tune"):
        name = config[f"{phase}_dataset"]
        _require(
            name == "" or name.split("/")[0] in datasets,
            f"Unknown {phase}_dataset {name!r}; available: {', '.join(datasets)}.",
        )
        objective_class(config[f"{phase}_objective"])
        _require(
            config[f"{phase}_beta"] >= 0,
            f"{phase}_beta must be >= 0, got {config[f'{phase}_beta']}.",
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


def prepare_workdir(
    workdir: str | os.PathLike, config: ml_collections.ConfigDict, overwrite: bool
) -> Path:
    """Creates the workdir and records the config, or refuses a workdir of another run.

    A workdir whose saved config differs (outside RESUMABLE_FIELDS) is left untouched unless
    `overwrite`, which removes the old run first; a non-empty directory that is not a run is
    never touched.
    """
    workdir = Path(workdir)
    saved_path = workdir / "config.json"
    if saved_path.exists():
        saved = json.loads(saved_path.read_text())
        differences = config_differences(saved, config.to_dict())
        if differences and not overwrite:
            raise ValueError(
                f"{workdir} holds a run with a different config ({'; '.join(differences)}); "
                "pass --overwrite to replace it, or choose another --workdir."
            )
        if differences:
            shutil.rmtree(workdir)
    elif workdir.exists() and any(workdir.iterdir()):
        # Never delete a directory that is not a run, even with --overwrite.
        raise ValueError(
            f"{workdir} is not empty and holds no tf_advreg run (no config.json); "
            "choose a new or empty --workdir."
        )
    workdir.mkdir(parents=True, exist_ok=True)
    files.write_text(saved_path, json.dumps(config.to_dict(), indent=2, sort_keys=True))
    return workdir
