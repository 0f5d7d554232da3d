"""The thesis's conclusions, each tested on our runs, with a verdict computed from the numbers.

Each claim is one number per seed that the thesis says is positive: a paired difference (the
same seed's runs on both sides) or a trend, Spearman's rank correlation over the λ grid. Over
seeds we report its mean ± sd and the t-based 95 % interval; statistics.verdict turns the
interval into reproduced (above zero), contradicted (below) or inconclusive (includes zero,
or fewer than two seeds). A seed counts only when every cell its number needs is finished.
The thesis's own value of the statistic is computed from its published tables the same way.

The runs come from the experiment files of one directory (configs/digits/, configs/thesis/),
each at its own root: Tables 4.1, 4.2, 5.1-5.4 and 5.5, and Figures 5-x's pairs. A claim that
compares tuned runs with runs trained on the tune data alone (Table 4.1 in the thesis, which
trains on CIFAR-10, its tune data) reads a table standing in for Table 4.1 (report.Table
.stands_for) where Table 4.1 trains on other data, and is not testable when none does.
"""

import dataclasses
import math
import os
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from tf_advreg import files
from tf_advreg.experiments import grid, report, statistics, thesis

Lookup = Callable[[str, str, str], float | None]  # (table, row, column) -> value
Measure = Callable[[Lookup], float | None]

FIGURE_5_2 = "F5.2"  # Figure 5-2's endpoints, our runs only (report.forgetting_table)
_THESIS_4 = [row for row, column in thesis.published("4.1") if column == "Adv. Test"]
LAMBDA_ROWS = [row for row in _THESIS_4 if row != "0.0"]  # 0.0 is robust optimization
_TABLE_5_COLUMNS = list(dict.fromkeys(c for _, c in thesis.published("5.4")))
_TABLE_5_ROWS = list(dict.fromkeys(r for r, _ in thesis.published("5.4")))
_TUNED_ROWS = [row for row in _TABLE_5_ROWS if row != report.UNTUNED]
_TRADES_COLUMNS = [c for c in _TABLE_5_COLUMNS if c.startswith("TRADES")]
_TRADES_ROWS = [r for r in _TUNED_ROWS if r.startswith("TRADES")]
_MODELS_5_5 = list(dict.fromkeys(row.split(" / ")[0] for row, _ in thesis.published("5.5")))


def _mean(values: list[float | None]) -> float | None:
    return None if not values or None in values else sum(values) / len(values)


def cell(table: str, row: str, column: str) -> Measure:
    return lambda get: get(table, row, column)


def mean_over(table: str, keys: list[tuple[str, str]]) -> Measure:
    return lambda get: _mean([get(table, row, column) for row, column in keys])


def trend(table: str, rows: list[str], column: str, sign: int = 1) -> Measure:
    """Spearman's rank correlation of the rows' numbers (λ) with their values, times sign;
    values equal at every λ count as ρ = 0, no trend."""

    def measure(get: Lookup) -> float | None:
        values = [get(table, row, column) for row in rows]
        if None in values:
            return None
        rho = statistics.spearman([_lambda(row) for row in rows], values)
        return 0.0 if math.isnan(rho) else sign * rho

    return measure


def _lambda(label: str) -> float:
    """0 for Rob Opt, the number of TRADES 0.5 or of 0.5."""
    return 0.0 if label == "Rob Opt" else float(label.split()[-1])


def difference(a: Measure, b: Measure) -> Measure:
    def measure(get: Lookup) -> float | None:
        x, y = a(get), b(get)
        return None if x is None or y is None else x - y

    return measure


def negated(a: Measure) -> Measure:
    return lambda get: None if a(get) is None else -a(get)


@dataclasses.dataclass(frozen=True)
class Claim:
    statement: str
    evidence: str  # where the thesis shows it
    statistic: str  # what the per-seed number is; the claim: it is positive
    measure: Measure
    sides: tuple[Measure, Measure] | None = None  # the two means a difference compares
    thesis_note: str = ""  # when the thesis gives no numbers for it
    # (alone-trained table, tuned table): the first's runs must train on the data the second's
    # tune on for the comparison to mean anything (alone_table).
    same_data: tuple[str, str] | None = None


def _paired(statement, evidence, statistic, a: Measure, b: Measure, **kwargs) -> Claim:
    return Claim(statement, evidence, statistic, difference(a, b), (a, b), **kwargs)


def _lambda_keys(column: str) -> list[tuple[str, str]]:
    return [(row, column) for row in LAMBDA_ROWS]


