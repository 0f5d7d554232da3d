"""Benchmarks the training step of each objective, the PGD evaluation step and the attacks of
AutoAttack.

    python -m tools.benchmark --width=64 --batch_size=32 --objectives=natural,robopt --jit=both
    python -m tools.benchmark --objectives=eval_pgd20,autoattack --batch_size=512 --jit=true

Prints a table (examples/s, first-step time, peak memory, FLOPs, utilisation) and the
same-run ratios (XLA and bfloat16 speed-ups, cost over natural training); --output also writes
them as JSON. On a GPU pass --batch_size=512 --precision=mixed_bfloat16 (--jit=auto compiles there).
"""

import dataclasses
import itertools
import json
import sys

from absl import app, flags

from tf_advreg import benchmarking, files, models
from tf_advreg.objectives import OBJECTIVES
from tf_advreg.xla import JIT_COMPILE_CHOICES, resolve_jit_compile

_OBJECTIVES = flags.DEFINE_list(
    "objectives",
    [*OBJECTIVES, "eval_pgd20"],
    "Objectives whose train step is timed; eval_pgdK times the PGD-K evaluation step; "
    "autoattack_NAME one attack of AutoAttack's standard version (apgd-ce, apgd-t, fab-t, "
    "square) on examples it cannot break; autoattack all four.",
)
_MODEL = flags.DEFINE_enum("model", models.DEFAULT_MODEL, list(models.MODELS), "Architecture.")
_WIDTH = flags.DEFINE_integer("width", 64, "First-stage width (ResNet18: 64).")
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 32, "Examples per step.")
_IMAGE_SIZE = flags.DEFINE_integer("image_size", 32, "Image height and width.")
_CHANNELS = flags.DEFINE_integer("channels", 3, "Image channels.")
_PRECISION = flags.DEFINE_list(
    "precision", ["float32"], f"One or more of {', '.join(benchmarking.PRECISIONS)}."
)
_JIT = flags.DEFINE_enum(
    "jit",
    "auto",
    [*JIT_COMPILE_CHOICES, "both"],
    "XLA-compile the step; auto: on GPUs and TPUs, not on CPUs; both: time each.",
)
_STEPS = flags.DEFINE_integer("steps", 3, "Timed steps after warmup.")
_WARMUP_STEPS = flags.DEFINE_integer("warmup_steps", 1, "Untimed steps after compilation.")
_STEPS_PER_EXECUTION = flags.DEFINE_integer(
    "steps_per_execution", 1, "Steps per call of the compiled function."
)
_ATTACK_STEPS = flags.DEFINE_integer("attack_steps", 10, "PGD steps of the training attack.")
_MATMUL_SIZE = flags.DEFINE_integer("matmul_size", 2048, "Side of the peak-measuring matmul.")
_AUTOATTACK_BUDGET = flags.DEFINE_float(
    "autoattack_budget",
    1.0,
    "Fraction of each AutoAttack attack's budget (100 iterations, 5,000 queries) to time; "
    "the estimate scales it to the full budget.",
)
_AUTOATTACK_EXAMPLES = 10_000  # the CIFAR-10 test set, for the AutoAttack time estimate
_OUTPUT = flags.DEFINE_string("output", None, "Where to write the JSON report.")

# (title, result field, width, format spec)
_COLUMNS = (
    ("objective", "objective", 18, "s"),
    ("jit", "jit", 5, ""),
    ("precision", "precision", 14, "s"),
    ("examples/s", "examples_per_s", 10, ".2f"),
    ("step s", "step_s", 8, ".3f"),
    ("1st step s", "first_step_s", 10, ".1f"),
    ("peak MiB", "peak_memory_mib", 8, ".0f"),
    ("fwd-eq", "forward_equivalents", 6, "d"),
    ("GFLOP/ex", "gflop_per_example", 8, ".2f"),
    ("GFLOP/s", "achieved_gflops", 8, ".1f"),
    ("% peak", "pct_theoretical", 6, ".1f"),
    ("% matmul", "pct_matmul", 8, ".1f"),
)


