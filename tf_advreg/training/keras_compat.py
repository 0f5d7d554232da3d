"""Two fixes that let Keras 3's `fit`/`evaluate` run under MultiWorkerMirroredStrategy.

Keras 3 (checked with 3.15) fails with more than one worker in two places of its TensorFlow
trainer, for any model whose steps return scalar metrics:
  * before the first step it averages the first batch across workers with one
    `strategy.reduce` call on the whole (images, labels) tuple, which the collective
    implementation cannot take: "Attempt to convert a value (PerReplica:{...}) with an
    unsupported type ... to a Tensor";
  * after every step it averages each output with `strategy.reduce("MEAN", v, axis=0)`, which
    fails on scalars: "Invalid reduction dimension 0 for input with 0 dimensions".
`patch_for_multi_worker` replaces those two functions with versions that differ only with
more than one worker: the first batch is taken from the local replica (Keras only needs its
shapes), and scalar outputs are averaged across workers without an axis. Everything else goes
to Keras's own code. It is applied when `--strategy=multi_worker` creates its strategy.
"""

import tensorflow as tf
from keras.src.backend.tensorflow import trainer as tf_trainer

_PATCHED = "_tf_advreg_multi_worker_patch"


def _multi_worker(strategy: tf.distribute.Strategy) -> bool:
    return (
        isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
        and strategy.extended._in_multi_worker_mode()
    )


def patch_for_multi_worker() -> None:
    """Idempotent; raises a clear error when this Keras lacks the functions it replaces."""
    trainer_class = tf_trainer.TensorFlowTrainer
    if getattr(trainer_class, _PATCHED, False):
        return
    symbolic_build = getattr(trainer_class, "_maybe_symbolic_build", None)
    reduce_per_replica = getattr(tf_trainer, "reduce_per_replica", None)
    if symbolic_build is None or reduce_per_replica is None:
        raise RuntimeError(
            "--strategy=multi_worker needs Keras 3.10-3.15's TensorFlow trainer internals "
            "(TensorFlowTrainer._maybe_symbolic_build, reduce_per_replica); this Keras has "
            "other ones: see tf_advreg/training/keras_compat.py."
        )

    def build_from_local_batch(self, iterator=None, data_batch=None):
        strategy = self.distribute_strategy
        if iterator is not None and _multi_worker(strategy):
            for _, _, batches in iterator:
                first = next(batches)
                data_batch = tf.nest.map_structure(
                    lambda value: strategy.experimental_local_results(value)[0], first
                )
                break
            iterator = None
        return symbolic_build(self, iterator=iterator, data_batch=data_batch)

    def reduce_scalars_across_workers(values, strategy, reduction):
        if reduction in ("auto", "mean") and _multi_worker(strategy):
            return tf.nest.map_structure(
                lambda value: strategy.reduce(
                    "MEAN", value, axis=None if value.shape.rank == 0 else 0
                ),
                values,
            )
        return reduce_per_replica(values, strategy, reduction)

    trainer_class._maybe_symbolic_build = build_from_local_batch
    tf_trainer.reduce_per_replica = reduce_scalars_across_workers
    setattr(trainer_class, _PATCHED, True)
