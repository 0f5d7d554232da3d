"""Thesis tables and figures from fabricated workdirs; the published numbers they sit beside."""

import csv
import itertools
import json
from pathlib import Path

import pytest

from tf_advreg.experiments import grid, report, results, thesis

ROOT = Path(__file__).resolve().parents[2]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def load(path: str):
    return grid.load_experiment(ROOT / "configs" / path)


def fake_metrics(run: grid.Run):
    """Distinct, recognisable numbers per run and epoch: 0.9 - lambda/100 etc."""
    offset = report.regularization(run.config) / 100 + run.config["tune_beta"] / 1000

    def metrics(epoch: int) -> dict:
        return {
            "train/natural_accuracy": 0.9 - offset,
            "test/natural_accuracy": 0.8 - offset,
            "train/adversarial_accuracy": 0.7 - offset,
            "test/adversarial_accuracy": 0.5 - offset + epoch / 1000,
            "pretrain_train/natural_accuracy": 0.6 + epoch / 100,
            "pretrain_train/adversarial_accuracy": 0.4 - epoch / 100,
        }

    return metrics


def finish_all(experiment, root: Path, fabricate, skip: tuple[str, ...] = ()) -> grid.Sweep:
    expanded = grid.expand(experiment, root)
    for run in expanded.runs:
        if run.name not in skip:
            fabricate(root, run, fake_metrics(run))
    return expanded


def test_table_4_1_has_ours_the_thesis_and_the_difference_per_lambda(tmp_path, fabricate):
    experiment = load("thesis/table_4_1.py")
    finish_all(experiment, tmp_path, fabricate, skip=("trades5",))
    paths = report.write_report(experiment, tmp_path, tmp_path / "out")
    assert sorted(p.name for p in paths) == ["table_4_1.csv", "table_4_1.md"]
    markdown = (tmp_path / "out" / "table_4_1.md").read_text()
    assert "# Table 4.1: Evaluation of TRADES" in markdown
    assert "| λ | Nat. Train | Nat. Test | Adv. Train | Adv. Test |" in markdown
    # lambda 0.4: ours 0.9 - 0.004 beside the thesis's 0.9977.
    assert "| 0.4 | 0.8960 / 0.9977 (-0.1017) | 0.7960 / 0.8799 (-0.0839) |" in markdown
    assert "| 0.0 | 0.9000 / 0.9577 (-0.0577) |" in markdown  # robust optimization
    assert "| 5.0 | — / 0.9367 | — / 0.8161 |" in markdown  # no finished run
    with (tmp_path / "out" / "table_4_1.csv").open() as f:
        rows = list(csv.reader(f))
    assert rows[0][:5] == ["λ", "Nat. Train", "Nat. Test", "Adv. Train", "Adv. Test"]
    assert rows[0][5] == "thesis Nat. Train"
    assert [row[0] for row in rows[1:]] == [
        "0.0",
        "0.1",
        "0.2",
        "0.4",
        "0.8",
        "1.0",
        "2.0",
        "3.0",
        "5.0",
    ]
    assert float(rows[4][1]) == pytest.approx(0.896) and rows[4][5] == "0.9977"
    assert rows[9][1] == "" and rows[9][8] == "0.5267"


def test_an_evaluation_json_in_the_workdir_replaces_the_logged_metrics(tmp_path, fabricate):
    experiment = load("thesis/table_4_2.py")
    finish_all(experiment, tmp_path, fabricate)
    evaluation = {
        "evaluations": [
            {
                "data": {"split": split},
                "results": [
                    {"attack": "natural", "accuracy": natural},
                    {"attack": "pgd", "accuracy": adversarial},
                ],
            }
            for split, natural, adversarial in (("train", 0.97, 0.77), ("test", 0.85, 0.55))
        ]
    }
    (tmp_path / "ar5" / results.EVALUATION_FILE).write_text(json.dumps(evaluation))
    report.write_report(experiment, tmp_path, tmp_path / "out")
    markdown = (tmp_path / "out" / "table_4_2.md").read_text()
    assert (
        "| 5.0 | 0.9700 / 0.8646 (+0.1054) | 0.8500 / 0.7652 (+0.0848) | 0.7700 / 0.6822"
        in markdown
    )


