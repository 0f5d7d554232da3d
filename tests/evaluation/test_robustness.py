"""Attacks over a dataset: APGD at least as strong as PGD, worst case, restarts, intervals."""

import dataclasses

import keras
import numpy as np
import pytest

from tf_advreg.evaluation import Attack, evaluate, wilson_interval, worst_case
from tf_advreg.evaluation.robustness import result_record
from tf_advreg.models import resnet18

EPS = 0.1  # 8x8 digits have 17 grey levels: eps 0.03 barely moves them
PGD20 = Attack("pgd", eps=EPS, steps=20, step_size=0.01)


def _batches(images, labels, size=64):
    return [(images[i : i + size], labels[i : i + size]) for i in range(0, len(images), size)]


@pytest.fixture(scope="module")
def outcomes(digits_model):
    network, images, labels = digits_model
    attacks = [
        Attack("natural"),
        Attack("fgsm", eps=EPS),
        PGD20,
        Attack("pgd-cw", eps=EPS, steps=20, step_size=0.01),
        Attack("apgd-ce", eps=EPS, steps=20),
        Attack("apgd-dlr", eps=EPS, steps=20),
    ]
    results = evaluate(network, _batches(images, labels), attacks, jit_compile=False)
    return {outcome.name: outcome for outcome in results}


def test_attacks_lower_accuracy_and_apgd_is_at_least_as_strong_as_pgd(outcomes):
    natural = outcomes["natural"].accuracy
    assert natural > 0.8  # the model learned something worth attacking
    assert outcomes["pgd"].accuracy < natural - 0.1
    # APGD-CE with the same budget must not be clearly weaker than tuned PGD-20.
    assert outcomes["apgd-ce"].accuracy <= outcomes["pgd"].accuracy + 0.03
    assert outcomes["fgsm"].accuracy >= outcomes["pgd"].accuracy - 0.03


def test_worst_case_is_at_most_every_attack(outcomes):
    worst = worst_case(list(outcomes.values()))
    for outcome in outcomes.values():
        assert worst.accuracy <= outcome.accuracy
        assert not np.any(worst.correct & ~outcome.correct)
    assert worst.settings == {"attacks": list(outcomes)}


def test_zero_eps_equals_natural_accuracy(digits_model, outcomes):
    network, images, labels = digits_model
    attacks = [
        Attack(name, eps=0.0, steps=3) for name in ("noise", "fgsm", "pgd", "apgd-ce", "apgd-dlr")
    ]
    for outcome in evaluate(network, _batches(images, labels), attacks, jit_compile=False):
        np.testing.assert_array_equal(outcome.correct, outcomes["natural"].correct, outcome.name)


def test_more_restarts_only_lower_accuracy(digits_model):
    network, images, labels = digits_model
    once, thrice = evaluate(
        network,
        _batches(images, labels),
        [PGD20, dataclasses.replace(PGD20, restarts=3)],
        jit_compile=False,
    )
    # Restart 0 is the same run in both, so three restarts fool a superset of examples.
    assert not np.any(thrice.correct & ~once.correct)


def test_transfer_attack_is_crafted_on_the_source(digits_model, outcomes):
    network, images, labels = digits_model
    untrained = resnet18(num_classes=10, width=4, input_shape=(8, 8, 1))
    (transfer,) = evaluate(network, _batches(images, labels), [PGD20], source=untrained,
                           jit_compile=False)  # fmt: skip
    # Examples crafted on an unrelated untrained network barely hurt the trained one.
    assert transfer.accuracy > outcomes["pgd"].accuracy + 0.1


def test_wilson_interval():
    low, high = wilson_interval(5, 10)
    assert low == pytest.approx(0.2366, abs=1e-4) and high == pytest.approx(0.7634, abs=1e-4)
    low, high = wilson_interval(0, 10)
    assert low == 0.0 and high == pytest.approx(0.2775, abs=1e-4)
    assert wilson_interval(100, 100)[1] == pytest.approx(1.0)


def test_result_record(outcomes):
    record = result_record(outcomes["pgd"])
    assert record["total"] == 128 and record["correct"] == outcomes["pgd"].correct.sum()
    assert record["ci95"]["low"] <= record["accuracy"] <= record["ci95"]["high"]
    assert record["settings"] == {
        "eps": EPS, "norm": "linf", "steps": 20, "step_size": 0.01, "restarts": 1, "seed": 0,
    }  # fmt: skip


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(name="deepfool"), "Unknown attack 'deepfool'; choose from: natural, noise"),
        (dict(eps=1.5), r"eps must be in \[0, 1\]"),
        (dict(eps=-0.1), r"eps must be in \[0, 1\]"),
        (dict(steps=0), "steps must be >= 1"),
        (dict(restarts=0), "restarts must be >= 1"),
        (dict(norm="l1"), "norm must be one of"),
    ],
)
def test_bad_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Attack(**(dict(name="pgd") | kwargs))


def test_an_attack_is_traced_once_whatever_the_batch_sizes():
    network = keras.Sequential(
        [keras.Input((4, 4, 1)), keras.layers.Flatten(), keras.layers.Dense(3)]
    )
    traced = []

    def model(x, training=False):  # Python runs this only while a graph is being traced
        traced.append(x.shape)
        return network(x, training=training)

    images = np.random.default_rng(0).uniform(size=(20, 4, 4, 1)).astype("float32")
    labels = np.arange(20) % 3
    attack = Attack("apgd-ce", eps=EPS, steps=2)

    def model_calls_traced(count):
        traced.clear()
        evaluate(model, _batches(images[:count], labels[:count], 8), [attack], jit_compile=False)
        return len(traced)

    assert model_calls_traced(20) == model_calls_traced(8)  # batches of 8, 8, 4 against one
