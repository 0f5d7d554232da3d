"""Two `python -m tools.train` workers on 127.0.0.1 under MultiWorkerMirroredStrategy."""

import json
import os
import socket
import subprocess
import sys
import time

import numpy as np
from support import ROOT, TINY_TRAINING

from tf_advreg.training import checkpoints

MULTI_WORKER = (
    *TINY_TRAINING,
    "--tune_dataset=",
    "--pretrain_subset=300",
    "--strategy=multi_worker",  # with --jit_compile=false: XLA has no CPU collectives
    "--sync_batchnorm",
)
DEADLINE_S = 240


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def test_two_workers_train_in_lockstep_and_only_the_chief_writes(tmp_path):
    workdir = tmp_path / "run"
    cluster = {"worker": [f"127.0.0.1:{port}" for port in free_ports(2)]}
    processes = []
    try:
        for index in range(2):
            scratch = tmp_path / f"tmp{index}"
            scratch.mkdir()
            env = dict(
                os.environ,
                TF_CPP_MIN_LOG_LEVEL="2",
                TMPDIR=str(scratch),
                TF_CONFIG=json.dumps(
                    {"cluster": cluster, "task": {"type": "worker", "index": index}}
                ),
            )
            processes.append(
                subprocess.Popen(
                    [sys.executable, "-m", "tools.train", f"--workdir={workdir}", *MULTI_WORKER],
                    cwd=ROOT,
                    env=env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
            )
        deadline = time.monotonic() + DEADLINE_S
        outputs = [p.communicate(timeout=max(1, deadline - time.monotonic())) for p in processes]
    finally:
        for p in processes:
            p.kill()
            p.wait()
    for p, (_, stderr) in zip(processes, outputs):
        assert p.returncode == 0, stderr[-3000:]

    chief = workdir / "pretrain"
    assert (chief / "checkpoints" / "epoch_0001" / "network.weights.h5").is_file()
    assert (chief / "saved_model" / "saved_model.pb").is_file()
    assert [json.loads(line)["epoch"] for line in (chief / "metrics.jsonl").open()] == [1]
    assert sorted(p.name for p in workdir.iterdir()) == ["config.json", "pretrain"]
    assert not list((tmp_path / "tmp0").iterdir())  # the chief needs no scratch directory

    (scratch,) = (tmp_path / "tmp1").glob("tf_advreg-worker1-pretrain-*")
    assert (scratch / "saved_model" / "saved_model.pb").is_file()  # its writes went here
    mine, other = checkpoints.checkpoint_dir(chief, 1), checkpoints.checkpoint_dir(scratch, 1)
    # Gradients are all-reduced and BatchNorm statistics synchronized, so all weights (moving
    # statistics included) and momenta agree bit for bit.
    a, b = checkpoints.build_network(mine), checkpoints.build_network(other)
    assert len(a.weights) > len(a.trainable_weights)
    for wa, wb in zip(a.weights, b.weights):
        np.testing.assert_array_equal(wa.numpy(), wb.numpy())
    with np.load(mine / "optimizer.npz") as sa, np.load(other / "optimizer.npz") as sb:
        assert sa.files == sb.files
        for key in sa.files:
            np.testing.assert_array_equal(sa[key], sb[key])
    assert int(np.load(mine / "optimizer.npz")["0000"]) == 3  # 300 // 100 global steps, not 6
