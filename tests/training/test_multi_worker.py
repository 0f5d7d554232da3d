"""Two `python -m tools.train` workers on 127.0.0.1 under MultiWorkerMirroredStrategy."""

import json
import os
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
from support import ROOT, TINY_TRAINING, run_tool

from tf_advreg.training import checkpoints, head

MULTI_WORKER = (
    *TINY_TRAINING,
    "--tune_dataset=",
    "--pretrain_subset=300",
    "--strategy=multi_worker",  # with --jit_compile=false: XLA has no CPU collectives
)
DEADLINE_S = 240
# How long the survivors of a killed worker may take to stop (TF's heartbeats take ~10 s).
STOP_BOUND_S = 90


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def start_workers(workdir, tmp_path, flags, ports):
    """One `tools.train` process per port, worker i with its own scratch $TMPDIR tmp<i>."""
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    processes = []
    for index in range(len(ports)):
        scratch = tmp_path / f"tmp{index}"
        scratch.mkdir(exist_ok=True)
        env = dict(
            os.environ,
            TF_CPP_MIN_LOG_LEVEL="2",
            TMPDIR=str(scratch),
            TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}}),
        )
        processes.append(
            subprocess.Popen(
                [sys.executable, "-m", "tools.train", f"--workdir={workdir}", *flags],
                cwd=ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    return processes


def run_workers(workdir, tmp_path, flags) -> list[tuple[int, str, str]]:
    """Two workers to the end (or the deadline): each one's exit code, stdout and stderr."""
    processes = []
    try:
        processes = start_workers(workdir, tmp_path, flags, free_ports(2))
        deadline = time.monotonic() + DEADLINE_S
        outputs = [p.communicate(timeout=max(1, deadline - time.monotonic())) for p in processes]
    finally:
        for p in processes:
            p.kill()
            p.wait()
    return [(p.returncode, out, err) for p, (out, err) in zip(processes, outputs)]


def worker1_checkpoints(tmp_path, epoch: int) -> list:
    """Worker 1's checkpoints of `epoch` in its scratch directories (one per run)."""
    scratches = (tmp_path / "tmp1").glob("tf_advreg-worker1-pretrain-*")
    return [c for c in (checkpoints.checkpoint_dir(s, epoch) for s in scratches) if c.exists()]


def assert_in_lockstep(mine, other, global_steps: int) -> None:
    """Gradients are all-reduced and BatchNorm's moving statistics kept as one copy (their mean
    after each step with per-worker batch statistics, the default; identical by construction
    when synchronized), so all weights and momenta agree bit for bit, and the step count is the
    global one."""
    a, b = checkpoints.build_network(mine), checkpoints.build_network(other)
    assert len(a.weights) > len(a.trainable_weights)
    for wa, wb in zip(a.weights, b.weights):
        np.testing.assert_array_equal(wa.numpy(), wb.numpy())
    with np.load(mine / "optimizer.npz") as sa, np.load(other / "optimizer.npz") as sb:
        assert sa.files == sb.files
        for key in sa.files:
            np.testing.assert_array_equal(sa[key], sb[key])
        assert int(sa["0000"]) == global_steps


def test_two_workers_train_in_lockstep_and_a_killed_one_stops_the_other_until_a_rerun(tmp_path):
    """Both workers' first epoch agrees; killing one stops the other with one line; the same
    commands again resume the last epoch, in lockstep again. Only the chief writes the workdir.

    One run for both: each worker starting TensorFlow and tracing its steps is most of the cost.
    """
    workdir = tmp_path / "run"
    flags = (*MULTI_WORKER, "--pretrain_epochs=2", "--eval_every=0")
    chief = workdir / "pretrain"
    processes = start_workers(workdir, tmp_path, flags, free_ports(2))
    try:
        deadline = time.monotonic() + DEADLINE_S
        while not (checkpoints.list_checkpoints(chief) and worker1_checkpoints(tmp_path, 1)):
            assert time.monotonic() < deadline and processes[0].poll() is None
            time.sleep(0.1)
        processes[1].kill()
        _, stderr = processes[0].communicate(timeout=STOP_BOUND_S)
    finally:
        for p in processes:
            p.kill()
            p.wait()
    assert processes[0].returncode == 1
    assert "Traceback" not in stderr
    (error,) = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert "worker0: another worker of the cluster stopped" in error
    assert "re-run each one's command" in error
    # Epoch 2 needs the killed worker's gradients: the chief cannot have finished it.
    assert [c.name for c in checkpoints.list_checkpoints(chief)] == ["epoch_0001"]
    (first,) = worker1_checkpoints(tmp_path, 1)
    assert_in_lockstep(checkpoints.checkpoint_dir(chief, 1), first, 3)  # 300 // 100, not 6

    outputs = run_workers(workdir, tmp_path, flags)
    for returncode, _, stderr in outputs:
        assert returncode == 0, stderr[-3000:]
    assert "epochs 2..2" in outputs[0][1]  # resumed after the chief's newest
    assert (chief / "checkpoints" / "epoch_0002" / "network.weights.h5").is_file()
    assert (chief / "saved_model" / "saved_model.pb").is_file()
    assert [json.loads(line)["epoch"] for line in (chief / "metrics.jsonl").open()] == [1, 2]
    assert sorted(p.name for p in workdir.iterdir()) == [
        ".tf_advreg_run",
        "config.json",
        "pretrain",
    ]
    assert not list((tmp_path / "tmp0").iterdir())  # the chief needs no scratch directory
    (resumed,) = worker1_checkpoints(tmp_path, 2)
    assert (resumed.parents[1] / "saved_model" / "saved_model.pb").is_file()  # its writes
    assert_in_lockstep(checkpoints.checkpoint_dir(chief, 2), resumed, 6)


@pytest.mark.slow
def test_two_workers_take_the_one_device_step_on_its_crops_with_weight_decay(tmp_path):
    """One step of natural training, synchronized BatchNorm, crop + flip and weight decay: the
    two workers agree bit for bit, and every BatchNorm moving statistic (which reads the step's
    images) and the classifier (which also reads the decay, each worker adding its share) match
    one device to float rounding.

    Not the body's weights: a ReLU whose input lies within float rounding of 0 passes its
    gradient in one run and not in the other (docs/distributed.md, measured 2.3e-3 here).
    """
    flags = (
        *(f for f in MULTI_WORKER if not f.startswith("--pretrain_subset")),
        "--pretrain_subset=100",
        "--sync_batchnorm",
        "--pretrain_objective=natural",
        "--augment=default",
        "--weight_decay=0.05",
        "--eval_every=0",
    )
    outputs = run_workers(tmp_path / "workers", tmp_path, flags)
    for returncode, _, stderr in outputs:
        assert returncode == 0, stderr[-3000:]
    (other,) = worker1_checkpoints(tmp_path, 1)
    assert_in_lockstep(checkpoints.checkpoint_dir(tmp_path / "workers" / "pretrain", 1), other, 1)
    single = [f.replace("--strategy=multi_worker", "--strategy=default") for f in flags]
    finished = run_tool("train", f"--workdir={tmp_path / 'single'}", *single)
    assert finished.returncode == 0, finished.stderr[-3000:]

    workers, one_device = (
        checkpoints.build_network(checkpoints.checkpoint_dir(tmp_path / run / "pretrain", 1))
        for run in ("workers", "single")
    )
    for a, b in zip(*(_outside_relu_gradients(n) for n in (workers, one_device))):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-5, err_msg=b.path)


def _outside_relu_gradients(network) -> list:
    """The weights whose one-step values no ReLU's gradient enters: the moving statistics
    (of the forward pass alone) and the classifier (of the features and the logits)."""
    return [*network.non_trainable_weights, *network.get_layer(head.HEAD).weights]
