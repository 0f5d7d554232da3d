"""The recipe's config fields (awp_gamma, ema_decay, hold_out) in the training pipeline: off by
default and then training exactly as without them; on, through pretrain -> tune with a cosine
schedule, exporting the last, averaged and best models, and resumed exactly."""

import json
import shutil
from pathlib import Path

import keras
import ml_collections
import numpy as np
import pytest
import tensorflow as tf
from support import TINY_PRETRAINING, assert_some_pair_identical

from configs import digits_demo
from tf_advreg import data, export, models
from tf_advreg.attacks import AttackSettings
from tf_advreg.experiments import grid
from tf_advreg.objectives import objective_class
from tf_advreg.training import (
    best_checkpoint,
    callbacks,
    checkpoints,
    ema,
    legacy,
    phases,
    run_config,
    schema,
)

RECIPE = {"awp_gamma": 5e-3, "awp_warmup_epochs": 1, "ema_decay": 0.9, "hold_out": 100}


def _config(overrides: dict):
    config = digits_demo.get_config()
    legacy.override(config, TINY_PRETRAINING | overrides)
    run_config.validate(config)
    return config


def _train(config, workdir) -> None:
    keras.utils.set_random_seed(config.seed)  # as tools.train does
    for phase in phases.phases_from_config(config):
        phases.run_phase(config, phase, workdir, tf.distribute.get_strategy())


def _weights(network) -> list[np.ndarray]:
    return [w.numpy() for w in network.weights]


@pytest.mark.parametrize(
    "ema_decay",
    [0.0, pytest.param(0.9, marks=pytest.mark.slow)],  # 0.9: averaging only reads the weights
)
def test_the_defaults_train_exactly_as_the_objective_alone(tmp_path, ema_decay):
    """With every recipe field at its default the phase trains the bare objective, fit on the
    same batches: bit-identical weights, and nothing exported or logged beside the usual. Weight
    averaging leaves the trained weights as they are, adding only its own outputs."""
    config = _config({"pretrain.ema_decay": ema_decay})
    _train(config, tmp_path)

    keras.utils.set_random_seed(config.seed)
    settings = config.pretrain
    args = phases.network_args(config, data.info(settings.dataset))
    model = objective_class(settings.objective)(
        models.build(**args),
        attack=AttackSettings(**schema.phase_attack(config, "pretrain")),
        beta=settings.beta,
        weight_decay=config.weight_decay,
        seed=config.seed,
    )
    steps = settings.subset // config.batch_size
    rate = phases.learning_rate_schedule(config.lr_schedule, settings.lr, settings.epochs * steps)
    model.compile(optimizer=keras.optimizers.SGD(rate, momentum=config.momentum), jit_compile=False)
    train = data.load(
        settings.dataset, settings.split, batch_size=config.batch_size, training=True,
        subset=settings.subset, seed=config.seed, num_epochs=settings.epochs,
    )  # fmt: skip
    model.fit(train, epochs=settings.epochs, steps_per_epoch=steps, shuffle=False, verbose=0)

    phase_dir = tmp_path / "pretrain"
    trained = checkpoints.build_network(checkpoints.checkpoint_dir(phase_dir, settings.epochs))
    for a, b in zip(_weights(trained), _weights(model.network)):
        np.testing.assert_array_equal(a, b)
    exported = sorted(p.name for p in phase_dir.iterdir() if p.name.startswith("saved_model"))
    assert exported == ["saved_model"] + ([ema.SAVED_MODEL] if ema_decay else [])
    assert not best_checkpoint.best_dir(phase_dir).exists()
    for record in callbacks.read_metrics(phase_dir / "metrics.jsonl"):
        assert not [k for k in record if k.startswith("heldout/")]
        assert bool([k for k in record if k.startswith("ema_")]) == bool(ema_decay)


def _outputs(path, images) -> np.ndarray:
    return np.asarray(export.SavedModelClassifier(path)(images))


@pytest.mark.slow
def test_all_three_through_pretrain_and_tune_with_a_cosine_schedule_and_a_resume(tmp_path, capsys):
    phase_fields = {f"{p}.{k}": v for p in schema.PHASES for k, v in RECIPE.items()}
    config = _config(
        phase_fields
        | {
            "tune.dataset": "digits",
            "tune.epochs": 2,
            "lr_schedule": "cosine",
            "pretrain.lr_warmup_epochs": 1,
            "eval.every": 0,  # the final epoch only; the held-out split still every epoch
            "tune.best_metric": "ema_heldout/adversarial_accuracy",  # the best average
        }
    )
    whole = tmp_path / "whole"
    _train(config, whole)

    out = capsys.readouterr().out
    assert "AWP 0.005 from epoch 2, EMA 0.9, best of 100 held out" in out
    # The tuning trains on its split less the held-out examples: (300 - 100) // 100 steps.
    assert "on digits:tune, epochs 1..2, 2 steps each" in out
    images = next(iter(data.load("digits", "test", batch_size=8, training=False)))[0]
    for phase in schema.PHASES:
        phase_dir = whole / phase
        records = callbacks.read_metrics(phase_dir / "metrics.jsonl")
        assert [r["heldout/num_examples"] for r in records] == [100, 100]
        assert ["ema_heldout/adversarial_accuracy" in r for r in records] == [True, True]
        assert ["test/adversarial_accuracy" in r for r in records] == [False, True]
        assert "ema_test/adversarial_accuracy" in records[-1]
        metric = config[phase].best_metric
        held = [r[metric] for r in records]
        best = checkpoints.read_state(best_checkpoint.best_dir(phase_dir))
        assert best["epoch"] == int(np.argmax(held)) + 1
        last = checkpoints.checkpoint_dir(phase_dir, 2)
        best_model = checkpoints.build_network(
            best_checkpoint.best_dir(phase_dir), averaged=best_checkpoint.of_average(metric)
        )
        for name, network in (
            ("saved_model", checkpoints.build_network(last)),
            (ema.SAVED_MODEL, checkpoints.build_network(last, averaged=True)),
            (best_checkpoint.SAVED_MODEL, best_model),
        ):
            np.testing.assert_allclose(
                _outputs(phase_dir / name, images), network(images), rtol=1e-5, atol=1e-4
            )
    assert json.loads((whole / "tune" / "config.json").read_text())["phase"]["hold_out"] == 100
    _assert_a_resumed_tuning_ends_where_the_whole_one_did(config, whole, tmp_path, capsys)


