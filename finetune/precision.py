"""Dtype policies for training, and `auto`: measure each supported policy, keep the fastest.

`auto` builds the actual model once under each policy the hardware supports, warms each up on
a real batch, then times short bursts of training steps in interleaved rounds (the order
rotates every round), so a busy moment on a shared machine slows every policy alike instead of
whichever was being timed. A mixed policy is picked only if it beats float32 by more than
`NOISE_MARGIN` both in the median over rounds and in a majority of the rounds (the per-round
ratios are recorded); otherwise float32, which is never less accurate.

Its cost is bounded: a candidate slower than float32 by `SLOW_FACTOR` after its warm-up is
dropped at once (emulated float16 on a CPU is ~4x slower), and no round starts once the time spent
would pass `budget_s` (the caller passes 10% of the run's expected time, at least 15 s). The
decision is cached per model, input shape, batch size and machine (`cached_decision`), so the
next run with the same settings measures nothing.

Example:
    >>> decision = measure_precision(build_model, (x_batch, y_batch))
    >>> decision.choice, decision.timings, decision.round_ratios["mixed_bfloat16"]
    ('mixed_bfloat16', {'float32': 0.031, 'mixed_bfloat16': 0.019}, [1.62, 1.58, 1.71, ...])
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import platform
import statistics
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

POLICIES = ("float32", "mixed_float16", "mixed_bfloat16")
# A mixed policy must be this much faster than float32 to be worth its lower precision.
NOISE_MARGIN = 0.05
# A candidate this much slower than float32 after warm-up cannot win: stop timing it.
SLOW_FACTOR = 1.25
# Interleaved timing rounds (each a burst of `steps` steps per policy).
ROUNDS = 5


@dataclasses.dataclass
class PrecisionDecision:
    """What `auto` measured and chose (written to RUN_DIR/precision.json)."""

    choice: str
    reason: str
    timings: dict[str, float]  # policy -> median over rounds of seconds per training step
    skipped: dict[str, str]  # policy -> why it was not measured
    hardware: dict[str, Any]
    margin: float = NOISE_MARGIN
    steps: int = 0  # timed steps per policy per round
    batch_size: int = 0
    rounds: int = 0
    # policy -> float32 seconds / policy seconds, per round (> 1: faster than float32).
    round_ratios: dict[str, list[float]] = dataclasses.field(default_factory=dict)
    seconds_spent: float = 0.0  # wall time of the measurement (0 when read from the cache)
    budget_s: float | None = None
    cached: bool = False

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
                rounds = self.round_ratios.get(policy) if policy != "float32" else None
                if rounds:
                    ratio += f"; per round {' '.join(f'{r:.2f}' for r in rounds)}"
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


def _warm_up(model: Any, batch: tuple[Any, Any], warmup: int) -> float:
    """Untimed steps (the first traces and compiles); returns the last one's seconds."""
    x, y = batch
    seconds = 0.0
    for _ in range(max(warmup, 1)):
        begin = time.perf_counter()
        model.train_on_batch(x, y)
        seconds = time.perf_counter() - begin  # the last warm-up step: traced, so comparable
    return seconds


def _burst(model: Any, batch: tuple[Any, Any], steps: int) -> float:
    """Median seconds of `steps` training steps."""
    x, y = batch
    times = []
    for _ in range(max(steps, 1)):
        begin = time.perf_counter()
        model.train_on_batch(x, y)  # returns numpy values, so the step has finished
        times.append(time.perf_counter() - begin)
    return statistics.median(times)


