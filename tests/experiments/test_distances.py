"""Each distance against KL, paired by seed: the numbers and the verdict they give."""

import csv

import numpy as np
import pytest

from tf_advreg.experiments import distances
from tf_advreg.experiments.report import Table

SEEDS = (0, 1, 2)
LAMBDAS = ("0.0", "1.0", "3.0")
# Per seed, what each distance adds to KL's accuracy (at every λ > 0).
OFFSETS = {
    "kl": (0.0, 0.0, 0.0),
    "total_variation": (0.020, 0.025, 0.030),  # better at every seed
    "symmetric_kl": (-0.040, -0.030, -0.035),  # worse at every seed
    "jensen_shannon": (0.010, -0.010, 0.002),  # the sign changes: not distinguishable
}


def kl_accuracy(row: str, seed: int) -> float:
    return 0.5 + 0.01 * float(row) + 0.02 * seed


def make_table(skip=()) -> Table:
    ours = {}
    for distance, offsets in OFFSETS.items():
        for row in LAMBDAS:
            shift = 0.0 if row == "0.0" else 1.0  # λ = 0 is the shared robust optimization
            ours[(row, distance)] = {
                seed: kl_accuracy(row, seed) + shift * offsets[seed]
                for seed in SEEDS
                if (row, distance, seed) not in skip
            }
    caption = "TRADES: adversarial test accuracy by distance and λ"
    return Table("D.1", "λ", ours, list(LAMBDAS), list(OFFSETS), len(SEEDS), caption=caption)


def t_interval(values):
    values = np.asarray(values, dtype=np.float64)
    half = 4.302652729911275 * values.std(ddof=1) / np.sqrt(len(values))  # t_{0.975, 2}
    return values.mean() - half, values.mean() + half


@pytest.mark.parametrize(
    "distance, verdict",
    [
        ("total_variation", "better than KL"),
        ("symmetric_kl", "worse than KL"),
        ("jensen_shannon", "not distinguishable from KL"),
    ],
)
def test_a_distance_is_compared_with_kl_paired_by_seed(distance, verdict):
    found = {c.distance: c for c in distances.compare(make_table())}
    comparison = found[distance]
    low, high = t_interval(OFFSETS[distance])
    assert comparison.difference.n == 3
    assert comparison.difference.mean == pytest.approx(np.mean(OFFSETS[distance]), abs=1e-12)
    assert (comparison.difference.low, comparison.difference.high) == pytest.approx(
        (low, high), abs=1e-3
    )
    assert comparison.verdict == verdict
    # The accuracy column: the distance's own mean over λ > 0, averaged over seeds.
    own = [
        np.mean([kl_accuracy(r, s) + OFFSETS[distance][s] for r in ("1.0", "3.0")]) for s in SEEDS
    ]
    assert comparison.accuracy.mean == pytest.approx(np.mean(own), abs=1e-12)
    assert found["kl"].verdict == "the baseline"


def test_a_seed_missing_one_cell_is_left_out_of_the_pairing():
    table = make_table(skip={("3.0", "total_variation", 1)})
    comparison = {c.distance: c for c in distances.compare(table)}["total_variation"]
    assert comparison.difference.n == 2
    assert comparison.difference.mean == pytest.approx(np.mean([0.020, 0.030]), abs=1e-12)


def test_a_distance_without_runs_is_not_run_and_one_seed_decides_nothing():
    table = make_table(skip={(r, "symmetric_kl", s) for r in LAMBDAS for s in SEEDS})
    table.ours = {k: v for k, v in table.ours.items() if v}
    one_seed = make_table(skip={(r, d, s) for r in LAMBDAS for d in OFFSETS for s in (1, 2)})
    assert {c.distance: c for c in distances.compare(table)}["symmetric_kl"].verdict == "not run"
    verdicts = {c.distance: c.verdict for c in distances.compare(one_seed)}
    assert verdicts["total_variation"] == "not distinguishable from KL"


def test_the_comparison_is_written_as_markdown_and_csv(tmp_path):
    paths = distances.write_comparison([make_table()], tmp_path)
    assert [p.name for p in paths] == ["distances.md", "distances.csv"]
    markdown = paths[0].read_text()
    assert "## Table D.1: TRADES: adversarial test accuracy by distance and λ" in markdown
    assert "| total_variation | 0.5650 ± 0.0250 (n=3) | 0.0250 ± 0.0050, 95 % CI" in markdown
    rows = list(csv.DictReader(paths[1].open()))
    assert [r["distance"] for r in rows] == list(OFFSETS)
    assert rows[2]["verdict"] == "worse than KL"
    assert float(rows[2]["minus kl high"]) < 0
