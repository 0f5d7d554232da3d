"""The claims table from a fabricated digits replication: seeds pair, verdicts follow the
numbers, a seed short of a cell is counted out and marked, untestable claims say why."""

import csv
import textwrap
from pathlib import Path

import pytest
from support import assert_one_line_error, run_tool_in_process

from tf_advreg.experiments import claims, grid, report, statistics, thesis

ALONE_ADVERSARIAL = (
    "Pretrain → tune beats training on the tune data alone: adversarial test accuracy"
)
ALONE_NATURAL = "Pretrain → tune beats training on the tune data alone: natural test accuracy"


ROOT = Path(__file__).resolve().parents[2]
DIGITS = ("table_4_1", "table_4_2", "tables_5_1_to_5_4", "figures_5_1_to_5_4", "table_5_5")
WRAPPER = """
from configs.digits import {name} as experiment

REPORT, SEEDS, get_sweep = experiment.REPORT, experiment.SEEDS, experiment.get_sweep


def get_config():
    config = experiment.get_config()
    config.workdir = {root!r}
    return config
"""


def designed_metrics(run: grid.Run):
    """TRADES and AR: adversarial accuracy rises with lambda, natural accuracy too (against
    the thesis); AR - TRADES alternates in sign over seeds; robust-optimization tuning loses
    pretraining-data robustness, TRADES tuning keeps it."""
    config = run.config
    beta = report.regularization(config)
    seed = config["seed"]
    jitter = 0.002 * (1 if seed % 2 else -1) if config["pretrain"]["objective"] == "ar" else 0.0
    drift = -0.01 if config["tune"]["objective"] == "robopt" else 0.0
    base = {
        "natural_accuracy": 0.8 + beta / 100 + seed / 1000,
        "adversarial_accuracy": 0.5 + beta / 100 + jitter + seed / 1000,
    }

    def metrics(epoch: int) -> dict:
        logged = {f"{label}/{k}": v for label in ("train", "test") for k, v in base.items()}
        logged["pretrain_train/adversarial_accuracy"] = 0.5 + drift * epoch - seed / 1000
        logged |= {f"tune_{k}": v for k, v in logged.items() if k.startswith(("train", "test"))}
        return logged

    return metrics


@pytest.fixture(scope="module")
def replication(tmp_path_factory, fabricate):
    """A directory of the digits experiment files, rooted in a temporary directory, every run
    finished but seed 2 of TRADES at lambda 5."""
    tmp_path = tmp_path_factory.mktemp("replication")
    configs = tmp_path / "configs"
    configs.mkdir()
    for name in DIGITS:
        chapter = "chapter4" if name.startswith("table_4") else "chapter5"
        root = str(tmp_path / chapter)
        (configs / f"{name}.py").write_text(textwrap.dedent(WRAPPER.format(name=name, root=root)))
        experiment = grid.load_experiment(configs / f"{name}.py")
        for run in grid.expand(experiment, root).runs:
            if run.name != "trades5-seed2" and not (Path(root) / run.name).exists():
                fabricate(Path(root), run, designed_metrics(run))
    return configs


def findings(configs: Path) -> dict[str, claims.Finding]:
    sources = claims.load_sources(configs)
    assert sources.seeds == 3
    return {claim.statement: claims.evaluate(claim, sources) for claim in claims.CLAIMS}


