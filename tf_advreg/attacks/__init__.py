"""Adversarial attacks on models that map images in [0, 1] to logits."""

from tf_advreg.attacks.geometry import GEOMETRIES, L2Ball, LinfBall
from tf_advreg.attacks.pgd import ATTACK_LOSSES, attack_loss, fgsm, pgd, validate_attack_args
from tf_advreg.attacks.settings import AttackSettings

__all__ = [
    "ATTACK_LOSSES",
    "GEOMETRIES",
    "AttackSettings",
    "L2Ball",
    "LinfBall",
    "attack_loss",
    "fgsm",
    "pgd",
    "validate_attack_args",
]
