"""Network architectures, by name. Every model takes images in [0, 1] and returns float32
logits, and is rebuilt from the name and arguments its checkpoint's network.json records."""

import keras

from tf_advreg.models.resnet import check_width, resnet18

MODELS = {"resnet18": resnet18}
DEFAULT_MODEL = "resnet18"  # what network.json files written before `name` existed hold


def check_name(name: str) -> None:
    """Raises ValueError naming an unknown architecture and the known ones."""
    if name not in MODELS:
        raise ValueError(f"Unknown model name {name!r}; choose one of {', '.join(MODELS)}.")


def build(name: str = DEFAULT_MODEL, **args) -> keras.Model:
    """The architecture `name` built with `args` (a network.json's contents)."""
    check_name(name)
    return MODELS[name](**args)


__all__ = ["DEFAULT_MODEL", "MODELS", "build", "check_name", "check_width", "resnet18"]