def choose_policy(
    timings: dict[str, float],
    margin: float = NOISE_MARGIN,
    round_ratios: dict[str, list[float]] | None = None,
) -> tuple[str, str]:
    """The fastest policy if it beats float32 by more than `margin`, else float32.

    With `round_ratios` (policy -> float32 time / policy time, per interleaved round) the win
    must also hold, beyond the margin, in a majority of the rounds.

    Example:
        >>> choose_policy({"float32": 1.0, "mixed_bfloat16": 0.97})
        ('float32', 'no mixed policy is more than 5% faster than float32')
        >>> choose_policy({"float32": 1.0, "mixed_float16": 0.9}, 0.05,
        ...               {"mixed_float16": [1.3, 1.2, 0.9, 0.9, 0.8]})[0]
        'float32'
    """
    if "float32" not in timings:
        raise ValueError(f"float32 must be measured. Received: timings={timings}")
    base = timings["float32"]
    best = min(timings, key=timings.get)
    if best == "float32" or timings[best] >= base * (1.0 - margin):
        return "float32", f"no mixed policy is more than {margin:.0%} faster than float32"
    gain = base / timings[best]
    if round_ratios is None or not round_ratios.get(best):
        return best, f"{gain:.2f}x faster than float32 (margin {margin:.0%})"
    ratios = round_ratios[best]
    wins = sum(ratio * (1.0 - margin) > 1.0 for ratio in ratios)
    if 2 * wins <= len(ratios):
        return "float32", (
            f"{best} was {gain:.2f}x float32 in the median but more than {margin:.0%} faster "
            f"in only {wins} of {len(ratios)} rounds: not a reliable win"
        )
    return best, (
        f"{gain:.2f}x faster than float32 (median of {len(ratios)} interleaved rounds; more than "
        f"{margin:.0%} faster in {wins} of them)"
    )


def measure_precision(
    build_compiled: Callable[[], Any],
    batch: tuple[Any, Any],
    *,
    warmup: int = 2,
    steps: int = 3,
    rounds: int = ROUNDS,
    margin: float = NOISE_MARGIN,
    policies: tuple[str, ...] = POLICIES,
    budget_s: Callable[[float], float] | float | None = None,
) -> PrecisionDecision:
    """Time training steps of `build_compiled()` under each supported policy, interleaved.

    Every candidate model is built and warmed up first; then `rounds` rounds each time a burst
    of `steps` steps per policy, in an order that rotates every round. A policy's timing is
    the median over rounds of its burst's median step; `round_ratios` pairs each round's
    float32 burst with the policy's.

    Args:
        build_compiled: builds and compiles a fresh model; called inside each policy.
        batch: one real training batch (x, y).
        warmup: untimed steps first (tracing, oneDNN/cuDNN autotuning).
        steps: timed steps per policy in each round (their median is the round's time).
        rounds: interleaved rounds.
        margin: how much faster than float32 a mixed policy must be.
        policies: the candidates (float32 is always measured); unsupported ones are skipped
            with a recorded reason.
        budget_s: seconds the measurement may take, or a function of float32's seconds per
            step giving them; at least one round is timed. None: no limit.
    """
    if rounds < 1 or steps < 1:
        raise ValueError(
            f"rounds and steps should be positive ints. Received: rounds={rounds}, steps={steps}"
        )
    began = time.perf_counter()
    hardware = hardware_info()
    models, warm, skipped, budget_s = _warm_candidates(
        build_compiled, batch, warmup, policies, hardware, began, budget_s
    )
    seconds = _timed_rounds(models, batch, steps, rounds, began, budget_s)
    models.clear()
    if len(seconds) == 1:  # float32 alone: nothing to compare, its warm-up step is its time
        seconds = {"float32": [warm["float32"]]}
    timings = {policy: statistics.median(values) for policy, values in seconds.items()}
    round_ratios = {
        policy: [round(b / t, 4) for b, t in zip(seconds["float32"], values, strict=True)]
        for policy, values in seconds.items()
        if policy != "float32"
    }
    choice, reason = choose_policy(timings, margin, round_ratios)
    return PrecisionDecision(
        choice=choice,
        reason=reason,
        timings=timings,
        skipped=skipped,
        hardware=hardware,
        margin=margin,
        steps=steps,
        batch_size=int(len(batch[1])),
        rounds=len(seconds["float32"]) if len(timings) > 1 else 0,
        round_ratios=round_ratios,
        seconds_spent=round(_spent(began), 2),
        budget_s=None if budget_s is None else round(float(budget_s), 2),
    )


