"""End-to-end runs of `python -m tools.train` on the embedded digits data, at tiny scale."""

import json
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from support import (
    ROOT,
    TINY_TRAINING,
    assert_one_line_error,
    run_tool,
    run_tool_in_process,
    wait_for_first_checkpoint,
)

from tf_advreg.training import checkpoints, workdir_lock
from tf_advreg.xla import resolve_jit_compile


def train(workdir, *args, timeout=600):
    return run_tool("train", f"--workdir={workdir}", *TINY_TRAINING, *args, timeout=timeout)


def train_in_process(workdir, *args):
    """`train` without a new process: for bad input, refused before any training."""
    return run_tool_in_process("train", f"--workdir={workdir}", *TINY_TRAINING, *args)


def snapshot(directory: Path) -> dict:
    """Every file under `directory` with its size and modification time."""
    return {
        str(p.relative_to(directory)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("run") / "digits"
    result = train(workdir)
    assert result.returncode == 0, result.stderr[-3000:]
    return workdir, result


def test_pretrain_then_tune_writes_every_output(finished_run):
    workdir, result = finished_run
    for phase in ("pretrain", "tune"):
        phase_dir = workdir / phase
        assert (phase_dir / "checkpoints" / "epoch_0001" / "network.weights.h5").is_file()
        assert (phase_dir / "saved_model" / "saved_model.pb").is_file()
        assert list((phase_dir / "tensorboard").glob("events.out.tfevents.*"))
        config = json.loads((phase_dir / "config.json").read_text())
        assert config["phase"]["name"] == phase
        records = [json.loads(line) for line in (phase_dir / "metrics.jsonl").open()]
        assert [r["epoch"] for r in records] == [1]
        for key in ("test/natural_accuracy", "test/adversarial_accuracy", "train/natural_accuracy"):
            assert 0.0 <= records[0][key] <= 1.0
    tune = json.loads((workdir / "tune" / "metrics.jsonl").read_text().splitlines()[0])
    assert "pretrain_train/adversarial_accuracy" in tune  # thesis Figures 5-1..5-4
    saved = json.loads((workdir / "config.json").read_text())
    assert saved["model"] == {"name": "resnet18", "width": 4, "sync_batchnorm": False}
    assert saved["pretrain"]["dataset"] == "digits"
    assert "tensorboard --logdir" in result.stdout
    assert str(workdir / "tune" / "saved_model") in result.stdout
    assert "Final metrics (tune, epoch 1)" in result.stdout


def test_tensorboard_holds_scalars_hparams_and_images(finished_run):
    workdir, _ = finished_run
    tags = set()
    for event_file in (workdir / "tune" / "tensorboard").glob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(event_file)):
            tags.update(value.tag for value in event.summary.value)
    expected = {
        "fit/loss",
        "fit/natural_accuracy",
        "fit/adversarial_accuracy",
        "test/natural_accuracy",
        "test/adversarial_accuracy",
        "train/adversarial_accuracy",
        "pretrain_train/adversarial_accuracy",
        "learning_rate",
        "examples_per_second",
        "images/clean",
        "images/adversarial",
        "images/perturbation",
        "_hparams_/session_start_info",
    }
    assert expected <= tags, expected - tags


def test_saved_model_gives_the_checkpoints_logits(finished_run):
    workdir, _ = finished_run
    checkpoint = checkpoints.list_checkpoints(workdir / "tune")[-1]
    network = checkpoints.build_network(checkpoint)
    images = np.random.default_rng(0).uniform(size=(5, 8, 8, 1)).astype("float32")
    serving = tf.saved_model.load(str(workdir / "tune" / "saved_model"))
    exported = serving.signatures["serving_default"](images=tf.constant(images))["logits"]
    np.testing.assert_allclose(exported.numpy(), network(images).numpy(), rtol=1e-5, atol=1e-5)


def test_tuning_starts_from_the_pretrained_weights(finished_run):
    workdir, _ = finished_run
    pretrained = checkpoints.build_network(checkpoints.list_checkpoints(workdir / "pretrain")[-1])
    tuned = checkpoints.build_network(checkpoints.list_checkpoints(workdir / "tune")[-1])
    fresh_init_distance = 0.0
    for p, t in zip(pretrained.trainable_weights, tuned.trainable_weights):
        fresh_init_distance = max(fresh_init_distance, float(np.abs(p.numpy() - t.numpy()).max()))
    # One tune epoch at lr 0.01 moves the weights a little, not as far as a fresh init would.
    assert 0 < fresh_init_distance < 0.5


def test_rerun_with_more_epochs_continues_at_the_next_epoch(finished_run, tmp_path):
    workdir = tmp_path / "run"
    shutil.copytree(finished_run[0], workdir)  # a copy: the other tests read the finished run
    # A run saved with jit_compile false continues under auto; config.json records the
    # resolved value.
    second = train(workdir, "--tune_epochs=2", "--jit_compile=auto")
    assert second.returncode == 0, second.stderr[-3000:]
    assert "epochs 2..2" in second.stdout
    assert "pretrain:" not in second.stdout  # the finished phase is not trained again
    saved = json.loads((workdir / "config.json").read_text())
    assert saved["jit_compile"] is resolve_jit_compile("auto")
    for phase, epochs in (("pretrain", [1]), ("tune", [1, 2])):
        records = [json.loads(line) for line in (workdir / phase / "metrics.jsonl").open()]
        assert [r["epoch"] for r in records] == epochs
        assert checkpoints.list_checkpoints(workdir / phase)[-1].name == f"epoch_{epochs[-1]:04d}"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--pretrain_objective=fgsm"], "Unknown objective 'fgsm'"),
        (["--tune_dataset=mnist"], "Unknown --tune_dataset 'mnist'"),
        (["--eps=-0.1"], "--eps must be in [0, 1]"),
        (["--tune_beta=-1"], "--tune_beta must be >= 0, got -1.0."),
        (["--config.tune.beta=-1"], "--config.tune.beta must be >= 0, got -1.0."),
        (["--tune_regularizer=hellinger"], "Unknown --tune_regularizer 'hellinger'; choose one"),
        (["--tune_init_checkpoint=/nonexistent/epoch_0003"], "is not a checkpoint"),
        (["--jit_compile=maybe"], "jit_compile must be one of auto, true, false"),
        (["--width=8"], "holds a run with a different config (model.width: 4 -> 8)"),
        # --overwrite deletes the old run only after everything else has been checked.
        (["--overwrite", "--width=0"], "--width: width must be an integer in [1, 512], got 0"),
        (["--overwrite", "--pretrain_split=bogus"], "--pretrain_split: Unknown split 'bogus'"),
        (
            ["--config.attack.eps=0.2", "--eps=0.3"],
            "--eps=0.3 and --config.attack.eps=0.2 disagree",
        ),
        (["--config.model.name=vgg"], "Unknown model name 'vgg'"),
        (["--config.tune.dataset=mnist"], "Unknown --config.tune.dataset 'mnist'"),
        (["--config.tune.attack.eps=-0.1"], "--config.tune.attack.eps must be in [0, 1]"),
    ],
)
def test_bad_input_is_one_line_and_leaves_the_workdir_alone(finished_run, args, message):
    workdir, _ = finished_run
    before = snapshot(workdir)
    result = train_in_process(workdir, *args)
    assert_one_line_error(result, message)
    assert snapshot(workdir) == before


