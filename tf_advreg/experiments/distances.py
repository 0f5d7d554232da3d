"""Which regularizer distance wins: each distance against KL, paired by seed.

Tables D.1-D.4 (report.regularizer_tables) hold one objective and one test metric each, rows
λ, columns the distance. A distance's number per seed is its accuracy minus KL's, averaged
over the λ > 0 rows (λ = 0 is robust optimization, the same run in every column); a seed
counts only when every cell it needs is finished. Over seeds: mean ± sd and the t-based 95 %
interval, whose sign decides, as for the thesis's claims (statistics.verdict): the distance
is better than KL (interval above zero), worse (below), or not distinguishable (includes zero,
or fewer than two seeds).

The distances weigh a difference on different scales (total variation is at most 1, symmetric
KL at least twice Jensen-Shannon), so one λ is not the same strength for all: the second
comparison sets each distance at its own best λ, peak against peak.
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


@dataclasses.dataclass(frozen=True)
class Peak:
    """A distance at the λ > 0 where its mean adversarial test accuracy is highest."""

    objective: str
    distance: str
    lam: str | None  # None: no λ > 0 has every seed finished
    at_grid_end: bool  # the grid's largest λ: a larger one may do better
    adversarial: statistics.Summary
    natural: statistics.Summary
    difference: statistics.Summary  # adversarial minus KL's at KL's own best λ, paired by seed
    verdict: str


def _best_lambda(table: Table, distance: str) -> str | None:
    """The λ > 0 row with the highest mean over seeds, among the rows whose every seed is in."""
    complete = [
        row
        for row in table.rows
        if row != _ROBUST_OPTIMIZATION_ROW
        and len(table.ours.get((row, distance), {})) == table.seeds
    ]
    return max(complete, key=lambda row: table.summary((row, distance)).mean, default=None)


def peaks(adversarial: Table, natural: Table, objective: str) -> list[Peak]:
    """Every distance of one objective at its best λ (chosen on `adversarial`), against KL at
    KL's. Choosing λ on the test split flatters every distance alike, so the paired difference
    is the number to read, not the level."""
    best = {distance: _best_lambda(adversarial, distance) for distance in adversarial.columns}
    baseline = adversarial.ours.get((best[BASELINE], BASELINE), {})
    found = []
    for distance, lam in best.items():
        key = (lam, distance)
        difference = statistics.paired_difference(adversarial.ours.get(key, {}), baseline)
        if lam is None:
            verdict = "not finished"
        elif distance == BASELINE:
            verdict = "the baseline"
        else:
            verdict = statistics.versus(difference, "KL")
        found.append(
            Peak(
                objective,
                distance,
                lam,
                lam is not None and lam == adversarial.rows[-1],
                adversarial.summary(key),
                natural.summary(key),
                difference,
                verdict,
            )
        )
    return found


def _row(comparison: Comparison) -> str:
    accuracy, difference = comparison.accuracy, comparison.difference
    paired = "—"
    if comparison.distance != BASELINE and difference.n:
        paired = f"{difference.with_interval()} (n={difference.n})"
    return (
        f"| {comparison.distance} | {accuracy.text()} (n={accuracy.n}) | {paired} | "
        f"**{comparison.verdict}** |"
    )


def _objective(table: Table) -> str:
    """report.regularizer_tables captions each table "<objective>: <metric> ..."."""
    return table.caption.partition(":")[0]


def _peak_row(peak: Peak) -> str:
    lam = "—" if peak.lam is None else peak.lam + (" (grid's largest)" if peak.at_grid_end else "")
    paired = "—"
    if peak.distance != BASELINE and peak.difference.n:
        paired = peak.difference.with_interval()
    return (
        f"| {peak.objective} | {peak.distance} | {lam} | {peak.adversarial.text()} | "
        f"{peak.natural.text()} | {paired} | **{peak.verdict}** |"
    )


def write_comparison(tables: list[Table], out: str | os.PathLike) -> list[Path]:
    """distances.md, distances.csv and distances_best_lambda.csv in `out`: per table, each
    distance against KL over the λ grid; per objective, each distance at its best λ.
    `tables`: report.regularizer_tables's, each objective's adversarial table then its
    natural one."""
    out = Path(out)
    by_table = [(table, compare(table)) for table in tables]
    best = [
        peak
        for adversarial, natural in zip(tables[0::2], tables[1::2], strict=True)
        for peak in peaks(adversarial, natural, _objective(adversarial))
    ]
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
    lines += [
        "",
        "## Each distance at its best λ",
        "",
        "Per objective and distance: the λ > 0 with the highest adversarial test accuracy (mean "
        "over seeds, among the λ with every seed finished), that λ's adversarial and natural test "
        "accuracy (mean ± sd over seeds), and its adversarial accuracy minus KL's at KL's own best "
        "λ, paired by seed, with the t-based 95 % interval and its verdict. λ is chosen on the "
        "test split, which flatters every distance alike: read the difference, not the level.",
        "",
        "| Objective | Distance | Best λ | Adversarial | Natural | Adversarial minus KL's, "
        "paired | Verdict |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [_peak_row(peak) for peak in best]
    markdown = out / "distances.md"
    files.write_text(markdown, "\n".join(lines) + "\n")
    table_path = out / "distances.csv"
    header = ["table", "distance", "accuracy mean", "accuracy std", "n_seeds"]
    header += ["minus kl mean", "minus kl std", "minus kl low", "minus kl high", "verdict"]
    rows = [
        [table.number, c.distance, csv_number(c.accuracy.mean), csv_number(c.accuracy.std)]
        + [c.accuracy.n]
        + c.difference.csv_fields()
        + [c.verdict]
        for table, comparisons in by_table
        for c in comparisons
    ]
    files.write_csv(table_path, [header, *rows])
    best_path = out / "distances_best_lambda.csv"
    header = ["objective", "distance", "best lambda", "grid's largest", "n_seeds"]
    header += ["adversarial mean", "adversarial std", "natural mean", "natural std"]
    header += ["minus kl mean", "minus kl std", "minus kl low", "minus kl high", "verdict"]
    rows = [
        [peak.objective, peak.distance, peak.lam or "", peak.at_grid_end, peak.adversarial.n]
        + [csv_number(v) for v in (peak.adversarial.mean, peak.adversarial.std)]
        + [csv_number(v) for v in (peak.natural.mean, peak.natural.std)]
        + peak.difference.csv_fields()
        + [peak.verdict]
        for peak in best
    ]
    files.write_csv(best_path, [header, *rows])
    return [markdown, table_path, best_path]
