"""Weight averaging: the average against a float64 reference, exact resume from a checkpoint,
the averaged network's export, and two replicas averaging as one device does."""

import shutil

import keras
import numpy as np
import pytest
import tensorflow as tf
from support import separable_images, two_replicas

from tf_advreg import export, objectives
from tf_advreg.attacks import AttackSettings
from tf_advreg.models import resnet18
from tf_advreg.training import callbacks, checkpoints, ema

ATTACK = AttackSettings(
    eps=0.1, norm="linf", steps=2, step_size=0.05, eval_steps=2, eval_step_size=0.003
)
ARGS = {"num_classes": 4, "width": 2, "input_shape": [8, 8, 1], "mean": [0.5], "std": [0.25]}


def _convnet(seed):
    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [keras.Input((8, 8, 1)), keras.layers.Conv2D(4, 3), keras.layers.BatchNormalization()]
        + [keras.layers.ReLU(), keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(4)]
    )


def _reference_average(snapshots, decay):
    """a_0 = w_0, a_t = d_t a_{t-1} + (1 - d_t) w_t, d_t = min(decay, (1+t)/(10+t)); float64."""
    average = [np.asarray(w, np.float64) for w in snapshots[0]]
    for t, weights in enumerate(snapshots[1:], start=1):
        d = min(decay, (1 + t) / (10 + t))
        average = [d * a + (1 - d) * np.asarray(w, np.float64) for a, w in zip(average, weights)]
    return average


@pytest.mark.parametrize("jit_compile", [False, True])
def test_average_matches_a_float64_reference_batchnorm_statistics_included(jit_compile):
    images, labels = separable_images(48, seed=1)
    model = objectives.RobustOptimization(_convnet(0), ema_decay=0.3, attack=ATTACK)
    model.compile(optimizer=keras.optimizers.SGD(0.2, momentum=0.9), jit_compile=jit_compile)
    snapshots = []
    record = keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda batch, logs: snapshots.append(
            [w.numpy() for w in model.network.weights]
        )
    )
    model.fit(images, labels, batch_size=8, epochs=1, callbacks=[record], verbose=0)
    assert len(snapshots) == 6  # past the warm-up: d_t reaches the decay 0.3 at t = 3
    expected = _reference_average(snapshots, 0.3)
    averaged = model.weight_average.network
    assert any("moving_mean" in w.path for w in averaged.weights)
    for got, want in zip(averaged.weights, expected):
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-5, atol=1e-6)
    assert int(model.weight_average.updates.numpy()) == 6


def _model(seed=0):
    keras.utils.set_random_seed(seed)
    model = objectives.RobustOptimization(resnet18(**ARGS), ema_decay=0.9, attack=ATTACK)
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9), jit_compile=False)
    return model


def _fit(model, epochs, initial_epoch, phase_dir):
    images, labels = separable_images(32, seed=2)
    model.fit(
        images,
        labels,
        batch_size=8,
        epochs=epochs,
        initial_epoch=initial_epoch,
        shuffle=False,
        verbose=0,
        callbacks=[callbacks.EpochCheckpoint(phase_dir, ARGS, keep=0)],
    )


def test_a_resumed_run_continues_the_average_exactly(tmp_path):
    uninterrupted = _model()
    _fit(uninterrupted, 2, 0, tmp_path / "whole")

    # A run killed in its second epoch leaves only its first epoch's checkpoint: this one.
    first = checkpoints.checkpoint_dir(tmp_path / "whole", 1)
    shutil.copytree(first, checkpoints.checkpoint_dir(tmp_path / "resumed", 1))
    resumed = _model(seed=7)  # other initial weights: all of them must come from the checkpoint
    state = checkpoints.restore_latest(
        tmp_path / "resumed", resumed.network, resumed.optimizer, resumed.weight_average
    )
    assert state["epoch"] == 1 and state["ema_updates"] == 4
    _fit(resumed, 2, 1, tmp_path / "resumed")

    for a, b in zip(
        uninterrupted.weight_average.network.weights, resumed.weight_average.network.weights
    ):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert int(resumed.weight_average.updates.numpy()) == 8
    # The average differs from the trained network, and its export serves it.
    live = uninterrupted.network.weights
    assert any(
        not np.allclose(a.numpy(), w.numpy())
        for a, w in zip(uninterrupted.weight_average.network.weights, live)
    )
    checkpoint = checkpoints.checkpoint_dir(tmp_path / "resumed", 2)
    path = export.export_saved_model(
        checkpoints.build_network(checkpoint, averaged=True), tmp_path / ema.SAVED_MODEL
    )
    images, _ = separable_images(4, seed=3)
    np.testing.assert_allclose(
        export.SavedModelClassifier(path)(images),
        uninterrupted.weight_average.network(images, training=False),
        rtol=1e-5,
        atol=1e-3,  # logits up to ~1e3 this early: float32 rounding of a differently fused graph
    )


