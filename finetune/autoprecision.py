"""The run's dtype policy: the user's, or `auto`'s measurement within a budget, cached.

`auto` may spend at most `BUDGET_SHARE` of the run's expected time (float32 seconds per step x
its steps), or `MIN_BUDGET_S`, whichever is larger; its decision is cached per model, input
shape, batch size and machine (`finetune.precision.cache_path`), so a second run pays nothing.

Example:
    >>> policy, record = choose_precision(cfg, paths, builder, echo, dist, run_steps=120)
    >>> policy, record["cached"]
    ('float32', True)
"""

from __future__ import annotations

from typing import Any

from finetune.rundir import RunPaths, atomic_write_json

BUDGET_SHARE = 0.10
MIN_BUDGET_S = 15.0


def budget_for(run_steps: int) -> Any:
    """float32 seconds per step -> the measurement's budget in seconds.

    Example:
        >>> budget_for(1000)(0.5)  # a 500 s run may spend 50 s
        50.0
    """
    return lambda step_seconds: max(MIN_BUDGET_S, BUDGET_SHARE * step_seconds * run_steps)


def _key(builder: Any) -> str:
    from finetune.precision import cache_key

    cfg, data = builder.cfg, builder.data
    return cache_key(cfg.model, dict(cfg.model_options), tuple(data.input_shape), cfg.batch_size)


def choose_precision(cfg, paths: RunPaths, builder, echo, dist, run_steps: int) -> tuple[str, dict]:
    """The policy to train under; `auto` measures it (outside the strategy, on one device) and
    writes precision.json. With several workers the chief measures and tells the others."""
    from finetune.distribute import broadcast_from_chief
    from finetune.precision import POLICIES

    if cfg.precision != "auto":
        return cfg.precision, {"choice": cfg.precision, "reason": "set by the user"}
    choice, record = (None, {})
    if dist.is_chief:
        choice, record = _measure(paths, builder, echo, run_steps)
    if dist.multi_worker:  # timings differ between machines; every worker must agree
        index = broadcast_from_chief(dist, POLICIES.index(choice) if choice else 0)
        if not dist.is_chief:
            choice = POLICIES[index]
            record = {"choice": choice, "reason": "measured by the chief worker"}
    return choice, record


def _measure(paths: RunPaths, builder, echo, run_steps: int) -> tuple[str, dict]:
    from finetune.loop import is_binary
    from finetune.precision import cached_decision, measure_precision, store_decision

    key = _key(builder)
    record = cached_decision(key)
    if record is not None:
        record = {**record, "cached": True, "seconds_spent": 0.0}
        echo(f"precision auto: {record['choice']} (cached measurement: {record['reason']})")
    else:
        x, y = next(iter(builder.data.train))
        probe, _ = builder.build(load_from=False)
        if is_binary(probe):
            y = y.numpy().reshape(-1, 1).astype("float32")
        del probe
        echo("precision auto: timing a few training steps under each policy...")
        decision = measure_precision(
            builder.build_for_timing, (x, y), budget_s=budget_for(run_steps)
        )
        record = decision.to_dict()
        store_decision(key, record)
        echo(decision.summary())
    atomic_write_json(paths.precision, record)
    return record["choice"], record


def slower_than_float32(builder: Any, policy: str) -> str | None:
    """Why a hand-chosen mixed `policy` is slower here than float32, or None.

    From the cached measurement when one exists, else from the hardware: a 16-bit type the
    device has no native support for is emulated (mixed_float16 on this CPU is ~4x slower).
    """
    from finetune.precision import cached_decision, hardware_info

    if policy == "float32":
        return None
    record = cached_decision(_key(builder)) or {}
    timings, skipped = record.get("timings", {}), record.get("skipped", {})
    if policy in timings and timings[policy] > timings.get("float32", float("inf")):
        return f"measured {timings[policy] / timings['float32']:.1f}x slower than float32 here"
    if skipped.get(policy, "").startswith("stopped after warm-up"):
        return f"measured slower than float32 here ({skipped[policy]})"
    hardware = hardware_info()
    kind = policy.split("_")[1]
    if not hardware.get(kind):
        return f"no native {kind} on this {hardware['device']}: emulated, several times slower"
    return None
