"""`python -m tools.evaluate` on a tiny digits run of `python -m tools.train`."""

import csv
import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import numpy as np
import pytest
from support import assert_one_line_error, run_tool_in_process

from tf_advreg.evaluation import models, report, runner
from tf_advreg.export import export_saved_model
from tf_advreg.models import resnet18

ROOT = Path(__file__).resolve().parents[2]
ENV = os.environ | {"PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
BASE = runner.Request(
    dataset="digits",
    subset=64,
    attack="pgd,apgd-ce,strongest",
    eps=0.1,
    steps=5,
    step_size=0.02,
    jit_compile=False,
)


def _command(module, *flags):
    return subprocess.run(
        [sys.executable, "-m", module, *flags],
        cwd=ROOT,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """Two epochs of natural training on part of the digits, no tune phase."""
    path = tmp_path_factory.mktemp("run")
    flags = ["--tune_dataset=", "--pretrain_objective=natural", "--pretrain_epochs=2"]
    flags += ["--pretrain_subset=600", "--batch_size=20", "--pretrain_lr=0.02", "--width=4"]
    flags += ["--lr_schedule=constant"]
    flags += ["--train_eval_subset=30", "--eval_attack_steps=1", "--jit_compile=false"]
    result = _command("tools.train", f"--workdir={path}", *flags)
    assert result.returncode == 0, result.stderr[-3000:]
    return path


@pytest.fixture(scope="module")
def saved_model_doc(workdir):
    return runner.run(dataclasses.replace(BASE, model=str(workdir)))


def _numbers(doc):
    return [
        [{k: v for k, v in r.items() if k != "seconds"} for r in e["results"]]
        for e in doc["evaluations"]
    ]


def test_saved_model_and_checkpoint_give_the_same_numbers(workdir, saved_model_doc):
    last = workdir / "pretrain" / "checkpoints" / "epoch_0002"
    checkpoint_doc = runner.run(dataclasses.replace(BASE, model=str(last)))
    assert _numbers(checkpoint_doc) == _numbers(saved_model_doc)
    saved, checkpoint = saved_model_doc["evaluations"][0], checkpoint_doc["evaluations"][0]
    assert saved["model"]["kind"] == "saved_model" and saved["model"]["epoch"] is None
    assert checkpoint["model"]["kind"] == "checkpoint" and checkpoint["model"]["epoch"] == 2
    assert [r["attack"] for r in saved["results"]] == ["natural", "pgd", "apgd-ce", "strongest"]
    assert saved["data"]["num_examples"] == 64


def test_a_bfloat16_runs_saved_model_and_checkpoint_give_the_same_numbers(tmp_path):
    """Trained in mixed_bfloat16, both are evaluated in float32."""
    flags = ["--tune_dataset=", "--pretrain_subset=200", "--batch_size=50", "--width=4"]
    flags += ["--attack_steps=1", "--eval_attack_steps=1", "--train_eval_subset=50"]
    flags += ["--jit_compile=false", "--mixed_precision"]
    result = _command("tools.train", f"--workdir={tmp_path}", "--pretrain_epochs=1", *flags)
    assert result.returncode == 0, result.stderr[-3000:]
    phase = tmp_path / "pretrain"
    saved = models.load(phase / "saved_model").classifier
    checkpoint = models.load(phase / "checkpoints" / "epoch_0001").classifier
    images = np.random.default_rng(0).uniform(size=(8, 8, 8, 1)).astype("float32")
    np.testing.assert_allclose(
        saved(images).numpy(), checkpoint(images).numpy(), rtol=1e-5, atol=1e-5
    )
    request = dataclasses.replace(BASE, attack="pgd")
    docs = [
        runner.run(dataclasses.replace(request, model=str(path)))
        for path in (phase, phase / "checkpoints" / "epoch_0001")
    ]
    assert _numbers(docs[0]) == _numbers(docs[1])


def test_json_output_validates_against_the_schema(saved_model_doc):
    schema = report.schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(saved_model_doc, schema)
    broken = json.loads(json.dumps(saved_model_doc))
    broken["evaluations"][0]["results"][0]["accuracy"] = 1.5
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)
    del broken["evaluations"][0]["results"][0]["ci95"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)


def test_cli_writes_json_csv_and_tables(workdir, tmp_path):
    output, table = tmp_path / "result.json", tmp_path / "result.csv"
    result = _command(
        "tools.evaluate",
        f"--model={workdir}",
        "--dataset=digits",
        "--subset=32",
        "--attack=pgd,apgd-dlr,strongest",
        "--eps=0.1",
        "--steps=3",
        "--step_size=0.03",
        "--sanity_checks",
        "--jit_compile=false",
        f"--output={output}",
        f"--csv={table}",
    )
    assert result.returncode in (0, 2), result.stderr[-3000:]  # 2: a sanity check failed
    doc = json.loads(output.read_text())
    jsonschema.validate(doc, report.schema())
    assert len(doc["sanity_checks"]["checks"]) == 5
    assert (result.returncode == 0) == doc["sanity_checks"]["passed"]
    rows = list(csv.DictReader(table.open()))
    assert [row["attack"] for row in rows] == ["natural", "pgd", "apgd-dlr", "strongest"]
    assert "apgd-dlr" in result.stdout and "sanity check" in result.stdout


def test_checkpoint_series_with_thesis_metrics(workdir):
    request = runner.Request(
        checkpoints=str(workdir / "pretrain"),
        dataset="digits",
        subset=20,
        thesis_metrics=True,
        jit_compile=False,
    )
    doc = runner.run(request)
    keys = [(e["model"]["epoch"], e["data"]["split"]) for e in doc["evaluations"]]
    assert keys == [(1, "train"), (1, "test"), (2, "train"), (2, "test")]
    for evaluation in doc["evaluations"]:
        natural, pgd = evaluation["results"]
        assert natural["attack"] == "natural" and pgd["attack"] == "pgd"
        assert (pgd["settings"]["eps"], pgd["settings"]["steps"]) == (0.03, 20)
        assert pgd["settings"]["step_size"] == 0.003
    jsonschema.validate(doc, report.schema())


def test_bad_model_path_is_one_line_without_traceback(tmp_path):
    result = _command("tools.evaluate", f"--model={tmp_path}", "--dataset=digits")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith(f"error: {tmp_path} is not a model")


def test_robustbench_json_needs_autoattack(tmp_path):
    card = tmp_path / "card.json"
    result = run_tool_in_process(
        "evaluate", "--model=/nonexistent", "--attack=pgd", f"--robustbench_json={card}"
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        "error: --robustbench_json needs --attack=autoattack (or autoattack-rand) on one --model."
    )
    assert not card.exists()


@pytest.fixture(scope="module")
def wrong_shape_model(tmp_path_factory):
    network = resnet18(num_classes=10, width=2, input_shape=(16, 16, 3))
    return export_saved_model(network, tmp_path_factory.mktemp("wrong") / "saved_model")


@pytest.mark.parametrize(
    "changes, error, message",
    [
        (dict(attack="pgd,deepfool"), ValueError, "Unknown attack 'deepfool'"),
        (dict(eps=1.5), ValueError, r"eps must be in \[0, 1\]"),
        (dict(eps=-0.01), ValueError, r"eps must be in \[0, 1\]"),
        (dict(eps=float("nan")), ValueError, "eps must be a finite number, got nan"),
        (dict(eps=float("inf"), norm="l2"), ValueError, "eps must be a finite number"),
        (dict(step_size=float("nan")), ValueError, "step_size must be a finite number"),
        (dict(model="/nonexistent/run"), FileNotFoundError, "/nonexistent/run"),
        (dict(model=None), ValueError, "exactly one of --model and --checkpoints"),
        (dict(attack="fgsm", sanity_checks=True), ValueError, "needs an iterative attack"),
        (dict(attack="autoattack,pgd"), ValueError, "fixed protocol and runs alone; drop pgd"),
    ],
)
def test_bad_requests_name_the_problem(workdir, changes, error, message):
    request = dataclasses.replace(BASE, **({"model": str(workdir)} | changes))
    with pytest.raises(error, match=message):
        runner.run(request)


def test_input_shape_mismatch_names_both_shapes(wrong_shape_model):
    with pytest.raises(ValueError, match=r"\(16, 16, 3\).*'digits'.*\(8, 8, 1\)"):
        runner.run(dataclasses.replace(BASE, model=str(wrong_shape_model)))


def test_checkpoints_of_a_workdir_suggest_its_phase(workdir):
    with pytest.raises(ValueError, match="Did you mean .*pretrain"):
        runner.run(dataclasses.replace(BASE, checkpoints=str(workdir)))


def test_a_workdir_stands_for_its_last_phase(tmp_path):
    for phase in ("pretrain", "tune"):
        (tmp_path / phase / "saved_model").mkdir(parents=True)
        (tmp_path / phase / "saved_model" / "saved_model.pb").touch()
    assert models.resolve(tmp_path) == tmp_path / "tune" / "saved_model"
    assert models.resolve(tmp_path / "pretrain") == tmp_path / "pretrain" / "saved_model"


def test_an_unusable_output_path_is_refused_before_the_evaluation(workdir, tmp_path):
    (tmp_path / "file").write_text("")
    for output, message in [
        (tmp_path, f"{tmp_path} is a directory; name a file"),
        (tmp_path / "file" / "x.json", f"{tmp_path / 'file'} is not a directory"),
    ]:
        flags = ["--dataset=digits", "--subset=20", "--attack=natural", "--jit_compile=false"]
        result = run_tool_in_process("evaluate", f"--model={workdir}", f"--output={output}", *flags)
        assert_one_line_error(result, message)
        assert "accuracy" not in result.stdout  # nothing was evaluated
    assert [p.name for p in tmp_path.iterdir()] == ["file"]


def test_a_truncated_checkpoint_is_named_and_the_other_epochs_evaluated(workdir, tmp_path):
    phase = tmp_path / "pretrain"
    shutil.copytree(workdir / "pretrain" / "checkpoints", phase / "checkpoints")
    weights = phase / "checkpoints" / "epoch_0002" / "network.weights.h5"
    weights.write_bytes(weights.read_bytes()[:1000])
    output = tmp_path / "series.json"
    flags = ["--dataset=digits", "--subset=20", "--attack=natural", "--jit_compile=false"]
    result = run_tool_in_process("evaluate", f"--checkpoints={phase}", f"--output={output}", *flags)
    assert_one_line_error(result, f"could not load {weights.parent} (")
    doc = json.loads(output.read_text())
    jsonschema.validate(doc, report.schema())
    assert [e["model"]["epoch"] for e in doc["evaluations"]] == [1]
    assert [c["path"] for c in doc["unreadable_checkpoints"]] == [str(weights.parent)]
    assert "natural" in result.stdout  # the table of epoch 1


def test_eps_curve_runs_each_attack_at_each_eps_and_eps_0_is_natural(workdir):
    last = workdir / "pretrain" / "checkpoints" / "epoch_0002"
    request = dataclasses.replace(
        BASE, model=f"{workdir},{last}", attack="pgd,fgsm", eps_curve=(0.0, 0.05, 0.2)
    )
    doc = runner.run(request)
    assert len(doc["evaluations"]) == 2
    for evaluation in doc["evaluations"]:
        results = evaluation["results"]
        assert [(r["attack"], r["settings"]["eps"]) for r in results] == [
            ("natural", 0.0),
            ("pgd", 0.0),
            ("pgd", 0.05),
            ("pgd", 0.2),
            ("fgsm", 0.0),
            ("fgsm", 0.05),
            ("fgsm", 0.2),
        ]
        natural = results[0]["correct"]
        assert results[1]["correct"] == natural and results[4]["correct"] == natural
    jsonschema.validate(doc, report.schema())


def test_cli_writes_example_grids_and_an_eps_curve_for_two_models(workdir, tmp_path):
    last = workdir / "pretrain" / "checkpoints" / "epoch_0002"
    result = run_tool_in_process(
        "evaluate",
        f"--model={workdir},{last}",
        "--dataset=digits",
        "--subset=20",
        "--attack=pgd",
        "--steps=2",
        "--step_size=0.05",
        "--eps_curve=0,0.1",
        f"--examples={tmp_path / 'pictures'}",
        f"--eps_curve_output={tmp_path / 'curve'}",
        "--jit_compile=false",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "model 1:" in result.stdout and "model 2:" in result.stdout
    pngs = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.png"))
    assert pngs == sorted(
        [
            "curve.png",
            f"pictures/{workdir.name}/pgd_eps0.1.png",
            f"pictures/{workdir.name}/pgd_eps0.png",
            "pictures/epoch_0002/pgd_eps0.1.png",
            "pictures/epoch_0002/pgd_eps0.png",
        ]
    )
    for png in tmp_path.rglob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = list(csv.DictReader((tmp_path / "curve.csv").open()))
    assert [(row["attack"], row["eps"]) for row in rows] == 2 * [
        ("natural", "0.0"),
        ("pgd", "0.0"),
        ("pgd", "0.1"),
    ]


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--eps_curve=0,0.o3"], "--eps_curve takes numbers"),
        (["--eps_curve=0,1.5"], "--eps_curve must be in [0, 1]"),
        (["--eps_curve=0,0.1", "--attack=pgd,strongest"], "--eps_curve draws one curve"),
        (["--eps_curve=0,0.1", "--thesis_metrics"], "--eps_curve sweeps eps itself"),
    ],
)
def test_bad_eps_curve_is_one_line_and_writes_nothing(workdir, tmp_path, flags, message):
    prefix = tmp_path / "curve"
    result = run_tool_in_process(
        "evaluate",
        f"--model={workdir}",
        "--dataset=digits",
        f"--eps_curve_output={prefix}",
        f"--examples={tmp_path / 'pictures'}",
        *flags,
    )
    assert_one_line_error(result, message)
    assert list(tmp_path.iterdir()) == []
