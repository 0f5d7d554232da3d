"""Tuning on other classes than pretraining: the tune network keeps the pretrained body and
gets a freshly initialised classifier of the tune data's size.

Pretraining on ImageNet without the CIFAR-10 classes (858 classes) and tuning on CIFAR-10
(10) needs it: every layer but the last transfers, the last cannot.
"""

from pathlib import Path

import keras

from tf_advreg import data
from tf_advreg.training import checkpoints

# The classifier's layer name in tf_advreg.models.resnet18.
HEAD = "logits"


def same_classes(config, data_dir: str | None) -> bool:
    """Whether the tune network can be evaluated on the pretraining data: both datasets set and
    with the same class count (a 10-way head cannot score 858-class labels)."""
    if not (config.pretrain.dataset and config.tune.dataset):
        return False
    pretrain = data.info(config.pretrain.dataset, data_dir)
    return pretrain.num_classes == data.info(config.tune.dataset, data_dir).num_classes


def restore_body(checkpoint: Path, network: keras.Model, seed: int) -> None:
    """Loads every layer of `checkpoint` into `network` except the classifier, which gets
    new weights drawn from `seed` (Glorot-uniform kernel, zero bias: Keras's Dense default)."""
    source = checkpoints.build_network(checkpoint)
    for layer in network.layers:
        if layer.name == HEAD:
            kernel, bias = layer.get_weights()
            initializer = keras.initializers.GlorotUniform(seed=seed)
            layer.set_weights([initializer(kernel.shape).numpy(), bias * 0])
        elif layer.weights:
            layer.set_weights(source.get_layer(layer.name).get_weights())
    print(
        f"tune: new {network.get_layer(HEAD).units}-way classifier (seed {seed}); the body comes "
        f"from {checkpoint} ({source.get_layer(HEAD).units} classes)",
        flush=True,
    )
