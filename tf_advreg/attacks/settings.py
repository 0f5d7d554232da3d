"""Attack settings: one validated type for an attack, and the one vocabulary of attack losses.

`Attack` describes one attack run: which one, its threat model (eps, norm) and its iterations.
tools.evaluate runs a list of them; the per-epoch evaluation of training runs one
(`AttackSettings.evaluation`, the same `pgd` tools.evaluate runs). `AttackSettings` is
config.attack, the attacks of a training phase: the training PGD, whose loss the objective
chooses, and that evaluation attack. Both are checked where they are made, by the rules below,
so no other module checks an attack setting again; an error names the setting (errors.FieldError)
so a tool can say which of its flags it was.
"""

import dataclasses
import math
from numbers import Real

from tf_advreg.attacks.geometry import GEOMETRIES
from tf_advreg.errors import FieldError

# What a PGD attack maximises (attacks.pgd.attack_loss): the objectives name theirs
# (`attack_loss`), and tools.evaluate's PGD attacks are named after theirs (pgd_name).
ATTACK_LOSSES = ("ce", "kl", "ce+kl", "cw")
# The losses tools.evaluate runs PGD with: the cross-entropy and the Carlini-Wagner margin
# (kl and ce+kl measure a change of the model's own prediction, for training).
EVALUATION_PGD_LOSSES = ("ce", "cw")


def pgd_name(loss: str) -> str:
    """tools.evaluate's name of PGD on `loss`: `pgd` for the default cross-entropy, else
    `pgd-<loss>` (pgd-cw)."""
    return "pgd" if loss == "ce" else f"pgd-{loss}"


_PGD_ATTACKS = {pgd_name(loss): loss for loss in EVALUATION_PGD_LOSSES}
ATTACKS = (
    "natural",
    "noise",
    "fgsm",
    *_PGD_ATTACKS,
    "apgd-ce",
    "apgd-dlr",
    "apgd-t",
    "fab-t",
    "square",
)
# Attacks whose `steps` are iterations; for Square, `steps` counts queries.
ITERATIVE_ATTACKS = (*_PGD_ATTACKS, "apgd-ce", "apgd-dlr", "apgd-t", "fab-t", "square")
# Attacks that draw a random start or noise, so restarts change their result (FAB-T, as
# AutoAttack runs it, starts from the clean image).
RANDOMIZED_ATTACKS = ("noise", *_PGD_ATTACKS, "apgd-ce", "apgd-dlr", "apgd-t", "square")
# Attacks that use the step size (APGD chooses its own).
FIXED_STEP_ATTACKS = tuple(_PGD_ATTACKS)


def _is_number(value) -> bool:
    """Plain numbers are checked; tensors and variables (a compiled caller's) are not."""
    return isinstance(value, Real) and not isinstance(value, bool)


def _check_finite(value, field: str) -> None:
    """NaN fails every comparison, so the range checks would pass it: check it first."""
    if not math.isfinite(value):
        raise FieldError(field, f"{{field}} must be a finite number, got {value}.")


def check_eps(eps, norm: str = "linf", field: str = "eps") -> None:
    if not _is_number(eps):
        return
    _check_finite(eps, field)
    if eps < 0 or (norm == "linf" and eps > 1):
        raise FieldError(
            field, f"{{field}} must be in [0, 1] (images are in [0, 1]; L2 allows > 1), got {eps}."
        )


def check_step_size(step_size, field: str = "step_size") -> None:
    if not _is_number(step_size):
        return
    _check_finite(step_size, field)
    if step_size <= 0:
        raise FieldError(field, f"{{field}} must be > 0, got {step_size}.")


def check_count(count, minimum: int, field: str) -> None:
    """An integer setting (steps, restarts) of at least `minimum`."""
    if not _is_number(count):
        return
    if isinstance(count, float) and not count.is_integer():
        raise FieldError(field, f"{{field}} must be an integer, got {count}.")
    if count < minimum:
        raise FieldError(field, f"{{field}} must be >= {minimum}, got {count}.")


