"""An experiment file's grid: the training runs it needs, named, deduplicated and ordered.

An experiment file (configs/thesis/*.py, configs/digits/*.py) is a Python module with
`get_config()`, the base training config; `get_sweep()`, one dict of config overrides per
entry (cell) of the thesis's table or figure; `REPORT`, which layout tools.report writes; and
optionally `SEEDS`, how many seeds each cell is trained with (default 1).

Every cell is trained once per seed (`seed` = the config's seed + 0, 1, ...), each its own run;
runs of one seed pair with the same seed's runs of other cells.

A pretrain -> tune entry becomes two runs, so that entries sharing a pretraining train it once:
the pretraining alone (`tune.epochs=0`, the tune block otherwise the base config's), and the
tuning, which starts from that run's final checkpoint (`tune.init_checkpoint`) with
`pretrain.epochs=0`. The pretraining alone keeps the tune dataset, on which it is also
evaluated (the untuned row of Tables 5.1-5.4); the tuning keeps `pretrain.dataset`, so each of
its epochs is still evaluated on the pretraining data (thesis Figures 5-x).

Overrides name fields by their dotted path (`"pretrain.beta": 3.0`) or by their flat name of
the first releases (`"pretrain_beta": 3.0`, tf_advreg.training.legacy).

Runs are named after their objectives and seed, so an identical run declared twice, or by two
experiment files sharing a root, is one workdir.
"""

import dataclasses
import importlib.util
import os
from pathlib import Path
from types import ModuleType

import ml_collections

from tf_advreg.training import checkpoints, legacy, schema


@dataclasses.dataclass(frozen=True)
class Run:
    """One run: `python -m tools.train --config=<file> <overrides> --workdir=<root>/<name>`."""

    name: str
    overrides: dict  # dotted path -> value
    config: dict  # the effective config (nested): get_config() with the overrides applied
    needs: str = ""  # the run whose pretraining this one tunes from


@dataclasses.dataclass(frozen=True)
class Cell:
    """One get_sweep() entry: per seed, the run holding its final model."""

    runs: tuple[Run, ...]

    @property
    def config(self) -> dict:
        """The config its labels are read from (any seed's: they differ only in the seed)."""
        return self.runs[0].config


@dataclasses.dataclass(frozen=True)
class Sweep:
    runs: list[Run]  # unique, each after the run it needs
    entries: list[Cell]  # one per get_sweep() entry
    seeds: int  # runs per cell


def load_experiment(path: str | os.PathLike) -> ModuleType:
    """Imports an experiment file (run as code: only load files you trust)."""
    path = Path(path)
    spec = importlib.util.spec_from_file_location(f"experiment_{path.stem}", path)
    if spec is None or not path.is_file():
        raise FileNotFoundError(f"No experiment file {path}.")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for attribute in ("get_config", "get_sweep", "REPORT"):
        if not hasattr(module, attribute):
            raise ValueError(f"{path} defines no {attribute}; see tf_advreg/experiments/grid.py.")
    return module


def canonical(overrides: dict) -> dict:
    """The overrides keyed by dotted paths (flat names of the first releases translated);
    unknown fields refused."""
    try:
        return {legacy.path_of(field): value for field, value in overrides.items()}
    except ValueError as error:
        raise ValueError(f"{error.args[0][:-1]} in a sweep entry.") from error


def effective_config(base: ml_collections.ConfigDict, overrides: dict) -> dict:
    """The config tools.train will run: `base` with `overrides`, unknown fields refused."""
    config = ml_collections.ConfigDict(base.to_dict())
    for path, value in canonical(overrides).items():
        schema.set_value(config, path, value)
    return config.to_dict()


