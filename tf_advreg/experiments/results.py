"""A run's results: its final model's four thesis metrics and its per-tuning-epoch series.

The thesis measures every table cell on its tuning data (CIFAR-10; Tables 5.1-5.4's untuned
row too), so a run's four metrics are read where they were measured on its table data: the
tune data when the config names a tune dataset (tuned or not), else the pretraining data.
They come from the last line of the run's last phase's metrics.jsonl (the final epoch is
always evaluated), under the label phases.eval_data gave that data. `<workdir>/evaluation.json`
replaces them, e.g.
    python -m tools.evaluate --model=<workdir> --dataset=digits --thesis_metrics ... \
        --output=<workdir>/evaluation.json
to replace the per-epoch PGD-20 numbers (on a sample of the training split) with a full-split
evaluation, but only when its dataset, splits and PGD settings equal the run's; otherwise it
is ignored with a warning naming it. An evaluation with `--attack=autoattack` of the table's
test split at the run's eps and norm adds the AutoAttack accuracy (OPTIONAL_METRICS).

A run trained with the recipe's options (docs/recipe.md) has up to three final models; which
one the numbers describe is a MODEL_CHOICES key: the last epoch's weights, the best epoch by
held-out robustness (its epoch's logged record, in `<last phase>/best/state.json`), or the
weight average (its `ema_<label>/...` keys of the last record). Each has its own evaluation
file (EVALUATION_FILES) that replaces its logged numbers, e.g. an evaluation of
`<workdir>/tune/saved_model_best` written to `<workdir>/evaluation_best.json`.
"""

import dataclasses
import json
import os
import warnings
from pathlib import Path

import ml_collections

from tf_advreg.training import best_checkpoint, checkpoints, phases
from tf_advreg.training.callbacks import read_metrics

EVALUATION_FILE = "evaluation.json"
# Which of a run's final models the numbers describe (tools.report --model_choice).
MODEL_CHOICES = {
    "last": "the last epoch's weights",
    "best": "the best epoch by held-out robustness (hold_out > 0)",
    "ema": "the weight average (ema_decay > 0)",
}
EVALUATION_FILES = {
    "last": EVALUATION_FILE,
    "best": "evaluation_best.json",
    "ema": "evaluation_ema.json",
}
# The thesis's four columns and the metric keys behind them: <split role>/<kind>_accuracy.
METRICS = {
    "Nat. Train": "train/natural_accuracy",
    "Nat. Test": "test/natural_accuracy",
    "Adv. Train": "train/adversarial_accuracy",
    "Adv. Test": "test/adversarial_accuracy",
}
_ATTACK_KIND = {"natural": "natural", "pgd": "adversarial"}
# Columns shown only when some run has them: AutoAttack on the test split, from evaluation.json.
OPTIONAL_METRICS = {"AutoAttack Test": "test/autoattack_accuracy"}
# The test split's metrics, the columns of a table that sets final models side by side.
TEST_METRICS = {
    name: key for name, key in (METRICS | OPTIONAL_METRICS).items() if key.startswith("test/")
}


def model_column(metric: str, model: str) -> str:
    """The column of a metric of one final model (MODEL_CHOICES), e.g. "Adv. Test (ema)"."""
    return f"{metric} ({model})"


@dataclasses.dataclass(frozen=True)
class TableData:
    """Where a run's four metrics must be measured: one dataset, its train and test splits."""

    dataset: str
    train_split: str
    test_split: str

    def split(self, role: str) -> str:
        return self.train_split if role == "train" else self.test_split

    def text(self) -> str:
        return f"{self.dataset} ({self.train_split} / {self.test_split})"


def table_data(config: dict) -> TableData:
    """The tune data when the config names a tune dataset, else the pretraining data."""
    phase = config["tune"] if config["tune"]["dataset"] else config["pretrain"]
    return TableData(phase["dataset"], phase["split"], config["eval"]["test_split"])


def _last_phase(config: dict) -> phases.Phase | None:
    found = phases.phases_from_config(ml_collections.ConfigDict(config))
    return found[-1] if found else None


def check_model_choice(model: str) -> None:
    if model not in MODEL_CHOICES:
        raise ValueError(
            f"Unknown model choice {model!r}; choose one of {', '.join(MODEL_CHOICES)}."
        )


