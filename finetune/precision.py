"""Dtype policies for training, and `auto`: measure each supported policy, keep the fastest.

`auto` times a few training steps (after warm-up) of the actual model on a real batch under
each policy the hardware supports, and picks a mixed policy only if it beats float32 by more
than `NOISE_MARGIN`; otherwise float32, which is never less accurate.

Example:
    >>> decision = measure_precision(build_model, (x_batch, y_batch))
    >>> decision.choice, decision.timings
    ('mixed_bfloat16', {'float32': 0.031, 'mixed_bfloat16': 0.019, ...})
"""

from __future__ import annotations

import contextlib
import dataclasses
import statistics
import time
from collections.abc import Callable, Iterator
from typing import Any

POLICIES = ("float32", "mixed_float16", "mixed_bfloat16")
# A mixed policy must be this much faster than float32 to be worth its lower precision.
NOISE_MARGIN = 0.05
# float16 on CPUs without native support is emulated; stop timing it once it is this much slower.
SLOW_FACTOR = 4.0


@dataclasses.dataclass
class PrecisionDecision:
    """What `auto` measured and chose (written to RUN_DIR/precision.json)."""

    choice: str
    reason: str
    timings: dict[str, float]  # policy -> median seconds per training step
    skipped: dict[str, str]  # policy -> why it was not measured
    hardware: dict[str, Any]
    margin: float = NOISE_MARGIN
    steps: int = 0
    batch_size: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def summary(self) -> str:
        """One line per policy, for the console."""
        base = self.timings.get("float32")
        lines = []
        for policy in POLICIES:
            if policy in self.timings:
                seconds = self.timings[policy]
                ratio = f"  ({base / seconds:.2f}x float32)" if base and seconds else ""
                lines.append(f"  {policy:<15} {seconds * 1000:8.2f} ms/step{ratio}")
            elif policy in self.skipped:
                lines.append(f"  {policy:<15} skipped: {self.skipped[policy]}")
        lines.append(f"  -> {self.choice}: {self.reason}")
        return "\n".join(lines)


def _cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def hardware_info() -> dict[str, Any]:
    """The training device and its 16-bit support: GPU compute capability or CPU flags.

    bfloat16 is native on GPUs of compute capability >= 8.0 and on CPUs with AVX512_BF16 or AMX;
    float16 is native on GPUs >= 7.0 (tensor cores) and on CPUs with AVX512_FP16/AMX_FP16.
    """
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        capability = details.get("compute_capability") or (0, 0)
        return {
            "device": "gpu",
            "name": details.get("device_name", "GPU"),
            "compute_capability": list(capability),
            "bfloat16": tuple(capability) >= (8, 0),
            "float16": tuple(capability) >= (7, 0),
        }
    flags = _cpu_flags()
    return {
        "device": "cpu",
        "name": "CPU",
        "bf16_flags": sorted(flags & {"avx512_bf16", "amx_bf16"}),
        "bfloat16": bool(flags & {"avx512_bf16", "amx_bf16"}),
        "float16": bool(flags & {"avx512_fp16", "amx_fp16"}),
    }


@contextlib.contextmanager
def dtype_policy(name: str) -> Iterator[None]:
    """Set Keras' global dtype policy for the block (models must be built inside), then reset.

    Example:
        >>> with dtype_policy("mixed_bfloat16"):
        ...     model = zoo.create_model("cnn")
    """
    import keras

    if name not in POLICIES:
        raise ValueError(f"precision should be one of {', '.join(POLICIES)}. Received: {name!r}")
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def ensure_loss_scaling(model: Any) -> bool:
    """Under mixed_float16, make sure the compiled optimizer scales the loss; True if it does.

    Keras 3's `compile` wraps the optimizer in a LossScaleOptimizer when the *model's* policy is
    mixed_float16 (auto_scale_loss=True); a model assembled from layers of other policies would
    miss it, so check and wrap here rather than trust it.
    """
    import keras

    if getattr(model.dtype_policy, "name", None) != "mixed_float16" and not any(
        getattr(layer.dtype_policy, "name", None) == "mixed_float16" for layer in model.layers
    ):
        return False
    if not isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer):
        model.optimizer = keras.optimizers.LossScaleOptimizer(model.optimizer)
    return True


