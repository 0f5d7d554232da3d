"""Which final model a report reads (last, best held-out epoch, weight average), said in the
legend; and the recipe's table, which sets them side by side and against the plain objective."""

import json
from pathlib import Path

import pytest
from support import run_tool

from tf_advreg.experiments import grid, report, results

ROOT = Path(__file__).resolve().parents[2]
TEST = {"test/natural_accuracy": 0.8, "test/adversarial_accuracy": 0.5}


def _finish(experiment, root: Path, fabricate) -> grid.Sweep:
    """Every run finished: its last record logs the last model's test numbers and, with
    weight averaging, the average's (+0.01); with a held-out split, best/ holds epoch 1's
    record (+0.02)."""
    expanded = grid.expand(experiment, root)
    for run in expanded.runs:
        phase = run.config["pretrain"]
        ema = {f"ema_{k}": v + 0.01 for k, v in TEST.items()} if phase["ema_decay"] else {}
        workdir = fabricate(root, run, lambda epoch, ema=ema: TEST | ema)
        if phase["hold_out"]:
            best = workdir / "pretrain" / "best"
            best.mkdir()
            metrics = {k: v + 0.02 for k, v in TEST.items()}
            (best / "state.json").write_text(json.dumps({"epoch": 1, "metrics": metrics}))
    return expanded


def test_each_choice_reads_its_model_and_the_legend_names_it(tmp_path, fabricate):
    experiment = grid.load_experiment(ROOT / "configs" / "digits" / "recipe.py")
    sweep_ = _finish(experiment, tmp_path, fabricate)
    all_three = next(c for c in sweep_.entries if c.config["pretrain"]["hold_out"] and
                     c.config["pretrain"]["ema_decay"]).runs[0]  # fmt: skip
    workdir = tmp_path / all_three.name
    read = {m: results.final_metrics(workdir, all_three.config, m) for m in results.MODEL_CHOICES}
    assert read["last"]["test/adversarial_accuracy"] == pytest.approx(0.5)
    assert read["ema"]["test/adversarial_accuracy"] == pytest.approx(0.51)
    assert read["best"]["test/adversarial_accuracy"] == pytest.approx(0.52)
    plain = next(c for c in sweep_.entries if not c.config["pretrain"]["hold_out"]).runs[0]
    assert results.final_metrics(tmp_path / plain.name, plain.config, "best") == {}
    with pytest.raises(ValueError, match="Unknown model choice 'mean'; choose one of last, best"):
        results.final_metrics(workdir, all_three.config, "mean")

    report.write_report(experiment, tmp_path, tmp_path / "out")
    markdown = (tmp_path / "out" / "table_R_1.md").read_text()
    assert (
        "| Objective + options | Nat. Test (last) | Adv. Test (last) | Nat. Test (best) | "
        "Adv. Test (best) | Nat. Test (ema) | Adv. Test (ema) |"
    ) in markdown
    assert (
        "| TRADES 5.0 + AWP 0.001 + EMA + held-out best | 0.8000 ± 0.0000 (n=3) | 0.5000 ± 0.0000 "
        "(n=3) | 0.8200 ± 0.0000 (n=3) | 0.5200 ± 0.0000 (n=3) | 0.8100 ± 0.0000 (n=3) | "
        "0.5100 ± 0.0000 (n=3) |"
    ) in markdown
    for gamma in ("0.001", "0.01"):  # the digits value and the authors', each its own row
        assert (
            f"| Rob Opt + AWP {gamma} | 0.8000 ± 0.0000 (n=3) | 0.5000 ± 0.0000 (n=3) | — | — "
            "| — | — |"
        ) in markdown
    # Each model against its objective's plain row (no AWP, no held-out split), paired by seed.
    compared = (tmp_path / "out" / "ingredients.md").read_text()
    sections = [line for line in compared.splitlines() if line.startswith("## ")]
    assert sections == [f"## Against {o} + EMA (last)" for o in ("Rob Opt", "TRADES 5.0", "AR 5.0")]
    assert (
        "| TRADES 5.0 + AWP 0.001 + EMA + held-out best (best) | +0.0200 [+0.0200, +0.0200] (n=3) "
        "**better** | +0.0200 [+0.0200, +0.0200] (n=3) **better** |"
    ) in compared


def test_a_thesis_table_of_the_best_epochs_says_so(tmp_path, fabricate):
    experiment = grid.load_experiment(ROOT / "configs" / "digits" / "recipe.py")
    _finish(experiment, tmp_path, fabricate)
    experiment.REPORT = "table_4_1"  # any thesis layout reads one model per run
    report.write_report(experiment, tmp_path, tmp_path / "out", model="best")
    markdown = (tmp_path / "out" / "table_4_1.md").read_text()
    assert "model: the best epoch by held-out robustness (hold_out > 0) (best)" in markdown


def test_tools_report_takes_the_choice_as_a_flag(tmp_path, fabricate):
    experiment = grid.load_experiment(ROOT / "configs" / "digits" / "table_4_1.py")
    for run in grid.expand(experiment, tmp_path).runs:
        fabricate(tmp_path, run, lambda epoch: TEST | {f"ema_{k}": 0.1 for k in TEST})
    config = f"--config={ROOT / 'configs' / 'digits' / 'table_4_1.py'}"
    out = tmp_path / "out"
    result = run_tool("report", config, f"--root={tmp_path}", f"--out={out}", "--model_choice=ema")
    assert result.returncode == 0, result.stderr[-2000:]
    markdown = (out / "table_4_1.md").read_text()
    assert "model: the weight average (ema_decay > 0) (ema)" in markdown
    # The average's test numbers; the train columns have none (no ema_train in the logs).
    assert "| 5.0 | — / 0.9367 | 0.1000 ± 0.0000 (n=3) / 0.8161 | — / 0.7032 |" in markdown
