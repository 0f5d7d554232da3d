"""Each pretraining size against the whole split, paired by seed: the numbers and verdicts."""

import csv

import numpy as np
import pytest

from tf_advreg.experiments import sizes
from tf_advreg.experiments.report import Table

SEEDS = (0, 1, 2)
SIZES = ("50", "300", "997")
PAIR = "Rob Opt → Rob Opt"
# Per seed, what each size adds to the whole split's accuracy.
OFFSETS = {
    "50": (-0.20, -0.15, -0.25),  # worse at every seed
    "300": (0.05, -0.04, 0.01),  # the sign changes: not distinguishable
}


def whole(seed: int) -> float:
    return 0.5 + 0.03 * seed


def make_table(skip=()) -> Table:
    ours = {(PAIR, "997"): {s: whole(s) for s in SEEDS}}
    for size, offsets in OFFSETS.items():
        ours[(PAIR, size)] = {s: whole(s) + offsets[s] for s in SEEDS if (size, s) not in skip}
    return Table("S.1", "Pair / size", ours, [PAIR], list(SIZES), len(SEEDS), caption="S.1")


def test_a_smaller_sample_is_compared_with_the_whole_split_paired_by_seed():
    found = {c.size: c for c in sizes.compare(make_table())}
    assert sorted(found) == ["300", "50"]  # the whole split is the baseline, not compared
    fifty = found["50"]
    values = np.asarray(OFFSETS["50"])
    half = 4.302652729911275 * values.std(ddof=1) / np.sqrt(3)  # t_{0.975, 2}
    assert fifty.difference.mean == pytest.approx(values.mean(), abs=1e-12)
    assert (fifty.difference.low, fifty.difference.high) == pytest.approx(
        (values.mean() - half, values.mean() + half),
        abs=1e-4,  # the table has t to 3 decimals
    )
    assert fifty.verdict == "worse than the whole split"
    assert fifty.accuracy.mean == pytest.approx(np.mean([whole(s) for s in SEEDS]) - 0.2)
    assert found["300"].verdict == "not distinguishable from the whole split"


def test_only_seeds_both_sides_finished_are_paired():
    table = make_table(skip={("50", 1)})
    fifty = {c.size: c for c in sizes.compare(table)}["50"]
    assert (fifty.difference.n, fifty.accuracy.n) == (2, 2)
    assert fifty.difference.mean == pytest.approx(-0.225, abs=1e-12)
    unrun = make_table(skip={("50", s) for s in SEEDS})
    assert {c.size: c for c in sizes.compare(unrun)}["50"].verdict == "not run"


def test_the_comparison_is_written_as_markdown_and_csv(tmp_path):
    paths = sizes.write_comparison(make_table(), tmp_path)
    assert [p.name for p in paths] == ["sizes.md", "sizes.csv"]
    markdown = paths[0].read_text()
    assert "difference from the whole split's (997 examples)" in markdown
    assert (
        "| Rob Opt → Rob Opt | 50 | 0.3300 ± 0.0436 (n=3) | -0.2000 ± 0.0500, 95 % CI "
        "[-0.3242, -0.0758] (n=3) | **worse than the whole split** |" in markdown
    )
    rows = list(csv.DictReader(paths[1].open()))
    assert [(r["size"], r["whole split"]) for r in rows] == [("50", "997"), ("300", "997")]
    assert rows[0]["verdict"] == "worse than the whole split"
    assert float(rows[0]["minus whole high"]) < 0
