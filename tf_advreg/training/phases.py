"""The pretrain -> tune pipeline: each phase is one `fit` of one objective on one dataset.

A phase resumes from its newest intact checkpoint; the tune phase starts from the pretrain
phase's final weights with a fresh optimizer, and may change dataset and objective. Every phase
ends with a SavedModel export. Outputs per phase, in `<workdir>/<phase>/`:
  checkpoints/epoch_NNNN/  tensorboard/  metrics.jsonl  config.json  saved_model/
and with the recipe's options (docs/recipe.md): saved_model_ema/ (ema_decay > 0), best/ and
saved_model_best/ (hold_out > 0).
"""

import dataclasses
import json
import os
import sys
import tempfile
from pathlib import Path

import keras
import ml_collections
import tensorflow as tf

from tf_advreg import data, export, files, models
from tf_advreg.attacks import AttackSettings
from tf_advreg.objectives import AdversarialModel, objective_class
from tf_advreg.training import awp, best_checkpoint, callbacks, checkpoints, ema, head, schema
from tf_advreg.training.strategy import barrier, is_chief, task_name
from tf_advreg.xla import resolve_jit_compile


@dataclasses.dataclass(frozen=True)
class Phase:
    """One phase of a run: its name, its config block (schema.PHASE) and its attack."""

    name: str
    settings: ml_collections.ConfigDict
    attack: AttackSettings


def phases_from_config(config: ml_collections.ConfigDict) -> list[Phase]:
    """The phases a config asks for: each whose dataset is set, except a 0-epoch pretraining
    (a tune-only run from `tune.init_checkpoint`, which must not export an untrained model)
    and a 0-epoch tuning (the untuned model). The datasets of skipped phases are still
    evaluated: the pretraining data while tuning, the tune data while pretraining."""
    return [
        Phase(name, config[name], AttackSettings(**schema.phase_attack(config, name)))
        for name in schema.PHASES
        if config[name].dataset and config[name].epochs > 0
    ]


class LinearWarmup(keras.optimizers.schedules.LearningRateSchedule):
    """`schedule`'s rate times (step + 1) / warmup_steps over the first `warmup_steps` steps:
    a linear rise to the schedule, whose own curve (decay points, cosine) is unchanged."""

    def __init__(self, schedule, warmup_steps: int):
        self.schedule = schedule
        self.warmup_steps = warmup_steps

    def __call__(self, step):
        rate = self.schedule(step) if callable(self.schedule) else self.schedule
        rise = tf.minimum(1.0, tf.cast(step + 1, tf.float32) / self.warmup_steps)
        return rate * rise

    def get_config(self):
        return {"schedule": self.schedule, "warmup_steps": self.warmup_steps}


def learning_rate_schedule(
    kind: str, base: float, total_steps: int, warmup_steps: int = 0
) -> float | keras.optimizers.schedules.LearningRateSchedule:
    """step: x0.1 at 50% and 75% of the phase (Madry / TRADES); cosine; or constant; with
    `warmup_steps`, rising linearly to it first (LinearWarmup).

    The schedule is a function of the optimizer's step counter, so the compiled step reads the
    current rate without retracing, and a resumed run continues the same curve.
    """
    schedule = _decay(kind, base, total_steps)
    return LinearWarmup(schedule, warmup_steps) if warmup_steps > 0 else schedule


