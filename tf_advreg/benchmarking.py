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
from tf_advreg.attacks import Attack, AttackSettings
from tf_advreg.evaluation import autoattack
from tf_advreg.evaluation.robustness import compile_attack
from tf_advreg.objectives import AdversarialModel, RobustOptimization
from tf_advreg.training import schema

PRECISIONS = ("float32", "mixed_bfloat16")
# pgd computes the natural logits z(x) once, before its loop, for these attack losses.
_ATTACK_LOSSES_WITH_NATURAL_FORWARD = ("kl", "ce+kl")
# Nonzero so that objectives whose step depends on beta (AR) run their full step.
BENCHMARK_BETA = 6.0
_EVAL_PGD = re.compile(r"eval_pgd(\d+)")
# autoattack_NAME: one attack of AutoAttack's standard version, on examples it cannot break.
_AUTOATTACK = re.compile(r"autoattack_(.+)")
AUTOATTACK_STANDARD = {name: steps for name, steps, _ in autoattack.VERSIONS["autoattack"]}
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


def autoattack_forward_equivalents(name: str, steps: int) -> int:
    """Per example, one attack of AutoAttack run to its full budget (an example it does not
    break, the cost every robust example pays), with the prediction on its result: APGD
    steps + 1 gradients (2 each); APGD-T and FAB-T a ranking forward and 9 targets, FAB-T's
    iterations a gradient and a forward each; Square steps + 1 queries."""
    targets = 9
    return (
        1
        + {
            "apgd-ce": 2 * (steps + 1),
            "apgd-t": 1 + targets * (2 * (steps + 1) + 1),
            "fab-t": 1 + targets * 3 * steps,
            "square": steps + 1,
        }[name]
    )


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
    # AutoAttack rows run this fraction of each attack's standard budget (100 iterations,
    # 5,000 Square queries); time per iteration does not depend on the budget.
    autoattack_budget: float = 1.0

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
        if not 0 < self.autoattack_budget <= 1:
            raise ValueError(f"autoattack_budget must be in (0, 1], got {self.autoattack_budget}.")

    def autoattack_steps(self, name: str) -> int:
        return max(round(self.autoattack_budget * AUTOATTACK_STANDARD[name]), 1)


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
    """Raises ValueError unless `name` is an objective, eval_pgdK (K >= 1 PGD steps) or
    autoattack_NAME (NAME one of AutoAttack's standard attacks)."""
    evaluation = _EVAL_PGD.fullmatch(name)
    attack = _AUTOATTACK.fullmatch(name)
    known = objectives.OBJECTIVES
    if attack and attack[1] in AUTOATTACK_STANDARD:
        return
    if evaluation is None and name not in known or evaluation and int(evaluation[1]) < 1:
        raise ValueError(
            f"Unknown objective {name!r}; choose from {', '.join(known)}, eval_pgdK "
            "(the PGD-K evaluation step, K >= 1) or "
            f"{', '.join('autoattack_' + a for a in AUTOATTACK_STANDARD)}."
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


def _autoattack_step(name: str, config: BenchmarkConfig) -> tuple[Callable, keras.Model, int]:
    """One call of AutoAttack's attack `name` on a batch it cannot break (eps 0, labels the
    network's own predictions), so it runs its whole budget, as on a robust example."""
    network = _network(config)
    steps = config.autoattack_steps(name)
    survives = compile_attack(network, Attack(name, eps=0.0, steps=steps), jit_compile=config.jit)
    shape = [config.batch_size, config.image_size, config.image_size, config.channels]
    images = tf.random.uniform(shape, seed=0)
    labels = tf.argmax(network(images, training=False), axis=-1, output_type=tf.int32)
    seed = tf.constant([0, 0])

    def step(_):
        return survives(images, labels, seed)

    return step, network, autoattack_forward_equivalents(name, steps)


def benchmark(objective: str, config: BenchmarkConfig, peak: DevicePeak) -> BenchmarkResult:
    """Times `objective`'s train step ("eval_pgdK": the PGD-K test step; "autoattack_NAME":
    that attack at `config.autoattack_budget` of its budget) on synthetic data.

    The first call (tracing and compilation) is timed apart, then `warmup_steps` untimed, then
    `steps` timed; each call runs `steps_per_execution` steps (AutoAttack rows: one attack).
    """
    keras.backend.clear_session()
    gc.collect()
    attack = _AUTOATTACK.fullmatch(objective)
    steps_per_call = config.steps_per_execution
    if attack:
        function, network, equivalents = _autoattack_step(attack[1], config)
        steps_per_call = 1
    else:
        model, evaluation = _model(objective, config)
        network = model.network
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
    step_s = _timed_calls(function, iterator, config.steps) / (config.steps * steps_per_call)
    memory = peak_memory_bytes()

    forward_flop = 2 * forward_macs(network)
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


def autoattack_seconds(results: list[BenchmarkResult], examples: int) -> dict[str, float]:
    """Seconds AutoAttack's standard version spends on `examples` images that no attack
    breaks (the worst case; an attack runs only on the examples still robust, so the cost of
    a real evaluation is each attack's share times the fraction it runs on), per attack and in
    all, from each row's measured time per forward-equivalent scaled to the full budget."""
    out, totals = {}, {}
    for r in results:
        attack = _AUTOATTACK.fullmatch(r.objective)
        if not attack:
            continue
        full = autoattack_forward_equivalents(attack[1], AUTOATTACK_STANDARD[attack[1]])
        seconds = examples * full / (r.forward_equivalents * r.examples_per_s)
        setting = f"{r.precision}/jit={r.jit}"
        out[f"autoattack_s_per_{examples}/{attack[1]}/{setting}"] = seconds
        totals.setdefault(setting, {})[attack[1]] = seconds
    for setting, parts in totals.items():
        if set(parts) == set(AUTOATTACK_STANDARD):
            out[f"autoattack_s_per_{examples}/all/{setting}"] = sum(parts.values())
    return out
