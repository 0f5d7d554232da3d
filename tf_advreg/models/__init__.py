"""Network architectures. Every model takes images in [0, 1] and returns float32 logits."""

from tf_advreg.models.resnet import resnet18

__all__ = ["resnet18"]