def test_verdicts_are_computed_from_the_seeds(replication):
    found = findings(replication)
    rises = found["TRADES: adversarial test accuracy rises with λ"]
    assert rises.verdict == "reproduced" and rises.ours.mean == pytest.approx(1.0)
    assert rises.ours.n == 2  # seed 2 lacks lambda 5: counted out, not averaged in
    assert found["TRADES: natural test accuracy falls as λ rises"].verdict == "contradicted"
    versus = found["AR beats TRADES on adversarial test accuracy at equal λ"]
    assert versus.verdict == "inconclusive" and versus.ours.n == 2
    assert versus.sides[0].n == versus.sides[1].n == 2  # the same seeds on both sides
    keeps = found[
        "TRADES tuning keeps the pretrained robustness, robust-optimization tuning loses it"
    ]
    assert keeps.verdict == "reproduced" and keeps.ours.n == 3
    assert keeps.thesis is None  # the thesis shows it only as a figure
    assert found["The full pretraining set beats the subset: adversarial test accuracy"].ours.n == 3
    flat = found["A larger tuning λ raises adversarial test accuracy"]  # equal at every tuning λ
    assert flat.ours.mean == 0.0 and flat.verdict == "inconclusive"


def test_the_thesis_value_is_the_same_statistic_on_its_tables():
    rises = claims.trend("4.1", claims.LAMBDA_ROWS, "Adv. Test")
    published = {row: thesis.published("4.1")[(row, "Adv. Test")] for row in claims.LAMBDA_ROWS}
    expected = statistics.spearman([float(r) for r in published], list(published.values()))
    assert rises(lambda t, r, c: thesis.published(t).get((r, c))) == pytest.approx(expected)


def test_a_comparison_across_chapters_on_different_data_is_not_testable(replication):
    alone = findings(replication)[ALONE_ADVERSARIAL]
    assert alone.verdict.startswith("not testable at this scale: Table 4.1's runs train on ")
    assert "digits:train" in alone.verdict and "digits:tune" in alone.verdict


def with_tune_alone(replication: Path, tmp_path: Path, fabricate, accuracy: float | None) -> Path:
    """The replication's experiment files and configs/digits/tune_alone.py, its runs (rooted in
    tmp_path) finished at `accuracy` + seed / 1000, natural and adversarial (None: not run)."""
    configs = tmp_path / "configs"
    configs.mkdir()
    for path in replication.glob("*.py"):
        (configs / path.name).write_text(path.read_text())
    root = tmp_path / "tune_alone"
    wrapper = WRAPPER.format(name="tune_alone", root=str(root))
    (configs / "tune_alone.py").write_text(textwrap.dedent(wrapper))
    runs = grid.expand(grid.load_experiment(configs / "tune_alone.py"), root).runs
    for run in runs if accuracy is not None else []:
        value = accuracy + run.config["seed"] / 1000
        kinds = ("natural", "adversarial")
        metrics = {f"{label}/{k}_accuracy": value for label in ("train", "test") for k in kinds}
        fabricate(root, run, lambda epoch, metrics=metrics: metrics)
    return configs


@pytest.mark.parametrize(("accuracy", "verdict"), [(0.3, "reproduced"), (0.95, "contradicted")])
def test_the_tuned_runs_are_compared_with_runs_trained_on_the_tune_data_alone(
    replication, tmp_path, fabricate, accuracy, verdict
):
    found = findings(with_tune_alone(replication, tmp_path, fabricate, accuracy))
    for statement in (ALONE_ADVERSARIAL, ALONE_NATURAL):
        alone = found[statement]
        assert alone.verdict == verdict and alone.ours.n == 3
        assert alone.sides[1].mean == pytest.approx(accuracy + 0.001)  # seeds 0, 1, 2
        assert alone.ours.mean == pytest.approx(alone.sides[0].mean - accuracy - 0.001)
        assert alone.note == "Table 4.1 is our Table T.1, on digits:tune (test digits:test)"
    trend = found["TRADES: adversarial test accuracy rises with λ"]  # still chapter 4's runs
    assert trend.ours.n == 2 and trend.ours.mean == pytest.approx(1.0)


def test_tune_alone_runs_not_yet_trained_are_not_run(replication, tmp_path, fabricate):
    alone = findings(with_tune_alone(replication, tmp_path, fabricate, None))[ALONE_ADVERSARIAL]
    assert alone.verdict == "not run" and alone.ours.n == 0


