"""Bit-identical reruns (--deterministic): TF op determinism, and thread pools of a fixed size.

Eigen and oneDNN split a kernel's work, and so the order of its floating-point sums, by the size
of TensorFlow's thread pools, which TensorFlow takes from the CPUs the process may use. With op
determinism alone, a run allowed one CPU and a run allowed two differed after four TRADES steps
in 269,028 of 703,581 weights (by up to 6.2e-2). With pools of DETERMINISTIC_THREADS threads
the two agree bit for bit, whatever CPUs (or how busy ones) the process gets.
"""

import tensorflow as tf

DETERMINISTIC_THREADS = 4


def enable_determinism() -> None:
    """Call before TensorFlow runs its first op (the pools cannot be resized afterwards)."""
    tf.config.threading.set_intra_op_parallelism_threads(DETERMINISTIC_THREADS)
    tf.config.threading.set_inter_op_parallelism_threads(DETERMINISTIC_THREADS)
    tf.config.experimental.enable_op_determinism()
