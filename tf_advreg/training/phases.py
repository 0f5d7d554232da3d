"""The pretrain -> tune pipeline: each phase is one `fit` of one objective on one dataset.

A phase resumes from its newest intact checkpoint; the tune phase starts from the pretrain
phase's final weights with a fresh optimizer, and may change dataset and objective. Every phase
ends with a SavedModel export. Outputs per phase, in `<workdir>/<phase>/`:
  checkpoints/epoch_NNNN/  tensorboard/  metrics.jsonl  config.json  saved_model/
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

from tf_advreg import data, export, files
from tf_advreg.models import resnet18
from tf_advreg.objectives import objective_class
from tf_advreg.training import callbacks, checkpoints, head
from tf_advreg.training.strategy import barrier, is_chief, task_name
from tf_advreg.xla import resolve_jit_compile

PHASES = ("pretrain", "tune")


@dataclasses.dataclass(frozen=True)
class Phase:
    """What differs between the pretrain and the tune phase."""

    name: str
    dataset: str
    split: str
    subset: int
    objective: str
    beta: float
    regularizer: str
    epochs: int
    learning_rate: float


def phases_from_config(config: ml_collections.ConfigDict) -> list[Phase]:
    """The phases a config asks for: each whose dataset is set, except a 0-epoch pretraining
    (a tune-only run from `tune_init_checkpoint`, which must not export an untrained model)
    and a 0-epoch tuning (the untuned model). The datasets of skipped phases are still
    evaluated: the pretraining data while tuning, the tune data while pretraining."""
    phases = []
    for name in PHASES:
        dataset = config[f"{name}_dataset"]
        if dataset and config[f"{name}_epochs"] > 0:
            phases.append(
                Phase(
                    name=name,
                    dataset=dataset,
                    split=config[f"{name}_split"],
                    subset=config.pretrain_subset if name == "pretrain" else 0,
                    objective=config[f"{name}_objective"],
                    beta=config[f"{name}_beta"],
                    regularizer=config[f"{name}_regularizer"],
                    epochs=config[f"{name}_epochs"],
                    learning_rate=config[f"{name}_lr"],
                )
            )
    return phases


def learning_rate_schedule(
    kind: str, base: float, total_steps: int
) -> float | keras.optimizers.schedules.LearningRateSchedule:
    """step: x0.1 at 50% and 75% of the phase (Madry / TRADES); cosine; or constant.

    The schedule is a function of the optimizer's step counter, so the compiled step reads the
    current rate without retracing, and a resumed run continues the same curve.
    """
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
    tune_epochs=0 is the untuned model of thesis Tables 5.1-5.4, which are measured on the
    tune data). Either phase reads the other's data only if both have the same class count
    (a 10-way head cannot score 858-class labels, nor 858 logits 10-class ones). Data already
    evaluated under another label is not evaluated twice.
    """
    sets = {
        "test": (phase.dataset, config.test_split, config.test_eval_subset),
        "train": (phase.dataset, phase.split, config.train_eval_subset),
    }
    if phase.name == "tune" and head.same_classes(config, _data_dir(config)):
        sets["pretrain_train"] = (
            config.pretrain_dataset,
            config.pretrain_split,
            config.train_eval_subset,
        )
    if phase.name == "pretrain" and head.same_classes(config, _data_dir(config)):
        sets["tune_test"] = (config.tune_dataset, config.test_split, config.test_eval_subset)
        sets["tune_train"] = (config.tune_dataset, config.tune_split, config.train_eval_subset)
    unique = {}
    for label, source in sets.items():
        if source not in unique.values():
            unique[label] = source
    return unique


FINAL_ONLY = ("tune_test", "tune_train")  # only the final model's numbers are read from them


