"""Whether to compile with XLA: "auto" compiles on GPUs and TPUs and not on CPUs.

On accelerators XLA fuses the attack's many small ops. XLA:CPU runs the attack's while-loop
slowly, so there the PGD training step is slower with XLA than without (docs/performance.md).
"""

import tensorflow as tf

JIT_COMPILE_CHOICES = ("auto", "true", "false")
JIT_COMPILE_HELP = "Compile with XLA: auto (on GPUs and TPUs, not on CPUs), true or false."


def resolve_jit_compile(value: bool | str) -> bool:
    """True or False from a bool or "auto" / "true" / "false" (any case); ValueError otherwise.

    Booleans pass through, so config.json files written before "auto" existed still read.
    """
    if isinstance(value, bool):
        return value
    choice = str(value).lower()
    if choice not in JIT_COMPILE_CHOICES:
        raise ValueError(
            f"jit_compile must be one of {', '.join(JIT_COMPILE_CHOICES)}, got {value!r}."
        )
    if choice == "auto":
        return any(tf.config.list_physical_devices(kind) for kind in ("GPU", "TPU"))
    return choice == "true"
