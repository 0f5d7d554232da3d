"""The attack settings of a training phase: threat model, training PGD and evaluation PGD.

One frozen value, checked once where it is made (a config, or code building an objective), so
the objective, its per-epoch evaluation and the run's report read the same checked numbers.
"""

import dataclasses
import math

from tf_advreg.attacks.pgd import validate_attack_args


@dataclasses.dataclass(frozen=True)
class AttackSettings:
    """config.attack (tf_advreg.training.schema holds the defaults and the help)."""

    eps: float
    norm: str
    steps: int
    step_size: float
    eval_steps: int
    eval_step_size: float
    bn_training: bool = False

    def __post_init__(self):
        if isinstance(self.eps, float | int) and not 0 <= self.eps <= 1:
            raise ValueError(f"eps must be in [0, 1] (images are in [0, 1]), got {self.eps}.")
        validate_attack_args(
            eps=self.eps, step_size=self.step_size, steps=self.steps, norm=self.norm
        )
        validate_attack_args(eps=self.eps, step_size=self.eval_step_size, steps=self.eval_steps)

    def matches_threat_model(self, settings: dict) -> bool:
        """Whether tools.evaluate's `settings` attack within this norm and eps."""
        return settings.get("norm") == self.norm and math.isclose(settings.get("eps", -1), self.eps)

    def matches_evaluation(self, settings: dict) -> bool:
        """Whether tools.evaluate's PGD `settings` are this per-epoch evaluation's."""
        return (
            self.matches_threat_model(settings)
            and settings.get("steps") == self.eval_steps
            and math.isclose(settings.get("step_size") or -1, self.eval_step_size)
        )
