"""Which regularizer distance wins: each distance against KL, paired by seed.

Tables D.1-D.4 (report.regularizer_tables) hold one objective and one test metric each, rows
λ, columns the distance. A distance's number per seed is its accuracy minus KL's, averaged
over the λ > 0 rows (λ = 0 is robust optimization, the same run in every column); a seed
counts only when every cell it needs is finished. Over seeds: mean ± sd and the t-based 95 %
interval, whose sign decides, as for the thesis's claims (statistics.verdict): the distance
is better than KL (interval above zero), worse (below), or not distinguishable (includes zero,
or fewer than two seeds).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from tf_advreg import files
from tf_advreg.experiments import statistics
from tf_advreg.experiments.statistics import csv_number

if TYPE_CHECKING:
    from tf_advreg.experiments.report import Table

BASELINE = "kl"
_ROBUST_OPTIMIZATION_ROW = "0.0"


@dataclasses.dataclass(frozen=True)
class Comparison:
    table: Table
    distance: str
    accuracy: statistics.Summary  # the distance's accuracy, mean over λ, over seeds
    difference: statistics.Summary  # minus KL's, paired by seed
    verdict: str


def _means_over_lambda(table: Table, distance: str, seeds: list[int]) -> dict[int, float]:
    """{seed: the distance's accuracy averaged over the λ > 0 rows} for the seeds that have
    every row."""
    rows = [row for row in table.rows if row != _ROBUST_OPTIMIZATION_ROW]
    means = {}
    for seed in seeds:
        values = [table.ours.get((row, distance), {}).get(seed) for row in rows]
        if values and None not in values:
            means[seed] = float(np.mean(values))
    return means


def compare(table: Table) -> list[Comparison]:
    """Every distance of `table` (KL included, its difference zero) against KL."""
    seeds = sorted({seed for values in table.ours.values() for seed in values})
    baseline = _means_over_lambda(table, BASELINE, seeds)
    comparisons = []
    for distance in table.columns:
        own = _means_over_lambda(table, distance, seeds)
        difference = statistics.paired_difference(own, baseline)
        verdict = (
            "the baseline"
            if distance == BASELINE
            else statistics.versus(difference, "KL")
            if difference.n
            else "not run"
        )
        accuracy = statistics.summarize(list(own.values()))
        comparisons.append(Comparison(table, distance, accuracy, difference, verdict))
    return comparisons


def _row(comparison: Comparison) -> str:
    accuracy, difference = comparison.accuracy, comparison.difference
    paired = "—"
    if comparison.distance != BASELINE and difference.n:
        paired = f"{difference.text()}, 95 % CI {difference.interval()} (n={difference.n})"
    return (
        f"| {comparison.distance} | {accuracy.text()} (n={accuracy.n}) | {paired} | "
        f"**{comparison.verdict}** |"
    )


def write_comparison(tables: list[Table], out: str | os.PathLike) -> list[Path]:
    """distances.md and distances.csv in `out`: per table, each distance against KL."""
    out = Path(out)
    by_table = [(table, compare(table)) for table in tables]
    lines = [
        "# Which distance wins",
        "",
        "Per table and distance: its test accuracy averaged over λ > 0, mean ± sd over seeds; "
        "then its paired difference from KL (same seed, mean over λ > 0) with the t-based 95 % "
        "interval, and the verdict that interval gives (better: above 0; worse: below 0; not "
        "distinguishable: includes 0 or one seed).",
    ]
    for table, comparisons in by_table:
        lines += [
            "",
            f"## Table {table.number}: {table.caption}",
            "",
            "| Distance | Accuracy, mean over λ | Minus KL, paired | Verdict |",
            "|---|---|---|---|",
        ]
        lines += [_row(c) for c in comparisons]
    markdown = out / "distances.md"
    files.write_text(markdown, "\n".join(lines) + "\n")
    table_path = out / "distances.csv"
    header = ["table", "distance", "accuracy mean", "accuracy std", "n_seeds"]
    header += ["minus kl mean", "minus kl std", "minus kl low", "minus kl high", "verdict"]
    rows = [
        [table.number, c.distance, csv_number(c.accuracy.mean), csv_number(c.accuracy.std)]
        + [c.accuracy.n]
        + [csv_number(v) for v in (c.difference.mean, c.difference.std)]
        + [csv_number(v) for v in (c.difference.low, c.difference.high)]
        + [c.verdict]
        for table, comparisons in by_table
        for c in comparisons
    ]
    files.write_csv(table_path, [header, *rows])
    return [markdown, table_path]
