"""Training steps/s of zoo models under each dtype policy, interleaved, any input shape.

Like bench_precision.py (which times the policies one after the other, as `--precision auto`
does), but builds one model per policy first and then times them in rotating rounds, so a busy
moment on a shared machine hits every policy alike; the ratio to float32 is taken per round.
A model is NAME or NAME@H,W,C (e.g. vgg16_gap@32,32,3 for a VGG16 head at 32x32; backbone
models keep their backbone frozen, weights=None).

Usage: python bench/bench_precision_models.py [MODEL ...] [--quick] [--rounds 9]
"""

from __future__ import annotations

import argparse
import time

import _common
import numpy as np

DEFAULT_MODELS = ("cnn", "lstm", "vgg16_gap@32,32,3")
SEQUENCE_STEPS = 20  # time steps of the random sequences (bench_precision.py uses the same)


def _parse(spec: str) -> tuple[str, tuple[int | None, ...] | None]:
    name, _, shape = spec.partition("@")
    if not shape:
        return name, None
    return name, tuple(None if d == "None" else int(d) for d in shape.split(","))


def _batch(info, shape, batch_size: int, seed: int = 0):
    shape = tuple(SEQUENCE_STEPS if dim is None else dim for dim in shape)
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 255, size=(batch_size, *shape)).astype("float32")
    if info.task == "sequence":
        x /= 255.0
    y = rng.integers(0, max(info.num_classes, 2), size=batch_size)
    if info.num_classes == 1:
        y = y.reshape(-1, 1).astype("float32")
    return x, y


def _step_seconds(model, batch, steps: int) -> float:
    x, y = batch
    begin = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(x, y)  # returns numpy values: the step has finished
    return (time.perf_counter() - begin) / steps


def bench_model(spec: str, policies, batch_size: int, rounds: int, steps: int, warmup: int):
    import zoo
    from finetune.model import compile_model
    from finetune.precision import dtype_policy, ensure_loss_scaling

    name, shape = _parse(spec)
    info = zoo.model_info(name)
    shape = shape or info.input_shape
    batch = _batch(info, shape, batch_size)
    models = {}
    for policy in policies:
        with dtype_policy(policy):
            model = zoo.create_model(name, input_shape=shape, weights=None)
            compile_model(model, 1e-3)
            ensure_loss_scaling(model)
        for _ in range(warmup):  # tracing, oneDNN primitive creation
            model.train_on_batch(*batch)
        models[policy] = model
    times: dict[str, list[float]] = {p: [] for p in policies}
    for index in range(rounds):
        shift = index % len(policies)  # rotate the order: no policy always goes first
        for policy in policies[shift:] + policies[:shift]:
            times[policy].append(_step_seconds(models[policy], batch, steps))
    base = times.get("float32")
    result = {"model": name, "input_shape": list(shape), "policies": {}}
    for policy in policies:
        entry = {
            "seconds_per_step": _common.spread(times[policy]),
            "steps_per_second": _common.spread([1.0 / t for t in times[policy]]),
            "raw_seconds_per_step": times[policy],
        }
        if base:
            entry["speedup_vs_float32"] = _common.spread(
                [b / t for b, t in zip(base, times[policy], strict=True)]
            )
        result["policies"][policy] = entry
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", default=list(DEFAULT_MODELS))
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=9, help="interleaved rounds")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per policy per round")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="5 rounds of 2 steps")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.steps = 5, 2

    from finetune.precision import POLICIES, hardware_info

    hardware = hardware_info()
    policies = [p for p in POLICIES if p != "mixed_bfloat16" or hardware["bfloat16"]]
    results = [
        bench_model(spec, policies, args.batch_size, args.rounds, args.steps, args.warmup)
        for spec in args.models
    ]
    rows = []
    for result in results:
        for policy, entry in result["policies"].items():
            ms = {k: v * 1000 for k, v in entry["seconds_per_step"].items() if k != "n"}
            speed = entry.get("speedup_vs_float32")
            rows.append(
                [
                    result["model"],
                    "x".join("T" if d is None else str(d) for d in result["input_shape"]),
                    policy,
                    _common.fmt_range(ms, 1),
                    f"{entry['steps_per_second']['median']:.1f}",
                    _common.fmt_range(speed) if speed else "-",
                ]
            )
    headers = ["model", "input", "policy", "ms/step [min-max]", "steps/s", "x float32 [min-max]"]
    print(
        f"batch {args.batch_size}, {args.rounds} rounds x {args.steps} steps, "
        f"{hardware['device']} ({', '.join(hardware.get('bf16_flags', [])) or 'no bf16 flags'})"
    )
    print(_common.table(headers, rows))
    path = _common.write_json(
        "precision_models",
        {"settings": vars(args), "hardware": hardware, "results": results},
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
