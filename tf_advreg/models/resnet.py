"""CIFAR-style ResNet18 (He et al. 2016), as used by Madry et al., TRADES and the thesis.

Differences from the ImageNet ResNet18: a 3x3 stride-1 stem and no max-pool, so 32x32 inputs
keep enough resolution for four stages. Per-channel normalization is the first layer, so the
model, the attacks and exported SavedModels all work on images in [0, 1] (pixel space, where the
threat model eps is defined).
"""

from collections.abc import Sequence

import keras

CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2471, 0.2435, 0.2616)
_STAGE_WIDTHS = (64, 128, 256, 512)
_BLOCKS_PER_STAGE = 2
# 8x the thesis model: its last stage's 3x3 convolutions hold 9 * 4096^2 weights (600 MB) each.
# A bound, so a typo (or a damaged network.json) is an error instead of an exhausted memory.
MAX_WIDTH = 512


def check_width(width) -> None:
    """Raises ValueError unless `width` is an integer in [1, MAX_WIDTH]."""
    if isinstance(width, bool) or not isinstance(width, int) or not 1 <= width <= MAX_WIDTH:
        raise ValueError(f"width must be an integer in [1, {MAX_WIDTH}], got {width!r}.")


def _conv_bn(x, filters: int, kernel_size: int, stride: int, name: str, synchronized: bool):
    x = keras.layers.Conv2D(
        filters,
        kernel_size,
        strides=stride,
        padding="same",
        use_bias=False,
        kernel_initializer="he_normal",
        name=f"{name}_conv",
    )(x)
    return keras.layers.BatchNormalization(
        momentum=0.9, epsilon=1e-5, synchronized=synchronized, name=f"{name}_bn"
    )(x)


def _basic_block(x, filters: int, stride: int, name: str, synchronized: bool):
    """Two 3x3 convolutions with an identity (or 1x1 projection) shortcut."""
    shortcut = x
    if stride != 1 or x.shape[-1] != filters:
        shortcut = _conv_bn(x, filters, 1, stride, f"{name}_shortcut", synchronized)
    y = _conv_bn(x, filters, 3, stride, f"{name}_1", synchronized)
    y = keras.layers.ReLU(name=f"{name}_relu1")(y)
    y = _conv_bn(y, filters, 3, 1, f"{name}_2", synchronized)
    y = keras.layers.Add(name=f"{name}_add")([y, shortcut])
    return keras.layers.ReLU(name=f"{name}_relu2")(y)


def resnet18(
    num_classes: int = 10,
    width: int = 64,
    input_shape: Sequence[int] = (32, 32, 3),
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    sync_batchnorm: bool = False,
) -> keras.Model:
    """Builds the CIFAR ResNet18 (11.17 M parameters at width 64 and 10 classes).

    Args:
      num_classes: number of output logits.
      width: channels of the first stage; the stages use width x (1, 2, 4, 8). Small widths
        (8, 16) make the tests and the embedded digits demo fast.
      input_shape: (height, width, channels); 8x8 and 16x16 grayscale work.
      mean, std: per-channel statistics of the training images in [0, 1]. Default: the
        CIFAR-10 statistics for 3 channels, 0.5 / 0.25 otherwise.
      sync_batchnorm: under a distribution strategy, compute BatchNorm's batch statistics over
        the global batch (one all-reduce per layer and training step). Off: each replica
        normalises by its own batch, as PyTorch DDP; the objectives' train step then sets the
        moving statistics to the replicas' mean (training/batchnorm.py).
    """
    check_width(width)
    channels = input_shape[-1]
    if mean is None:
        mean = CIFAR10_MEAN if channels == 3 else (0.5,) * channels
    if std is None:
        std = CIFAR10_STD if channels == 3 else (0.25,) * channels
    if len(mean) != channels or len(std) != channels:
        raise ValueError(
            f"mean and std need one value per channel ({channels}), got {len(mean)} and {len(std)}."
        )

    images = keras.Input(shape=tuple(input_shape), name="images")
    # Normalization stays float32 under mixed precision: bfloat16 keeps 8 bits of a pixel, so
    # the attack's small steps (a 0.001 start, a 0.003 step) would vanish before the first conv.
    x = keras.layers.Normalization(
        mean=list(mean), variance=[s * s for s in std], dtype="float32", name="normalize"
    )(images)
    x = keras.layers.ReLU(name="stem_relu")(_conv_bn(x, width, 3, 1, "stem", sync_batchnorm))
    for stage, stage_width in enumerate(_STAGE_WIDTHS):
        filters = stage_width * width // 64
        for block in range(_BLOCKS_PER_STAGE):
            stride = 2 if stage > 0 and block == 0 else 1
            x = _basic_block(
                x, filters, stride, f"stage{stage + 1}_block{block + 1}", sync_batchnorm
            )
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    # Logits stay float32 under mixed precision: losses and attack gradients need the range.
    logits = keras.layers.Dense(num_classes, dtype="float32", name="logits")(x)
    return keras.Model(images, logits, name=f"resnet18_w{width}")