def test_averaging_turned_on_at_a_resume_starts_from_the_restored_weights(tmp_path, caplog):
    plain = objectives.RobustOptimization(resnet18(**ARGS), attack=ATTACK)
    plain.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9), jit_compile=False)
    _fit(plain, 1, 0, tmp_path)
    model = _model()
    with caplog.at_level("WARNING"):
        state = checkpoints.restore_latest(
            tmp_path, model.network, model.optimizer, model.weight_average
        )
    assert state["epoch"] == 1
    assert "holds no weight average; the average starts afresh" in caplog.text
    for a, b in zip(plain.network.weights, model.network.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    _fit(model, 2, 1, tmp_path)
    assert int(model.weight_average.updates.numpy()) == 4  # one epoch of averaging
    with pytest.raises(ValueError, match="trained without weight averaging"):
        checkpoints.build_network(checkpoints.checkpoint_dir(tmp_path, 1), averaged=True)


def test_mirrored_average_matches_single_device():
    images, labels = separable_images(16, seed=4)
    dataset = tf.data.Dataset.from_tensor_slices((images, labels)).batch(16)

    def train(strategy):
        with strategy.scope():
            keras.utils.set_random_seed(5)
            network = keras.Sequential(
                [keras.Input((8, 8, 1)), keras.layers.Conv2D(4, 3), keras.layers.ReLU()]
                + [keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(4)]
            )
            model = objectives.RobustOptimization(
                network, ema_decay=0.5, random_start=False, attack=ATTACK
            )
            model.compile(optimizer=keras.optimizers.SGD(0.5), jit_compile=False)
        model.fit(dataset, epochs=3, verbose=0, shuffle=False)
        return [w.numpy() for w in model.weight_average.network.weights]

    mirrored = train(two_replicas())
    single = train(tf.distribute.get_strategy())
    for m, s in zip(mirrored, single):
        np.testing.assert_allclose(m, s, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("decay", [-0.1, 1.0, 1.5])
def test_a_decay_outside_0_1_is_rejected(decay):
    with pytest.raises(ValueError, match=r"decay must be in \(0, 1\)"):
        objectives.RobustOptimization(_convnet(0), ema_decay=decay, attack=ATTACK)


def test_the_average_is_evaluated_each_epoch_with_the_models_attacks():
    images, labels = separable_images(32, seed=6)
    test_set = tf.data.Dataset.from_tensor_slices((images, labels)).batch(16)
    model = objectives.Trades(_convnet(1), beta=1.0, ema_decay=0.5, attack=ATTACK)
    model.compile(optimizer=keras.optimizers.SGD(0.2, momentum=0.9), jit_compile=False)
    evaluation = callbacks.AveragedEvaluation({"test": callbacks.EvalSet(test_set, 32)}, 1, 2)
    history = model.fit(
        images, labels, batch_size=16, epochs=2, callbacks=[evaluation], verbose=0
    ).history
    assert history["ema_test/num_examples"] == [32, 32]
    predicted = np.argmax(model.weight_average.network(images, training=False), axis=1)
    assert history["ema_test/natural_accuracy"][-1] == pytest.approx(np.mean(predicted == labels))
    assert history["ema_test/adversarial_accuracy"][-1] <= history["ema_test/natural_accuracy"][-1]
    twin = evaluation.evaluated_model()
    assert (
        type(twin) is objectives.Trades and twin.beta == 1.0 and twin.network is not model.network
    )
    assert twin.weight_average is None and twin.awp_gamma is None