def _assert_a_resumed_tuning_ends_where_the_whole_one_did(config, whole, tmp_path, capsys):
    """A run killed after the tuning's first epoch, then re-run: the weights, optimizer, weight
    average and best epoch of the uninterrupted run."""

    def tuned(run: Path, keep_epochs: int) -> Path:
        """A copy of the whole run whose tuning is cut back to its first `keep_epochs` epochs, as
        a kill leaves it, then trained again to its end."""
        shutil.copytree(whole, run)
        tune = run / "tune"
        if keep_epochs == 0:
            shutil.rmtree(tune)
        else:
            for epoch in range(keep_epochs + 1, config.tune.epochs + 1):
                shutil.rmtree(checkpoints.checkpoint_dir(tune, epoch))
            for exported in tune.glob("saved_model*"):
                shutil.rmtree(exported)
            best = best_checkpoint.best_dir(tune)
            if checkpoints.read_state(best)["epoch"] > keep_epochs:
                shutil.rmtree(best)  # written after that epoch's checkpoint
        keras.utils.set_random_seed(config.seed)
        phases.run_phase(
            config, phases.phases_from_config(config)[1], run, tf.distribute.get_strategy()
        )
        assert f"epochs {keep_epochs + 1}..2" in capsys.readouterr().out
        return run

    def resumed(index: int) -> Path:
        return tuned(tmp_path / f"resumed{index}", keep_epochs=1)

    def uninterrupted(index: int) -> Path:  # the first is the whole run itself
        return tuned(tmp_path / f"whole{index}", keep_epochs=0) if index else whole

    def final_state(run: Path) -> list[np.ndarray]:
        last = checkpoints.checkpoint_dir(run / "tune", 2)
        optimizer = np.load(last / "optimizer.npz")
        return [
            *_weights(checkpoints.build_network(last)),
            *_weights(checkpoints.build_network(last, averaged=True)),
            *(optimizer[key] for key in sorted(optimizer.files)),
        ]

    pair = assert_some_pair_identical(resumed, uninterrupted, final_state)
    states = [checkpoints.read_state(best_checkpoint.best_dir(d / "tune")) for d in pair]
    for state in states:
        del state["metrics"]["examples_per_second"]  # the one timing
    assert states[0] == states[1]
    logged = [callbacks.read_metrics(d / "tune" / "metrics.jsonl") for d in pair]
    for key in ("heldout/adversarial_accuracy", "ema_heldout/adversarial_accuracy"):
        assert [r[key] for r in logged[0]] == [r[key] for r in logged[1]]


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"tune.ema_decay": 1.0}, "tune.ema_decay must be in [0, 1)"),
        ({"pretrain.awp_gamma": -0.1}, "pretrain.awp_gamma must be >= 0"),
        ({"pretrain.hold_out": 997}, "pretrain.hold_out 997 leaves none of the 997 examples"),
        ({"pretrain.best_metric": "heldout/loss"}, "Unknown pretrain.best_metric 'heldout/loss'"),
        (
            {"pretrain.best_metric": "ema_heldout/adversarial_accuracy"},
            "rates the weight average; set pretrain.ema_decay > 0",
        ),
        (
            {"pretrain.hold_out": 900},
            "pretrain.subset 200 exceeds the 97 examples of digits:pretrain left after "
            "hold_out=900",
        ),
    ],
)
def test_bad_recipe_settings_are_one_sentence(overrides, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace(")", r"\)")):
        _config(overrides)


def test_the_recipe_experiments_are_valid_configs(tmp_path):
    """Every run of configs/{digits,thesis}/recipe.py passes tools.train's checks; the digits
    grid measures each ingredient alone and all together on three objectives, 3 seeds each."""
    root = Path(__file__).resolve().parents[2] / "configs"
    for scale in ("digits", "thesis"):
        expanded = grid.expand(grid.load_experiment(root / scale / "recipe.py"), tmp_path)
        for run in expanded.runs:
            run_config.validate(ml_collections.ConfigDict(run.config))
    assert expanded.seeds == 1 and len(expanded.entries) == 2  # thesis: recipe, plain TRADES
    digits = grid.expand(grid.load_experiment(root / "digits" / "recipe.py"), tmp_path)
    assert digits.seeds >= 3 and len(digits.runs) == 15 * digits.seeds
    objectives = {cell.config["pretrain"]["objective"] for cell in digits.entries}
    assert objectives == {"robopt", "trades", "ar"}