def _decay(kind: str, base: float, total_steps: int):
    if kind == "constant" or total_steps <= 0:
        return base
    if kind == "step":
        boundaries = [max(1, total_steps // 2), max(2, total_steps * 3 // 4)]
        return keras.optimizers.schedules.PiecewiseConstantDecay(
            boundaries, [base, base * 0.1, base * 0.01]
        )
    if kind == "cosine":
        return keras.optimizers.schedules.CosineDecay(base, total_steps)
    raise ValueError(f"Unknown lr_schedule {kind!r}; choose one of step, cosine, constant.")


def _subset(value: int) -> int | None:
    return value if value > 0 else None


def _data_dir(config) -> str | None:
    return config.data_dir or None


def eval_data(config, phase: Phase) -> dict[str, tuple[str, str, int]]:
    """What each evaluation of the phase measures: label -> (dataset, split, sample size).

    test and train splits of the phase's data; while tuning, the pretraining data too; while
    pretraining for a named tune dataset, at the final epoch, that data too (a run with
    tune.epochs=0 is the untuned model of thesis Tables 5.1-5.4, which are measured on the
    tune data). Of these, those config.eval.sets names. Either phase reads the other's data
    only if both have the same class count (a 10-way head cannot score 858-class labels, nor
    858 logits 10-class ones). Data already evaluated under another label is not evaluated
    twice.
    """
    test, train_subset = (config.eval.test_split, config.eval.test_subset), config.eval.train_subset
    sets = {
        "test": (phase.settings.dataset, *test),
        "train": (phase.settings.dataset, phase.settings.split, train_subset),
    }
    if phase.name == "tune" and head.same_classes(config, _data_dir(config)):
        sets["pretrain_train"] = (config.pretrain.dataset, config.pretrain.split, train_subset)
    if phase.name == "pretrain" and head.same_classes(config, _data_dir(config)):
        sets["tune_test"] = (config.tune.dataset, *test)
        sets["tune_train"] = (config.tune.dataset, config.tune.split, train_subset)
    wanted = schema.eval_sets(config)
    unique = {}
    for label, source in sets.items():
        if label in wanted and source not in unique.values():
            unique[label] = source
    return unique


FINAL_ONLY = ("tune_test", "tune_train")  # only the final model's numbers are read from them


def _eval_sets(config, phase: Phase) -> tuple[dict[str, callbacks.EvalSet], ...]:
    """The sets of eval_data evaluated each epoch, and those added or replacing them at the
    final epoch.

    Each epoch reads class-balanced samples of `eval.test_subset` and `eval.train_subset`
    examples (the whole split when it is smaller). The final epoch reads the whole test
    splits, so the final model's test accuracy is the full split's, and the tune data.
    """

    def available(name: str, split: str) -> int:
        """The examples an evaluation of `name:split` may read: all but the held-out ones."""
        return data.split_size(name, split, _data_dir(config)) - _hold_out(phase, name, split)

    def load(name: str, split: str, subset: int) -> callbacks.EvalSet:
        size = available(name, split)
        if subset >= size:
            subset = 0
        batches = data.load(
            name,
            split,
            batch_size=config.batch_size,
            training=False,
            data_dir=_data_dir(config),
            subset=_subset(subset),
            seed=config.seed,
            hold_out=_hold_out(phase, name, split),
        )
        return callbacks.EvalSet(shard_by_example(batches), subset or size)

    sources = eval_data(config, phase)
    sets = {label: load(*source) for label, source in sources.items() if label not in FINAL_ONLY}
    final_sets = {}
    for label, (dataset, split, size) in sources.items():
        if split == config.eval.test_split:
            size = 0  # the final model reads the whole test split
        sampled = label in sets and sets[label].num_examples < available(dataset, split)
        if label in FINAL_ONLY or (size == 0 and sampled):
            final_sets[label] = load(dataset, split, size)
    return sets, final_sets


def _hold_out(phase: Phase, dataset: str, split: str) -> int:
    """Examples of `dataset:split` the phase sets aside: its hold_out, for its own training
    split only; the training and its evaluation read the rest."""
    own = (dataset, split) == (phase.settings.dataset, phase.settings.split)
    return phase.settings.hold_out if own else 0


def heldout_set(config, phase: Phase) -> callbacks.EvalSet:
    """The phase's held-out examples (`hold_out`, class-balanced, the same for every seed),
    evaluated every epoch to pick the best one."""
    settings = phase.settings
    batches = data.load(
        settings.dataset,
        settings.split,
        batch_size=config.batch_size,
        training=False,
        data_dir=_data_dir(config),
        hold_out=settings.hold_out,
        held_out=True,
    )
    return callbacks.EvalSet(shard_by_example(batches), settings.hold_out)


def network_args(config, dataset_info: data.DatasetInfo) -> dict:
    """The architecture's name and arguments; stored with every checkpoint (network.json) so it
    rebuilds its own network (models.build)."""
    return {
        "name": config.model.name,
        "num_classes": dataset_info.num_classes,
        "width": config.model.width,
        "input_shape": list(dataset_info.image_shape),
        "mean": list(dataset_info.mean),
        "std": list(dataset_info.std),
        "sync_batchnorm": config.model.sync_batchnorm,
    }


def check_starts(config, workdir: str | os.PathLike) -> None:
    """Fails before anything is written when a phase would start from a checkpoint that is
    missing or does not fit: one named by its init_checkpoint, or a skipped previous phase's."""
    running = [phase.name for phase in phases_from_config(config)]
    for index, name in enumerate(schema.PHASES):
        block = config[name]
        follows_a_run = index > 0 and schema.PHASES[index - 1] in running
        if name in running and (block.init_checkpoint or (index > 0 and not follows_a_run)):
            info = data.info(block.dataset, _data_dir(config))
            _inherit_architecture(
                start_checkpoint(config, name, Path(workdir)), network_args(config, info)
            )


def start_checkpoint(config, name: str, workdir: Path) -> Path | None:
    """The checkpoint phase `name` starts from: its init_checkpoint, else the previous phase's
    last one (None for the first phase); a clear error if it does not exist."""
    if config[name].init_checkpoint:
        path = Path(config[name].init_checkpoint)
        if not checkpoints.is_checkpoint(path):
            raise FileNotFoundError(
                f"{name}.init_checkpoint {path} is not a checkpoint (no network.json and "
                "network.weights.h5); point it at a checkpoints/epoch_NNNN directory."
            )
        return path
    index = schema.PHASES.index(name)
    if index == 0:
        return None
    previous = schema.PHASES[index - 1]
    found = checkpoints.list_checkpoints(workdir / previous)
    if not found:
        raise FileNotFoundError(
            f"The {name} phase needs a {previous} checkpoint in {workdir / previous}, and there "
            f"is none; run the {previous} phase first or set --config.{name}.init_checkpoint."
        )
    return found[-1]


def _output_dir(workdir: Path, phase: str, strategy: tf.distribute.Strategy) -> Path:
    """The chief writes into the workdir; other workers into a scratch directory of their own.

    Every worker must run the same callbacks (reading BatchNorm statistics and metrics is a
    cross-worker reduction), so the others write too, as TF's multi-worker guide does, into
    $TMPDIR/tf_advreg-<task>-<phase>-*; nothing reads it afterwards.
    """
    if is_chief(strategy):
        return workdir / phase
    return Path(tempfile.mkdtemp(prefix=f"tf_advreg-{task_name(strategy)}-{phase}-"))


def shard_by_example(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """Each worker reads the whole seeded pipeline and keeps its part of every global batch.

    The sources are in-memory or cached, so the default (file-based) sharding cannot apply,
    and sharding files would change each epoch's seeded order.
    """
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def run_phase(
    config: ml_collections.ConfigDict,
    phase: Phase,
    workdir: str | os.PathLike,
    strategy: tf.distribute.Strategy,
) -> dict:
    """Trains (or resumes) one phase and exports it; returns its last epoch's metrics."""
    workdir = Path(workdir)
    phase_dir = _output_dir(workdir, phase.name, strategy)
    phase_dir.mkdir(parents=True, exist_ok=True)
    steps_per_epoch = _steps_per_epoch(config, phase)
    start = start_checkpoint(config, phase.name, workdir)
    args = network_args(config, data.info(phase.settings.dataset, _data_dir(config)))
    if start is not None:
        args = _inherit_architecture(start, args)
    with strategy.scope():
        model = build_model(config, phase, args, steps_per_epoch)
        # Every worker resumes from the chief's checkpoints (a shared filesystem on a cluster).
        initial_epoch = restore(model, workdir / phase.name, start, config.seed)
    record = {"phase": {"name": phase.name, **phase.settings.to_dict()}, **config.to_dict()}
    files.write_text(phase_dir / "config.json", json.dumps(record, indent=2))
    if initial_epoch < phase.settings.epochs:
        fit(config, phase, model, phase_dir, args, initial_epoch, steps_per_epoch, strategy)
    export_phase(model, args, phase_dir, best_checkpoint.of_average(phase.settings.best_metric))
    barrier(strategy)  # the next phase's workers read the chief's checkpoints
    records = callbacks.read_metrics(phase_dir / "metrics.jsonl")
    return records[-1] if records else {}


def _steps_per_epoch(config, phase: Phase) -> int:
    """Whole batches per epoch of the phase's training data (its subset when it has one,
    else its split less the held-out examples)."""
    settings = phase.settings
    size = _subset(settings.subset) or (
        data.split_size(settings.dataset, settings.split, _data_dir(config)) - settings.hold_out
    )
    if size < config.batch_size:
        raise ValueError(
            f"{settings.dataset}:{settings.split} has {size} examples, fewer than one batch of "
            f"{config.batch_size}; lower --batch_size."
        )
    return size // config.batch_size


def build_model(config, phase: Phase, network_args: dict, steps_per_epoch: int) -> AdversarialModel:
    """The phase's objective around a fresh network, compiled with its optimizer (call it in
    the strategy's scope)."""
    settings = phase.settings
    rate = learning_rate_schedule(
        config.lr_schedule,
        settings.lr,
        settings.epochs * steps_per_epoch,
        settings.lr_warmup_epochs * steps_per_epoch,
    )
    model = objective_class(settings.objective)(
        models.build(**network_args),
        attack=phase.attack,
        beta=settings.beta,
        regularizer=settings.regularizer,
        weight_decay=config.weight_decay,
        awp_gamma=settings.awp_gamma,
        ema_decay=settings.ema_decay,
        seed=config.seed,
    )
    optimizer = keras.optimizers.SGD(
        rate,
        momentum=config.momentum,
        nesterov=config.nesterov,
    )
    model.compile(
        optimizer=optimizer,
        jit_compile=resolve_jit_compile(config.jit_compile),
        steps_per_execution=config.steps_per_execution,
    )
    return model


def restore(model: AdversarialModel, phase_dir: Path, start: Path | None, seed: int) -> int:
    """The epoch the phase continues after: its newest checkpoint's (weights, optimizer and
    weight average), else 0, from `start`'s weights when it has one (the optimizer and the
    average start fresh; a start with another class count gives its body and a new classifier
    drawn from `seed`)."""
    network = model.network
    state = checkpoints.restore_latest(phase_dir, network, model.optimizer, model.weight_average)
    if state is not None:
        return state["epoch"]
    if start is not None:
        start_classes = checkpoints.read_network_args(start)["num_classes"]
        if network.get_layer(head.HEAD).units != start_classes:
            head.restore_body(start, network, seed)
        else:
            checkpoints.restore(start, network)
    return 0


def fit(
    config,
    phase: Phase,
    model: AdversarialModel,
    phase_dir: Path,
    network_args: dict,
    initial_epoch: int,
    steps_per_epoch: int,
    strategy: tf.distribute.Strategy,
) -> None:
    """Trains the remaining epochs, evaluating, logging and checkpointing through callbacks."""
    settings = phase.settings
    eval_sets, final_sets = _eval_sets(config, phase)
    train_set = data.load(
        settings.dataset,
        settings.split,
        batch_size=config.batch_size,
        training=True,
        data_dir=_data_dir(config),
        subset=_subset(settings.subset),
        seed=config.seed,
        augment=config.augment,
        start_epoch=initial_epoch,
        num_epochs=max(settings.epochs - initial_epoch, 1),
        hold_out=settings.hold_out,
    )
    sample_images, sample_labels = next(iter(eval_sets["test"].batches))
    every_epoch_sets = {}
    if settings.hold_out:
        every_epoch_sets[best_checkpoint.HELDOUT] = heldout_set(config, phase)
    evaluation = (eval_sets, config.eval.every, settings.epochs, final_sets, every_epoch_sets)
    fit_callbacks = [
        callbacks.StopOnNonFiniteLoss(),
        callbacks.Throughput(config.batch_size),
        callbacks.PeriodicEvaluation(*evaluation),
    ]
    if model.weight_average is not None:
        fit_callbacks.append(callbacks.AveragedEvaluation(*evaluation))
    if settings.awp_gamma:
        fit_callbacks.append(awp.AwpWarmup(settings.awp_gamma, settings.awp_warmup_epochs))
    fit_callbacks += [
        callbacks.MetricsLog(phase_dir / "metrics.jsonl", phase.name, initial_epoch),
        callbacks.TensorBoardLog(
            phase_dir / "tensorboard",
            _hparams(config, phase),
            sample_images[:4],
            sample_labels[:4],
        ),
        callbacks.EpochCheckpoint(
            phase_dir, network_args, config.keep_checkpoints if is_chief(strategy) else 1
        ),
    ]
    if settings.hold_out:  # after the checkpoint it copies
        fit_callbacks.append(
            best_checkpoint.BestCheckpoint(phase_dir, settings.best_metric, initial_epoch)
        )
    fit_callbacks.append(callbacks.EpochSummary(phase.name, settings.epochs))
    print(
        f"{phase.name}: {settings.objective} (beta {settings.beta}{_distance(phase)}"
        f"{_recipe(phase)}) on {settings.dataset}:{settings.split}"
        f", epochs {initial_epoch + 1}..{settings.epochs}, {steps_per_epoch} steps each",
        flush=True,
    )
    model.fit(
        shard_by_example(train_set),
        epochs=settings.epochs,
        initial_epoch=initial_epoch,
        steps_per_epoch=steps_per_epoch,
        callbacks=fit_callbacks,
        shuffle=False,  # the dataset shuffles itself, seeded
        verbose=1 if sys.stdout.isatty() else 0,
    )


def export_phase(
    model: AdversarialModel, network_args: dict, phase_dir: Path, best_averaged: bool = False
) -> None:
    """The SavedModels of the phase, in float32, as a checkpoint is rebuilt for evaluation (the
    same numbers): the final weights; their average (ema_decay > 0); the best epoch's network,
    or its average with `best_averaged` (hold_out > 0)."""
    networks = {"saved_model": model.network}
    if model.weight_average is not None:
        networks[ema.SAVED_MODEL] = model.weight_average.network
    for name, network in networks.items():
        exported = checkpoints.float32_network(network_args)
        exported.set_weights(network.get_weights())
        export.export_saved_model(exported, phase_dir / name)
    best = best_checkpoint.best_dir(phase_dir)
    if checkpoints.is_checkpoint(best):
        exported = checkpoints.build_network(best, averaged=best_averaged)
        export.export_saved_model(exported, phase_dir / best_checkpoint.SAVED_MODEL)


def _distance(phase: Phase) -> str:
    regularizer = phase.settings.regularizer
    return "" if regularizer == "kl" else f", {regularizer}"


def _recipe(phase: Phase) -> str:
    """The recipe's options in the phase's start line, e.g. ", AWP 0.005 from epoch 10"."""
    settings = phase.settings
    parts = []
    if settings.awp_gamma:
        parts.append(f"AWP {settings.awp_gamma:g} from epoch {settings.awp_warmup_epochs + 1}")
    if settings.ema_decay:
        parts.append(f"EMA {settings.ema_decay:g}")
    if settings.hold_out:
        parts.append(f"best of {settings.hold_out} held out")
    return "".join(f", {part}" for part in parts)


def _inherit_architecture(checkpoint: Path, args: dict) -> dict:
    """The starting checkpoint's network arguments (its input normalization included), after
    checking that the phase's data and config fit them; the class count is the phase data's
    (a different one gets a new classifier, see tf_advreg.training.head)."""
    saved = {"name": models.DEFAULT_MODEL} | checkpoints.read_network_args(checkpoint)
    for key in ("name", "width", "input_shape"):
        if saved[key] != args[key]:
            raise ValueError(
                f"The phase cannot start from {checkpoint}: its {key} is {saved[key]}, "
                f"the phase's data and config need {args[key]}."
            )
    return saved | {key: args[key] for key in ("num_classes", "sync_batchnorm")}


def _hparams(config, phase: Phase) -> dict:
    """What the TensorBoard HParams dashboard compares across runs of a sweep."""
    settings = phase.settings
    return {
        "phase": phase.name,
        "objective": settings.objective,
        "beta": float(settings.beta),
        "regularizer": settings.regularizer,
        "dataset": settings.dataset,
        "pretrain_dataset": config.pretrain.dataset,
        "eps": float(phase.attack.eps),
        "learning_rate": float(settings.lr),
        "epochs": settings.epochs,
        "width": config.model.width,
        "seed": config.seed,
        "awp_gamma": float(settings.awp_gamma),
        "ema_decay": float(settings.ema_decay),
        "hold_out": settings.hold_out,
    }
