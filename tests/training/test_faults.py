"""Faults of the environment: a full disk, an unwritable workdir, a killed run, other CPUs:
reruns that must agree."""

import errno
import os
import signal
import subprocess
import sys

import keras
import pytest
from support import (
    ROOT,
    TINY_TRAINING,
    assert_one_line_error,
    assert_some_pair_identical,
    run_tool,
    wait_for_first_checkpoint,
)

from tf_advreg.models import resnet18
from tf_advreg.training import checkpoints
from tf_advreg.training.callbacks import read_metrics

ARGS = {"num_classes": 3, "width": 2, "input_shape": [8, 8, 1], "mean": [0.5], "std": [0.25]}
PRETRAIN_ONLY = ("--tune_dataset=", "--pretrain_subset=300")


def train(workdir, *args, timeout=300):
    return run_tool(
        "train", f"--workdir={workdir}", *TINY_TRAINING, *PRETRAIN_ONLY, *args, timeout=timeout
    )


def _network_and_optimizer():
    keras.utils.set_random_seed(0)
    network = resnet18(**ARGS)
    optimizer = keras.optimizers.SGD(0.1, momentum=0.9)
    optimizer.build(network.trainable_variables)
    return network, optimizer


def test_a_full_disk_names_the_checkpoint_and_keeps_the_earlier_ones(tmp_path, monkeypatch):
    network, optimizer = _network_and_optimizer()
    first = checkpoints.save(tmp_path, 1, network, ARGS, optimizer, {"loss": 1.0})
    before = {p.name: p.read_bytes() for p in first.iterdir()}

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(checkpoints.np, "savez", disk_full)
    with pytest.raises(OSError, match="could not write the checkpoint .*epoch_0002") as raised:
        checkpoints.save(tmp_path, 2, network, ARGS, optimizer, {"loss": 0.5})
    assert raised.value.errno == errno.ENOSPC
    assert "earlier checkpoints are intact" in str(raised.value)
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["epoch_0001"]
    assert {p.name: p.read_bytes() for p in first.iterdir()} == before
    assert checkpoints.restore_latest(tmp_path, *_network_and_optimizer())["epoch"] == 1


def test_an_unwritable_workdir_is_one_line_before_any_training(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    result = train(blocker / "run", timeout=120)
    assert_one_line_error(result, "Not a directory")
    assert "epoch" not in result.stdout  # it failed before training started
    assert blocker.read_text() == "not a directory"


def _one_cpu() -> None:
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})


# Two deterministic epochs on the whole pretrain split: a killed run must end where this does.
DETERMINISTIC = ("--tune_dataset=", "--pretrain_epochs=2", "--seed=3", "--deterministic")


def _deterministic_run(workdir, *flags, preexec_fn=None):
    result = run_tool(
        "train",
        f"--workdir={workdir}",
        *TINY_TRAINING,
        *DETERMINISTIC,
        *flags,
        preexec_fn=preexec_fn,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def _final_weights(workdir) -> list:
    network = checkpoints.build_network(checkpoints.checkpoint_dir(workdir / "pretrain", 2))
    return [weight.numpy() for weight in network.weights]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """Reference runs of the two tests below, on all CPUs, never interrupted, made on demand:
    `uninterrupted(i)` is the i-th one."""
    root = tmp_path_factory.mktemp("uninterrupted")
    made = {}

    def reference(index: int):
        if index not in made:
            made[index] = root / f"run{index}"
            _deterministic_run(made[index])
        return made[index]

    return reference


def test_killed_run_resumes_to_the_uninterrupted_result(tmp_path, uninterrupted):
    """SIGKILL mid-run, then the same command: the weights of a run never interrupted."""

    def killed_and_resumed(index: int):
        killed = tmp_path / f"killed{index}"
        command = [
            sys.executable,
            "-m",
            "tools.train",
            f"--workdir={killed}",
            *TINY_TRAINING,
            *DETERMINISTIC,
        ]
        process = subprocess.Popen(
            command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            wait_for_first_checkpoint(process, killed / "pretrain")
            process.send_signal(signal.SIGKILL)
        finally:
            process.kill()
            process.wait()
        assert "epochs 2..2" in _deterministic_run(killed).stdout
        return killed

    assert_some_pair_identical(killed_and_resumed, uninterrupted, _final_weights)


def test_evaluating_only_the_final_epoch_changes_neither_the_weights_nor_its_numbers(
    tmp_path, uninterrupted
):
    """Tables evaluate only the final epoch (configs/thesis/base.chapter5), Figures 5-x every
    epoch: a run both share must give the table the same model and numbers either way."""

    def final_only(index: int):
        workdir = tmp_path / f"final_only{index}"
        _deterministic_run(workdir, "--eval_every=0")
        return workdir

    candidate, reference = assert_some_pair_identical(final_only, uninterrupted, _final_weights)

    def evaluations(workdir) -> list[dict]:
        records = read_metrics(workdir / "pretrain" / "metrics.jsonl")
        return [
            {k: v for k, v in r.items() if k.split("/")[0] in ("test", "train")} for r in records
        ]

    first, final = evaluations(candidate)
    assert not first and final
    assert final == evaluations(reference)[-1]


@pytest.mark.slow
@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs to take one away")
def test_deterministic_runs_give_bit_identical_weights_on_any_cpus_under_load(
    tmp_path, uninterrupted
):
    """The candidate runs may use one CPU only, and share it with a busy process.

    Without fixed thread pools, the CPU count changed how kernels split their sums.
    """

    def on_one_busy_cpu(index: int):
        workdir = tmp_path / f"one_busy_cpu{index}"
        hog = subprocess.Popen([sys.executable, "-c", "while True: pass"], preexec_fn=_one_cpu)
        try:
            _deterministic_run(workdir, preexec_fn=_one_cpu)
        finally:
            hog.kill()
            hog.wait()
        return workdir

    assert_some_pair_identical(on_one_busy_cpu, uninterrupted, _final_weights)
