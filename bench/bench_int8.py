"""INT8 against FP32 in ONNX Runtime: speed-up at batch 1 and 64, accuracy on builtin:digits.

Each model is trained briefly on builtin:digits (through `finetune.data.load_data` and
`finetune.model.compile_model`, then `model.fit`), so its accuracy is real; exported with
`convert.export_onnx`; quantized with `convert.quantize_int8` (QDQ, per-channel, calibrated on
--calib training images); and both graphs are scored on the digits test split and timed in
interleaved rounds through `convert.open_artifact` (what `zoo bench` runs).

Models: the reference CNN at 28x28x1, and the reference VGG16 head (vgg16_flatten, frozen
backbone, weights=None: only the Dense head learns, on random-convolution features) at --vgg-size.

Usage: python bench/bench_int8.py [--quick] [--epochs 5] [--vgg-size 32] [--runs 30]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import _common
import numpy as np
from bench_latency import interleave, percentiles_ms, random_inputs

DATA = "builtin:digits"


def _accuracy(runner: Any, x: np.ndarray, y: np.ndarray, batch: int = 64) -> tuple[float, Any]:
    predictions = np.concatenate(
        [runner.run(x[i : i + batch])[0].argmax(-1) for i in range(0, len(x), batch)]
    )
    return float((predictions == y).mean()), predictions


def bench_model(name, shape, epochs, args, scratch: Path) -> dict[str, Any]:
    import convert
    import zoo
    from finetune.data import load_data
    from finetune.model import compile_model

    data = load_data(DATA, task="image", input_shape=shape, batch_size=32)
    model = zoo.create_model(name, input_shape=shape, num_classes=data.num_classes, weights=None)
    compile_model(model, args.lr)
    begin = time.perf_counter()
    model.fit(data.train, validation_data=data.val, epochs=epochs, verbose=0)
    train_s = time.perf_counter() - begin
    x_test, y_test = data.arrays("test")
    x_calib, _ = data.arrays("train", limit=args.calib)

    fp32 = convert.export_onnx(model, scratch / f"{name}.onnx")
    begin = time.perf_counter()
    int8 = convert.quantize_int8(fp32, scratch / f"{name}.int8.onnx", x_calib, args.method)
    quant_s = time.perf_counter() - begin
    runners = {
        "fp32": convert.open_artifact(fp32, threads=args.threads),
        "int8": convert.open_artifact(int8, threads=args.threads),
    }
    keras_acc = float(model.evaluate(x_test, y_test, verbose=0, return_dict=True)["accuracy"])
    acc = {}
    predictions = {}
    for precision, runner in runners.items():
        acc[precision], predictions[precision] = _accuracy(runner, x_test, y_test)
    result: dict[str, Any] = {
        "model": name,
        "input_shape": list(shape),
        "epochs": epochs,
        "train_seconds": train_s,
        "quantize_seconds": quant_s,
        "test_examples": len(y_test),
        "accuracy": {"keras": keras_acc, **acc, "delta_int8_minus_fp32": acc["int8"] - acc["fp32"]},
        "top1_agreement": float((predictions["fp32"] == predictions["int8"]).mean()),
        "size_bytes": {k: Path(p).stat().st_size for k, p in (("fp32", fp32), ("int8", int8))},
        "latency": {},
    }
    for batch in args.batch_sizes:
        x = random_inputs(shape, batch, 0)
        calls = {k: (lambda r=r, x=x: r.run(x)) for k, r in runners.items()}
        times = interleave(calls, warmup=args.warmup, runs=args.runs, budget_s=args.budget_s)
        speedup = [f / i for f, i in zip(times["fp32"], times["int8"], strict=True)]
        result["latency"][batch] = {
            "fp32": percentiles_ms(times["fp32"]),
            "int8": percentiles_ms(times["int8"]),
            "speedup": _common.spread(speedup),
            "runs": len(speedup),
        }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5, help="training epochs (each model)")
    parser.add_argument("--vgg-size", type=int, default=32, help="VGG16 input side")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--calib", type=int, default=256, help="calibration images (train split)")
    parser.add_argument("--method", default="minmax", help="minmax, entropy or percentile")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 64])
    parser.add_argument("--runs", type=int, default=30, help="interleaved rounds per batch size")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--budget-s", type=float, default=15.0, help="rough timed s per case")
    parser.add_argument("--threads", type=int, default=None, help="ORT intra-op threads")
    parser.add_argument("--quick", action="store_true", help="3 epochs, 15 rounds")
    args = parser.parse_args()
    if args.quick:
        args.epochs, args.runs = 3, 15

    size = args.vgg_size
    models = [("cnn", (28, 28, 1)), ("vgg16_flatten", (size, size, 3))]
    results = []
    with tempfile.TemporaryDirectory(prefix="kerazoo-bench-int8-") as scratch:
        for name, shape in models:
            results.append(bench_model(name, shape, args.epochs, args, Path(scratch)))
            print(f"  done {name}", flush=True)
    rows = []
    for r in results:
        acc = r["accuracy"]
        for batch, entry in r["latency"].items():
            rows.append(
                [
                    r["model"],
                    "x".join(map(str, r["input_shape"])),
                    batch,
                    f"{entry['fp32']['p50_ms']:.2f}",
                    f"{entry['int8']['p50_ms']:.2f}",
                    _common.fmt_range(entry["speedup"], 2),
                    f"{100 * acc['fp32']:.1f}%",
                    f"{100 * acc['int8']:.1f}%",
                    f"{100 * acc['delta_int8_minus_fp32']:+.1f}",
                    f"{100 * r['top1_agreement']:.1f}%",
                ]
            )
    headers = [
        "model",
        "input",
        "batch",
        "fp32 p50 ms",
        "int8 p50 ms",
        "speed-up [min-max]",
        "fp32 acc",
        "int8 acc",
        "delta pts",
        "agree",
    ]
    print(
        f"{DATA} test split ({results[0]['test_examples']} images), {args.epochs} epochs, "
        f"{args.method} calibration on {args.calib} train images, interleaved rounds"
    )
    print(_common.table(headers, rows))
    path = _common.write_json("int8", {"settings": vars(args), "results": results})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
