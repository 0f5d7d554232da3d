"""Checks that an attack really attacks, after Carlini et al. 2019, "On Evaluating Adversarial
Robustness" (Sec. 5): a model that masks its gradients looks robust to gradient attacks without
being robust, and these checks are how that shows.

Accuracies are compared per example with an exact one-sided sign test (McNemar's test), so
"beyond noise" means significant at the 5 % level on the examples evaluated.
"""

import dataclasses
import math
from collections.abc import Callable, Iterable

import numpy as np

from tf_advreg.attacks.settings import ITERATIVE_ATTACKS, Attack
from tf_advreg.evaluation.robustness import Outcome, evaluate

# An attack with an unbounded budget must fool (almost) every example.
UNBOUNDED_MAX_ACCURACY = 0.01
SIGNIFICANCE = 0.05


@dataclasses.dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    detail: str
    accuracies: dict[str, float]

    def record(self) -> dict:
        return dataclasses.asdict(self)


def significantly_lower(a: np.ndarray, b: np.ndarray, alpha: float = SIGNIFICANCE) -> bool:
    """Is accuracy under `a` lower than under `b` beyond chance, on the same examples?

    Only examples on which the two disagree carry information; under the null hypothesis each
    disagreement goes either way with probability 1/2.
    """
    only_b = int(np.sum(b & ~a))
    disagreements = only_b + int(np.sum(a & ~b))
    if disagreements == 0:
        return False
    tail = sum(math.comb(disagreements, k) for k in range(only_b, disagreements + 1))
    return tail / 2**disagreements < alpha


def _percent(outcome: Outcome) -> str:
    return f"{100 * outcome.accuracy:.1f} %"


def _unbounded(attack: Attack, image_shape) -> Attack:
    """The same attack with a radius that covers the whole image box [0, 1]^d."""
    eps = 1.0 if attack.norm == "linf" else math.sqrt(math.prod(image_shape))
    scale = eps / attack.eps if attack.eps > 0 else eps / 10
    return dataclasses.replace(attack, eps=eps, step_size=attack.step_size * scale)


def run_checks(
    model: Callable,
    batches: Iterable,
    attack: Attack,
    *,
    transfer_source: Callable | None = None,
    factor: int = 4,
    jit_compile: bool = True,
) -> list[Check]:
    """Runs the checks for `attack` (an iterative attack) on re-iterable `batches`.

    Args:
      model: the classifier under evaluation.
      attack: the attack whose results the checks vouch for.
      transfer_source: a separately trained model; adversarial examples crafted on it are
        tried on `model` (a black-box transfer attack) and must not beat the white-box attack.
      factor: how many times more steps, and more restarts, the stronger attacks get.
    """
    if attack.name not in ITERATIVE_ATTACKS:
        raise ValueError(
            f"Sanity checks need an iterative attack ({', '.join(ITERATIVE_ATTACKS)}), "
            f"got {attack.name!r}."
        )
    image_shape = next(iter(batches))[0].shape[1:]
    runs = {
        "natural": Attack("natural"),
        "attack": attack,
        "more_steps": dataclasses.replace(attack, steps=attack.steps * factor),
        "more_restarts": dataclasses.replace(attack, restarts=attack.restarts * factor),
        "unbounded": _unbounded(attack, image_shape),
        "noise": Attack("noise", eps=attack.eps, norm=attack.norm, seed=attack.seed),
    }
    outcomes = dict(
        zip(runs, evaluate(model, batches, list(runs.values()), jit_compile=jit_compile))
    )
    natural, base = outcomes["natural"], outcomes["attack"]

    def accuracies(*keys):
        return {key: outcomes[key].accuracy for key in keys}

    checks = [
        Check(
            "adversarial <= natural",
            int(base.correct.sum()) <= int(natural.correct.sum()),
            f"{attack.name} {_percent(base)}, natural {_percent(natural)}",
            accuracies("natural", "attack"),
        ),
        Check(
            f"{factor}x steps no better",
            not significantly_lower(base.correct, outcomes["more_steps"].correct),
            f"{attack.steps} steps {_percent(base)}, {attack.steps * factor} steps "
            f"{_percent(outcomes['more_steps'])}",
            accuracies("attack", "more_steps"),
        ),
        Check(
            f"{factor}x restarts no better",
            not significantly_lower(base.correct, outcomes["more_restarts"].correct),
            f"{attack.restarts} restart(s) {_percent(base)}, {attack.restarts * factor} "
            f"restarts {_percent(outcomes['more_restarts'])}",
            accuracies("attack", "more_restarts"),
        ),
        Check(
            "unbounded eps reaches ~0",
            outcomes["unbounded"].accuracy <= UNBOUNDED_MAX_ACCURACY,
            f"eps {runs['unbounded'].eps:g}: {_percent(outcomes['unbounded'])} "
            f"(must be <= {100 * UNBOUNDED_MAX_ACCURACY:g} %)",
            accuracies("unbounded"),
        ),
        Check(
            "beats random noise",
            significantly_lower(base.correct, outcomes["noise"].correct),
            f"{attack.name} {_percent(base)}, noise of the same eps {_percent(outcomes['noise'])}",
            accuracies("attack", "noise"),
        ),
    ]
    if transfer_source is not None:
        (transfer,) = evaluate(
            model, batches, [attack], source=transfer_source, jit_compile=jit_compile
        )
        checks.append(
            Check(
                "white-box beats transfer",
                not significantly_lower(transfer.correct, base.correct),
                f"white-box {_percent(base)}, transferred from the other model "
                f"{_percent(transfer)}",
                {"attack": base.accuracy, "transfer": transfer.accuracy},
            )
        )
    return checks
