"""Mean ± sd, t intervals, rank correlation and verdicts, against scipy and by hand."""

import math

import numpy as np
import pytest

from tf_advreg.experiments import statistics


@pytest.mark.parametrize("df", [1, 2, 3, 4, 9, 29, 30])
def test_the_t_table_matches_scipy(df):
    stats = pytest.importorskip("scipy.stats")
    assert statistics.t_quantile_975(df) == pytest.approx(stats.t.ppf(0.975, df), abs=6e-4)


def test_past_the_table_the_interval_only_widens():
    assert statistics.t_quantile_975(100) == statistics.t_quantile_975(30) > 1.96
    with pytest.raises(ValueError, match="at least 1 degree"):
        statistics.t_quantile_975(0)


def test_summary_of_three_seeds_by_hand():
    summary = statistics.summarize([0.1, 0.2, 0.3])
    assert summary.n == 3 and summary.mean == pytest.approx(0.2)
    assert summary.std == pytest.approx(0.1)  # sample sd, ddof 1
    half = 4.303 * 0.1 / math.sqrt(3)
    assert (summary.low, summary.high) == pytest.approx((0.2 - half, 0.2 + half))
    assert summary.text() == "0.2000 ± 0.1000"


def test_one_value_has_no_spread_and_no_interval():
    summary = statistics.summarize([0.5])
    assert math.isnan(summary.std) and math.isnan(summary.low)
    assert summary.text() == "0.5000" and statistics.verdict(summary) == "inconclusive"
    assert statistics.summarize([]).text() == "—"


def test_spearman_matches_scipy_with_ties():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    x = [0.1, 0.2, 0.4, 0.8, 1.0, 2.0, 3.0, 5.0]
    for _ in range(5):
        y = rng.integers(0, 4, size=len(x)).astype(float)  # many ties
        expected = stats.spearmanr(x, y).statistic
        assert statistics.spearman(x, y) == pytest.approx(expected)
    assert statistics.spearman(x, x[::-1]) == pytest.approx(-1.0)
    assert math.isnan(statistics.spearman(x, [0.5] * len(x)))


@pytest.mark.parametrize(
    "values,expected",
    [
        ([0.02, 0.03, 0.025], "reproduced"),
        ([-0.02, -0.03, -0.025], "contradicted"),
        ([0.02, -0.01, 0.03], "inconclusive"),  # the interval includes zero
        ([0.02, 0.03], "inconclusive"),  # n = 2: t = 12.7 makes the interval wide
    ],
)
def test_verdicts_follow_the_interval(values, expected):
    assert statistics.verdict(statistics.summarize(values)) == expected
