"""The flat field names of the first releases: plain flags of tools.train, keys of sweep
entries, and the keys of every config.json written before the config was nested.

One table maps each to its nested field, so `--pretrain_objective=trades` stays an alias of
`--config.pretrain.objective=trades` and a run written before the change still resumes,
reports and evaluates: its config.json is migrated on read. Fields added since have no flat
name; they are set as `--config.<path>`.
"""

from collections.abc import Collection, Mapping

from tf_advreg.training import schema

FLAT_NAMES = {
    "pretrain_dataset": "pretrain.dataset",
    "pretrain_split": "pretrain.split",
    "pretrain_subset": "pretrain.subset",
    "pretrain_objective": "pretrain.objective",
    "pretrain_beta": "pretrain.beta",
    "pretrain_regularizer": "pretrain.regularizer",
    "pretrain_epochs": "pretrain.epochs",
    "pretrain_lr": "pretrain.lr",
    "tune_dataset": "tune.dataset",
    "tune_split": "tune.split",
    "tune_objective": "tune.objective",
    "tune_beta": "tune.beta",
    "tune_regularizer": "tune.regularizer",
    "tune_epochs": "tune.epochs",
    "tune_lr": "tune.lr",
    "tune_init_checkpoint": "tune.init_checkpoint",
    "eps": "attack.eps",
    "attack_norm": "attack.norm",
    "attack_steps": "attack.steps",
    "attack_step_size": "attack.step_size",
    "eval_attack_steps": "attack.eval_steps",
    "eval_attack_step_size": "attack.eval_step_size",
    "attack_bn_training": "attack.bn_training",
    "width": "model.width",
    "sync_batchnorm": "model.sync_batchnorm",
    "eval_every": "eval.every",
    "train_eval_subset": "eval.train_subset",
    "test_eval_subset": "eval.test_subset",
    "test_split": "eval.test_split",
    # Top-level fields kept their names.
    **{path: path for path in schema.FIELDS if "." not in path},
}


_FLAT_NAME_OF = {path: name for name, path in FLAT_NAMES.items()}


def path_of(name: str) -> str:
    """The nested field a flat name or a dotted path stands for; ValueError if none."""
    path = FLAT_NAMES.get(name, name)
    if path not in schema.FIELDS:
        raise ValueError(f"Unknown config field {name!r}.")
    return path


def flag_spelling(path: str, given: Collection[str]) -> str:
    """How a command line set the field at `path`, for its error messages: `--tune_beta` when
    the flat flag is among the `given` flag names, `--config.tune.beta` when that is, else (set
    by the config file or its default) the path itself."""
    for name in (_FLAT_NAME_OF.get(path), f"config.{path}"):
        if name in given:
            return f"--{name}"
    return path


def is_flat(saved: Mapping) -> bool:
    """Whether a config.json was written before the config was nested."""
    return any(name in saved for name in FLAT_NAMES if name != FLAT_NAMES[name])


def migrate(saved: Mapping) -> dict:
    """A config dict in the nested layout: a flat one's fields moved to their paths, keys it
    does not know (a phase's "phase" record) kept as they are. Nested ones pass unchanged."""
    if not is_flat(saved):
        return dict(saved)
    nested: dict = {}
    for name, value in saved.items():
        node = nested
        *blocks, field = FLAT_NAMES.get(name, name).split(".")
        for block in blocks:
            node = node.setdefault(block, {})
        node[field] = value
    return nested


def override(config, overrides: Mapping) -> None:
    """Sets each field of `config` named in `overrides` by its dotted path or flat name."""
    for name, value in overrides.items():
        schema.set_value(config, path_of(name), value)
