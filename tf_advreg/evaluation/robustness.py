"""Accuracy of a model under attack over a whole dataset, per example, with confidence intervals.

Every attack is one compiled function of (images, labels, seed) -> which examples the model
still classifies correctly. Random restarts call it again with a new seed; an example counts as
robust only if it survives every restart (and, for the worst case, every attack), which is how
AutoAttack and the PGD leaderboards count.
"""

import dataclasses
import math
import time
from collections.abc import Callable, Iterable, Sequence

import numpy as np
import tensorflow as tf

from tf_advreg import attacks
from tf_advreg.attacks.settings import Attack, pgd_name
from tf_advreg.evaluation.apgd import apgd, apgd_targeted
from tf_advreg.evaluation.fab import fab_targeted
from tf_advreg.evaluation.square import square

WORST_CASE = "strongest"
# What `strongest` runs when no attacks are named with it.
STRONGEST_DEFAULT = ("fgsm", pgd_name("ce"), pgd_name("cw"), "apgd-ce", "apgd-dlr")


def craft(model: Callable, x: tf.Tensor, y: tf.Tensor, attack: Attack, seed) -> tf.Tensor:
    """The images `attack` feeds the model: x itself, random noise, or adversarial examples."""
    if attack.name == "natural":
        return x
    if attack.name == "noise":
        geometry = attacks.GEOMETRIES[attack.norm]
        return geometry.project(geometry.random_start(x, attack.eps, seed), x, attack.eps)
    if attack.name == "fgsm":
        return attacks.fgsm(model, x, y, eps=attack.eps, norm=attack.norm)
    if attack.loss is not None:
        return attacks.pgd(
            model,
            x,
            y,
            eps=attack.eps,
            step_size=attack.step_size,
            steps=attack.steps,
            loss=attack.loss,
            norm=attack.norm,
            seed=seed,
        )
    if attack.name == "square":
        return square(
            model, x, y, eps=attack.eps, queries=attack.steps, seed=seed, norm=attack.norm
        )[0]
    if attack.name == "fab-t":
        return fab_targeted(model, x, y, eps=attack.eps, steps=attack.steps, norm=attack.norm)
    settings = dict(eps=attack.eps, steps=attack.steps, norm=attack.norm, seed=seed, eot=attack.eot)
    if attack.name == "apgd-t":
        return apgd_targeted(model, x, y, **settings)
    return apgd(model, x, y, loss=attack.name.removeprefix("apgd-"), **settings)


@dataclasses.dataclass(frozen=True)
class Outcome:
    """Which examples an attack failed to fool, in dataset order."""

    name: str
    settings: dict
    correct: np.ndarray  # bool [num_examples]
    seconds: float

    @property
    def accuracy(self) -> float:
        return float(self.correct.mean()) if len(self.correct) else float("nan")


def compile_attack(
    model: Callable, attack: Attack, *, source: Callable | None = None, jit_compile: bool = True
) -> Callable:
    """A compiled (x, y, seed) -> bool [batch]: does `model` still classify the attacked x right?

    The attack is crafted on `source` (a transfer attack) when given, otherwise on `model`.
    Traced once per image shape: XLA compiles one program per batch size, so callers that
    jit-compile pad their batches to one size; graph mode runs any batch size in the graph of
    the first call, traced with the batch dimension unknown, so a smaller last batch neither
    costs a new trace nor needs padding.
    """
    craft_on = model if source is None else source

    def survives(x, y, seed):
        x_adv = craft(craft_on, x, y, attack, seed)
        predictions = tf.argmax(model(x_adv, training=False), axis=-1, output_type=tf.int32)
        return tf.equal(predictions, tf.cast(y, tf.int32))

    if jit_compile:
        return tf.function(survives, jit_compile=True, reduce_retracing=True)
    return _any_batch_size(tf.function(survives))


def _any_batch_size(function: Callable) -> Callable:
    """`function`(x, y, seed) traced once per image shape and dtypes, with the batch unknown."""
    graphs = {}

    def call(x, y, seed):
        x, y, seed = (tf.convert_to_tensor(t) for t in (x, y, seed))
        key = (x.dtype, tuple(x.shape[1:]), y.dtype, seed.dtype)
        if key not in graphs:
            graphs[key] = function.get_concrete_function(
                tf.TensorSpec([None, *x.shape[1:]], x.dtype),
                tf.TensorSpec([None], y.dtype),
                tf.TensorSpec.from_tensor(seed),
            )
        return graphs[key](x, y, seed)

    return call


def evaluate(
    model: Callable,
    batches: Iterable,
    attacks_to_run: Sequence[Attack],
    *,
    source: Callable | None = None,
    jit_compile: bool = True,
) -> list[Outcome]:
    """Runs every attack (with its restarts) on every batch; one pass over the data."""
    compiled = [
        compile_attack(model, a, source=source, jit_compile=jit_compile) for a in attacks_to_run
    ]
    correct = [[] for _ in attacks_to_run]
    seconds = [0.0] * len(attacks_to_run)
    for batch_index, (x, y) in enumerate(batches):
        x = tf.convert_to_tensor(x, tf.float32)
        y = tf.convert_to_tensor(y, tf.int32)
        for i, (attack, survives) in enumerate(zip(attacks_to_run, compiled)):
            start = time.perf_counter()
            robust = np.ones(len(y), bool)
            for restart in range(attack.effective_restarts):
                # Restart r draws the same start whatever the number of restarts, so more
                # restarts can only lower the accuracy.
                seed = tf.random.experimental.stateless_fold_in([attack.seed, restart], batch_index)
                robust &= survives(x, y, seed).numpy()
            correct[i].append(robust)
            seconds[i] += time.perf_counter() - start
    return [
        Outcome(a.name, a.settings(), np.concatenate(c) if c else np.zeros(0, bool), s)
        for a, c, s in zip(attacks_to_run, correct, seconds)
    ]


def worst_case(outcomes: Sequence[Outcome]) -> Outcome:
    """Per example, robust only if robust against every attack in `outcomes`."""
    if not outcomes:
        raise ValueError("The worst case needs at least one attack.")
    return Outcome(
        WORST_CASE,
        {"attacks": [o.name for o in outcomes]},
        np.logical_and.reduce([o.correct for o in outcomes]),
        sum(o.seconds for o in outcomes),
    )


def wilson_interval(successes: int, total: int, z: float = 1.96) -> tuple[float, float]:
    """95 % (z = 1.96) Wilson score interval for a binomial proportion.

    Unlike the normal approximation it stays inside [0, 1] and is not degenerate at 0 % or
    100 %, which robust accuracies under strong attacks often are.
    """
    if total == 0:
        return 0.0, 1.0
    p = successes / total
    denominator = 1 + z**2 / total
    centre = (p + z**2 / (2 * total)) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / total + z**2 / (4 * total**2))
    return max(0.0, centre - half), min(1.0, centre + half)


def result_record(outcome: Outcome) -> dict:
    """The JSON form of one outcome (see result_schema.json)."""
    correct, total = int(outcome.correct.sum()), len(outcome.correct)
    low, high = wilson_interval(correct, total)
    return {
        "attack": outcome.name,
        "settings": outcome.settings,
        "correct": correct,
        "total": total,
        "accuracy": correct / total if total else None,
        "ci95": {"low": low, "high": high, "method": "wilson"},
        "seconds": round(outcome.seconds, 3),
    }
