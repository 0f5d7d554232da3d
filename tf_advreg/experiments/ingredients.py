"""Which ingredient of the recipe helps: each model of each Table R.1 row against the plain
objective, paired by seed.

Table R.1 (report.recipe_table) has a row per objective and set of options, and a column per
test metric and final model (results.MODEL_CHOICES). Per objective, the plain row (no AWP, no
held-out split; it may carry the weight average, which leaves its training unchanged) gives the
baseline: its last model. Every other model of every row of that objective, the plain row's
average (EMA alone) included, is compared on each test metric: its accuracy minus the
baseline's, the same seed on both sides, over the seeds both finished; mean ± sd and the t-based
95 % interval, whose sign decides (statistics.versus): better than plain (above zero), worse
(below), or not distinguishable (includes zero, or one seed).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from tf_advreg import files
from tf_advreg.experiments import results, statistics
from tf_advreg.experiments.statistics import csv_number

if TYPE_CHECKING:
    from tf_advreg.experiments.report import Table

BASELINE_MODEL = "last"
_SHORT_VERDICTS = {
    statistics.Verdict.REPRODUCED: "**better**",
    statistics.Verdict.CONTRADICTED: "**worse**",
    statistics.Verdict.INCONCLUSIVE: "≈",
}


@dataclasses.dataclass(frozen=True)
class Comparison:
    row: str
    plain: str  # the row whose last model is the baseline
    model: str  # results.MODEL_CHOICES
    metric: str  # results.TEST_METRICS
    accuracy: statistics.Summary  # over seeds
    difference: statistics.Summary  # minus the plain last model's, paired by seed
    verdict: str


def compare(table: Table, plain_rows: Mapping[str, str | None]) -> list[Comparison]:
    """Every (row, model, metric) of `table` that has runs against its plain row's last model.
    `plain_rows`: each row's plain row (itself for a plain row; None: none in the grid)."""
    comparisons = []
    for row in table.rows:
        plain = plain_rows[row]
        if plain is None:
            continue
        for model in results.MODEL_CHOICES:
            if (row, model) == (plain, BASELINE_MODEL):
                continue
            for metric in results.TEST_METRICS:
                own = table.ours.get((row, results.model_column(metric, model)), {})
                if not own:
                    continue
                baseline = table.ours.get((plain, results.model_column(metric, BASELINE_MODEL)), {})
                difference = statistics.paired_difference(own, baseline)
                verdict = statistics.versus(difference, "plain") if difference.n else "no pair"
                accuracy = statistics.summarize(list(own.values()))
                comparisons.append(
                    Comparison(row, plain, model, metric, accuracy, difference, verdict)
                )
    return comparisons


def _cell(comparison: Comparison | None) -> str:
    if comparison is None:
        return "—"
    difference = comparison.difference
    if not difference.n:
        return comparison.verdict
    interval = f" {difference.interval()}" if difference.n > 1 else ""
    short = _SHORT_VERDICTS[statistics.verdict(difference)]
    return f"{difference.mean:+.4f}{interval} (n={difference.n}) {short}"


def write_comparison(
    table: Table, plain_rows: Mapping[str, str | None], out: str | os.PathLike
) -> list[Path]:
    """ingredients.md and ingredients.csv in `out`: per objective, each model of each row
    against the plain objective."""
    out = Path(out)
    comparisons = compare(table, plain_rows)
    metrics = [m for m in results.TEST_METRICS if any(c.metric == m for c in comparisons)]
    lines = [
        "# Which ingredient helps",
        "",
        "Per objective, each final model of each row of Table R.1 against the plain objective's "
        "last model: its test accuracy minus the plain one's, the same seed on both sides, mean "
        "over the seeds both finished, with the t-based 95 % interval and the verdict that "
        "interval gives: **better** (above 0), **worse** (below 0), ≈ not distinguishable "
        "(includes 0, or one seed). The plain row's `ema` model is the weight average alone. "
        "Each interval is for its own comparison, not adjusted for the many in this file: with "
        "no real difference anywhere, about one comparison in twenty still reads better or "
        "worse. Accuracies move in steps of one test image, so equal differences at every seed "
        "give an interval of width 0.",
    ]
    for plain in dict.fromkeys(c.plain for c in comparisons):
        of_plain = [c for c in comparisons if c.plain == plain]
        by_key = {(c.row, c.model, c.metric): c for c in of_plain}
        lines += [
            "",
            f"## Against {plain} ({BASELINE_MODEL})",
            "",
            "| Row (model) | " + " | ".join(f"{m}: minus plain" for m in metrics) + " |",
            "|" + "---|" * (len(metrics) + 1),
        ]
        for row, model in dict.fromkeys((c.row, c.model) for c in of_plain):
            cells = [_cell(by_key.get((row, model, metric))) for metric in metrics]
            lines.append(f"| {row} ({model}) | " + " | ".join(cells) + " |")
    markdown = out / "ingredients.md"
    files.write_text(markdown, "\n".join(lines) + "\n")
    header = ["row", "model", "metric", "plain row", "accuracy mean", "accuracy std", "n_seeds"]
    header += ["minus plain mean", "minus plain std", "minus plain low", "minus plain high"]
    header += ["n_pairs", "verdict"]
    rows = [
        [c.row, c.model, c.metric, c.plain]
        + [csv_number(c.accuracy.mean), csv_number(c.accuracy.std), c.accuracy.n]
        + c.difference.csv_fields()
        + [c.difference.n, c.verdict]
        for c in comparisons
    ]
    table_path = out / "ingredients.csv"
    files.write_csv(table_path, [header, *rows])
    return [markdown, table_path]
