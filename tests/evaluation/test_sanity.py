"""The sanity checks pass on an honest model and flag one that masks its gradients."""

import numpy as np
import pytest
import tensorflow as tf

from tf_advreg.evaluation import Attack, run_checks
from tf_advreg.evaluation.sanity import _unbounded, significantly_lower
from tf_advreg.models import resnet18

PGD = Attack("pgd", eps=0.1, steps=10, step_size=0.02)


@tf.custom_gradient
def _round(logits):
    # The derivative of rounding is zero almost everywhere: an attacker following the gradient
    # sees a flat loss, though the decision boundaries are those of the honest network.
    return tf.round(logits), lambda upstream: tf.zeros_like(upstream)


class RoundedLogits:
    """A deliberately gradient-masked classifier: the honest network's logits, rounded."""

    def __init__(self, network):
        self.network = network

    def __call__(self, images, training=False):
        return _round(self.network(images, training=training))


def _batches(images, labels, size=64):
    return [(images[i : i + size], labels[i : i + size]) for i in range(0, len(images), size)]


def _results(checks):
    return {check.name: check.passed for check in checks}


def test_honest_model_passes_every_check(digits_model):
    network, images, labels = digits_model
    unrelated = resnet18(num_classes=10, width=4, input_shape=(8, 8, 1))
    checks = run_checks(
        network,
        _batches(images, labels),
        PGD,
        transfer_source=unrelated,
        factor=2,
        jit_compile=False,
    )
    assert len(checks) == 6
    assert all(check.passed for check in checks), [c.record() for c in checks]


def test_gradient_masked_model_is_flagged(digits_model):
    network, images, labels = digits_model
    # The transfer source is the honest network itself: its adversarial examples fool the
    # masked model, which the white-box attack on the masked model cannot.
    checks = run_checks(
        RoundedLogits(network),
        _batches(images, labels),
        PGD,
        transfer_source=network,
        factor=2,
        jit_compile=False,
    )
    results = _results(checks)
    assert not results["unbounded eps reaches ~0"]
    assert not results["beats random noise"]
    assert not results["white-box beats transfer"]


def test_significantly_lower_is_a_paired_sign_test():
    ones, zeros = np.ones(20, bool), np.zeros(20, bool)
    assert significantly_lower(zeros, ones)
    assert not significantly_lower(ones, zeros)
    assert not significantly_lower(ones, ones)  # no disagreements, no evidence
    # 4 of 4 disagreements one way: p = 1/16 > 0.05; 5 of 5: p = 1/32 < 0.05.
    assert not significantly_lower(np.arange(20) >= 4, ones)
    assert significantly_lower(np.arange(20) >= 5, ones)


def test_needs_an_iterative_attack(digits_model):
    network, images, labels = digits_model
    with pytest.raises(ValueError, match="iterative attack"):
        run_checks(network, _batches(images, labels), Attack("fgsm", eps=0.1))


@pytest.mark.parametrize("norm, eps", [("linf", 1.0), ("l2", 8.0)])
def test_unbounded_radius_covers_the_image_box(norm, eps):
    unbounded = _unbounded(Attack("pgd", eps=0.5, step_size=0.1, norm=norm), (8, 8, 1))
    assert unbounded.eps == eps and unbounded.step_size == pytest.approx(0.2 * eps)