def check_norm(norm: str, field: str = "norm") -> None:
    if norm not in GEOMETRIES:
        raise FieldError(field, f"{{field}} must be one of {tuple(GEOMETRIES)}, got {norm!r}.")


def check_loss(loss: str, field: str = "loss") -> None:
    if loss not in ATTACK_LOSSES:
        raise FieldError(field, f"{{field}} must be one of {ATTACK_LOSSES}, got {loss!r}.")


@dataclasses.dataclass(frozen=True)
class Attack:
    """One attack and its settings. Settings an attack does not use are reported as None."""

    name: str
    eps: float = 0.03
    steps: int = 20
    step_size: float = 0.003
    restarts: int = 1
    norm: str = "linf"
    seed: int = 0
    eot: int = 1  # APGD gradients averaged per iterate, for randomized models

    def __post_init__(self):
        if self.name not in ATTACKS:
            raise FieldError(
                "attack", f"Unknown {{field}} {self.name!r}; choose from: {', '.join(ATTACKS)}."
            )
        check_norm(self.norm)
        check_eps(self.eps, self.norm)
        check_count(self.steps, 1, "steps")
        check_step_size(self.step_size)
        check_count(self.restarts, 1, "restarts")
        check_count(self.eot, 1, "eot")

    @property
    def loss(self) -> str | None:
        """The loss PGD maximises (one of ATTACK_LOSSES); None for the other attacks."""
        return _PGD_ATTACKS.get(self.name)

    @property
    def effective_restarts(self) -> int:
        return self.restarts if self.name in RANDOMIZED_ATTACKS else 1

    def settings(self) -> dict:
        natural = self.name == "natural"
        eot = {"eot": self.eot} if self.eot > 1 else {}
        return eot | {
            "eps": 0.0 if natural else self.eps,
            "norm": None if natural else self.norm,
            "steps": self.steps if self.name in ITERATIVE_ATTACKS else None,
            "step_size": self.step_size if self.name in FIXED_STEP_ATTACKS else None,
            "restarts": self.effective_restarts,
            "seed": self.seed if self.name in RANDOMIZED_ATTACKS else None,
        }


@dataclasses.dataclass(frozen=True)
class AttackSettings:
    """config.attack (tf_advreg.training.schema holds the defaults and the help): the training
    PGD (`steps` 0: no attack) and the per-epoch evaluation PGD, in one threat model."""

    eps: float
    norm: str
    steps: int
    step_size: float
    eval_steps: int
    eval_step_size: float
    bn_training: bool = False

    def __post_init__(self):
        check_norm(self.norm)
        check_eps(self.eps, self.norm)
        check_count(self.steps, 0, "steps")
        check_step_size(self.step_size)
        try:
            self.evaluation  # noqa: B018 (built to be checked)
        except FieldError as error:
            raise error.renamed(f"eval_{error.field}") from None

    @property
    def evaluation(self) -> Attack:
        """The per-epoch evaluation attack: tools.evaluate's `pgd` at eval_steps and
        eval_step_size."""
        return Attack(
            "pgd",
            eps=self.eps,
            norm=self.norm,
            steps=self.eval_steps,
            step_size=self.eval_step_size,
        )

    def matches_threat_model(self, settings: dict) -> bool:
        """Whether tools.evaluate's `settings` attack within this norm and eps."""
        return settings.get("norm") == self.norm and math.isclose(settings.get("eps", -1), self.eps)

    def matches_evaluation(self, settings: dict) -> bool:
        """Whether tools.evaluate's PGD `settings` are this per-epoch evaluation's."""
        evaluation = self.evaluation
        return (
            self.matches_threat_model(settings)
            and settings.get("steps") == evaluation.steps
            and math.isclose(settings.get("step_size") or -1, evaluation.step_size)
        )
