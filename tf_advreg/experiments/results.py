"""A run's results: its final model's four thesis metrics and its per-tuning-epoch series.

The final metrics come from the last line of the run's last phase's metrics.jsonl (the final
epoch is always evaluated), overridden by `<workdir>/evaluation.json` where it exists, e.g.
    python -m tools.evaluate --model=<workdir> --dataset=cifar10 --thesis_metrics \
        --output=<workdir>/evaluation.json
to replace the per-epoch PGD-20 numbers (on a sample of the training split) with a full-split
evaluation, or to evaluate an untuned chapter-5 model on CIFAR-10 (its own metrics.jsonl
measures it on the pretraining data).
"""

import json
import os
from pathlib import Path

from tf_advreg.training.callbacks import read_metrics
from tf_advreg.training.phases import PHASES

EVALUATION_FILE = "evaluation.json"
# The thesis's four columns and the metrics.jsonl keys behind them.
METRICS = {
    "Nat. Train": "train/natural_accuracy",
    "Nat. Test": "test/natural_accuracy",
    "Adv. Train": "train/adversarial_accuracy",
    "Adv. Test": "test/adversarial_accuracy",
}
_ATTACK_KIND = {"natural": "natural", "pgd": "adversarial"}


def _evaluation_metrics(path: Path) -> dict[str, float]:
    """tools.evaluate's JSON as metrics.jsonl keys: natural and PGD accuracy per split."""
    metrics = {}
    for evaluation in json.loads(path.read_text())["evaluations"]:
        split = evaluation["data"]["split"]
        for result in evaluation["results"]:
            kind = _ATTACK_KIND.get(result["attack"])
            if kind:
                metrics[f"{split}/{kind}_accuracy"] = result["accuracy"]
    return metrics


def final_metrics(workdir: str | os.PathLike) -> dict[str, float]:
    """The final model's metrics; {} when the run has none yet."""
    workdir = Path(workdir)
    metrics = {}
    for phase in PHASES:
        records = read_metrics(workdir / phase / "metrics.jsonl")
        if records:
            metrics = records[-1]
    evaluation = workdir / EVALUATION_FILE
    if evaluation.is_file():
        metrics = metrics | _evaluation_metrics(evaluation)
    return metrics


def tuning_series(workdir: str | os.PathLike, key: str) -> tuple[list[int], list[float]]:
    """(epochs, values) of one metric over the tune phase's evaluated epochs."""
    records = [r for r in read_metrics(Path(workdir) / "tune" / "metrics.jsonl") if key in r]
    return [r["epoch"] for r in records], [r[key] for r in records]
