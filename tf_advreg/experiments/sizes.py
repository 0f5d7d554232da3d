"""How much a smaller pretraining sample costs: each size against the whole split, paired by seed.

Table S.1 (report.pretrain_size_table) has a row per pretrain -> tune pair and a column per
pretraining size, the largest being the whole split. Per pair and smaller size: its adversarial
test accuracy after tuning minus the whole split's, the same seed on both sides (the same
initialization and tuning draws), over the seeds both finished; mean ± sd and the t-based 95 %
interval, whose sign decides (statistics.versus): better than the whole split, worse, or not
distinguishable (includes zero, or one seed).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import TYPE_CHECKING

from tf_advreg import files
from tf_advreg.experiments import statistics
from tf_advreg.experiments.statistics import csv_number

if TYPE_CHECKING:
    from tf_advreg.experiments.report import Table


@dataclasses.dataclass(frozen=True)
class Comparison:
    pair: str
    size: str
    whole: str  # the whole split's column
    accuracy: statistics.Summary  # over seeds
    difference: statistics.Summary  # minus the whole split's, paired by seed
    verdict: str


def compare(table: Table) -> list[Comparison]:
    """Every pair and smaller size of Table S.1 against the pair's whole-split column."""
    whole = table.columns[-1]
    comparisons = []
    for pair in table.rows:
        baseline = table.ours.get((pair, whole), {})
        for size in table.columns[:-1]:
            difference = statistics.paired_difference(table.ours.get((pair, size), {}), baseline)
            verdict = (
                statistics.versus(difference, "the whole split") if difference.n else "not run"
            )
            comparisons.append(
                Comparison(pair, size, whole, table.summary((pair, size)), difference, verdict)
            )
    return comparisons


def write_comparison(table: Table, out: str | os.PathLike) -> list[Path]:
    """sizes.md and sizes.csv in `out`."""
    out = Path(out)
    comparisons = compare(table)
    whole = table.columns[-1]
    lines = [
        "# What a smaller pretraining sample costs",
        "",
        f"Per pair and pretraining size: the adversarial test accuracy after tuning (Table "
        f"{table.number}), mean ± sd over seeds, and its difference from the whole split's "
        f"({whole} examples), the same seed on both sides, with the t-based 95 % interval and the "
        "verdict that interval gives (better: above 0; worse: below 0; not distinguishable: "
        "includes 0 or one seed).",
        "",
        "| Pair | Size | Accuracy | Minus the whole split, paired | Verdict |",
        "|---|---:|---|---|---|",
    ]
    for c in comparisons:
        paired = "—"
        if c.difference.n:
            paired = f"{c.difference.with_interval()} (n={c.difference.n})"
        lines.append(
            f"| {c.pair} | {c.size} | {c.accuracy.text()} (n={c.accuracy.n}) | {paired} | "
            f"**{c.verdict}** |"
        )
    markdown = out / "sizes.md"
    files.write_text(markdown, "\n".join(lines) + "\n")
    table_path = out / "sizes.csv"
    header = ["pair", "size", "whole split", "accuracy mean", "accuracy std", "n_seeds"]
    header += ["minus whole mean", "minus whole std", "minus whole low", "minus whole high"]
    header += ["verdict"]
    rows = [
        [c.pair, c.size, c.whole, csv_number(c.accuracy.mean), csv_number(c.accuracy.std)]
        + [c.accuracy.n]
        + c.difference.csv_fields()
        + [c.verdict]
        for c in comparisons
    ]
    files.write_csv(table_path, [header, *rows])
    return [markdown, table_path]
