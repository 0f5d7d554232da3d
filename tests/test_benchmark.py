"""Benchmark: FLOP and forward-pass accounting against hand counts; the CLI reports every field."""

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from support import assert_one_line_error, run_tool_in_process

from tf_advreg import benchmarking, objectives
from tf_advreg.attacks import AttackSettings
from tf_advreg.models import resnet18

ROOT = Path(__file__).resolve().parents[1]


def _conv_macs(size, kernel, cin, cout):
    return size * size * kernel * kernel * cin * cout


def test_forward_macs_match_a_hand_count_of_cifar_resnet18():
    expected = _conv_macs(32, 3, 3, 64) + 4 * _conv_macs(32, 3, 64, 64)
    for size, cin, cout in ((16, 64, 128), (8, 128, 256), (4, 256, 512)):
        expected += _conv_macs(size, 3, cin, cout) + 3 * _conv_macs(size, 3, cout, cout)
        expected += _conv_macs(size, 1, cin, cout)  # projection shortcut
    expected += 512 * 10
    assert benchmarking.forward_macs(resnet18()) == expected
    assert 2 * expected / 1e9 == pytest.approx(1.11, abs=0.01)


@pytest.mark.parametrize(
    "name, beta, expected",
    [
        ("natural", 1.0, 3),
        # K attack steps (forward + input gradient) + update + natural-accuracy forward
        ("robopt", 1.0, 2 * 5 + 3 + 1),
        # natural forward for the KL + K attack steps + natural and adversarial updates
        ("trades", 1.0, 1 + 2 * 5 + 6),
        ("ar", 1.0, 1 + 2 * 5 + 6),
        ("ar", 0.0, 1 + 2 * 5 + 3 + 1),
        ("alp", 1.0, 2 * 5 + 6),
        ("alp_kannan", 1.0, 2 * 5 + 6),
        ("mart", 1.0, 2 * 5 + 6),
    ],
)
def test_forward_equivalents_follow_each_train_step(name, beta, expected):
    network = resnet18(num_classes=4, width=2, input_shape=(8, 8, 1))
    attack = AttackSettings(
        eps=0.03, norm="linf", steps=5, step_size=0.007, eval_steps=7, eval_step_size=0.003
    )
    model = objectives.objective_class(name)(network, attack=attack, beta=beta)
    assert benchmarking.train_forward_equivalents(model) == expected
    assert benchmarking.eval_forward_equivalents(model) == 2 * 7 + 2


def test_cli_reports_every_field_positive_with_and_without_xla(tmp_path):
    output = tmp_path / "report.json"
    command = [sys.executable, "-m", "tools.benchmark", "--objectives=natural,eval_pgd2"]
    command += ["--width=2", "--image_size=8", "--channels=1", "--batch_size=4", "--steps=2"]
    command += ["--attack_steps=2", "--jit=both", "--matmul_size=128", f"--output={output}"]
    env = os.environ | {"PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    completed = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert "examples/s" in completed.stdout

    report = json.loads(output.read_text())
    results = report["results"]
    assert [(r["objective"], r["jit"]) for r in results] == [
        ("natural", False),
        ("natural", True),
        ("eval_pgd2", False),
        ("eval_pgd2", True),
    ]
    fields = {f.name for f in dataclasses.fields(benchmarking.BenchmarkResult)}
    for result in results:
        assert set(result) == fields
        numbers = {k: v for k, v in result.items() if k not in ("objective", "jit", "precision")}
        assert all(v > 0 for v in numbers.values()), result
    assert {r["forward_equivalents"] for r in results} == {3, 6}
    for peak in report["device_peaks"]:
        assert peak["matmul_flops"] > 0
        if peak["device"] == "CPU":  # GPUs outside the table of published peaks have none
            assert peak["theoretical_flops"] > 0
    assert set(report["ratios"]) == {
        "xla_speedup/natural/float32",
        "xla_speedup/eval_pgd2/float32",
        "cost_over_natural/eval_pgd2/float32/jit=False",
        "cost_over_natural/eval_pgd2/float32/jit=True",
    }
    assert all(v > 0 for v in report["ratios"].values())


@pytest.mark.parametrize(
    "flag, message",
    [
        ("--objectives=natural,bogus", "Unknown objective 'bogus'"),
        ("--batch_size=0", "batch_size must be >= 1, got 0"),
        ("--precision=float16", "precision must be one of"),
        ("--output={tmp}", "is a directory; name a file"),
    ],
)
def test_bad_input_is_one_line_before_any_timing(flag, message, tmp_path):
    result = run_tool_in_process("benchmark", "--objectives=natural", flag.format(tmp=tmp_path))
    assert_one_line_error(result, message)
    assert result.stdout == ""


@pytest.mark.parametrize(
    "field, value", [("steps", 0), ("image_size", 0), ("batch_size", -1), ("channels", 0)]
)
def test_sizes_below_one_are_refused(field, value):
    with pytest.raises(ValueError, match=f"{field} must be >= 1, got {value}"):
        benchmarking.BenchmarkConfig(**{field: value})


def test_objectives_are_checked_by_name():
    for name in (*objectives.OBJECTIVES, "eval_pgd20"):
        benchmarking.check_objective(name)
    for name in ("bogus", "eval_pgd0", "eval_pgd"):
        with pytest.raises(ValueError, match=f"Unknown objective {name!r}"):
            benchmarking.check_objective(name)


def test_autoattack_rows_run_the_whole_budget_and_scale_to_the_standard_one():
    config = benchmarking.BenchmarkConfig(
        width=2, batch_size=4, image_size=8, channels=1, steps=1, warmup_steps=0, jit=False
    )
    config = dataclasses.replace(config, autoattack_budget=0.02)  # 2 iterations, 100 queries
    step, _, equivalents = benchmarking._autoattack_step("apgd-t", config)
    assert step(None).numpy().all()  # eps 0, the network's own labels: nothing is broken
    assert equivalents == 1 + 1 + 9 * (2 * 3 + 1)  # ranking, 9 targets of 3 gradients + check
    peak = benchmarking.DevicePeak("cpu", "float32", None, 1e9)
    result = benchmarking.benchmark("autoattack_square", config, peak)
    assert result.forward_equivalents == 1 + 101
    estimate = benchmarking.autoattack_seconds([result], 10)
    expected = 10 * (1 + 5001) / (102 * result.examples_per_s)
    assert estimate == {"autoattack_s_per_10/square/float32/jit=False": pytest.approx(expected)}
    with pytest.raises(ValueError, match="autoattack_apgd-ce"):
        benchmarking.check_objective("autoattack_fab")