def _table(results: list[benchmarking.BenchmarkResult]) -> str:
    rows = ["  ".join(f"{title:>{width}}" for title, _, width, _ in _COLUMNS)]
    for r in results:
        values = r.as_dict() | {
            "jit": str(r.jit),
            "peak_memory_mib": r.peak_memory_bytes / 2**20,
            "pct_theoretical": 100 * (r.utilisation_theoretical or float("nan")),
            "pct_matmul": 100 * r.utilisation_matmul,
        }
        rows.append("  ".join(f"{values[key]:>{width}{spec}}" for _, key, width, spec in _COLUMNS))
    return "\n".join(rows)


def _objectives() -> list[str]:
    """--objectives with "autoattack" spelled out; raises ValueError naming a bad one."""
    names = []
    for objective in _OBJECTIVES.value:
        if objective == "autoattack":
            names += [f"autoattack_{name}" for name in benchmarking.AUTOATTACK_STANDARD]
        else:
            benchmarking.check_objective(objective)
            names.append(objective)
    return names


def _configs() -> list[benchmarking.BenchmarkConfig]:
    """One config per (precision, jit) asked for; raises ValueError naming a bad flag."""
    jits = [False, True] if _JIT.value == "both" else [resolve_jit_compile(_JIT.value)]
    if _MATMUL_SIZE.value < 1:
        raise ValueError(f"matmul_size must be >= 1, got {_MATMUL_SIZE.value}.")
    return [
        benchmarking.BenchmarkConfig(
            model=_MODEL.value,
            width=_WIDTH.value,
            batch_size=_BATCH_SIZE.value,
            image_size=_IMAGE_SIZE.value,
            channels=_CHANNELS.value,
            steps=_STEPS.value,
            warmup_steps=_WARMUP_STEPS.value,
            steps_per_execution=_STEPS_PER_EXECUTION.value,
            attack_steps=_ATTACK_STEPS.value,
            autoattack_budget=_AUTOATTACK_BUDGET.value,
            precision=precision,
            jit=jit,
        )
        for precision in _PRECISION.value
        for jit in jits
    ]


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    try:  # every flag and the output path are checked before the first timing
        objectives, configs = _objectives(), _configs()
        if _OUTPUT.value:
            files.check_writable(_OUTPUT.value)
    except (ValueError, OSError) as error:
        sys.exit(f"error: {error}")
    peaks = {
        precision: benchmarking.device_peak(precision, _MATMUL_SIZE.value)
        for precision in _PRECISION.value
    }
    results = []
    for objective, config in itertools.product(objectives, configs):
        results.append(benchmarking.benchmark(objective, config, peaks[config.precision]))
        print(_table(results[-1:]), flush=True)

    ratios = benchmarking.ratios(results)
    estimates = benchmarking.autoattack_seconds(results, _AUTOATTACK_EXAMPLES)
    for peak in peaks.values():
        print(
            f"{peak.device} {peak.precision}: theoretical "
            f"{(peak.theoretical_flops or float('nan')) / 1e9:.1f} GFLOP/s, "
            f"{_MATMUL_SIZE.value}^2 matmul {peak.matmul_flops / 1e9:.1f} GFLOP/s"
        )
    print(_table(results))
    for name, value in ratios.items():
        print(f"{name}: {value:.2f}x")
    for name, value in estimates.items():
        print(f"{name}: {value:.0f} s")
    if _OUTPUT.value:
        jits = sorted({config.jit for config in configs})
        report = {
            "config": dataclasses.asdict(configs[0]) | {"precision": _PRECISION.value, "jit": jits},
            "device_peaks": [dataclasses.asdict(p) for p in peaks.values()],
            "results": [r.as_dict() for r in results],
            "ratios": ratios,
            "autoattack_estimates": estimates,
        }
        try:
            files.write_text(_OUTPUT.value, json.dumps(report, indent=2))
        except OSError as error:  # the table above still holds every number
            sys.exit(f"error: {error}")


if __name__ == "__main__":
    app.run(main)
