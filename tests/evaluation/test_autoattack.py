"""APGD (reference details), APGD-T, Square and the AutoAttack sequence, each checked against
the independent NumPy implementations in reference_attacks.py on a linear digits classifier."""

import jsonschema
import keras
import numpy as np
import pytest
import reference_attacks as ref
import tensorflow as tf
from support import assert_in_ball_and_box

from tf_advreg.evaluation import Attack, autoattack, report, robustness
from tf_advreg.evaluation.apgd import apgd, apgd_targeted, random_start, targeted_dlr_loss
from tf_advreg.evaluation.square import pseudo_gaussian, square, window_sizes

EPS = 0.1
# Identity records for report documents (the parts the text table and card read).
MODEL = {"path": "linear", "epoch": None, "fingerprint": "linear-digits"}
DATA = {"dataset": "digits", "split": "test", "num_examples": 128}


@pytest.fixture(scope="module")
def linear():
    """Logistic regression on digits as a Keras model, with its float64 weights."""
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    digits = load_digits()
    images = (digits.images[..., None] / 16.0).astype("float32")
    labels = digits.target.astype("int32")
    fit = LogisticRegression(max_iter=300).fit(images[:1400].reshape(1400, -1), labels[:1400])
    w, b = fit.coef_.T.astype("float64"), fit.intercept_.astype("float64")
    # Pixels constant in the training set get weights ~1e-12: exactly 0 in float32 gradients
    # but not in float64, where their sign would move them. Make them 0 in both.
    w[np.abs(w) < 1e-6] = 0.0
    network = keras.Sequential(
        [keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(10)]
    )
    network.layers[-1].set_weights([w.astype("float32"), b.astype("float32")])
    return network, w, b, images[1400:1528], labels[1400:1528]


def _fooled(network, images, labels):
    return network(images).numpy().argmax(axis=-1) != labels


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_random_start_lies_on_the_sphere(norm):
    # autopgd_base.py:204-213 rescales the noise to length eps; away from the box edges
    # nothing is clipped, so every start is exactly eps from x.
    x = tf.fill([8, 6, 6, 3], 0.5)
    delta = (random_start(x, 0.2, norm, tf.constant([3, 4])) - x).numpy().reshape(8, -1)
    lengths = np.abs(delta).max(axis=1) if norm == "linf" else np.linalg.norm(delta, axis=1)
    np.testing.assert_allclose(lengths, 0.2, rtol=1e-5)


@pytest.mark.parametrize(
    "norm, loss, agreement", [("linf", "ce", 0.97), ("l2", "ce", 0.97), ("linf", "dlr", 0.8)]
)
def test_apgd_follows_the_reference_loop(linear, norm, loss, agreement):
    # Same start, same model: the TF loop and the float64 transcription of the authors' loop
    # end at the same image for nearly every example. With 20 iterations the windows are 4,
    # 3, 2, 1, ... long, where the code's details matter: with the paper's checkpoints, `<`
    # in the oscillation test, or the loss reset after a restart, DLR agreement drops to
    # 0.49-0.73. (Float32 against float64 rounding alone leaves 0.87.)
    network, w, b, images, labels = linear
    eps = EPS if norm == "linf" else 1.0
    seed = tf.constant([5, 6])
    ours = apgd(network, images, labels, eps=eps, steps=20, loss=loss, norm=norm, seed=seed)
    start = random_start(tf.constant(images), eps, norm, seed).numpy().astype("float64")
    theirs, fooled = ref.apgd(w, b, images.astype("float64"), labels, start, eps, 20, norm, loss)
    assert np.mean(_fooled(network, ours, labels) == fooled) >= 0.97
    same = np.abs(ours.numpy() - theirs).reshape(len(labels), -1).max(axis=1) < 1e-4
    assert np.mean(same) >= agreement
    assert fooled.mean() > 0.2  # the attack does something to agree on


