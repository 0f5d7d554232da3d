"""Each recipe model against the plain objective's last model, paired by seed: the numbers and
the verdict they give."""

import csv

import numpy as np
import pytest

from tf_advreg.experiments import ingredients, results
from tf_advreg.experiments.report import Table

SEEDS = (0, 1, 2)
PLAIN, AWP, HELD_OUT = "TRADES 5.0 + EMA", "TRADES 5.0 + AWP 0.001", "TRADES 5.0 + held-out best"
OTHER = "AR 5.0"  # an objective without a plain row in the grid
ADV = "Adv. Test"
# Per seed, what each (row, model) adds to the plain last model's adversarial accuracy.
OFFSETS = {
    (PLAIN, "ema"): (0.010, 0.012, 0.011),  # better at every seed
    (AWP, "last"): (-0.040, -0.030, -0.035),  # worse at every seed
    (HELD_OUT, "last"): (0.010, -0.010, 0.002),  # the sign changes: not distinguishable
    (HELD_OUT, "best"): (0.030, 0.020, 0.025),
}


def plain_accuracy(seed: int) -> float:
    return 0.6 + 0.05 * seed  # seeds differ far more than the offsets: pairing matters


def make_table(skip=()) -> Table:
    ours = {(PLAIN, results.model_column(ADV, "last")): {s: plain_accuracy(s) for s in SEEDS}}
    for (row, model), offsets in OFFSETS.items():
        ours[(row, results.model_column(ADV, model))] = {
            s: plain_accuracy(s) + offsets[s] for s in SEEDS if (row, model, s) not in skip
        }
    ours[(OTHER, results.model_column(ADV, "last"))] = {s: 0.5 for s in SEEDS}
    rows = [PLAIN, AWP, HELD_OUT, OTHER]
    columns = list(dict.fromkeys(column for _, column in ours))
    return Table("R.1", "Objective + options", ours, rows, columns, len(SEEDS), caption="R")


PLAIN_ROWS = {PLAIN: PLAIN, AWP: PLAIN, HELD_OUT: PLAIN, OTHER: None}


def t_interval(values):
    values = np.asarray(values, dtype=np.float64)
    half = 4.302652729911275 * values.std(ddof=1) / np.sqrt(len(values))  # t_{0.975, 2}
    return values.mean() - half, values.mean() + half


def _compare(table) -> dict:
    return {(c.row, c.model): c for c in ingredients.compare(table, PLAIN_ROWS)}


@pytest.mark.parametrize(
    "key, verdict",
    [
        ((PLAIN, "ema"), "better than plain"),
        ((AWP, "last"), "worse than plain"),
        ((HELD_OUT, "last"), "not distinguishable from plain"),
    ],
)
def test_a_model_is_compared_with_the_plain_last_model_paired_by_seed(key, verdict):
    comparison = _compare(make_table())[key]
    low, high = t_interval(OFFSETS[key])
    assert (comparison.plain, comparison.metric) == (PLAIN, ADV)
    assert comparison.difference.n == 3
    assert comparison.difference.mean == pytest.approx(np.mean(OFFSETS[key]), abs=1e-12)
    assert (comparison.difference.low, comparison.difference.high) == pytest.approx(
        (low, high), abs=1e-3
    )
    assert comparison.verdict == verdict
    own = [plain_accuracy(s) + OFFSETS[key][s] for s in SEEDS]
    assert comparison.accuracy.mean == pytest.approx(np.mean(own), abs=1e-12)


def test_the_baseline_and_rows_without_a_plain_row_are_not_compared():
    found = _compare(make_table())
    assert (PLAIN, "last") not in found
    assert not [key for key in found if key[0] == OTHER]
    assert sorted(found) == sorted(OFFSETS)


def test_a_seed_missing_on_one_side_is_left_out_of_the_pairing():
    comparison = _compare(make_table(skip={(AWP, "last", 1)}))[(AWP, "last")]
    assert comparison.difference.n == 2
    assert comparison.difference.mean == pytest.approx(np.mean([-0.040, -0.035]), abs=1e-12)
    one_seed = _compare(make_table(skip={(AWP, "last", 1), (AWP, "last", 2)}))[(AWP, "last")]
    assert one_seed.verdict == "not distinguishable from plain"  # one seed decides nothing


def test_a_metric_the_plain_model_lacks_has_no_pair():
    table = make_table()
    table.ours[(AWP, results.model_column("AutoAttack Test", "last"))] = {0: 0.4}
    found = [c for c in ingredients.compare(table, PLAIN_ROWS) if c.metric == "AutoAttack Test"]
    assert [(c.row, c.verdict, c.accuracy.mean) for c in found] == [(AWP, "no pair", 0.4)]


def test_the_comparison_is_written_as_markdown_and_csv(tmp_path):
    paths = ingredients.write_comparison(make_table(), PLAIN_ROWS, tmp_path)
    assert [p.name for p in paths] == ["ingredients.md", "ingredients.csv"]
    markdown = paths[0].read_text()
    assert f"## Against {PLAIN} (last)" in markdown
    assert "| Row (model) | Adv. Test: minus plain |" in markdown
    low, high = t_interval(OFFSETS[(AWP, "last")])
    assert f"| {AWP} (last) | -0.0350 [{low:+.4f}, {high:+.4f}] (n=3) **worse** |" in markdown
    assert f"| {HELD_OUT} (last) | +0.0007 [" in markdown and "(n=3) ≈ |" in markdown
    rows = list(csv.DictReader(paths[1].open()))
    assert [(r["row"], r["model"]) for r in rows] == list(OFFSETS)
    assert rows[0]["verdict"] == "better than plain" and float(rows[0]["minus plain low"]) > 0
    assert rows[1]["n_pairs"] == "3" and rows[1]["plain row"] == PLAIN
