"""The training config: every field once, with its default and its help, in nested blocks.

    config.pretrain.*, config.tune.*   one PHASE block each (the same schema)
    config.attack.*                    the threat model and PGD settings; a phase's `attack`
                                       block overrides any of them for that phase
    config.model.*                     the architecture, by name (tf_advreg.models.MODELS)
    config.eval.*                      what each epoch's evaluation reads
    config.<field>                     the rest: data, optimizer, run and hardware settings

tools.train's flags, its --helpfull text and config.json are all generated from SCHEMA.
The defaults are the thesis's settings (configs/default.py names its datasets); those it does
not state are marked "our choice" and follow the Madry / TRADES reference code. Adding a
field is one entry here plus the code that reads it.
"""

import dataclasses
from collections.abc import Iterator, Mapping

import ml_collections
from ml_collections import config_dict


@dataclasses.dataclass(frozen=True)
class Field:
    """One setting. `resumable`: a re-run with another value still continues the same run."""

    default: object
    help: str
    resumable: bool = False
    kind: type | None = None  # only for an unset (None) default: what it may be set to


PHASES = ("pretrain", "tune")  # in the order they run

ATTACK = {
    "eps": Field(0.03, "Radius of the threat model, in [0, 1] pixel units."),
    "norm": Field("linf", "Threat-model norm: linf or l2."),
    "steps": Field(10, "PGD steps of the training attack."),
    "step_size": Field(0.007, "PGD step size of the training attack."),
    "eval_steps": Field(20, "PGD steps of the per-epoch evaluation attack."),
    "eval_step_size": Field(0.003, "PGD step size of the per-epoch evaluation attack."),
    "bn_training": Field(
        False, "Run BatchNorm in training mode during the training attack (our choice: off)."
    ),
}

PHASE = {
    "dataset": Field(
        "",
        "Dataset of the phase (digits, cifar10, cinic10, ...); empty: no such phase. A tune "
        "dataset with tune.epochs=0 tunes nothing, but the pretrained model is evaluated on it.",
    ),
    "split": Field("train", "Training split of the phase, e.g. train+validation."),
    "subset": Field(0, "Class-balanced sample size of the training split (0: all)."),
    "objective": Field(
        "robopt", "Training objective: a config_name of tf_advreg.objectives (robopt, trades, ...)."
    ),
    "beta": Field(0.0, "Regularization weight of the objective (the thesis's lambda)."),
    "regularizer": Field(
        "kl",
        "Distance between p(x) and p(x') of trades and ar: kl, symmetric_kl, total_variation "
        "or jensen_shannon.",
    ),
    "epochs": Field(100, "Epochs of the phase.", resumable=True),
    "lr": Field(0.1, "Initial learning rate of the phase."),
    "lr_warmup_epochs": Field(
        0,
        "Epochs over which the phase's learning rate rises linearly to lr_schedule's (0: none).",
    ),
    "init_checkpoint": Field(
        "",
        "Checkpoint the phase starts from (empty: the previous phase's last checkpoint, or "
        "fresh weights for the first phase); another class count keeps its body and gets a "
        "new classifier.",
    ),
    # Beyond the thesis: the recipe of docs/recipe.md. 0 turns each off; the defaults train
    # exactly as without them.
    "awp_gamma": Field(
        0.0,
        "Adversarial weight perturbation's relative size gamma per layer (Wu et al. 2020; their "
        "CIFAR-10 TRADES value 5e-3, robopt 1e-2); 0: off.",
    ),
    "awp_warmup_epochs": Field(
        0,
        "Epochs at the phase's start trained without AWP (TRADES-AWP: 9, AWP from epoch 10).",
    ),
    "ema_decay": Field(
        0.0,
        "Decay of an exponential moving average of the weights, evaluated as ema_<set>/* and "
        "exported as saved_model_ema (e.g. 0.999); 0: off.",
    ),
    "hold_out": Field(
        0,
        "Examples of the training split set aside, class-balanced and the same for every seed, "
        "evaluated with PGD every epoch as heldout/*; the best epoch by best_metric is kept in "
        "best/ and exported as saved_model_best (Rice et al. 2020: 1000 on CIFAR-10); 0: off.",
    ),
    "best_metric": Field(
        "heldout/adversarial_accuracy",
        "What picks the best epoch when hold_out > 0: heldout/adversarial_accuracy or "
        "heldout/natural_accuracy of the network, or ema_heldout/... of its weight average "
        "(ema_decay > 0; saved_model_best then exports that epoch's average).",
    ),
    # Unset fields take config.attack's value: a phase changes only what it names.
    "attack": {
        name: Field(
            None, f"This phase's attack.{name} (unset: attack.{name}).", kind=type(f.default)
        )
        for name, f in ATTACK.items()
    },
}

MODEL = {
    "name": Field("resnet18", "Architecture, one of tf_advreg.models.MODELS."),
    "width": Field(64, "First-stage width (64 is the thesis's ResNet18, 11.17 M parameters)."),
    "sync_batchnorm": Field(
        False,
        "BatchNorm batch statistics over the global batch under a distribution strategy "
        "(default: per replica, as PyTorch DDP; the moving statistics are the replicas' mean "
        "either way).",
    ),
}

