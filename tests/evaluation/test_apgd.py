"""APGD and the DLR loss: the published schedule, the threat model, invariances, compilation."""

import numpy as np
import pytest
import tensorflow as tf
from support import assert_in_ball_and_box

from tf_advreg.evaluation import Attack, apgd, dlr_loss, evaluate
from tf_advreg.evaluation.apgd import checkpoints

EPS = 0.1


def test_checkpoints_follow_the_authors_code():
    # Croce & Hein 2020, Sec. 3.2: for N = 100 the checks fall at 22, 41, 57, 70, 80, 87, 93,
    # 99. For other N the code's integer window lengths (autopgd_base.py:153-155: 22 %, then
    # 3 % shorter, at least 6 %) differ from the paper's ceil(p_j N): N = 20 gives windows
    # 4, 3, 2, 1, 1, ..., where ceil would check at 5, 9, 12, 14, 16, 18, 19, 20.
    assert checkpoints(100) == [0, 22, 41, 57, 70, 80, 87, 93, 99]
    assert checkpoints(20) == [0, 4, 7, 9, *range(10, 21)]
    assert checkpoints(1) == [0, 1]


def test_dlr_loss_values_and_invariance():
    logits = tf.constant([[5.0, 3.0, 1.0, 0.0], [1.0, 4.0, 2.0, 0.0]])
    labels = tf.constant([0, 0])
    # Correct: -(5 - 3) / (5 - 1); wrong: -(1 - 4) / (4 - 1).
    np.testing.assert_allclose(dlr_loss(logits, labels), [-0.5, 1.0], rtol=1e-6)
    # Shifting and scaling the logits (softmax saturation) leaves it unchanged.
    np.testing.assert_allclose(dlr_loss(100.0 * logits - 7.0, labels), [-0.5, 1.0], rtol=1e-5)
    with pytest.raises(ValueError, match="at least 3 classes"):
        dlr_loss(tf.zeros([1, 2]), tf.constant([0]))


@pytest.mark.parametrize("norm", ["linf", "l2"])
@pytest.mark.parametrize("loss", ["ce", "dlr"])
def test_stays_in_ball_and_box(untrained, loss, norm):
    network, images, labels = untrained
    adv = apgd(network, images, labels, eps=EPS, steps=6, loss=loss, norm=norm, seed=[1, 2])
    assert_in_ball_and_box(adv, images, EPS, norm)


def test_zero_eps_or_steps_returns_input(untrained):
    network, images, labels = untrained
    for kwargs in (dict(eps=0.0, steps=5), dict(eps=EPS, steps=0)):
        np.testing.assert_array_equal(apgd(network, images, labels, **kwargs), images)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(loss="kl"), "APGD loss must be one of"),
        (dict(norm="l1"), "norm must be one of"),
        (dict(steps=2.5), "steps must be an integer"),
        (dict(eps=-0.1), "eps must be >= 0"),
    ],
)
def test_bad_arguments(untrained, kwargs, message):
    network, images, labels = untrained
    with pytest.raises(ValueError, match=message):
        apgd(network, images, labels, **(dict(eps=EPS, steps=3) | kwargs))


def test_compiles_with_xla_inside_the_evaluation(untrained):
    network, images, labels = untrained
    attacks = [Attack("natural"), Attack("apgd-dlr", eps=EPS, steps=3)]
    natural, attacked = evaluate(network, [(images, labels)], attacks, jit_compile=True)
    expected = network(images).numpy().argmax(axis=-1) == labels
    np.testing.assert_array_equal(natural.correct, expected)
    assert attacked.correct.shape == (16,) and attacked.settings["steps"] == 3