def _tuned_vs_alone(table_5: str, column: str) -> tuple[Measure, Measure]:
    """Table 5.x's tuned cells whose tuning is a row of Table 4.1, and those rows."""
    rows = [r for r in _TUNED_ROWS if f"{_lambda(r):.1f}" in _THESIS_4]
    tuned = [(r, c) for r in rows for c in _TABLE_5_COLUMNS]
    alone = [(f"{_lambda(r):.1f}", column) for r, _ in tuned]
    return mean_over(table_5, tuned), mean_over("4.1", alone)


def _forgetting(pair: str) -> Measure:
    """Adversarial accuracy on the pretraining data: after tuning minus before."""
    return difference(cell(FIGURE_5_2, pair, "tuned"), cell(FIGURE_5_2, pair, "pretrained"))


def _subset_drop(metric: str) -> Measure:
    keys = [f"{model} / {metric}" for model in _MODELS_5_5]
    return difference(
        mean_over("5.5", [(k, "Full Dataset") for k in keys]),
        mean_over("5.5", [(k, "Sample") for k in keys]),
    )


ROBOPT_PAIR, TRADES_PAIR, AR_PAIR = (
    "Rob Opt → Rob Opt",
    "TRADES 3.0 → TRADES 5.0",
    "AR 1.0 → AR 5.0",
)
_FIGURE_NOTE = (
    "Figure 5-2 only (no published numbers): robust-optimization tuning drifts down, "
    "TRADES and AR tuning show no drift"
)
_MEAN_LAMBDA = "mean over λ = 0.1..5"
CLAIMS = (
    Claim(
        "TRADES: adversarial test accuracy rises with λ",
        "Table 4.1, Figure 4-4",
        "Spearman ρ(λ, adv. test accuracy), λ = 0.1..5",
        trend("4.1", LAMBDA_ROWS, "Adv. Test"),
    ),
    Claim(
        "TRADES: natural test accuracy falls as λ rises",
        "Table 4.1, Figure 4-2",
        "−Spearman ρ(λ, nat. test accuracy), λ = 0.1..5",
        trend("4.1", LAMBDA_ROWS, "Nat. Test", -1),
    ),
    Claim(
        "AR: natural test accuracy falls as λ rises",
        "Table 4.2, Figure 4-2",
        "−Spearman ρ(λ, nat. test accuracy), λ = 0.1..5",
        trend("4.2", LAMBDA_ROWS, "Nat. Test", -1),
    ),
    _paired(
        "AR beats TRADES on adversarial test accuracy at equal λ",
        "Tables 4.1, 4.2; §6.2",
        f"AR − TRADES adv. test accuracy, {_MEAN_LAMBDA}",
        mean_over("4.2", _lambda_keys("Adv. Test")),
        mean_over("4.1", _lambda_keys("Adv. Test")),
    ),
    _paired(
        "TRADES beats AR on natural test accuracy at equal λ",
        "Tables 4.1, 4.2",
        f"TRADES − AR nat. test accuracy, {_MEAN_LAMBDA}",
        mean_over("4.1", _lambda_keys("Nat. Test")),
        mean_over("4.2", _lambda_keys("Nat. Test")),
    ),
    _paired(
        "Logit regularization (AR) beats robust optimization on adversarial test accuracy",
        "Table 4.2; §6.2",
        f"AR − robust optimization adv. test accuracy, {_MEAN_LAMBDA}",
        mean_over("4.2", _lambda_keys("Adv. Test")),
        cell("4.2", "0.0", "Adv. Test"),
    ),
    _paired(
        "Pretrain → tune beats training on the tune data alone: adversarial test accuracy",
        "Tables 5.4 vs 4.1; §5.7, §6.2",
        "Table 5.4 tuned cells − Table 4.1 at the tuning's λ, mean over cells",
        *_tuned_vs_alone("5.4", "Adv. Test"),
        same_data=("4.1", "5.4"),
    ),
    _paired(
        "Pretrain → tune beats training on the tune data alone: natural test accuracy",
        "Tables 5.2 vs 4.1; §5.7",
        "Table 5.2 tuned cells − Table 4.1 at the tuning's λ, mean over cells",
        *_tuned_vs_alone("5.2", "Nat. Test"),
        same_data=("4.1", "5.2"),
    ),
    _paired(
        "Logit regularization in pretraining and tuning beats robust optimization",
        "Table 5.4; §6.2",
        "adv. test accuracy, TRADES 3 → TRADES 5 − Rob Opt → Rob Opt",
        cell("5.4", "TRADES 5.0", "TRADES 3.0"),
        cell("5.4", "Rob Opt", "Rob Opt"),
    ),
    Claim(
        "A larger tuning λ raises adversarial test accuracy",
        "Table 5.4; §5.7",
        "Spearman ρ(tuning λ, adv. test accuracy) over TRADES tunings, mean over TRADES "
        "pretrainings",
        lambda get: _mean([trend("5.4", _TRADES_ROWS, c)(get) for c in _TRADES_COLUMNS]),
    ),
    _paired(
        "TRADES tuning keeps the pretrained robustness, robust-optimization tuning loses it",
        "Figure 5-2; §5.4, §6.2",
        "change of adv. accuracy on the pretraining data during tuning, TRADES 3 → 5 minus "
        "Rob Opt → Rob Opt",
        _forgetting(TRADES_PAIR),
        _forgetting(ROBOPT_PAIR),
        thesis_note=_FIGURE_NOTE,
    ),
    _paired(
        "AR tuning keeps the pretrained robustness, robust-optimization tuning loses it",
        "Figure 5-2; §5.4, §6.2",
        "change of adv. accuracy on the pretraining data during tuning, AR 1 → 5 minus "
        "Rob Opt → Rob Opt",
        _forgetting(AR_PAIR),
        _forgetting(ROBOPT_PAIR),
        thesis_note=_FIGURE_NOTE,
    ),
    Claim(
        "Robust-optimization tuning loses pretrained robustness",
        "Figure 5-2; §5.4",
        "drop of adv. accuracy on the pretraining data during Rob Opt → Rob Opt tuning",
        negated(_forgetting(ROBOPT_PAIR)),
        thesis_note=_FIGURE_NOTE,
    ),
    Claim(
        "The full pretraining set beats the subset: adversarial test accuracy",
        "Table 5.5; §6.2",
        "Full − Sample adv. test accuracy, mean over the three pairs",
        _subset_drop("Adversarial Testing"),
    ),
    Claim(
        "The full pretraining set beats the subset: natural test accuracy",
        "Table 5.5",
        "Full − Sample nat. test accuracy, mean over the three pairs",
        _subset_drop("Natural Testing"),
    ),
    _paired(
        "The subset costs more adversarial than natural test accuracy",
        "Table 5.5; §5.6",
        "(Full − Sample) adv. test − (Full − Sample) nat. test, mean over the pairs",
        _subset_drop("Adversarial Testing"),
        _subset_drop("Natural Testing"),
    ),
)


