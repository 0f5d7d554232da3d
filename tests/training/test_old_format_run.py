"""A run written before the config was nested (flat config.json, network.json without a model
name; tests/training/old_format_run, made by that release) still resumes, reports and
evaluates, and a sweep counts it as the same run as the nested config that describes it."""

import shutil
from pathlib import Path

import numpy as np
import pytest
from support import run_tool, run_tool_in_process

from configs import digits_demo
from tf_advreg.experiments import grid, results, sweep
from tf_advreg.training import checkpoints, legacy, run_config

FIXTURE = Path(__file__).parent / "old_format_run" / "robopt-seed0"
# The flags that made the fixture (on top of the digits demo).
FLAGS = {
    "width": 2,
    "batch_size": 100,
    "pretrain_epochs": 1,
    "tune_dataset": "",
    "pretrain_split": "train",
    "pretrain_objective": "robopt",
    "pretrain_beta": 0.0,
    "attack_steps": 1,
    "eval_attack_steps": 1,
    "train_eval_subset": 100,
    "test_eval_subset": 100,
    "jit_compile": "false",
    "keep_checkpoints": 1,
}


def _config(**changes):
    config = digits_demo.get_config()
    legacy.override(config, FLAGS | changes)
    return config


def _copy(tmp_path) -> Path:
    """The fixture as the finished run it was: its SavedModel present (not committed)."""
    workdir = tmp_path / FIXTURE.name
    shutil.copytree(FIXTURE, workdir)
    (workdir / "pretrain" / "saved_model").mkdir()
    (workdir / "pretrain" / "saved_model" / "saved_model.pb").write_bytes(b"pb")
    return workdir


def test_the_fixture_is_flat_and_a_run():
    saved = run_config.saved_config(FIXTURE)
    assert legacy.is_flat(saved) and "pretrain_objective" in saved
    assert run_config.is_run_dir(FIXTURE)


def test_its_nested_config_is_the_same_run_and_another_is_not():
    saved = run_config.saved_config(FIXTURE)
    assert run_config.config_differences(saved, _config().to_dict()) == []
    assert run_config.config_differences(saved, _config(pretrain_epochs=5).to_dict()) == []
    assert run_config.config_differences(saved, _config(eps=0.2).to_dict()) == [
        "attack.eps: 0.1 -> 0.2"
    ]


def test_a_sweep_skips_it_as_finished_and_reports_its_logged_metrics(tmp_path):
    workdir = _copy(tmp_path)
    config = _config().to_dict()
    run = grid.Run(grid.run_name(config), {}, config)
    assert run.name == FIXTURE.name
    assert sweep.status(run, tmp_path) is sweep.Status.FINISHED
    other = _config(pretrain_lr=0.2).to_dict()
    assert sweep.status(grid.Run(run.name, {}, other), tmp_path) is sweep.Status.CONFLICT
    logged = checkpoints.read_state(checkpoints.list_checkpoints(workdir / "pretrain")[-1])
    final = results.final_metrics(workdir, config)
    assert final["test/adversarial_accuracy"] == logged["metrics"]["test/adversarial_accuracy"]
    assert set(final) == set(results.METRICS.values())


def test_its_checkpoint_without_a_model_name_rebuilds_and_evaluates():
    checkpoint = checkpoints.list_checkpoints(FIXTURE / "pretrain")[-1]
    network = checkpoints.build_network(checkpoint)
    assert network.name.startswith("resnet18")
    logits = network(np.zeros((2, 8, 8, 1), "float32"))
    assert logits.shape == (2, 10)


@pytest.mark.slow
def test_it_resumes_for_more_epochs_and_is_evaluated_by_the_tools(tmp_path):
    workdir = tmp_path / FIXTURE.name
    shutil.copytree(FIXTURE, workdir)
    flags = [f"--{name}={value}" for name, value in FLAGS.items() if name != "pretrain_epochs"]
    trained = run_tool("train", *flags, "--pretrain_epochs=2", f"--workdir={workdir}")
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert "epochs 2..2" in trained.stdout  # resumed, not restarted
    evaluated = run_tool_in_process(
        "evaluate",
        f"--model={workdir}",
        "--dataset=digits",
        "--attack=pgd",
        "--eps=0.1",
        "--steps=1",
        "--subset=50",
        "--jit_compile=false",
        f"--output={tmp_path / 'evaluation.json'}",
    )
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
