"""Evaluation results as a JSON document (schema: result_schema.json), CSV rows and text tables."""

import csv
import datetime
import json
import os
from collections.abc import Sequence
from pathlib import Path

import tf_advreg
from tf_advreg import files
from tf_advreg.evaluation.robustness import Outcome, result_record
from tf_advreg.evaluation.sanity import Check

SCHEMA_VERSION = 1
SCHEMA_PATH = Path(__file__).with_name("result_schema.json")
CSV_COLUMNS = (
    "epoch",
    "model",
    "dataset",
    "split",
    "attack",
    "eps",
    "norm",
    "steps",
    "step_size",
    "restarts",
    "correct",
    "total",
    "accuracy",
    "ci95_low",
    "ci95_high",
    "seconds",
)


def evaluation_record(model: dict, data: dict, outcomes: Sequence[Outcome], seconds: float) -> dict:
    """One model on one split: `model` and `data` are identity records (see the schema)."""
    return {
        "model": model,
        "data": data,
        "results": [result_record(o) for o in outcomes],
        "seconds": round(seconds, 3),
    }


def sanity_record(model: dict, data: dict, attack: dict, checks: Sequence[Check]) -> dict:
    return {
        "model": model,
        "data": data,
        "attack": attack,
        "checks": [c.record() for c in checks],
        "passed": all(c.passed for c in checks),
    }


def document(
    evaluations: list[dict], sanity: dict | None, seconds: float, unreadable: Sequence[dict] = ()
) -> dict:
    doc = {
        "schema_version": SCHEMA_VERSION,
        "tf_advreg_version": tf_advreg.__version__,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "evaluations": evaluations,
        "seconds": round(seconds, 3),
    }
    if sanity is not None:
        doc["sanity_checks"] = sanity
    if unreadable:
        doc["unreadable_checkpoints"] = list(unreadable)
    return doc


_THREAT_MODELS = {"linf": "Linf", "l2": "L2"}


def robustbench_record(doc: dict, architecture: str | None = None) -> dict:
    """The fields of a RobustBench model card, from a document with one AutoAttack evaluation.

    Accuracies are percentages rounded to 2 decimals, as RobustBench lists them.
    """
    evaluations = [e for e in doc["evaluations"] if "autoattack" in e]
    if len(evaluations) != 1:
        raise ValueError(
            "--robustbench_json needs exactly one AutoAttack evaluation: "
            "use --attack=autoattack (or autoattack-rand) with --model."
        )
    (evaluation,) = evaluations
    autoattack = evaluation["autoattack"]
    return {
        "clean_acc": round(100 * autoattack["clean_accuracy"], 2),
        "autoattack_acc": round(100 * autoattack["robust_accuracy"], 2),
        "eps": autoattack["eps"],
        "threat_model": _THREAT_MODELS[autoattack["norm"]],
        "architecture": architecture,
        "dataset": evaluation["data"]["dataset"],
        "split": evaluation["data"]["split"],
        "n_examples": evaluation["data"]["num_examples"],
        "attacks": [stage["attack"] for stage in autoattack["attacks"]],
        "version": autoattack["version"],
        "model_fingerprint": evaluation["model"]["fingerprint"],
        "evaluated_with": f"tf_advreg {doc['tf_advreg_version']}",
    }


def schema() -> dict:
    return json.loads(SCHEMA_PATH.read_text())


def _rows(doc: dict):
    for evaluation in doc["evaluations"]:
        for result in evaluation["results"]:
            settings = result["settings"]
            yield {
                "epoch": evaluation["model"]["epoch"],
                "model": evaluation["model"]["path"],
                "dataset": evaluation["data"]["dataset"],
                "split": evaluation["data"]["split"],
                "attack": result["attack"],
                **{key: settings.get(key) for key in CSV_COLUMNS[5:10]},
                "correct": result["correct"],
                "total": result["total"],
                "accuracy": result["accuracy"],
                "ci95_low": result["ci95"]["low"],
                "ci95_high": result["ci95"]["high"],
                "seconds": result["seconds"],
            }


def write_json(doc: dict, path: str | os.PathLike) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    files.write_text(path, json.dumps(doc, indent=2) + "\n")


def write_csv(doc: dict, path: str | os.PathLike) -> None:
    """One row per (model, split, attack): the series thesis Figures 5-1..5-4 plot."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with files.replaced_atomically(path) as staging, open(staging, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        writer.writerows(_rows(doc))


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]
    lines = [header, ["-" * w for w in widths], *rows]
    return "\n".join(
        "  ".join(str(cell).ljust(w) for cell, w in zip(line, widths)).rstrip() for line in lines
    )


def _shown(value) -> str:
    return "-" if value is None else f"{value:g}"


def format_results(doc: dict) -> str:
    """A text table; a model column (its index in the list above the table) when several."""
    models = list(dict.fromkeys(e["model"]["path"] for e in doc["evaluations"]))
    several = len(models) > 1
    header = ("epoch", "split", "attack", "eps", "steps", "restarts", "accuracy", "95% CI", "n")
    header = ("model", *header) if several else header
    rows = []
    for row in _rows(doc):
        accuracy = "-" if row["accuracy"] is None else f"{100 * row['accuracy']:.2f} %"
        rows.append(
            (
                *((str(models.index(row["model"]) + 1),) if several else ()),
                _shown(row["epoch"]),
                row["split"],
                row["attack"],
                _shown(row["eps"]),
                _shown(row["steps"]),
                _shown(row["restarts"]),
                accuracy,
                f"[{100 * row['ci95_low']:.1f}, {100 * row['ci95_high']:.1f}]",
                f"{row['correct']}/{row['total']}",
            )
        )
    names = [f"model {i}: {m}" if several else f"model: {m}" for i, m in enumerate(models, 1)]
    sequences = [_autoattack_line(e["autoattack"]) for e in doc["evaluations"] if "autoattack" in e]
    return "\n".join(names + [_table(header, rows)] + sequences)


def _autoattack_line(record: dict) -> str:
    """The sequence in one line: accuracy after each attack, and its throughput."""
    steps = [f"clean {100 * record['clean_accuracy']:.2f} %"] + [
        f"{stage['attack']} {100 * stage['robust_accuracy']:.2f} % "
        f"({stage['examples_per_second'] or 0:.1f} ex/s)"
        for stage in record["attacks"]
    ]
    return f"{record['version']}: " + " -> ".join(steps)


def format_checks(sanity: dict) -> str:
    rows = [(c["name"], "PASS" if c["passed"] else "FAIL", c["detail"]) for c in sanity["checks"]]
    verdict = "all checks passed" if sanity["passed"] else "SOME CHECKS FAILED"
    return f"{_table(('sanity check', 'result', 'detail'), rows)}\n{verdict}"
