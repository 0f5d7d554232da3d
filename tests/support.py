"""Helpers shared by test files: tiny data, and running the command-line tools."""

import contextlib
import io
import logging
import os
import runpy
import subprocess
import sys
import time
import traceback
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

ROOT = Path(__file__).resolve().parents[1]
# Training flags small enough for a CLI run of a few seconds on the digits data.
TINY_TRAINING = (
    "--width=4",
    "--batch_size=100",
    "--pretrain_epochs=1",
    "--tune_epochs=1",
    "--attack_steps=2",
    "--eval_attack_steps=2",
    "--train_eval_subset=100",
    "--jit_compile=false",
)

# The same idea as config overrides, for in-process phases: a two-epoch pretraining on 200
# digits, no tuning.
TINY_PRETRAINING = {
    "tune.dataset": "",
    "pretrain.subset": 200,
    "pretrain.epochs": 2,
    "model.width": 4,
    "batch_size": 100,
    "attack.steps": 1,
    "attack.eval_steps": 1,
    "eval.train_subset": 50,
    "eval.test_subset": 100,
    "jit_compile": "false",
}


def run_tool(
    tool: str, *args: str, timeout: float = 600, preexec_fn=None
) -> subprocess.CompletedProcess:
    """Runs `python -m tools.<tool>` from the repository root; returns the finished process.

    `preexec_fn` runs in the child before the tool starts (e.g. to restrict its CPUs).
    """
    return subprocess.run(
        [sys.executable, "-m", f"tools.{tool}", *args],
        cwd=ROOT,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
        capture_output=True,
        text=True,
        timeout=timeout,
        preexec_fn=preexec_fn,
    )


def run_tool_in_process(tool: str, *args: str) -> subprocess.CompletedProcess:
    """Runs `python -m tools.<tool>` inside this process, answering as `run_tool` does.

    It spares the bad-input checks a TensorFlow start each. The tool's flags are defined afresh
    and removed again; an uncaught exception comes back as a traceback on stderr with exit
    status 1, as from a real process. Keep some run_tool checks for what only a process shows.
    """
    from absl import app, flags

    app.define_help_flags()  # once per process in app.run: keep them across runs
    known_flags, was_parsed = set(flags.FLAGS), flags.FLAGS.is_parsed()
    saved_argv, saved_handlers, saved_level = sys.argv, logging.root.handlers, logging.root.level
    stdout, stderr = io.StringIO(), io.StringIO()
    logging.root.handlers = [*saved_handlers, logging.StreamHandler(stderr)]
    sys.argv = [f"tools/{tool}.py", *args]
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            runpy.run_module(f"tools.{tool}", run_name="__main__", alter_sys=True)
        returncode = 0
    except SystemExit as stop:  # as the interpreter ends: a message goes to stderr, status 1
        returncode = stop.code or 0
        if not isinstance(stop.code, int | None):
            print(stop.code, file=stderr)
            returncode = 1
    except Exception:
        traceback.print_exc(file=stderr)
        returncode = 1
    finally:
        sys.argv, logging.root.handlers = saved_argv, saved_handlers
        logging.root.setLevel(saved_level)
        for name in set(flags.FLAGS) - known_flags:
            delattr(flags.FLAGS, name)
        flags.FLAGS.unparse_flags()
        if was_parsed:
            flags.FLAGS.mark_as_parsed()
    return subprocess.CompletedProcess(
        ["tools." + tool, *args], returncode, stdout.getvalue(), stderr.getvalue()
    )


def assert_one_line_error(result: subprocess.CompletedProcess, message: str) -> None:
    """A user error: non-zero exit, one `error:` line holding `message`, no traceback."""
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1 and message in error_lines[0], result.stderr[-2000:]