def _eval_sets(config, phase: Phase) -> tuple[dict[str, callbacks.EvalSet], ...]:
    """The sets of eval_data evaluated each epoch, and those added or replacing them at the
    final epoch.

    Each epoch reads class-balanced samples of `test_eval_subset` and `train_eval_subset`
    examples (the whole split when it is smaller). The final epoch reads the whole test
    splits, so the final model's test accuracy is the full split's, and the tune data.
    """

    def load(name: str, split: str, subset: int) -> callbacks.EvalSet:
        size = data.split_size(name, split, _data_dir(config))
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
        )
        return callbacks.EvalSet(shard_by_example(batches), subset or size)

    sources = eval_data(config, phase)
    sets = {label: load(*source) for label, source in sources.items() if label not in FINAL_ONLY}
    final_sets = {}
    for label, (dataset, split, size) in sources.items():
        if split == config.test_split:
            size = 0  # the final model reads the whole test split
        sampled = label in sets and sets[label].num_examples < data.split_size(
            dataset, split, _data_dir(config)
        )
        if label in FINAL_ONLY or (size == 0 and sampled):
            final_sets[label] = load(dataset, split, size)
    return sets, final_sets


def network_args(config, dataset_info: data.DatasetInfo) -> dict:
    """The resnet18 arguments; stored with every checkpoint so it rebuilds its own network."""
    return {
        "num_classes": dataset_info.num_classes,
        "width": config.width,
        "input_shape": list(dataset_info.image_shape),
        "mean": list(dataset_info.mean),
        "std": list(dataset_info.std),
        "sync_batchnorm": config.sync_batchnorm,
    }


def check_tune_start(config, workdir: str | os.PathLike) -> None:
    """Fails before anything is written when the tune phase would have nothing to start from."""
    if not config.tune_dataset:
        return
    if config.tune_init_checkpoint or config.pretrain_epochs == 0:
        tune_info = data.info(config.tune_dataset, _data_dir(config))
        _inherit_architecture(
            init_checkpoint(config, Path(workdir)), network_args(config, tune_info)
        )


