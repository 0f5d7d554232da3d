"""AutoAttack (Croce & Hein 2020): fixed attacks in a fixed order, each on the examples that
every earlier one failed to break, so one number is comparable across papers (RobustBench).

The sequence follows fra31/auto-attack's autoattack/autoattack.py at commit a392200 (lines
306-337): the standard version runs APGD-CE, APGD-T (9 targets), FAB-T and Square (5,000
queries), 100 iterations and one restart each; the "rand" version, for randomized models, runs
APGD-CE and APGD-DLR with gradients averaged over 20 draws (EOT).
"""

import dataclasses
import time
from collections.abc import Callable, Iterable, Sequence

import numpy as np
import tensorflow as tf
from absl import logging

from tf_advreg.attacks import Attack
from tf_advreg.evaluation import fab
from tf_advreg.evaluation import square as square_attack
from tf_advreg.evaluation.robustness import Outcome, compile_attack

STEPS = 100  # APGD iterations in every version
EOT_DRAWS = 20  # gradients averaged per APGD iterate in the "rand" version
VERSIONS = {
    "autoattack": (
        ("apgd-ce", STEPS, 1),
        ("apgd-t", STEPS, 1),
        ("fab-t", fab.ITERATIONS, 1),
        ("square", square_attack.QUERIES, 1),
    ),
    "autoattack-rand": (("apgd-ce", STEPS, EOT_DRAWS), ("apgd-dlr", STEPS, EOT_DRAWS)),
}
NATURAL = "natural"  # what `broken_by` says of an example misclassified without attack


def attacks(version: str, *, eps: float, norm: str, seed: int) -> list[Attack]:
    """The attacks of `version`, in the order they run."""
    if version not in VERSIONS:
        raise ValueError(f"Unknown AutoAttack version {version!r}; choose from {tuple(VERSIONS)}.")
    return [
        Attack(name, eps=eps, steps=steps, norm=norm, seed=seed, eot=eot)
        for name, steps, eot in VERSIONS[version]
    ]


@dataclasses.dataclass(frozen=True)
class Stage:
    """One attack of the sequence: how many examples it was run on, and how many it broke."""

    attack: Attack
    attacked: int
    broken: int
    robust_after: int
    seconds: float
    cpu_seconds: float  # process time, all threads: unlike wall time, not inflated by load

    def record(self, total: int) -> dict:
        return {
            "attack": self.attack.name,
            "settings": self.attack.settings(),
            "attacked": self.attacked,
            "broken": self.broken,
            "robust_accuracy": self.robust_after / total if total else None,
            "seconds": round(self.seconds, 3),
            "cpu_seconds": round(self.cpu_seconds, 3),
            "examples_per_second": round(self.attacked / self.seconds, 3) if self.seconds else None,
        }


def _load_all(batches: Iterable) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = [], []
    for x, y in batches:
        xs.append(np.asarray(x, np.float32))
        ys.append(np.asarray(y, np.int32))
    if not xs:
        return np.zeros((0, 1), np.float32), np.zeros(0, np.int32)
    return np.concatenate(xs), np.concatenate(ys)


def _chunks(indices: np.ndarray, batch_size: int, pad: bool):
    """Batches of `indices`, and the indices to feed: with `pad` (for XLA, which compiles
    per shape) the last batch is filled up by repeating its own entries, so every call has
    one shape. Padding changes no result: the repeats are attacked alongside and ignored, and
    every random draw of a batch's first rows is the same whatever the batch size."""
    for start in range(0, len(indices), batch_size):
        chunk = indices[start : start + batch_size]
        yield chunk, np.resize(chunk, batch_size) if pad else chunk


def _run_stage(survives: Callable, x, y, robust, attack: Attack, stage: int, batch_size, pad):
    """Runs `attack` on the robust examples; returns the indices it broke."""
    broken = []
    for number, (chunk, fed) in enumerate(_chunks(np.flatnonzero(robust), batch_size, pad)):
        seed = tf.random.experimental.stateless_fold_in([attack.seed, stage], number)
        alive = survives(tf.constant(x[fed]), tf.constant(y[fed]), seed).numpy()
        broken.append(chunk[~alive[: len(chunk)]])
    return np.concatenate(broken) if broken else np.zeros(0, np.int64)


def evaluate(
    model: Callable,
    batches: Iterable,
    version: str,
    sequence: Sequence[Attack],
    *,
    batch_size: int,
    jit_compile: bool = True,
) -> tuple[list[Outcome], dict]:
    """Runs `sequence` (normally attacks(version, ...)) over the whole data set, each attack on
    the examples that all before it failed to break.

    Returns the outcomes (natural accuracy, then the AutoAttack accuracy) and the `autoattack`
    record of result_schema.json: robust accuracy after each attack, time and throughput per
    attack, and per example the attack that broke it.
    """
    start = time.perf_counter()
    x, y = _load_all(batches)
    natural = compile_attack(model, Attack(NATURAL), jit_compile=jit_compile)
    robust = np.zeros(len(y), bool)
    for chunk, fed in _chunks(np.arange(len(y)), batch_size, pad=jit_compile):
        alive = natural(tf.constant(x[fed]), tf.constant(y[fed]), tf.constant([0, 0]))
        robust[chunk] = alive.numpy()[: len(chunk)]
    clean = robust.copy()
    broken_by = np.where(clean, None, NATURAL).astype(object)
    natural_seconds = time.perf_counter() - start
    stages = []
    for index, attack in enumerate(sequence):
        began, cpu_began = time.perf_counter(), time.process_time()
        attacked = int(robust.sum())
        survives = compile_attack(model, attack, jit_compile=jit_compile)
        broken = _run_stage(survives, x, y, robust, attack, index, batch_size, jit_compile)
        robust[broken] = False
        broken_by[broken] = attack.name
        seconds, cpu_seconds = time.perf_counter() - began, time.process_time() - cpu_began
        stages.append(Stage(attack, attacked, len(broken), int(robust.sum()), seconds, cpu_seconds))
        logging.info(
            "%s: broke %d of %d in %.1f s; robust %d/%d.",
            attack.name,
            len(broken),
            attacked,
            stages[-1].seconds,
            robust.sum(),
            len(y),
        )
    seconds = time.perf_counter() - start
    total = len(y)
    outcomes = [
        Outcome(NATURAL, Attack(NATURAL).settings(), clean, natural_seconds),
        Outcome(version, {"attacks": [a.name for a in sequence]}, robust, seconds),
    ]
    record = {
        "version": version,
        "eps": sequence[0].eps,
        "norm": sequence[0].norm,
        "seed": sequence[0].seed,
        "clean_accuracy": float(clean.mean()) if total else None,
        "robust_accuracy": float(robust.mean()) if total else None,
        "attacks": [stage.record(total) for stage in stages],
        "seconds": round(seconds, 3),
        "examples_per_second": round(total / seconds, 3) if seconds else None,
        "broken_by": broken_by.tolist(),
    }
    return outcomes, record
