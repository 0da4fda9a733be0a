"""Inference latency of the reference models: Keras predict, model(x) and ONNX Runtime, interleaved.

Each model is exported with `convert.export_onnx` and run four ways on the same random batch:
`model.predict(x)` ("keras-predict"), `model.predict_on_batch(x)` ("keras-function", what
`zoo bench` reports for a .keras file), `model(x)` ("keras-eager") and ONNX Runtime through
`convert.open_artifact` ("onnxruntime", what `zoo bench` runs for an .onnx file). The runtimes
are timed in rotating rounds (one call each per round, the order shifted every round), so a busy
moment on a shared machine hits all of them alike; the ratio to ONNX Runtime is taken per round.

VGG16 (vgg16_flatten, weights=None) runs at 224x224 for batch 1; at batch 64 it runs at
--vgg-batch64-size (64x64 by default), since 224x224 x 64 costs ~1 TFLOP per call; its cases get
at most 2 warm-up calls and about --budget-s seconds of timed rounds (at least 5). Sequence models run at --seq-len time steps.

Usage: python bench/bench_latency.py [--quick] [--runs 30] [--threads N] [--seq-len 32]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import _common
import numpy as np

RUNTIMES = ("keras-predict", "keras-function", "keras-eager", "onnxruntime")
SEQUENCE_MODELS = ("simple_rnn", "lstm", "gru")


def interleave(
    calls: dict[str, Callable[[], Any]], *, warmup: int, runs: int, budget_s: float | None = None
) -> dict[str, list[float]]:
    """Seconds per call of each callable, timed in rotating rounds after `warmup` untimed calls.

    With `budget_s`, the number of rounds is cut so that the timed part takes about that long
    (estimated from the last warm-up call of each), but never below 5.
    """
    estimate = 0.0
    for call in calls.values():
        last = 0.0
        for _ in range(warmup):
            start = time.perf_counter()
            call()
            last = time.perf_counter() - start
        estimate += last
    if budget_s is not None and estimate > 0:
        runs = max(5, min(runs, int(budget_s / estimate)))
    names = list(calls)
    times: dict[str, list[float]] = {name: [] for name in names}
    for index in range(runs):
        shift = index % len(names)  # rotate the order: no runtime always goes first
        for name in names[shift:] + names[:shift]:
            start = time.perf_counter()
            calls[name]()
            times[name].append(time.perf_counter() - start)
    return times


def percentiles_ms(seconds: list[float]) -> dict[str, float]:
    p50, p90 = np.percentile(np.asarray(seconds) * 1000.0, [50, 90])
    return {"p50_ms": float(p50), "p90_ms": float(p90)}


def random_inputs(shape: tuple[int | None, ...], batch: int, seq_len: int) -> np.ndarray:
    """The inputs `zoo bench` feeds: 0-255 pixels for images, standard normal sequences."""
    rng = np.random.default_rng(0)
    dims = [batch] + [seq_len if d is None else int(d) for d in shape]
    if len(dims) == 4:
        return rng.uniform(0, 255, dims).astype(np.float32)
    return rng.standard_normal(dims).astype(np.float32)


def keras_calls(model: Any, x: np.ndarray) -> dict[str, Callable[[], Any]]:
    return {
        "keras-predict": lambda: model.predict(x, batch_size=len(x), verbose=0),
        "keras-function": lambda: model.predict_on_batch(x),
        "keras-eager": lambda: np.asarray(model(x, training=False)),
    }


def _cases(args) -> list[tuple[str, tuple[int | None, ...] | None, int]]:
    """(model, input_shape or None for the model's own, batch size)."""
    vgg64 = (args.vgg_batch64_size, args.vgg_batch64_size, 3)
    cases: list[tuple[str, tuple[int | None, ...] | None, int]] = []
    for name in ("cnn", *SEQUENCE_MODELS):
        cases += [(name, None, 1), (name, None, 64)]
    cases += [("vgg16_flatten", (224, 224, 3), 1), ("vgg16_flatten", vgg64, 64)]
    return cases


def bench_case(name, shape, batch, args, scratch: Path) -> dict[str, Any]:
    import convert
    import zoo

    model = zoo.create_model(name, input_shape=shape, weights=None)
    shape = tuple(model.inputs[0].shape[1:])
    tag = "x".join("T" if d is None else str(d) for d in shape)
    onnx_path = convert.export_onnx(model, scratch / f"{name}_{tag}.onnx")
    runner = convert.open_artifact(onnx_path, threads=args.threads)
    x = random_inputs(shape, batch, args.seq_len)
    calls = {**keras_calls(model, x), "onnxruntime": lambda: runner.run(x)}
    parity = float(np.max(np.abs(np.asarray(model(x, training=False)) - runner.run(x)[0])))
    heavy = name.startswith("vgg16")  # seconds per call: fewer warm-ups, a time budget
    times = interleave(
        calls,
        warmup=min(args.warmup, 2) if heavy else args.warmup,
        runs=args.runs,
        budget_s=args.budget_s if heavy else None,
    )
    base = times["onnxruntime"]
    result: dict[str, Any] = {
        "model": name,
        "input_shape": [None if d is None else int(d) for d in shape],
        "seq_len": args.seq_len if name in SEQUENCE_MODELS else None,
        "batch_size": batch,
        "runs": len(base),
        "max_abs_diff_onnx_vs_keras": parity,
        "runtimes": {},
    }
    for runtime in RUNTIMES:
        result["runtimes"][runtime] = {
            **percentiles_ms(times[runtime]),
            "x_onnxruntime": _common.spread(
                [t / b for t, b in zip(times[runtime], base, strict=True)]
            ),
            "raw_ms": [t * 1000.0 for t in times[runtime]],
        }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30, help="interleaved rounds per case")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--seq-len", type=int, default=32, help="time steps of sequence models")
    parser.add_argument("--vgg-batch64-size", type=int, default=64, help="VGG16 side at batch 64")
    parser.add_argument(
        "--budget-s", type=float, default=20.0, help="rough seconds of timed rounds per VGG16 case"
    )
    parser.add_argument("--threads", type=int, default=None, help="ORT intra-op threads")
    parser.add_argument("--quick", action="store_true", help="15 rounds, 10 s per VGG16 case")
    args = parser.parse_args()
    if args.quick:
        args.runs, args.budget_s = 15, 10.0

    results = []
    with tempfile.TemporaryDirectory(prefix="kerazoo-bench-latency-") as scratch:
        for name, shape, batch in _cases(args):
            results.append(bench_case(name, shape, batch, args, Path(scratch)))
            print(f"  done {name} batch {batch}", flush=True)
    rows = []
    for r in results:
        shape = "x".join(str(args.seq_len) if d is None else str(d) for d in r["input_shape"])
        for runtime, entry in r["runtimes"].items():
            ratio = entry["x_onnxruntime"]
            rows.append(
                [
                    r["model"],
                    shape,
                    r["batch_size"],
                    runtime,
                    f"{entry['p50_ms']:.2f}",
                    f"{entry['p90_ms']:.2f}",
                    "1" if runtime == "onnxruntime" else _common.fmt_range(ratio, 1),
                    r["runs"],
                ]
            )
    headers = ["model", "input", "batch", "runtime", "p50 ms", "p90 ms", "x ORT [min-max]", "runs"]
    print(f"threads={args.threads or 'runtime default'}, warmup {args.warmup}, interleaved rounds")
    print(_common.table(headers, rows))
    path = _common.write_json("latency", {"settings": vars(args), "results": results})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
