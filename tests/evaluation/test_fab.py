"""FAB-T: its hyperplane-and-box projections against an LP solver and a bisection, and the
attack against the independent NumPy implementation in reference_attacks.py on a small ReLU
network trained on digits."""

import keras
import numpy as np
import pytest
import reference_attacks as ref
import tensorflow as tf
from scipy.optimize import linprog
from support import assert_in_ball_and_box

from tf_advreg.evaluation.fab import fab_run, fab_targeted, project_l2, project_linf

EPS = {"linf": 0.1, "l2": 0.4}


def _problems(seed: int, rows: int = 60, columns: int = 7):
    """Random points in the box and hyperplanes, a third of them missing the box."""
    rng = np.random.default_rng(seed)
    t = rng.uniform(0, 1, (rows, columns))
    w = rng.normal(size=(rows, columns))
    w[rng.uniform(size=w.shape) < 0.15] = 0.0  # coordinates the hyperplane ignores
    b = (w * rng.uniform(0, 1, t.shape)).sum(1)  # through a point of the box
    missing = np.arange(rows) % 3 == 0
    # The values of w.z over the box span less than sum |w|: move b beyond them.
    side = rng.choice([-1.0, 1.0], size=missing.sum())
    b[missing] += side * (1.1 * np.abs(w[missing]).sum(1) + 0.1)
    return t, w, b, missing


def _project(norm, t, w, b):
    project = project_linf if norm == "linf" else project_l2
    return project(*(tf.constant(a, tf.float32) for a in (t, w, b))).numpy().astype("float64")


def _linf_lp(t, w, c):
    """min s subject to |d| <= s, w.d = c, 0 <= t + d <= 1, as a linear program."""
    n = len(t)
    bound = np.vstack([np.c_[np.eye(n), -np.ones(n)], np.c_[-np.eye(n), -np.ones(n)]])
    solution = linprog(
        np.r_[np.zeros(n), 1.0],
        A_ub=bound,
        b_ub=np.zeros(2 * n),
        A_eq=np.r_[w, 0.0][None],
        b_eq=[c],
        bounds=[(-ti, 1 - ti) for ti in t] + [(0, None)],
    )
    assert solution.status == 0
    return solution.fun


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_projection_is_the_smallest_move_onto_hyperplane_and_box(norm):
    t, w, b, missing = _problems(seed=1 if norm == "linf" else 2)
    d = _project(norm, t, w, b)
    c = b - (w * t).sum(1)
    # Inside the box, and on the hyperplane wherever it meets the box.
    assert np.all(t + d >= -1e-6) and np.all(t + d <= 1 + 1e-6)
    np.testing.assert_allclose((w * d).sum(1)[~missing], c[~missing], atol=1e-4)
    # The same move as an independent bisection: the unique L2 minimiser, and the L-inf
    # minimiser that moves every coordinate by the same amount; where the hyperplane misses
    # the box, the corner closest to it.
    np.testing.assert_allclose(d, ref.project_hyperplane_box(t, w, c, norm), atol=1e-4)
    if norm == "linf":  # and its size is the optimum of the linear program
        sizes = np.abs(d).max(axis=1)
        for i in np.flatnonzero(~missing):
            assert sizes[i] == pytest.approx(_linf_lp(t[i], w[i], c[i]), abs=1e-5)


@pytest.fixture(scope="module")
def mlp():
    """A ReLU network with one hidden layer trained on digits, as Keras and NumPy models."""
    from sklearn.datasets import load_digits
    from sklearn.neural_network import MLPClassifier

    digits = load_digits()
    images = (digits.images[..., None] / 16.0).astype("float32")
    labels = digits.target.astype("int32")
    fit = MLPClassifier((32,), max_iter=300, random_state=0)
    fit.fit(images[:1400].reshape(1400, -1), labels[:1400])
    weights = [a.astype("float64") for pair in zip(fit.coefs_, fit.intercepts_) for a in pair]
    network = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Flatten(),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(10),
        ]
    )
    network.layers[1].set_weights([weights[0], weights[1]])
    network.layers[2].set_weights([weights[2], weights[3]])
    return network, ref.mlp_forward(weights), images[1400:1464], labels[1400:1464]


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_fab_run_follows_the_reference_loop(mlp, norm):
    # Both sides are deterministic: the closest adversarial point found towards one target
    # lies at the same distance for nearly every example. Without the overshoot eta, the
    # pull-back beta, or the clean image's share alpha of a step, many distances change.
    network, forward, images, labels = mlp
    targets = (labels + 1) % 10
    _, ours = fab_run(network, images, labels, targets, norm=norm, steps=10)
    theirs = ref.fab_run(forward, images.astype("float64"), labels, targets, 10, norm)
    found = theirs < 1e10
    assert found.mean() > 0.5
    np.testing.assert_array_equal(ours.numpy() < 1e10, found)
    assert np.mean(np.isclose(ours.numpy(), theirs, rtol=1e-3)) >= 0.95


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_fab_t_agrees_with_numpy_and_stays_in_the_ball(mlp, norm):
    network, forward, images, labels = mlp
    eps = EPS[norm]
    ours = fab_targeted(network, images, labels, eps=eps, steps=10, norm=norm, target_classes=3)
    assert_in_ball_and_box(ours, images, eps, norm)
    predicted = network(ours).numpy().argmax(axis=-1)
    clean = network(images).numpy().argmax(axis=-1)
    moved = np.any(ours.numpy() != images, axis=(1, 2, 3))
    # Only correctly classified examples are attacked, and every moved one is misclassified.
    assert not np.any(moved & (clean != labels))
    assert np.all(predicted[moved] != labels[moved])
    theirs = ref.fab_targeted(forward, images.astype("float64"), labels, eps, 10, norm, 3)
    ours_robust = predicted == labels
    # The same examples stay robust, up to float32 rounding near the eps boundary; ours is
    # never weaker by more than a few points.
    assert np.mean(ours_robust == theirs) >= 0.95
    assert ours_robust.mean() <= theirs.mean() + 0.04
    assert ours_robust.mean() < (clean == labels).mean() - 0.3  # the attack bites


def test_fab_t_checks_its_arguments():
    network = keras.Sequential([keras.Input((4,)), keras.layers.Dense(5)])
    x, y = tf.zeros([2, 4]), tf.constant([0, 1])
    with pytest.raises(ValueError, match="norm must be one of"):
        fab_targeted(network, x, y, eps=0.1, norm="l1")
    with pytest.raises(ValueError, match="steps must be"):
        fab_targeted(network, x, y, eps=0.1, steps=0)