def _time_steps(model: Any, batch: tuple[Any, Any], warmup: int, steps: int, limit: float | None):
    x, y = batch
    warm = 0.0
    for _ in range(max(warmup, 1)):  # the first step also traces and compiles the train function
        begin = time.perf_counter()
        model.train_on_batch(x, y)
        warm = time.perf_counter() - begin  # the last warm-up step: traced, so comparable
    if limit is not None and warmup > 1 and warm > limit:
        return None, warm
    times = []
    for _ in range(steps):
        begin = time.perf_counter()
        model.train_on_batch(x, y)  # returns numpy values, so the step has finished
        times.append(time.perf_counter() - begin)
    return statistics.median(times), None


def choose_policy(timings: dict[str, float], margin: float = NOISE_MARGIN) -> tuple[str, str]:
    """The fastest policy if it beats float32 by more than `margin`, else float32.

    Example:
        >>> choose_policy({"float32": 1.0, "mixed_bfloat16": 0.97})
        ('float32', 'no mixed policy is more than 5% faster than float32')
    """
    if "float32" not in timings:
        raise ValueError(f"float32 must be measured. Received: timings={timings}")
    base = timings["float32"]
    best = min(timings, key=timings.get)
    if best != "float32" and timings[best] < base * (1.0 - margin):
        gain = base / timings[best]
        return best, f"{gain:.2f}x faster than float32 (margin {margin:.0%})"
    return "float32", f"no mixed policy is more than {margin:.0%} faster than float32"


def measure_precision(
    build_compiled: Callable[[], Any],
    batch: tuple[Any, Any],
    *,
    warmup: int = 2,
    steps: int = 5,
    margin: float = NOISE_MARGIN,
    policies: tuple[str, ...] = POLICIES,
) -> PrecisionDecision:
    """Time `steps` training steps of `build_compiled()` under each supported policy.

    Args:
        build_compiled: builds and compiles a fresh model; called inside each policy.
        batch: one real training batch (x, y).
        warmup: untimed steps first (tracing, oneDNN/cuDNN autotuning).
        steps: timed steps; the median is kept.
        margin: how much faster than float32 a mixed policy must be.
        policies: the candidates; unsupported ones are skipped with a recorded reason.
    """
    hardware = hardware_info()
    timings: dict[str, float] = {}
    skipped: dict[str, str] = {}
    for policy in policies:
        if policy == "mixed_bfloat16" and not hardware["bfloat16"]:
            skipped[policy] = f"no native bfloat16 on this {hardware['device']}"
            continue
        limit = None
        if policy == "mixed_float16" and not hardware["float16"] and "float32" in timings:
            # Emulated float16 is usually several times slower: measure, but stop early.
            limit = SLOW_FACTOR * timings["float32"]
        with dtype_policy(policy):
            model = build_compiled()
            ensure_loss_scaling(model)
            median, too_slow = _time_steps(model, batch, warmup, steps, limit)
        del model  # not clear_session(): it would also reset the caller's global dtype policy
        if median is None:
            skipped[policy] = (
                f"stopped after warm-up: {too_slow * 1000:.1f} ms/step, more than "
                f"{SLOW_FACTOR:g}x float32 (no native float16 on this {hardware['device']})"
            )
        else:
            timings[policy] = median
    choice, reason = choose_policy(timings, margin)
    return PrecisionDecision(
        choice=choice,
        reason=reason,
        timings=timings,
        skipped=skipped,
        hardware=hardware,
        margin=margin,
        steps=steps,
        batch_size=int(len(batch[1])),
    )
