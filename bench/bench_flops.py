"""The reference CNN at batch 64 against this CPU's FLOP floor: achieved GFLOP/s and % of peak.

FLOPs are counted analytically from the layer shapes, a multiply-add as 2 FLOPs:
Conv2D = 2 * H_out * W_out * K_h * K_w * C_in * C_out, Dense = 2 * in * out. Bias adds,
activations, pooling, flatten and softmax are counted apart ("other"), not in the floor. Peak is
measured on the same machine, interleaved: float32 matrix products (4096 and 1024 square) in
numpy (its BLAS) and in ONNX Runtime (a one-node MatMul graph); the best median is the peak, and
the best single round is reported beside it (on a shared machine, the least disturbed round). The model runs in ONNX Runtime (the exported graph,
through `convert.open_artifact`) and in Keras (predict, predict_on_batch, model(x)), interleaved.

Usage: python bench/bench_flops.py [--quick] [--batch-size 64] [--matmul 4096 1024] [--runs 30]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

import _common
import numpy as np
from bench_latency import interleave, keras_calls, percentiles_ms, random_inputs


def count_flops(model: Any) -> dict[str, Any]:
    """Per-example FLOPs of Conv2D and Dense layers (the floor) and of everything else."""
    from keras import layers

    rows, other = [], 0
    for layer in model.layers:
        out = [int(d) for d in layer.output.shape[1:]]
        elements = int(np.prod(out)) if out else 0
        if isinstance(layer, (layers.Conv2D, layers.Dense)):
            kernel = [int(d) for d in layer.kernel.shape]
            # Conv2D kernel: (K_h, K_w, C_in, C_out); Dense kernel: (in, out).
            spatial = int(np.prod(out[:-1])) if isinstance(layer, layers.Conv2D) else 1
            flops = 2 * spatial * int(np.prod(kernel))
            rows.append({"layer": layer.name, "output": out, "kernel": kernel, "flops": flops})
            other += elements * (int(layer.use_bias) + (layer.activation.__name__ != "linear"))
        elif isinstance(layer, layers.MaxPooling2D):
            window = int(np.prod(layer.pool_size))
            other += elements * (window - 1)  # comparisons
        elif isinstance(layer, layers.Activation) or "softmax" in layer.name:
            other += elements
    return {"layers": rows, "floor": sum(r["flops"] for r in rows), "other": other}


def _ort_matmul(n: int, scratch: Path, threads: int | None):
    """An ONNX Runtime session computing A @ B for two (n, n) float32 inputs."""
    import onnx
    from onnx import TensorProto, helper

    import convert

    graph = helper.make_graph(
        [helper.make_node("MatMul", ["a", "b"], ["c"])],
        "matmul",
        [helper.make_tensor_value_info(v, TensorProto.FLOAT, [n, n]) for v in ("a", "b")],
        [helper.make_tensor_value_info("c", TensorProto.FLOAT, [n, n])],
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    path = scratch / f"matmul{n}.onnx"
    onnx.save(proto, str(path))
    return convert.open_artifact(path, threads=threads).session


def _matmul_calls(n: int, scratch: Path, threads: int | None) -> dict[str, Any]:
    """numpy and ONNX Runtime (n, n) float32 matmuls as zero-argument calls."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n)).astype(np.float32)
    b = rng.standard_normal((n, n)).astype(np.float32)
    session = _ort_matmul(n, scratch, threads)
    return {
        f"numpy matmul {n}": lambda: a @ b,
        f"onnxruntime MatMul {n}": lambda: session.run(None, {"a": a, "b": b}),
    }