@dataclasses.dataclass(frozen=True)
class Sources:
    """Our tables by number (one Table per thesis table, and FIGURE_5_2), their experiments'
    base configs, and the seeds asked."""

    tables: dict[str, report.Table]
    configs: dict[str, dict]
    seeds: int


def load_sources(directory: str | os.PathLike, seeds: int | None = None) -> Sources:
    """The tables of every experiment file in `directory`, each read at its own root."""
    tables, configs, asked = {}, {}, 1
    for path in sorted(Path(directory).glob("*.py")):
        try:
            experiment = grid.load_experiment(path)
        except ValueError:
            continue  # not an experiment file (base.py, grids.py, __init__.py)
        root = Path(experiment.get_config().workdir)
        asked = max(asked, grid.seeds_of(experiment, seeds))
        found = _experiment_tables(experiment, root, seeds)
        tables |= {table.number: table for table in found}
        configs |= {table.number: experiment.get_config().to_dict() for table in found}
    return Sources(tables, configs, asked)


def _experiment_tables(experiment: ModuleType, root: Path, seeds: int | None):
    if experiment.REPORT == "figures_5":
        return [report.forgetting_table(grid.expand(experiment, root, seeds), root)]
    if experiment.REPORT == "figures_4":
        return []  # its runs are Tables 4.1 and 4.2's
    return report.tables(experiment, root, seeds)


def _data(config: dict, phase: str) -> str:
    """The data a phase trains on and its runs are tested on: digits:tune (test digits:test)."""
    dataset = config[phase]["dataset"]
    return f"{dataset}:{config[phase]['split']} (test {dataset}:{config['eval']['test_split']})"


@dataclasses.dataclass(frozen=True)
class AloneTable:
    """Where a claim reads its alone-trained table (claim.same_data's first) from: that table,
    or one standing in for it (`note` says which); `reason` says why neither can be compared
    ("" when one can)."""

    number: str
    reason: str = ""
    note: str = ""