def test_targeted_dlr_matches_numpy(linear):
    network, w, b, images, labels = linear
    targets = (labels + 3) % 10
    ours = targeted_dlr_loss(network(images), labels, targets).numpy()
    theirs, _, _ = ref.loss_and_grad(w, b, images.astype("float64"), labels, "dlr-t", targets)
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="at least 4 classes"):
        targeted_dlr_loss(tf.zeros([1, 3]), tf.constant([0]), tf.constant([1]))


def test_apgd_targeted_agrees_with_numpy(linear):
    network, w, b, images, labels = linear
    ours = apgd_targeted(network, images, labels, eps=0.05, steps=10, target_classes=3)
    assert_in_ball_and_box(ours, images, 0.05, "linf")
    _, robust = ref.apgd_targeted(
        w, b, images.astype("float64"), labels, 0.05, 10, "linf", np.random.default_rng(0), 3
    )
    ours_accuracy = 1 - _fooled(network, ours, labels).mean()
    # Within a few points, and never weaker by more.
    assert abs(ours_accuracy - robust.mean()) <= 0.04
    assert robust.mean() < 1 - _fooled(network, images, labels).mean()  # the attack bites


def test_square_window_schedule():
    # square.py:192-219, 254-256 and 340-344: p = 0.8 halves after iterations 10, 50, 200,
    # ..., 4000, not rescaled to the budget (AutoAttack passes resc_schedule=False,
    # autoattack.py:43); L2 windows are odd and at least 3.
    sizes = window_sizes(5000, 0.8, 32, 32, "linf")
    assert sizes[:11] == [29] * 11 and sizes[11] == 20 and sizes[-1] == 3
    assert window_sizes(5000, 0.8, 32, 32, "l2")[10:12] == [29, 21]
    assert set(window_sizes(5000, 0.8, 32, 32, "l2")[4001:]) == {3}
    assert window_sizes(60, 0.8, 8, 8, "linf")[10:13] == [7, 5, 5]


@pytest.mark.parametrize("side", [1, 3, 6, 7])
def test_l2_square_pattern_matches_the_reference(side):
    pattern = pseudo_gaussian(side)
    theirs = ref.square_pattern(side)
    np.testing.assert_allclose(pattern, theirs, atol=1e-12)
    assert np.sum(pattern**2) == pytest.approx(1.0)


@pytest.mark.parametrize("norm, eps", [("linf", 0.05), ("l2", 0.5)])
def test_square_agrees_with_numpy_and_stays_in_the_ball(linear, norm, eps):
    network, w, b, images, labels = linear
    ours, queries = square(network, images, labels, eps=eps, queries=200, seed=[1, 2], norm=norm)
    assert_in_ball_and_box(ours, images, eps, norm)
    assert np.all(queries.numpy() >= 1) and np.all(queries.numpy() <= 201)
    reference = ref.square_linf if norm == "linf" else ref.square_l2
    _, fooled = reference(
        w, b, images.astype("float64"), labels, eps, 200, np.random.default_rng(0)
    )
    ours_accuracy = 1 - _fooled(network, ours, labels).mean()
    assert abs(ours_accuracy - (1 - fooled.mean())) <= 0.05
    assert ours_accuracy < 1 - _fooled(network, images, labels).mean()