def measure_peak(sizes, rounds: int, scratch: Path, threads: int | None) -> dict[str, Any]:
    """GFLOP/s of large numpy and ONNX Runtime matmuls, interleaved per size."""
    peak = {}
    for n in sizes:
        times = interleave(_matmul_calls(n, scratch, threads), warmup=1, runs=rounds)
        for name, ts in times.items():
            peak[name] = _common.spread([2.0 * n**3 / t / 1e9 for t in ts])
    return peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument(
        "--matmul", type=int, nargs="+", default=[4096, 1024], help="sides of the peak matmuls"
    )
    parser.add_argument("--matmul-rounds", type=int, default=4)
    parser.add_argument("--runs", type=int, default=30, help="interleaved rounds of the CNN")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="ORT intra-op threads")
    parser.add_argument("--quick", action="store_true", help="2048 and 1024 matmuls, 15 rounds")
    args = parser.parse_args()
    if args.quick:
        args.matmul, args.runs = [2048, 1024], 15

    import convert
    import zoo

    model = zoo.create_model("cnn")
    counted = count_flops(model)
    per_batch = counted["floor"] * args.batch_size
    with tempfile.TemporaryDirectory(prefix="kerazoo-bench-flops-") as scratch:
        peak = measure_peak(args.matmul, args.matmul_rounds, Path(scratch), args.threads)
        runner = convert.open_artifact(convert.export_onnx(model, Path(scratch) / "cnn.onnx"))
        x = random_inputs(tuple(model.inputs[0].shape[1:]), args.batch_size, 0)
        # A matmul of about the CNN's FLOPs rides in the same rounds: a peak under the same load.
        side = max(64, 64 * round((per_batch / 2) ** (1 / 3) / 64))
        references = _matmul_calls(side, Path(scratch), args.threads)
        calls = {"onnxruntime": lambda: runner.run(x), **keras_calls(model, x), **references}
        times = interleave(calls, warmup=args.warmup, runs=args.runs)
    flops = {name: per_batch for name in calls} | {name: 2.0 * side**3 for name in references}
    same_round = f"onnxruntime MatMul {side}"
    # On a shared machine the fastest round is the least disturbed one: the best peak is the
    # best round of any matmul (large or same-round); the typical peak the best median.
    gflops = {name: [flops[name] / t / 1e9 for t in ts] for name, ts in times.items()}
    for name in references:
        peak[f"{name} (same rounds)"] = _common.spread(gflops[name])
    peak_best = max(entry["max"] for entry in peak.values())
    peak_median = max(entry["median"] for entry in peak.values())

    print("FLOPs per example (Conv2D/Dense multiply-adds x 2):")
    print(
        _common.table(
            ["layer", "output", "kernel", "MFLOP"],
            [
                [r["layer"], r["output"], r["kernel"], f"{r['flops'] / 1e6:.3f}"]
                for r in counted["layers"]
            ]
            + [["total (floor)", "", "", f"{counted['floor'] / 1e6:.3f}"]]
            + [["other (bias, relu, pool, softmax)", "", "", f"{counted['other'] / 1e6:.3f}"]],
        )
    )
    print(f"\nPeak: float32 matmuls, {args.matmul_rounds} interleaved rounds per size")
    print(
        _common.table(
            ["kernel", "GFLOP/s median [min-max]"],
            [[name, _common.fmt_range(stats, 1)] for name, stats in peak.items()],
        )
    )
    print(f"peak: {peak_median:.1f} GFLOP/s (best median), {peak_best:.1f} (best round)")
    rows, results = [], {}
    for runtime, seconds in times.items():
        stats = _common.spread(gflops[runtime])
        ratio = _common.spread(
            [g / m for g, m in zip(gflops[runtime], gflops[same_round], strict=True)]
        )
        results[runtime] = {
            **percentiles_ms(seconds),
            "gflops": stats,
            "fraction_of_same_round_matmul": ratio,
            "fraction_of_peak_median": stats["median"] / peak_median,
            "fraction_of_peak_best": stats["max"] / peak_best,
            "raw_seconds": seconds,
        }
        rows.append(
            [
                runtime,
                f"{results[runtime]['p50_ms']:.2f}",
                _common.fmt_range(stats, 1),
                f"{100 * ratio['median']:.0f}% [{100 * ratio['min']:.0f}-{100 * ratio['max']:.0f}]",
                f"{100.0 * stats['median'] / peak_median:.0f}%",
                f"{100.0 * stats['max'] / peak_best:.0f}%",
            ]
        )
    print(
        f"\ncnn {tuple(model.inputs[0].shape[1:])} batch {args.batch_size}: "
        f"{per_batch / 1e9:.3f} GFLOP per call, {args.runs} interleaved rounds"
    )
    headers = [
        "runtime",
        "p50 ms",
        "GFLOP/s [min-max]",
        f"% of MatMul {side} same round",
        "% peak (medians)",
        "% peak (best)",
    ]
    print(_common.table(headers, rows))
    path = _common.write_json(
        "flops",
        {
            "settings": vars(args),
            "flops_per_example": counted,
            "flops_per_batch": per_batch,
            "peak_gflops": peak,
            "peak_median_gflops": peak_median,
            "peak_best_gflops": peak_best,
            "results": results,
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
