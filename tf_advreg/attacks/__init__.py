"""Adversarial attacks on models that map images in [0, 1] to logits."""

from tf_advreg.attacks.geometry import GEOMETRIES, L2Ball, LinfBall
from tf_advreg.attacks.pgd import attack_loss, fgsm, pgd, validate_attack_args
from tf_advreg.attacks.settings import ATTACK_LOSSES, Attack, AttackSettings

__all__ = [
    "ATTACK_LOSSES",
    "GEOMETRIES",
    "Attack",
    "AttackSettings",
    "L2Ball",
    "LinfBall",
    "attack_loss",
    "fgsm",
    "pgd",
    "validate_attack_args",
]