def test_tables_5_1_to_5_4_are_tuning_by_pretraining_grids(tmp_path, fabricate):
    experiment = load("thesis/tables_5_1_to_5_4.py")
    finish_all(experiment, tmp_path, fabricate)
    paths = report.write_report(experiment, tmp_path, tmp_path / "out")
    assert sorted(p.name for p in paths) == sorted(
        f"table_5_{n}.{ext}" for n in range(1, 5) for ext in ("md", "csv")
    )
    markdown = (tmp_path / "out" / "table_5_4.md").read_text()
    assert (
        "| Tune/Pretrain | Rob Opt | TRADES 0.1 | TRADES 0.5 | TRADES 1.0 | TRADES 3.0 |"
        in markdown
    )
    # TRADES 3 -> TRADES 5, the thesis's best: 0.5 - 0.03 - 0.005 + 100/1000 at tuning epoch 100.
    assert markdown.splitlines()[-1].endswith("| 0.5650 / 0.5575 (+0.0075) |")
    none_row = next(line for line in markdown.splitlines() if line.startswith("| None |"))
    assert none_row.startswith("| None | 0.6000 / 0.5379 (+0.0621) |")  # the pretraining alone


def test_table_5_5_at_digits_scale_shows_the_thesis_as_a_reference_only(tmp_path, fabricate):
    experiment = load("digits/table_5_5.py")
    finish_all(experiment, tmp_path, fabricate)
    report.write_report(experiment, tmp_path, tmp_path / "out")
    markdown = (tmp_path / "out" / "table_5_5.md").read_text()
    assert "CIFAR-10 value (a reference: other data)" in markdown
    assert "| Model / Metric | Full Dataset | Sample |" in markdown
    assert "| Adv. Reg. / Adversarial Testing | 0.4890 / 0.5734 | 0.4890 / 0.5220 |" in markdown


def test_every_thesis_table_cell_has_a_run_in_its_experiment(tmp_path):
    """Our grids produce exactly the thesis's rows and columns, so every cell is compared."""
    tables = [
        report.lambda_table("4.1", grid.expand(load("thesis/table_4_1.py"), tmp_path), tmp_path),
        report.lambda_table("4.2", grid.expand(load("thesis/table_4_2.py"), tmp_path), tmp_path),
        *report.pretrain_tune_tables(
            grid.expand(load("thesis/tables_5_1_to_5_4.py"), tmp_path), tmp_path
        ),
        report.subset_table(grid.expand(load("thesis/table_5_5.py"), tmp_path), tmp_path),
    ]
    for table in tables:
        assert set(itertools.product(table.rows, table.columns)) == set(
            thesis.published(table.number)
        ), table.number


def test_the_published_numbers_include_the_thesis_headlines():
    assert thesis.published("4.1")[("0.0", "Adv. Test")] == 0.4803
    assert thesis.published("4.1")[("5.0", "Adv. Test")] == 0.5267
    assert thesis.published("4.2")[("5.0", "Adv. Test")] == 0.5390
    assert thesis.published("5.4")[("TRADES 5.0", "TRADES 3.0")] == 0.5575
    assert thesis.published("5.5")[("TRADES / Adversarial Testing", "Full Dataset")] == 0.5575
    assert sum(len(thesis.published(t)) for t in thesis.CAPTIONS) == 2 * 36 + 4 * 35 + 24


@pytest.mark.parametrize("scale", ["thesis", "digits"])
def test_figures_are_non_empty_pngs(scale, tmp_path, fabricate):
    paths = []
    for name in ("figures_4_1_to_4_4.py", "figures_5_1_to_5_4.py"):
        experiment = load(f"{scale}/{name}")
        root = tmp_path / name
        finish_all(experiment, root, fabricate, skip=("ar1__ar5",))  # a line may be missing
        paths += report.write_report(experiment, root, tmp_path / "out")
    assert sorted(p.name for p in paths) == [
        f"fig_{c}_{n}.png" for c in (4, 5) for n in range(1, 5)
    ]
    for path in paths:
        assert path.read_bytes()[:8] == PNG_MAGIC and path.stat().st_size > 10_000