def _method(phase: dict) -> str:
    """E.g. robopt, trades3, ar5-total_variation (KL, the default distance, goes unnamed),
    trades6-awp0.005w2-ema0.99-ho100 (the recipe's options, docs/recipe.md, when on)."""
    objective, beta = phase["objective"], phase["beta"]
    name = objective if beta == 0 else f"{objective}{beta:g}"
    regularizer = phase["regularizer"]
    name = name if regularizer == "kl" else f"{name}-{regularizer}"
    if phase.get("lr_warmup_epochs"):
        name += f"-wu{phase['lr_warmup_epochs']}"
    if phase.get("awp_gamma"):
        warmup = phase.get("awp_warmup_epochs")
        name += f"-awp{phase['awp_gamma']:g}" + (f"w{warmup}" if warmup else "")
    if phase.get("ema_decay"):
        name += f"-ema{phase['ema_decay']:g}"
    if phase.get("hold_out"):
        name += f"-ho{phase['hold_out']}"
    return name


def tunes(config: dict) -> bool:
    """Whether a config trains a tune phase (a named tune dataset with 0 epochs does not)."""
    return bool(config["tune"]["dataset"]) and config["tune"]["epochs"] > 0


def run_name(config: dict) -> str:
    """E.g. trades0.4-seed0, robopt-seed1, trades3__trades5-seed0, ar1-sub50000__ar5-seed2,
    trades3-symmetric_kl-seed0, robopt-awp0.01-seed0."""
    pretrain = config["pretrain"]
    name = _method(pretrain)
    if pretrain["subset"]:
        name += f"-sub{pretrain['subset']}"
    if tunes(config):
        name += "__" + _method(config["tune"])
    return f"{name}-seed{config['seed']}"


def _is_two_phase(config: dict) -> bool:
    pretrain = config["pretrain"]
    return bool(
        pretrain["dataset"]
        and pretrain["epochs"] > 0
        and tunes(config)
        and not config["tune"]["init_checkpoint"]
    )


def seeds_of(experiment: ModuleType, seeds: int | None = None) -> int:
    """`seeds` when given, else the experiment's SEEDS (default 1); at least 1."""
    count = getattr(experiment, "SEEDS", 1) if seeds is None else seeds
    if count < 1:
        raise ValueError(f"The number of seeds must be at least 1, got {count}.")
    return count


def expand(experiment: ModuleType, root: str | os.PathLike, seeds: int | None = None) -> Sweep:
    """The runs of `experiment` under `root` for each seed, pretrainings first; raises on a
    name clash. `seeds` overrides the experiment's SEEDS."""
    base = experiment.get_config()
    count = seeds_of(experiment, seeds)
    unique: dict[str, Run] = {}

    def add(overrides: dict, needs: str = "") -> Run:
        overrides = canonical(overrides)
        config = effective_config(base, overrides)
        run = Run(run_name(config), overrides, config, needs)
        known = unique.setdefault(run.name, run)
        if known.config != run.config:
            raise ValueError(f"Two different runs are both named {run.name}; rename one.")
        return known

    def add_cell(overrides: dict) -> Run:
        overrides = canonical(overrides)
        config = effective_config(base, overrides)
        if not _is_two_phase(config):
            return add(overrides)
        tune_fields = {path for path in overrides if path.split(".")[0] == "tune"}
        alone = {k: v for k, v in overrides.items() if k not in tune_fields}
        pretraining = add(alone | {"tune.epochs": 0})
        start = checkpoints.checkpoint_dir(
            Path(root) / pretraining.name / "pretrain", config["pretrain"]["epochs"]
        )
        tuning = overrides | {"pretrain.epochs": 0, "tune.init_checkpoint": str(start)}
        return add(tuning, needs=pretraining.name)

    declared = experiment.get_sweep()
    per_cell: list[list[Run]] = [[] for _ in declared]
    for k in range(count):  # seed-major: a partly run sweep has whole grids of the first seeds
        for cell, overrides in zip(per_cell, declared):
            cell.append(add_cell(overrides | {"seed": base.seed + k}))
    runs = sorted(unique.values(), key=lambda run: bool(run.needs))  # stable: declared order
    return Sweep(runs, [Cell(tuple(cell)) for cell in per_cell], count)
