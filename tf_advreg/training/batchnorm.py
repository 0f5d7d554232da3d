"""BatchNorm's moving statistics under tf.distribute: one copy, the replicas' mean.

Keras (TensorFlow backend) makes a BatchNormalization layer's moving mean and variance mirrored
variables without an aggregation, and in training mode each replica assigns its own copy from
its own share of the batch. Nothing reports it, and the copies drift apart: the per-epoch
evaluation then measures a different network on each replica, a checkpoint and the export keep
the first replica's copy only, and a resumed run, which gives every replica that copy, departs
from the uninterrupted one.

`share_moving_statistics` ends each train step: the statistics of every BatchNorm layer that
normalises by the replica's own batch become their mean over the replicas (one all-reduce for
all layers). The moving average is linear, so this is the moving average of the replicas'
batch statistics, each replica counted equally. PyTorch DDP (`broadcast_buffers=True`, its
default) instead copies rank 0's statistics to every rank at each forward pass, discarding the
others'. Synchronized BatchNorm (`--sync_batchnorm`) computes identical statistics on every
replica; nothing is exchanged then.
"""

import keras
import tensorflow as tf


def replica_statistics(network: keras.Model) -> list[keras.Variable]:
    """The moving statistics of `network`'s BatchNorm layers that use per-replica batches
    (nested models' too: Keras has no public walk over them, hence `_flatten_layers`)."""
    return [
        variable
        for layer in network._flatten_layers()
        if isinstance(layer, keras.layers.BatchNormalization) and not layer.synchronized
        for variable in (layer.moving_mean, layer.moving_variance)
    ]


def share_moving_statistics(network: keras.Model) -> None:
    """Inside a replica's step: each per-replica moving statistic becomes its mean over the
    replicas, the same value on all of them."""
    replica = tf.distribute.get_replica_context()
    statistics = replica_statistics(network)
    if replica is None or replica.num_replicas_in_sync == 1 or not statistics:
        return
    values = []
    for variable in statistics:
        # Placed on the replica's copy: a collective all-reduce (several workers) refuses a
        # value without a device, and a worker's step has no device scope of its own.
        with tf.device(variable.value.device):
            values.append(tf.identity(variable.value))
    means = replica.all_reduce("mean", values)
    for variable, mean in zip(statistics, means):
        variable.assign(mean)