@pytest.mark.parametrize(
    "norm, eps", [("linf", 0.05), pytest.param("l2", 0.3, marks=pytest.mark.slow)]
)
def test_autoattack_sequence_invariants(linear, norm, eps):
    network, _, _, images, labels = linear
    sequence = [
        Attack("apgd-ce", eps=eps, steps=5, norm=norm),
        Attack("apgd-t", eps=eps, steps=5, norm=norm),
        Attack("fab-t", eps=eps, steps=5, norm=norm),
        Attack("square", eps=eps, steps=50, norm=norm),
    ]
    batches = [(images[:50], labels[:50]), (images[50:], labels[50:])]
    outcomes, record = autoattack.evaluate(
        network, batches, "autoattack", sequence, batch_size=32, jit_compile=False
    )
    natural, final = outcomes
    np.testing.assert_array_equal(natural.correct, ~_fooled(network, images, labels))
    broken_by = np.array(record["broken_by"], dtype=object)
    np.testing.assert_array_equal(final.correct, broken_by == None)  # noqa: E711
    np.testing.assert_array_equal(~natural.correct, broken_by == "natural")
    # Each attack ran only on what was left, and the accuracy only falls along the sequence.
    left = int(natural.correct.sum())
    for stage in record["attacks"]:
        assert stage["attacked"] == left
        left -= stage["broken"]
        assert stage["broken"] == np.sum(broken_by == stage["attack"])
        assert stage["robust_accuracy"] == pytest.approx(left / len(labels))
        assert stage["cpu_seconds"] > 0
    assert record["robust_accuracy"] == final.accuracy <= natural.accuracy
    assert record["attacks"][0]["broken"] > 0
    # Per example, AutoAttack is at least as strong as each of its attacks run alone. FAB-T
    # is deterministic, so this holds exactly; the others draw random starts per batch.
    alone = robustness.evaluate(network, batches, sequence, jit_compile=False)
    assert not np.any(final.correct & ~alone[2].correct)
    for single in alone:
        assert final.accuracy <= single.accuracy
    doc = report.document(
        [report.evaluation_record(MODEL, DATA, outcomes, 1.0) | {"autoattack": record}], None, 1.0
    )
    schema = report.schema()
    evaluation_schema = schema["$defs"]["autoattack"] | {"$defs": schema["$defs"]}
    jsonschema.validate(doc["evaluations"][0]["autoattack"], evaluation_schema)
    text = report.format_results(doc)
    assert f"autoattack: clean {100 * natural.accuracy:.2f} % -> apgd-ce" in text
    card = report.robustbench_record(doc, "linear")
    assert card["autoattack_acc"] == round(100 * final.accuracy, 2)
    assert card["clean_acc"] == round(100 * natural.accuracy, 2)
    threat_model = {"linf": "Linf", "l2": "L2"}[norm]
    assert (card["eps"], card["threat_model"], card["architecture"]) == (
        eps,
        threat_model,
        "linear",
    )
    assert (card["dataset"], card["n_examples"]) == ("digits", 128)


def test_autoattack_versions():
    standard = autoattack.attacks("autoattack", eps=0.03, norm="linf", seed=0)
    assert [(a.name, a.steps) for a in standard] == [
        ("apgd-ce", 100),
        ("apgd-t", 100),
        ("fab-t", 100),
        ("square", 5000),
    ]
    randomized = autoattack.attacks("autoattack-rand", eps=0.03, norm="linf", seed=0)
    assert [(a.name, a.eot) for a in randomized] == [("apgd-ce", 20), ("apgd-dlr", 20)]
    assert randomized[0].settings()["eot"] == 20
    with pytest.raises(ValueError, match="Unknown AutoAttack version"):
        autoattack.attacks("autoattack-plus", eps=0.03, norm="linf", seed=0)


@pytest.mark.parametrize("jit_compile", [False, pytest.param(True, marks=pytest.mark.slow)])
def test_each_attack_is_traced_once_whatever_the_number_and_sizes_of_batches(linear, jit_compile):
    network, _, _, images, labels = linear
    traced = []

    def model(x, training=False):  # Python runs this only while a graph is being traced
        traced.append(x.shape)
        return network(x, training=training)

    sequence = [
        Attack("apgd-ce", eps=0.02, steps=2),
        Attack("apgd-t", eps=0.02, steps=2),
        Attack("fab-t", eps=0.02, steps=2),
        Attack("square", eps=0.02, steps=3),
    ]

    def model_calls_traced(count):
        traced.clear()
        _, record = autoattack.evaluate(
            model,
            [(images[:count], labels[:count])],
            "autoattack",
            sequence,
            batch_size=16,
            jit_compile=jit_compile,
        )
        assert all(stage["attacked"] > 0 for stage in record["attacks"])
        return len(traced), record["attacks"][-1]["attacked"]

    one_batch_each, _ = model_calls_traced(16)
    many_batches_each, last_attacked = model_calls_traced(100)
    assert last_attacked > 2 * 16 and last_attacked % 16  # several batches, a smaller last one
    assert many_batches_each == one_batch_each