def test_a_workdir_another_process_trains_is_refused_untouched(finished_run):
    workdir, _ = finished_run
    before = snapshot(workdir)
    with workdir_lock.hold(workdir):  # as a training in another process holds it
        result = train_in_process(workdir, "--pretrain_epochs=2")
    assert_one_line_error(result, f"another process is training {workdir}")
    assert snapshot(workdir) == before


def test_a_config_file_that_does_not_load_is_one_line(tmp_path):
    config = tmp_path / "broken.py"
    config.write_text("def get_config(:\n")
    result = train(tmp_path / "run", f"--config={config}", timeout=120)
    assert_one_line_error(result, f"the --config file {config} does not load (SyntaxError")
    assert not (tmp_path / "run").exists()


def test_sigint_stops_with_one_line_and_intact_checkpoints(tmp_path):
    workdir = tmp_path / "run"
    command = [
        sys.executable,
        "-m",
        "tools.train",
        f"--workdir={workdir}",
        *TINY_TRAINING,
        "--tune_dataset=",
        "--pretrain_subset=200",
        "--pretrain_epochs=20",
    ]
    process = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    try:
        wait_for_first_checkpoint(process, workdir / "pretrain")
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=120)
    finally:
        process.kill()
        process.wait()
    assert process.returncode == 130, stderr[-3000:]
    assert "Traceback" not in stderr
    assert [line for line in stderr.splitlines() if line.startswith("error:")] == [
        "error: interrupted; the checkpoints of finished epochs are intact "
        "(re-run the same command to resume)."
    ]
    saved = checkpoints.list_checkpoints(workdir / "pretrain")
    assert saved and saved[-1].name != "epoch_0020"
    for checkpoint in saved:
        checkpoints.build_network(checkpoint)
        assert checkpoints.read_state(checkpoint)["epoch"] == int(checkpoint.name[-4:])
    assert not list((workdir / "pretrain" / "checkpoints").glob(".*"))  # no staging left


def test_tune_without_a_pretrain_checkpoint_fails_before_writing(tmp_path):
    workdir = tmp_path / "new"
    result = train(workdir, "--pretrain_epochs=0", timeout=120)
    assert_one_line_error(result, "needs a pretrain checkpoint")
    assert not workdir.exists()