def _model_record(phase_dir: Path, model: str, best_metric: str) -> tuple[dict, str]:
    """The logged record describing `model` of the phase, and the prefix of its keys; ({}, "")
    when the phase has no such model (yet). The best epoch's model is the network's, or its
    average's when `best_metric` rates the average."""
    if model == "best":
        best = best_checkpoint.best_dir(phase_dir)
        if not (best / "state.json").is_file():
            return {}, ""
        prefix = "ema_" if best_checkpoint.of_average(best_metric) else ""
        return checkpoints.read_state(best)["metrics"], prefix
    records = read_metrics(phase_dir / "metrics.jsonl")
    return (records[-1] if records else {}), ("ema_" if model == "ema" else "")


def _logged_metrics(workdir: Path, config: dict, model: str = "last") -> dict[str, float]:
    """The last phase's record of `model` (MODEL_CHOICES), its keys renamed train/... and
    test/... for the labels that measured the table data; other keys are dropped."""
    phase = _last_phase(config)
    record, prefix = ({}, "")
    if phase:
        record, prefix = _model_record(
            workdir / phase.name, model, phase.settings.get("best_metric", "")
        )
    if not record:
        return {}
    wanted = table_data(config)
    labels = {
        (dataset, split): label
        for label, (dataset, split, _) in phases.eval_data(
            ml_collections.ConfigDict(config), phase
        ).items()
    }
    metrics = {}
    for role in ("train", "test"):
        label = labels.get((wanted.dataset, wanted.split(role)))
        for kind in ("natural", "adversarial"):
            key = f"{prefix}{label}/{kind}_accuracy"
            if label and key in record:
                metrics[f"{role}/{kind}_accuracy"] = record[key]
    return metrics


def _evaluation_metrics(path: Path, config: dict) -> dict[str, float]:
    """tools.evaluate's JSON as train/... and test/... keys; {} with a warning when any of its
    evaluations is of other data or PGD settings than the run's table."""
    wanted = table_data(config)
    attack = _last_phase(config).attack
    roles = {wanted.train_split: "train", wanted.test_split: "test"}
    metrics = {}
    for evaluation in json.loads(path.read_text())["evaluations"]:
        data = evaluation["data"]
        role = roles.get(data["split"])
        problem = ""
        if data["dataset"] != wanted.dataset or role is None:
            problem = f"it evaluates {data['dataset']}:{data['split']}, the table {wanted.text()}"
        for result in evaluation["results"]:
            kind = _ATTACK_KIND.get(result["attack"])
            if kind == "adversarial" and not attack.matches_evaluation(result["settings"]):
                problem = problem or (
                    f"its PGD settings {result['settings']} are not the run's (eps "
                    f"{attack.eps}, {attack.eval_steps} steps of {attack.eval_step_size})"
                )
            if kind and not problem:
                metrics[f"{role}/{kind}_accuracy"] = result["accuracy"]
        autoattack = evaluation.get("autoattack")
        if autoattack and not attack.matches_threat_model(autoattack):
            problem = problem or (
                f"its AutoAttack threat model ({autoattack['norm']} eps {autoattack['eps']}) is "
                f"not the run's ({attack.norm} eps {attack.eps})"
            )
        if autoattack and role == "test" and not problem:
            metrics["test/autoattack_accuracy"] = autoattack["robust_accuracy"]
        if problem:
            warnings.warn(f"Ignoring {path}: {problem}.", stacklevel=2)
            return {}
    return metrics


def final_metrics(
    workdir: str | os.PathLike, config: dict, model: str = "last"
) -> dict[str, float]:
    """The four metrics of the run's final `model` (MODEL_CHOICES) on its table data; {} when
    the run has none yet (or no such model)."""
    check_model_choice(model)
    workdir = Path(workdir)
    metrics = _logged_metrics(workdir, config, model)
    evaluation = workdir / EVALUATION_FILES[model]
    if evaluation.is_file():
        metrics = metrics | _evaluation_metrics(evaluation, config)
    return metrics


def pretrained_metrics(workdir: str | os.PathLike) -> dict[str, float]:
    """The last record of a run's pretrain phase, as logged."""
    records = read_metrics(Path(workdir) / "pretrain" / "metrics.jsonl")
    return records[-1] if records else {}


def tuning_series(workdir: str | os.PathLike, key: str) -> tuple[list[int], list[float]]:
    """(epochs, values) of one metric over the tune phase's evaluated epochs."""
    records = [r for r in read_metrics(Path(workdir) / "tune" / "metrics.jsonl") if key in r]
    return [r["epoch"] for r in records], [r[key] for r in records]
