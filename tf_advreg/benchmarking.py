"""Throughput, memory and utilisation of the compiled training and evaluation steps.

Adversarial training costs an order of magnitude more than natural training, so the numbers
that matter are examples/s, how much of the device the step uses, and what each setting (XLA,
bfloat16) buys. FLOPs are counted analytically from the network's layer shapes, and the number
of forward-equivalents per example is read off what `AdversarialModel.train_step` actually
does, so the accounting stays right for any width, image size or objective.
"""

import dataclasses
import gc
import math
import os
import re
import resource
import time
from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf

from tf_advreg import models, objectives
from tf_advreg.attacks import AttackSettings
from tf_advreg.objectives import AdversarialModel, RobustOptimization
from tf_advreg.training import schema

PRECISIONS = ("float32", "mixed_bfloat16")
# pgd computes the natural logits z(x) once, before its loop, for these attack losses.
_ATTACK_LOSSES_WITH_NATURAL_FORWARD = ("kl", "ce+kl")
# Nonzero so that objectives whose step depends on beta (AR) run their full step.
BENCHMARK_BETA = 6.0
_EVAL_PGD = re.compile(r"eval_pgd(\d+)")
# Published dense (no sparsity) peaks in FLOP/s; float32 matmuls run as TF32 on these GPUs.
_GPU_PEAK_FLOPS = {
    "H200": {"float32": 494.7e12, "mixed_bfloat16": 989.4e12},
    "H100": {"float32": 494.7e12, "mixed_bfloat16": 989.4e12},  # SXM; PCIe is ~25 % lower
    "A100": {"float32": 156e12, "mixed_bfloat16": 312e12},
}


# ----------------------------------------------------------------------------- FLOP accounting


def forward_macs(network: keras.Model) -> int:
    """Multiply-accumulates of one example's forward pass through the conv and dense layers.

    For both layer kinds MACs = (output positions) x (kernel size), since the kernel holds
    in x out (/ groups) x window weights. Normalisation, activations and additions are
    elementwise and below 1 % of a ResNet's work, so they are not counted.
    """
    total = 0
    for layer in network.layers:
        if isinstance(layer, keras.Model):
            total += forward_macs(layer)
        elif isinstance(
            layer,
            (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D, keras.layers.Dense),
        ):
            total += math.prod(layer.output.shape[1:-1]) * math.prod(layer.kernel.shape)
    return total


def _attack_forward_equivalents(steps: int, loss: str | None) -> int:
    """Each PGD step is a forward plus a backward to the input only (no weight gradients):
    2 forward-equivalents."""
    if loss is None or steps == 0:
        return 0
    return 2 * steps + (1 if loss in _ATTACK_LOSSES_WITH_NATURAL_FORWARD else 0)


def train_forward_equivalents(model: AdversarialModel) -> int:
    """Forward-pass equivalents of one `train_step`, per example.

    A training-mode pass with its full backward (input and weight gradients) costs 3. The
    update differentiates z(x) if `needs_natural_logits` and z(x') if the objective attacks;
    without z(x) the step spends one inference forward on the natural-accuracy metric.
    """
    attacked = model.attack_loss is not None
    cost = _attack_forward_equivalents(model.attack_steps, model.attack_loss)
    cost += 3 * (int(model.needs_natural_logits) + int(attacked))
    return cost + (0 if model.needs_natural_logits else 1)


def eval_forward_equivalents(model: AdversarialModel) -> int:
    """`test_step`: a PGD-CE attack with the evaluation settings, then z(x) and z(x')."""
    return _attack_forward_equivalents(model.eval_attack_steps, "ce") + 2


# ----------------------------------------------------------------------------- device peaks


@dataclasses.dataclass(frozen=True)
class DevicePeak:
    """What the device could do at one precision: on paper and in a measured matmul."""

    device: str
    precision: str
    theoretical_flops: float | None
    matmul_flops: float


def _cpu_theoretical_flops(precision: str) -> float | None:
    """cores x FLOP/cycle x clock, from /proc/cpuinfo (None elsewhere).

    Two FMA pipes of 8 float32 lanes (AVX2) or one of 16 (AVX-512) give 32 float32 FLOP per
    cycle; AVX512_BF16 dot products double that for bfloat16.
    """
    try:
        with open("/proc/cpuinfo") as f:
            info = f.read()
    except OSError:
        return None
    flags = set(re.search(r"^flags\s*:(.*)$", info, re.M).group(1).split())
    mhz = max(float(m) for m in re.findall(r"^cpu MHz\s*:\s*([\d.]+)", info, re.M))
    per_cycle = 32 if "fma" in flags else 16
    if precision == "mixed_bfloat16" and "avx512_bf16" in flags:
        per_cycle *= 2
    return len(os.sched_getaffinity(0)) * per_cycle * mhz * 1e6


