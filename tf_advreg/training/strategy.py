"""Choosing a tf.distribute strategy, which worker writes the outputs, and what a lost worker
means to the others."""

import contextlib
from collections.abc import Iterator

import tensorflow as tf

from tf_advreg.training import keras_compat

STRATEGIES = ("auto", "default", "mirrored", "multi_worker")


def make_strategy(name: str) -> tf.distribute.Strategy:
    """auto: MirroredStrategy over all local GPUs when there are several, else the default.

    multi_worker reads the cluster from the standard TF_CONFIG environment variable; it must be
    created before any other TensorFlow op runs.
    """
    if name == "auto":
        name = "mirrored" if len(tf.config.list_physical_devices("GPU")) > 1 else "default"
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        keras_compat.patch_for_multi_worker()
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(f"Unknown strategy {name!r}; choose one of {', '.join(STRATEGIES)}.")


def _cluster(strategy: tf.distribute.Strategy) -> tuple[object, dict]:
    resolver = getattr(strategy, "cluster_resolver", None)
    return resolver, (resolver.cluster_spec().as_dict() if resolver is not None else {})


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Only the chief writes checkpoints, logs and exports (TF's multi-worker convention)."""
    resolver, cluster = _cluster(strategy)
    if not cluster:
        return True
    if "chief" in cluster:
        return resolver.task_type == "chief"
    return resolver.task_type == "worker" and resolver.task_id == 0


def task_name(strategy: tf.distribute.Strategy) -> str:
    """This process's place in the cluster, e.g. "worker1"; "chief" outside a cluster."""
    resolver, cluster = _cluster(strategy)
    if not cluster:
        return "chief"
    return f"{resolver.task_type}{resolver.task_id}"


def barrier(strategy: tf.distribute.Strategy) -> None:
    """Waits until every worker gets here: what the chief wrote before it is complete.

    A one-number all-reduce; a no-op outside a cluster.
    """
    if _cluster(strategy)[1]:
        strategy.reduce("SUM", strategy.run(lambda: tf.constant(1.0)), axis=None)


class WorkerLostError(RuntimeError):
    """Another worker of the cluster stopped: its collectives can never complete."""


@contextlib.contextmanager
def stop_when_a_worker_is_lost(strategy: tf.distribute.Strategy) -> Iterator[None]:
    """Turns the error a collective ends with when a peer dies into one WorkerLostError.

    TensorFlow's coordination service (which MultiWorkerMirroredStrategy starts) notices a dead
    peer by a reset connection or by missed heartbeats, and aborts every collective in flight
    or to come with UnavailableError; outside a cluster the errors pass through unchanged.
    """
    try:
        yield
    except (tf.errors.UnavailableError, tf.errors.DeadlineExceededError) as error:
        if not _cluster(strategy)[1]:
            raise
        cause = error.message.strip().splitlines()[0].rpartition("aborted by: ")[2]
        raise WorkerLostError(
            f"{task_name(strategy)}: another worker of the cluster stopped ({cause}); stop "
            "every worker, then re-run each one's command to resume from the chief's newest "
            "checkpoint."
        ) from error