# What an evaluation can measure, by the label its metrics are logged under (<set>/<metric>).
EVAL_SETS = ("test", "train", "pretrain_train", "tune_test", "tune_train")

EVAL = {
    "every": Field(1, "Evaluate every N epochs (and always after the last).", resumable=True),
    "sets": Field(
        ",".join(EVAL_SETS),
        "Comma-separated sets each evaluation measures: test and train (the phase's own "
        "splits; test is required), pretrain_train (while tuning, the pretraining data's "
        "training split), tune_test and tune_train (at the last pretraining epoch, the tune "
        "data). Data already measured under another label is measured once.",
        resumable=True,
    ),
    "train_subset": Field(
        10_000,
        "Examples of each training split evaluated per epoch, a class-balanced sample (our "
        "choice; 0: all).",
    ),
    "test_subset": Field(
        10_000,
        "Test examples evaluated per epoch, a fixed class-balanced sample; the final epoch reads "
        "the whole split (our choice; 0: always all).",
    ),
    "test_split": Field("test", "Split evaluated each epoch as the test set."),
}

SCHEMA = {
    "pretrain": PHASE,
    "tune": PHASE,
    "attack": ATTACK,
    "model": MODEL,
    "eval": EVAL,
    "data_dir": Field("", "TFDS data directory (empty: the TFDS default).", resumable=True),
    "augment": Field(
        "default",
        "Augmentation policy: none, default (our choice: random crop with 4 px padding and "
        "horizontal flip), ...",
    ),
    "batch_size": Field(100, "Global batch size (split across replicas)."),
    "lr_schedule": Field(
        "step", "step (our choice: x0.1 at 50% and 75% of the phase), cosine or constant."
    ),
    "momentum": Field(0.9, "SGD momentum (our choice, as Madry / TRADES)."),
    "nesterov": Field(False, "Use Nesterov momentum."),
    "weight_decay": Field(
        2e-4, "L2 weight decay added to the gradient, as PyTorch SGD (our choice: TRADES's)."
    ),
    "workdir": Field(
        "runs/thesis", "Directory of the run's checkpoints, logs and exports.", resumable=True
    ),
    "keep_checkpoints": Field(
        0, "Keep only the newest N epoch checkpoints (0: all).", resumable=True
    ),
    "seed": Field(0, "Seed of weights, data order, augmentation and attack starts."),
    "strategy": Field(
        "auto", "auto, default, mirrored or multi_worker (TF_CONFIG).", resumable=True
    ),
    "jit_compile": Field(
        "auto",
        "Compile the train and test steps with XLA: auto (on GPUs and TPUs, not on CPUs), true "
        "or false; config.json records the resolved true or false.",
        resumable=True,
    ),
    "mixed_precision": Field(False, "Compute in mixed_bfloat16 (logits and losses stay float32)."),
    "steps_per_execution": Field(1, "Train steps per compiled call.", resumable=True),
    "deterministic": Field(
        False,
        "TF op determinism and fixed thread pools: bit-identical reruns (slower).",
        resumable=True,
    ),
}


def _build(block: Mapping) -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    for name, entry in block.items():
        if isinstance(entry, Mapping):
            config[name] = _build(entry)
        elif entry.default is None:
            config[name] = config_dict.placeholder(entry.kind)
        else:
            config[name] = entry.default
    return config


def new_config() -> ml_collections.ConfigDict:
    """Every field at its default."""
    return _build(SCHEMA)


def fields(block: Mapping = SCHEMA, prefix: str = "") -> Iterator[tuple[str, Field]]:
    """(dotted path, Field) of every field, in schema order."""
    for name, entry in block.items():
        if isinstance(entry, Mapping):
            yield from fields(entry, f"{prefix}{name}.")
        else:
            yield prefix + name, entry


FIELDS = dict(fields())


def flatten(config: Mapping, prefix: str = "") -> dict:
    """{dotted path: value} of a nested config dict."""
    flat = {}
    for name, value in config.items():
        if isinstance(value, Mapping):
            flat |= flatten(value, f"{prefix}{name}.")
        else:
            flat[prefix + name] = value
    return flat


def get(config: Mapping, path: str):
    for name in path.split("."):
        config = config[name]
    return config


def set_value(config, path: str, value) -> None:
    """Sets the field at a dotted path (of a ConfigDict or a nested dict)."""
    *blocks, name = path.split(".")
    for block in blocks:
        config = config[block]
    config[name] = value


def eval_sets(config: Mapping) -> list[str]:
    """config.eval.sets as a list of labels (a run saved before the field: its default)."""
    sets = config["eval"].get("sets", EVAL["sets"].default)
    return [name.strip() for name in sets.split(",") if name.strip()]


def phase_attack(config: Mapping, phase: str) -> dict:
    """The attack settings of one phase: config.attack with the phase's own values on top."""
    overrides = config[phase].get("attack", {})
    return {
        name: value if overrides.get(name) is None else overrides[name]
        for name, value in config["attack"].items()
    }