def _gpu_theoretical_flops(name: str, precision: str) -> float | None:
    for model_name, peaks in _GPU_PEAK_FLOPS.items():
        if model_name in name:
            return peaks[precision]
    return None


def device_name() -> str:
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        return tf.config.experimental.get_device_details(gpus[0]).get("device_name", "GPU")
    return "CPU"


def measure_matmul_flops(size: int, precision: str, repeats: int = 10) -> float:
    """Best FLOP/s of a size x size matmul in the precision's compute dtype (after a warmup)."""
    dtype = tf.bfloat16 if precision == "mixed_bfloat16" else tf.float32
    a = tf.random.uniform([size, size], dtype=tf.float32)
    a, b = tf.cast(a, dtype), tf.cast(tf.transpose(a), dtype)
    # The reduction makes fetching one scalar wait for the whole product.
    product = tf.function(lambda a, b: tf.reduce_sum(tf.cast(tf.matmul(a, b), tf.float32)))
    product(a, b).numpy()
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        product(a, b).numpy()
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best


def device_peak(precision: str, matmul_size: int) -> DevicePeak:
    name = device_name()
    theoretical = (
        _cpu_theoretical_flops(precision)
        if name == "CPU"
        else _gpu_theoretical_flops(name, precision)
    )
    return DevicePeak(name, precision, theoretical, measure_matmul_flops(matmul_size, precision))


# ----------------------------------------------------------------------------- memory


def _reset_peak_memory() -> None:
    """Starts a new peak: GPU allocator statistics, or the kernel's RSS high-water mark."""
    if tf.config.list_physical_devices("GPU"):
        tf.config.experimental.reset_memory_stats("GPU:0")
        return
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM (Linux >= 4.0)
    except OSError:
        pass  # peak_memory_bytes then falls back to the process-lifetime peak


def peak_memory_bytes() -> int:
    """Peak GPU memory, or peak resident set size since the last reset on CPU."""
    if tf.config.list_physical_devices("GPU"):
        return tf.config.experimental.get_memory_info("GPU:0")["peak"]
    try:
        with open("/proc/self/status") as f:
            return int(re.search(r"^VmHWM:\s*(\d+) kB", f.read(), re.M).group(1)) * 1024
    except (OSError, AttributeError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kB on Linux


# ----------------------------------------------------------------------------- timing


@dataclasses.dataclass(frozen=True)
class BenchmarkConfig:
    model: str = models.DEFAULT_MODEL
    width: int = 64
    batch_size: int = 32
    image_size: int = 32
    channels: int = 3
    num_classes: int = 10
    precision: str = "float32"
    jit: bool = True
    steps: int = 3
    warmup_steps: int = 1
    steps_per_execution: int = 1
    attack_steps: int = 10

    def __post_init__(self):
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}.")
        for name in (
            "width",
            "batch_size",
            "image_size",
            "channels",
            "steps",
            "steps_per_execution",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}.")