def _sources(trained: dict[str, str]) -> claims.Sources:
    """Tables whose runs train on `trained`'s data (table -> dataset:split), Table 5.4's tune
    on cifar10:train; T.1 stands for Table 4.1."""

    def config(phase: str, data: str) -> dict:
        dataset, split = data.split(":")
        return {phase: {"dataset": dataset, "split": split}, "eval": {"test_split": "test"}}

    configs = {number: config("pretrain", data) for number, data in trained.items()}
    configs["5.4"] = config("tune", "cifar10:train")
    tables = {
        n: report.Table(n, "λ", {}, [], [], 3, stands_for="4.1" if n == "T.1" else "")
        for n in configs
    }
    return claims.Sources(tables, configs, 3)


def test_the_alone_trained_table_is_the_one_on_the_tune_data():
    claim = next(c for c in claims.CLAIMS if c.statement == ALONE_ADVERSARIAL)

    def alone(trained: dict[str, str]) -> claims.AloneTable:
        return claims.alone_table(claim, _sources(trained))

    # Thesis scale: Table 4.1 trains on the tune data, and is read even beside a stand-in.
    assert alone({"4.1": "cifar10:train"}) == claims.AloneTable("4.1")
    both = {"4.1": "cifar10:train", "T.1": "cifar10:train"}
    assert alone(both) == claims.AloneTable("4.1")
    stand_in = alone({"4.1": "digits:train", "T.1": "cifar10:train"})
    assert stand_in.number == "T.1" and not stand_in.reason
    stands_for = _sources({"T.1": "digits:tune"}).tables["T.1"]
    assert stands_for.published() == thesis.published("4.1")  # its reference numbers
    assert alone({"4.1": "digits:train", "T.1": "digits:pretrain"}).reason == (
        "not testable at this scale: Table 4.1's runs train on digits:train (test digits:test), "
        "Table T.1's runs train on digits:pretrain (test digits:test), Table 5.4's tune on "
        "cifar10:train (test cifar10:test), so no run trains on the tune data alone"
    )
    on_other_test_data = _sources({"4.1": "digits:train", "T.1": "cifar10:train"})
    on_other_test_data.configs["T.1"]["eval"]["test_split"] = "valid"
    assert claims.alone_table(claim, on_other_test_data).reason.startswith("not testable")


def test_the_experiment_files_read_table_4_1_at_thesis_scale_and_t_1_on_digits():
    claim = next(c for c in claims.CLAIMS if c.statement == ALONE_ADVERSARIAL)
    thesis_scale = claims.alone_table(claim, claims.load_sources(ROOT / "configs" / "thesis"))
    assert thesis_scale == claims.AloneTable("4.1")  # CIFAR-10 train: the tune data itself
    digits = claims.alone_table(claim, claims.load_sources(ROOT / "configs" / "digits"))
    assert digits == claims.AloneTable(
        "T.1", note="Table 4.1 is our Table T.1, on digits:tune (test digits:test)"
    )


def test_the_report_tool_writes_the_claims_table(replication, tmp_path):
    out = tmp_path / "out"
    result = run_tool_in_process("report", f"--claims={replication}", f"--out={out}")
    assert result.returncode == 0, result.stderr
    markdown = (out / "claims.md").read_text()
    assert "| Claim | Statistic | Thesis | Ours | Verdict |" in markdown
    line = next(row for row in markdown.splitlines() if "rises with λ" in row)
    assert "(n=2 of 3 seeds †)" in line and line.endswith("**reproduced** |")
    with (out / "claims.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(claims.CLAIMS)
    assert {row["verdict"] for row in rows} >= {"reproduced", "contradicted", "inconclusive"}


def test_claims_need_an_output_directory(tmp_path):
    result = run_tool_in_process("report", f"--claims={tmp_path}")
    assert_one_line_error(result, "--claims reads each file's own root: pass --out and no --root.")
    assert not any(tmp_path.iterdir())