def alone_table(claim: Claim, sources: Sources) -> AloneTable:
    """The table whose runs train on the data claim.same_data's tuned table tunes on, and are
    tested on the same test data: the alone-trained table itself, else a table standing in for
    it. Tables not loaded leave it as it is (a claim without runs is not run)."""
    alone, tuned = claim.same_data
    if tuned not in sources.configs:
        return AloneTable(alone)
    tuning = _data(sources.configs[tuned], "tune")
    stand_ins = [number for number, t in sources.tables.items() if t.stands_for == alone]
    present = [n for n in [alone, *stand_ins] if n in sources.configs]
    for number in present:
        if _data(sources.configs[number], "pretrain") == tuning:
            note = "" if number == alone else f"Table {alone} is our Table {number}, on {tuning}"
            return AloneTable(number, note=note)
    if not present:
        return AloneTable(alone)
    trained = ", ".join(
        f"Table {n}'s runs train on {_data(sources.configs[n], 'pretrain')}" for n in present
    )
    return AloneTable(
        alone,
        f"not testable at this scale: {trained}, Table {tuned}'s tune on {tuning}, so no run "
        "trains on the tune data alone",
    )


@dataclasses.dataclass(frozen=True)
class Finding:
    claim: Claim
    thesis: float | None
    ours: statistics.Summary
    sides: tuple[statistics.Summary, statistics.Summary] | None
    verdict: str
    note: str = ""  # which of our tables stood in for a thesis table


def _seeds(sources: Sources) -> list[int]:
    return sorted({s for t in sources.tables.values() for v in t.ours.values() for s in v})


def evaluate(claim: Claim, sources: Sources) -> Finding:
    published = claim.measure(
        lambda t, r, c: thesis.published(t).get((r, c)) if t != FIGURE_5_2 else None
    )

    read = alone_table(claim, sources) if claim.same_data else AloneTable("")
    read_from = {claim.same_data[0]: read.number} if claim.same_data else {}

    def ours(seed: int) -> Lookup:
        def get(table: str, row: str, column: str) -> float | None:
            found = sources.tables.get(read_from.get(table, table))
            return found.ours.get((row, column), {}).get(seed) if found else None

        return get

    seeds = _seeds(sources)
    per_seed = {s: claim.measure(ours(s)) for s in seeds}
    used = [s for s, v in per_seed.items() if v is not None]
    summary = statistics.summarize([per_seed[s] for s in used])
    sides = None
    if claim.sides:
        sides = tuple(statistics.summarize([side(ours(s)) for s in used]) for side in claim.sides)
    if read.reason:
        verdict = read.reason
    elif summary.n == 0:
        verdict = "not run"
    else:
        verdict = statistics.verdict(summary)
    return Finding(claim, published, summary, sides, verdict, read.note)


def _ours_text(finding: Finding, asked: int) -> str:
    ours = finding.ours
    if ours.n == 0:
        return "—"
    n = f"n={ours.n}" + (f" of {asked} seeds †" if ours.n < asked else " seeds")
    text = f"{ours.with_interval()} ({n})"
    if finding.sides:
        a, b = finding.sides
        text = f"{a.text()} vs {b.text()}; paired difference {text}"
    return f"{text}; {finding.note}" if finding.note else text


def _thesis_text(finding: Finding) -> str:
    if finding.thesis is None:
        return finding.claim.thesis_note or "—"
    return f"{finding.thesis:+.4f} ({finding.claim.evidence})"


def write_claims(sources: Sources, out: str | os.PathLike) -> list[Path]:
    """claims.md and claims.csv in `out`: one row per claim, its evidence and verdict."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    findings = [evaluate(claim, sources) for claim in CLAIMS]
    lines = [
        "# The thesis's claims, tested",
        "",
        "Per claim, a number per seed that the claim says is positive (the statistic), its mean "
        "± sd over seeds and t-based 95 % interval; the verdict is computed from the interval: "
        "reproduced (above 0), contradicted (below 0), inconclusive (includes 0 or one seed). "
        "† : fewer seeds than asked (a seed counts when every cell it needs is finished). "
        "Thesis: the same statistic computed from its published CIFAR-10 tables.",
        "",
        "| Claim | Statistic | Thesis | Ours | Verdict |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {f.claim.statement} | {f.claim.statistic} | {_thesis_text(f)} | "
        f"{_ours_text(f, sources.seeds)} | **{f.verdict}** |"
        for f in findings
    ]
    markdown = out / "claims.md"
    files.write_text(markdown, "\n".join(lines) + "\n")
    table = out / "claims.csv"
    header = ["claim", "statistic", "thesis", "mean", "std", "n_seeds", "low", "high", "verdict"]
    rows = [
        [finding.claim.statement, finding.claim.statistic]
        + ["" if finding.thesis is None else finding.thesis]
        + [statistics.csv_number(v) for v in (finding.ours.mean, finding.ours.std)]
        + [finding.ours.n]
        + [statistics.csv_number(v) for v in (finding.ours.low, finding.ours.high)]
        + [finding.verdict]
        for finding in findings
    ]
    files.write_csv(table, [header, *rows])
    return [markdown, table]