def separable_images(num_examples: int = 64, size: int = 8, num_classes: int = 4, seed: int = 0):
    """Images whose class is a bright square at a class-specific place: easy to learn."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, num_classes, num_examples).astype("int32")
    images = rng.uniform(0.0, 0.3, (num_examples, size, size, 1)).astype("float32")
    half = size // 2
    for i, label in enumerate(labels):
        row, col = divmod(int(label), 2)
        images[i, row * half : (row + 1) * half, col * half : (col + 1) * half] += 0.6
    return images, labels


def two_replicas() -> tf.distribute.MirroredStrategy:
    """MirroredStrategy over the two logical CPUs, summing through one device.

    Its CPU collectives would reuse instance keys across the strategies of one process: a
    later test whose gradients have another shape than an earlier one's then aborts.
    """
    return tf.distribute.MirroredStrategy(
        ["/cpu:0", "/cpu:1"], cross_device_ops=tf.distribute.ReductionToOneDevice()
    )


def assert_in_ball_and_box(adversarial, images, eps: float, norm: str = "linf") -> None:
    """The attack invariants: within eps of the input in `norm`, inside [0, 1], and moved."""
    adversarial = np.asarray(adversarial)
    delta = (adversarial - images).reshape(len(images), -1)
    size = np.abs(delta).max(axis=1) if norm == "linf" else np.linalg.norm(delta, axis=1)
    assert size.max() <= eps + 1e-6
    assert adversarial.min() >= 0.0 and adversarial.max() <= 1.0
    assert size.max() > 0  # it moved


def thesis_attack():
    """The thesis's attack settings, schema.ATTACK's defaults (eps 0.03, PGD-10 / PGD-20)."""
    from tf_advreg.attacks import AttackSettings
    from tf_advreg.training import schema

    return AttackSettings(**{name: field.default for name, field in schema.ATTACK.items()})


def wait_for_first_checkpoint(process: subprocess.Popen, phase_dir: Path) -> None:
    """Returns once `process` has saved its first epoch's checkpoint in `phase_dir`, or ended:
    the moment to kill or interrupt a run that has something to resume."""
    from tf_advreg.training import checkpoints

    first_checkpoint = checkpoints.checkpoint_dir(phase_dir, 1)
    deadline = time.monotonic() + 300
    while not first_checkpoint.exists() and process.poll() is None:
        assert time.monotonic() < deadline, "the run never finished its first epoch"
        time.sleep(0.05)


def assert_some_pair_identical(make_candidate, make_reference, arrays) -> tuple:
    """One of up to two candidate runs is bit-identical to one of up to two reference runs in
    every array `arrays(run)` returns; returns that (candidate, reference) pair.
    `make_candidate(i)` and `make_reference(i)` make (or return the already made) i-th run.

    TensorFlow on some CPUs, very rarely, changes a bit between two identical runs (seen with
    --deterministic twice: once one element by 1 ulp, once early enough that the tiny network,
    which is chaotic, spread it to every weight; and in-process once, 6 optimizer slots by
    2 ulp), and the cause is not found. The faults these tests guard against (a resume that
    restores the wrong state, thread pools sized by the CPUs) are systematic: every candidate
    differs from every reference. So a second run of each kind is made only when the first
    pair differs, and one identical pair shows the fault is absent.
    """
    loaded = {}

    def identical(candidate, reference) -> bool:
        for run in (candidate, reference):
            if run not in loaded:
                loaded[run] = arrays(run)
        return _identical(loaded[candidate], loaded[reference])

    first = (make_candidate(0), make_reference(0))
    if identical(*first):
        return first
    candidates = [first[0], make_candidate(1)]
    references = [first[1], make_reference(1)]
    pairs = [(c, r) for c in candidates for r in references]
    for pair in pairs[1:]:
        if identical(*pair):
            return pair
    differences = [_largest_difference(loaded[c], loaded[r]) for c, r in pairs]
    pytest.fail(f"no candidate run equals a reference run; largest differences {differences}")


def _identical(first: list, second: list) -> bool:
    return len(first) == len(second) and all(np.array_equal(a, b) for a, b in zip(first, second))


def _largest_difference(first: list, second: list) -> float:
    if [np.shape(a) for a in first] != [np.shape(b) for b in second]:
        return float("inf")
    return float(max(np.max(np.abs(np.subtract(a, b)), initial=0.0) for a, b in zip(first, second)))
