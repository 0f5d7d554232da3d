"""Weight averaging: an exponential moving average (EMA) of the network, updated every step.

After update t (t = 0, 1, ...; the weights w_t are those after the step's optimizer update):

    a_0 = w_0
    a_t = d_t * a_{t-1} + (1 - d_t) * w_t,   d_t = min(decay, (1 + t) / (10 + t))   (t >= 1)

d_t is `tf.train.ExponentialMovingAverage`'s decay with `num_updates = t`: it warms up from
0.18 at t = 1 to `decay`, so early weights, far from the final ones, fade fast. The average
starts at the first update rather than at construction, so weights restored after the model
is built (a tune phase's start) are what it averages from.

All the network's variables are averaged, BatchNorm's moving mean and variance included (as
PyTorch EMA helpers that average the whole `state_dict` do): the averaged network's
statistics are the EMA of the trained network's, not recomputed for the averaged weights.
That costs nothing per step and needs no extra pass over the data; with a decay close to 1
both change slowly, so the statistics follow the averaged weights closely.

The averages live in a clone of the network (`WeightAverage.network`), so evaluation, export
(`saved_model_ema`) and checkpoints (`network_ema.weights.h5`) treat it as any network.
Under tf.distribute each replica averages its own copy of the variables, which the optimizer
keeps identical (BatchNorm's statistics: synchronized BatchNorm or training/batchnorm.py).
"""

import keras
import tensorflow as tf

SAVED_MODEL = "saved_model_ema"  # the averaged network's export, beside the phase's saved_model
WEIGHTS_FILE = "network_ema.weights.h5"  # the averaged network in a checkpoint


class WeightAverage:
    """The EMA of a network's variables; `update` it after each optimizer step."""

    def __init__(self, network: keras.Model, decay: float):
        if not 0 < decay < 1:
            raise ValueError(f"the weight-averaging decay must be in (0, 1), got {decay}.")
        self.decay = float(decay)
        self.network = keras.models.clone_model(network)
        # Updates so far; the same on every replica (the first's is kept).
        self.updates = keras.Variable(
            0, dtype="int64", trainable=False, name="ema_updates", aggregation="only_first_replica"
        )

    def current_decay(self) -> tf.Tensor:
        """d_t for the next update: 0 at the first (the average starts as a copy)."""
        t = tf.cast(self.updates.value, tf.float32)
        warm = tf.minimum(self.decay, (1.0 + t) / (10.0 + t))
        return tf.where(t > 0, warm, 0.0)

    def update(self, network: keras.Model) -> None:
        """a <- d_t a + (1 - d_t) w for every variable of `network` (the one it was cloned from)."""
        decay = self.current_decay()
        for average, variable in zip(self.network.weights, network.weights):
            average.assign(decay * average + (1.0 - decay) * variable)
        self.updates.assign_add(1)