def _warm_candidates(build_compiled, batch, warmup, policies, hardware, began, budget_s):
    """Build and warm up float32, then each other supported policy that fits the budget; drop
    one already `SLOW_FACTOR` x slower than float32. Returns (models, warm-up seconds, skipped
    policies with why, the budget in seconds)."""
    skipped: dict[str, str] = {}
    models: dict[str, Any] = {}
    warm: dict[str, float] = {}
    for policy in ("float32", *(p for p in policies if p != "float32")):
        kind = policy.split("_")[-1]  # float32, float16, bfloat16
        if policy == "mixed_bfloat16" and not hardware["bfloat16"]:
            skipped[policy] = f"no native bfloat16 on this {hardware['device']}"
            continue
        if policy != "float32" and budget_s is not None and _spent(began) > budget_s:
            skipped[policy] = f"not measured: the {budget_s:.0f} s budget was spent"
            continue
        with dtype_policy(policy):
            model = build_compiled()
            ensure_loss_scaling(model)
            warm[policy] = _warm_up(model, batch, warmup)
        if callable(budget_s):
            budget_s = float(budget_s(warm["float32"]))
        if policy != "float32" and warm[policy] > SLOW_FACTOR * warm["float32"]:
            # Slower than float32 already (emulated float16 is ~4x): it cannot win.
            native = (
                "" if hardware.get(kind) else f"; no native {kind} on this {hardware['device']}"
            )
            skipped[policy] = (
                f"stopped after warm-up: {warm[policy] * 1000:.1f} ms/step, more than "
                f"{SLOW_FACTOR:g}x float32's {warm['float32'] * 1000:.1f}{native}"
            )
            del model  # not clear_session(): it would also reset the caller's global policy
            continue
        models[policy] = model
    return models, warm, skipped, budget_s


def _spent(began: float) -> float:
    return time.perf_counter() - began


def _timed_rounds(models, batch, steps, rounds, began, budget_s) -> dict[str, list[float]]:
    """Interleaved bursts (the order rotates every round); no round starts past the budget."""
    names = list(models)
    seconds: dict[str, list[float]] = {policy: [] for policy in names}
    if len(names) < 2:
        return seconds
    last_round = 0.0
    for round_index in range(rounds):
        if round_index and budget_s is not None and _spent(began) + last_round > budget_s:
            break
        start = time.perf_counter()
        shift = round_index % len(names)
        for policy in names[shift:] + names[:shift]:
            with dtype_policy(policy):
                seconds[policy].append(_burst(models[policy], batch, steps))
        last_round = time.perf_counter() - start
    return seconds


def cache_path() -> Path:
    """The precision cache: $KERAZOO_CACHE_DIR/precision.json, else ~/.cache/kerazoo/."""
    root = os.environ.get("KERAZOO_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "kerazoo"
    )
    return Path(root) / "precision.json"


def machine_key() -> str:
    """This machine as timings depend on it: host, CPU model and count, GPU, TensorFlow."""
    import tensorflow as tf

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            cpu = next((ln.split(":", 1)[1].strip() for ln in handle if "model name" in ln), cpu)
    except OSError:
        pass
    hardware = hardware_info()
    return f"{platform.node()}|{cpu}|{os.cpu_count()}|{hardware['name']}|tf{tf.__version__}"


def cache_key(model: str, options: dict[str, Any], input_shape: Any, batch_size: int) -> str:
    """One entry per model (and its options), input shape, batch size and machine.

    Example:
        >>> cache_key("cnn", {}, (32, 32, 3), 32)
        'cnn {} [32, 32, 3] b32 @ myhost|Intel(R) Xeon(R) ...|2|CPU|tf2.20.0'
    """
    shape = list(input_shape) if input_shape is not None else None
    opts = json.dumps(options, sort_keys=True, default=str)
    return f"{model} {opts} {shape} b{batch_size} @ {machine_key()}"


def cached_decision(key: str) -> dict[str, Any] | None:
    """The decision recorded for `key`, or None (no cache, no entry or an unreadable file)."""
    try:
        entries = json.loads(cache_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    entry = entries.get(key) if isinstance(entries, dict) else None
    return entry if isinstance(entry, dict) and entry.get("choice") in POLICIES else None


def store_decision(key: str, record: dict[str, Any]) -> None:
    """Add `record` under `key` (atomically; a cache that cannot be written is skipped)."""
    from finetune.rundir import atomic_write_json

    path = cache_path()
    try:
        entries = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
        entries = entries if isinstance(entries, dict) else {}
    except (OSError, ValueError):
        entries = {}
    entries[key] = record
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(path, entries)
    except OSError:
        pass  # a read-only home only costs the next run a measurement
