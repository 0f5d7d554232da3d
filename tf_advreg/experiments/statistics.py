"""Numbers over seeds: mean ± standard deviation, a t-based 95 % interval, rank correlation.

Replication uses few seeds (3 to 10), where the normal quantile 1.96 would make intervals too
narrow; the two-sided 95 % Student-t quantiles below are the standard table (scipy need not be
installed). Past 30 degrees of freedom the 30's value is used, which only widens the interval.
"""

import dataclasses
import math
from collections.abc import Mapping, Sequence

import numpy as np

# Two-sided 95 % quantiles t_{0.975, df}, df = 1..30.
_T_975 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip


def t_quantile_975(df: int) -> float:
    if df < 1:
        raise ValueError(f"A t interval needs at least 1 degree of freedom, got {df}.")
    return _T_975[min(df, len(_T_975)) - 1]


@dataclasses.dataclass(frozen=True)
class Summary:
    """Values over seeds: n, mean, sample standard deviation (ddof 1; nan for one value)."""

    n: int
    mean: float
    std: float
    low: float  # the 95 % t interval of the mean; nan below 2 values
    high: float

    def text(self, digits: int = 4) -> str:
        if self.n == 0:
            return "—"
        if self.n == 1:
            return f"{self.mean:.{digits}f}"
        return f"{self.mean:.{digits}f} ± {self.std:.{digits}f}"

    def interval(self, digits: int = 4) -> str:
        if self.n < 2:
            return "no interval (one value)"
        return f"[{self.low:+.{digits}f}, {self.high:+.{digits}f}]"

    def with_interval(self, digits: int = 4) -> str:
        """E.g. "0.0250 ± 0.0050, 95 % CI [+0.0126, +0.0374]"."""
        return f"{self.text(digits)}, 95 % CI {self.interval(digits)}"

    def csv_fields(self) -> list[str]:
        """Mean, std and the interval's ends as CSV fields (empty where undefined)."""
        return [csv_number(v) for v in (self.mean, self.std, self.low, self.high)]


def csv_number(value: float) -> str:
    """A CSV field: the value, or empty when it is undefined (nan)."""
    return "" if math.isnan(value) else repr(value)


def summarize(values: Sequence[float]) -> Summary:
    values = np.asarray(values, dtype=np.float64)
    n = len(values)
    if n == 0:
        return Summary(0, math.nan, math.nan, math.nan, math.nan)
    mean = float(values.mean())
    if n == 1:
        return Summary(1, mean, math.nan, math.nan, math.nan)
    std = float(values.std(ddof=1))
    half = t_quantile_975(n - 1) * std / math.sqrt(n)
    return Summary(n, mean, std, mean - half, mean + half)


def ranks(values: Sequence[float]) -> np.ndarray:
    """1-based ranks, ties given their average rank."""
    values = np.asarray(values, dtype=np.float64)
    order = np.argsort(values, kind="stable")
    ranked = np.empty(len(values))
    ranked[order] = np.arange(1, len(values) + 1)
    for value in np.unique(values):
        tied = values == value
        ranked[tied] = ranked[tied].mean()
    return ranked


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's rank correlation; nan when either side is constant."""
    rx, ry = ranks(x), ranks(y)
    if rx.std() == 0 or ry.std() == 0:
        return math.nan
    return float(np.corrcoef(rx, ry)[0, 1])


class Verdict:
    REPRODUCED = "reproduced"
    CONTRADICTED = "contradicted"
    INCONCLUSIVE = "inconclusive"


def verdict(summary: Summary) -> str:
    """The claim says the statistic is positive: reproduced when the whole 95 % interval is
    above zero, contradicted when it is below, inconclusive when it includes zero or when
    there are fewer than two seeds to form an interval."""
    if summary.n < 2 or math.isnan(summary.low):
        return Verdict.INCONCLUSIVE
    if summary.low > 0:
        return Verdict.REPRODUCED
    if summary.high < 0:
        return Verdict.CONTRADICTED
    return Verdict.INCONCLUSIVE


def paired_difference(candidate: Mapping[int, float], baseline: Mapping[int, float]) -> Summary:
    """Candidate minus baseline over the seeds both have: seed k's runs on both sides."""
    seeds = sorted(set(candidate) & set(baseline))
    return summarize([candidate[seed] - baseline[seed] for seed in seeds])


def versus(difference: Summary, baseline: str) -> str:
    """A paired difference's verdict, read from its interval as `verdict` reads a claim's."""
    return {
        Verdict.REPRODUCED: f"better than {baseline}",
        Verdict.CONTRADICTED: f"worse than {baseline}",
        Verdict.INCONCLUSIVE: f"not distinguishable from {baseline}",
    }[verdict(difference)]
