"""Adding an objective is one class in one file: a throwaway one, defined here alone and listed
in objectives.OBJECTIVES, is validated, trained, reported and benchmarked, with no other
module knowing of it."""

import types

import ml_collections
import pytest
import tensorflow as tf

from configs.digits import base
from tf_advreg import benchmarking, losses, objectives
from tf_advreg.experiments import grid, report, results
from tf_advreg.training import phases, run_config


class LogitSquash(objectives.AdversarialModel):
    """CE on x' plus beta times the mean squared natural logit: a made-up objective."""

    config_name = "squash"
    display_name = "Squash"
    attack_loss = "ce"

    def training_loss(self, logits_nat, logits_adv, labels):
        squash = tf.reduce_mean(tf.square(logits_nat), axis=-1)
        return losses.cross_entropy(logits_adv, labels, reduction="none") + self.beta * squash


@pytest.fixture(autouse=True)
def squash_is_an_objective(monkeypatch):
    monkeypatch.setitem(objectives.OBJECTIVES, "squash", LogitSquash)


def _experiment() -> types.ModuleType:
    """Tables 5.x at toy scale: the new objective pretrained, untuned, on the digits."""
    experiment = types.ModuleType("squash_experiment")

    def get_config() -> ml_collections.ConfigDict:
        config = base.chapter5()
        config.model.width, config.batch_size = 2, 100
        config.pretrain.update(subset=200, epochs=1)
        config.attack.update(steps=1, eval_steps=1)
        config.eval.update(train_subset=100, test_subset=100)
        config.jit_compile = "false"
        return config

    experiment.get_config = get_config
    experiment.get_sweep = lambda: [
        {"pretrain.objective": "squash", "pretrain.beta": 0.5, "tune.epochs": 0}
    ]
    experiment.REPORT = "tables_5"
    return experiment


@pytest.mark.slow
def test_a_new_objective_trains_and_is_reported(tmp_path):
    experiment = _experiment()
    (run,) = grid.expand(experiment, tmp_path).runs
    assert run.name == "squash0.5-sub200-seed0"
    config = ml_collections.ConfigDict(run.config)
    run_config.validate(config)
    workdir = run_config.prepare_workdir(tmp_path / run.name, config, overwrite=False)
    (phase,) = phases.phases_from_config(config)
    phases.run_phase(config, phase, workdir, tf.distribute.get_strategy())
    assert (workdir / "pretrain" / "saved_model" / "saved_model.pb").is_file()
    final = results.final_metrics(workdir, run.config)
    assert set(final) == set(results.METRICS.values())

    report.write_report(experiment, tmp_path, tmp_path / "out")
    table = (tmp_path / "out" / "table_5_4.md").read_text()
    assert "| Tune/Pretrain | Squash 0.5 |" in table
    accuracy = final["test/adversarial_accuracy"]
    assert f"| None (untuned, on digits) | {accuracy:.4f}" in table, table


def test_a_new_objective_is_validated_and_benchmarked():
    config = _experiment().get_config()
    config.pretrain.objective = "squash"
    run_config.validate(config)
    config.pretrain.regularizer = "total_variation"
    with pytest.raises(ValueError, match="applies to trades and ar only"):
        run_config.validate(config)
    benchmarking.check_objective("squash")
    setting = benchmarking.BenchmarkConfig(
        width=2, batch_size=4, image_size=8, channels=1, steps=1, warmup_steps=0, jit=False
    )
    peak = benchmarking.DevicePeak("CPU", "float32", None, 1e9)
    result = benchmarking.benchmark("squash", setting, peak)
    # 10 PGD steps (forward + input gradient), then z(x) and z(x') with their backward.
    assert (result.objective, result.forward_equivalents) == ("squash", 2 * 10 + 3 * 2)
    assert result.examples_per_s > 0