def init_checkpoint(config, workdir: Path) -> Path:
    """The checkpoint the tune phase starts from; a clear error if it does not exist."""
    if config.tune_init_checkpoint:
        path = Path(config.tune_init_checkpoint)
        if not checkpoints.is_checkpoint(path):
            raise FileNotFoundError(
                f"tune_init_checkpoint {path} is not a checkpoint (no network.json and "
                "network.weights.h5); "
                "point it at a checkpoints/epoch_NNNN directory."
            )
        return path
    found = checkpoints.list_checkpoints(workdir / "pretrain")
    if not found:
        raise FileNotFoundError(
            f"The tune phase needs a pretrain checkpoint in {workdir / 'pretrain'}, and there is "
            "none; run the pretrain phase first or set --tune_init_checkpoint."
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
    dataset_info = data.info(phase.dataset, _data_dir(config))
    train_size = _subset(phase.subset) or data.split_size(
        phase.dataset, phase.split, _data_dir(config)
    )
    steps_per_epoch = train_size // config.batch_size
    if steps_per_epoch < 1:
        raise ValueError(
            f"{phase.dataset}:{phase.split} has {train_size} examples, fewer than one batch of "
            f"{config.batch_size}; lower --batch_size."
        )
    eval_sets, final_sets = _eval_sets(config, phase)
    args = network_args(config, dataset_info)
    start = init_checkpoint(config, workdir) if phase.name == "tune" else None
    if start is not None:
        args = _inherit_architecture(start, args)

    with strategy.scope():
        network = resnet18(**args)
        model = objective_class(phase.objective)(
            network,
            beta=phase.beta,
            regularizer=phase.regularizer,
            eps=config.eps,
            attack_steps=config.attack_steps,
            attack_step_size=config.attack_step_size,
            eval_attack_steps=config.eval_attack_steps,
            eval_attack_step_size=config.eval_attack_step_size,
            norm=config.attack_norm,
            attack_bn_training=config.attack_bn_training,
            weight_decay=config.weight_decay,
            seed=config.seed,
        )
        optimizer = keras.optimizers.SGD(
            learning_rate_schedule(
                config.lr_schedule, phase.learning_rate, phase.epochs * steps_per_epoch
            ),
            momentum=config.momentum,
            nesterov=config.nesterov,
        )
        model.compile(
            optimizer=optimizer,
            jit_compile=resolve_jit_compile(config.jit_compile),
            steps_per_execution=config.steps_per_execution,
        )
        # Every worker resumes from the chief's checkpoints (a shared filesystem on a cluster).
        state = checkpoints.restore_latest(workdir / phase.name, network, optimizer)
        if state is None and start is not None:  # weights only: the optimizer starts fresh
            if (
                network.get_layer(head.HEAD).units
                != checkpoints.read_network_args(start)["num_classes"]
            ):
                head.restore_body(start, network, config.seed)
            else:
                checkpoints.restore(start, network)
    initial_epoch = 0 if state is None else state["epoch"]
    train_set = data.load(
        phase.dataset,
        phase.split,
        batch_size=config.batch_size,
        training=True,
        data_dir=_data_dir(config),
        subset=_subset(phase.subset),
        seed=config.seed,
        augment=config.augment,
        start_epoch=initial_epoch,
        num_epochs=max(phase.epochs - initial_epoch, 1),
    )
    train_set = shard_by_example(train_set)

    files.write_text(
        phase_dir / "config.json",
        json.dumps({"phase": dataclasses.asdict(phase), **config.to_dict()}, indent=2),
    )
    sample_images, sample_labels = next(iter(eval_sets["test"].batches))
    fit_callbacks = [
        callbacks.StopOnNonFiniteLoss(),
        callbacks.Throughput(config.batch_size),
        callbacks.PeriodicEvaluation(eval_sets, config.eval_every, phase.epochs, final_sets),
        callbacks.MetricsLog(phase_dir / "metrics.jsonl", phase.name, initial_epoch),
        callbacks.TensorBoardLog(
            phase_dir / "tensorboard",
            _hparams(config, phase),
            sample_images[:4],
            sample_labels[:4],
        ),
        callbacks.EpochCheckpoint(
            phase_dir, args, config.keep_checkpoints if is_chief(strategy) else 1
        ),
        callbacks.EpochSummary(phase.name, phase.epochs),
    ]
    if initial_epoch < phase.epochs:
        print(
            f"{phase.name}: {phase.objective} (beta {phase.beta}{_distance(phase)}) on "
            f"{phase.dataset}:{phase.split}"
            f", epochs {initial_epoch + 1}..{phase.epochs}, {steps_per_epoch} steps each",
            flush=True,
        )
        model.fit(
            train_set,
            epochs=phase.epochs,
            initial_epoch=initial_epoch,
            steps_per_epoch=steps_per_epoch,
            callbacks=fit_callbacks,
            shuffle=False,  # the dataset shuffles itself, seeded
            verbose=1 if sys.stdout.isatty() else 0,
        )
    # Exported in float32, as a checkpoint is rebuilt for evaluation: the same numbers.
    exported = checkpoints.float32_network(args)
    exported.set_weights(network.get_weights())
    export.export_saved_model(exported, phase_dir / "saved_model")
    barrier(strategy)  # the next phase's workers read the chief's checkpoints
    records = callbacks.read_metrics(phase_dir / "metrics.jsonl")
    return records[-1] if records else {}


def _distance(phase: Phase) -> str:
    return "" if phase.regularizer == "kl" else f", {phase.regularizer}"


def _inherit_architecture(checkpoint: Path, args: dict) -> dict:
    """The starting checkpoint's network arguments (its input normalization included), after
    checking that the tune data fits them; the class count is the tune data's (a different
    one gets a new classifier, see tf_advreg.training.head)."""
    saved = checkpoints.read_network_args(checkpoint)
    for key in ("width", "input_shape"):
        if saved[key] != args[key]:
            raise ValueError(
                f"The tune phase cannot start from {checkpoint}: its {key} is {saved[key]}, "
                f"the tune data and config need {args[key]}."
            )
    return saved | {key: args[key] for key in ("num_classes", "sync_batchnorm")}


def _hparams(config, phase: Phase) -> dict:
    """What the TensorBoard HParams dashboard compares across runs of a sweep."""
    return {
        "phase": phase.name,
        "objective": phase.objective,
        "beta": float(phase.beta),
        "regularizer": phase.regularizer,
        "dataset": phase.dataset,
        "pretrain_dataset": config.pretrain_dataset,
        "eps": float(config.eps),
        "learning_rate": float(phase.learning_rate),
        "epochs": phase.epochs,
        "width": config.width,
        "seed": config.seed,
    }