@dataclasses.dataclass(frozen=True)
class BenchmarkResult:
    objective: str
    jit: bool
    precision: str
    batch_size: int
    examples_per_s: float
    step_s: float
    first_step_s: float  # tracing + compilation + one execution
    peak_memory_bytes: int
    forward_gflop_per_example: float
    forward_equivalents: int
    gflop_per_example: float
    achieved_gflops: float
    utilisation_theoretical: float | None
    utilisation_matmul: float

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def _network(config: BenchmarkConfig) -> keras.Model:
    """The network under the requested dtype policy (the policy applies at construction)."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(config.precision)
    try:
        return models.build(
            config.model,
            num_classes=config.num_classes,
            width=config.width,
            input_shape=(config.image_size, config.image_size, config.channels),
        )
    finally:
        keras.config.set_dtype_policy(previous)


def check_objective(name: str) -> None:
    """Raises ValueError unless `name` is an objective or eval_pgdK (K >= 1 PGD steps)."""
    evaluation = _EVAL_PGD.fullmatch(name)
    known = objectives.OBJECTIVES
    if evaluation is None and name not in known or evaluation and int(evaluation[1]) < 1:
        raise ValueError(
            f"Unknown objective {name!r}; choose from {', '.join(known)} or eval_pgdK "
            "(the PGD-K evaluation step, K >= 1)."
        )


def _model(objective: str, config: BenchmarkConfig) -> tuple[AdversarialModel, bool]:
    """The compiled objective and whether its evaluation step (not training) is timed."""
    evaluation = _EVAL_PGD.fullmatch(objective)
    cls = RobustOptimization if evaluation else objectives.objective_class(objective)
    thesis_attack = {name: field.default for name, field in schema.ATTACK.items()}
    attack = AttackSettings(
        **thesis_attack
        | {"steps": config.attack_steps}
        | ({"eval_steps": int(evaluation.group(1))} if evaluation else {})
    )
    model = cls(_network(config), attack=attack, beta=BENCHMARK_BETA)
    model.compile(
        optimizer=keras.optimizers.SGD(0.1, momentum=0.9),
        jit_compile=config.jit,
        steps_per_execution=config.steps_per_execution,
    )
    return model, evaluation is not None


def _synthetic_batches(config: BenchmarkConfig) -> tf.data.Iterator:
    """One constant batch, repeated: timing sees the step alone, not an input pipeline."""
    images = tf.random.uniform(
        [config.batch_size, config.image_size, config.image_size, config.channels], seed=0
    )
    labels = tf.random.uniform([config.batch_size], maxval=config.num_classes, dtype=tf.int32)
    return iter(tf.data.Dataset.from_tensors((images, labels)).repeat())


def _timed_calls(function: Callable, iterator, calls: int) -> float:
    """Seconds for `calls` executions; fetching the outputs waits for the device."""
    start = time.perf_counter()
    for _ in range(calls):
        outputs = function(iterator)
    tf.nest.map_structure(np.asarray, outputs)
    return time.perf_counter() - start


def benchmark(objective: str, config: BenchmarkConfig, peak: DevicePeak) -> BenchmarkResult:
    """Times `objective`'s train step ("eval_pgdK": the PGD-K test step) on synthetic data.

    The first call (tracing and compilation) is timed apart, then `warmup_steps` untimed, then
    `steps` timed; each call runs `steps_per_execution` steps.
    """
    keras.backend.clear_session()
    gc.collect()
    model, evaluation = _model(objective, config)
    if evaluation:
        model.make_test_function()
        function, equivalents = model.test_function, eval_forward_equivalents(model)
    else:
        model.make_train_function()
        function, equivalents = model.train_function, train_forward_equivalents(model)
    iterator = _synthetic_batches(config)

    _reset_peak_memory()
    first_step_s = _timed_calls(function, iterator, 1)
    if config.warmup_steps:
        _timed_calls(function, iterator, config.warmup_steps)
    step_s = _timed_calls(function, iterator, config.steps) / (
        config.steps * config.steps_per_execution
    )
    memory = peak_memory_bytes()

    forward_flop = 2 * forward_macs(model.network)
    flop_per_example = forward_flop * equivalents
    examples_per_s = config.batch_size / step_s
    achieved = flop_per_example * examples_per_s
    return BenchmarkResult(
        objective=objective,
        jit=config.jit,
        precision=config.precision,
        batch_size=config.batch_size,
        examples_per_s=examples_per_s,
        step_s=step_s,
        first_step_s=first_step_s,
        peak_memory_bytes=memory,
        forward_gflop_per_example=forward_flop / 1e9,
        forward_equivalents=equivalents,
        gflop_per_example=flop_per_example / 1e9,
        achieved_gflops=achieved / 1e9,
        utilisation_theoretical=(
            None if peak.theoretical_flops is None else achieved / peak.theoretical_flops
        ),
        utilisation_matmul=achieved / peak.matmul_flops,
    )


def ratios(results: list[BenchmarkResult]) -> dict[str, float]:
    """What XLA and bfloat16 buy (slower step / faster step) and what each objective costs
    over natural training, each between results of the same run."""
    steps = {(r.objective, r.precision, r.jit): r.step_s for r in results}
    out = {}
    for (objective, precision, jit), step_s in steps.items():
        if jit and (objective, precision, False) in steps:
            out[f"xla_speedup/{objective}/{precision}"] = (
                steps[(objective, precision, False)] / step_s
            )
        if precision == "mixed_bfloat16" and (objective, "float32", jit) in steps:
            out[f"bf16_speedup/{objective}/jit={jit}"] = steps[(objective, "float32", jit)] / step_s
        natural = steps.get(("natural", precision, jit))
        if natural and objective != "natural":
            out[f"cost_over_natural/{objective}/{precision}/jit={jit}"] = step_s / natural
    return out
