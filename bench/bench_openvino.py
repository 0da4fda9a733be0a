"""ONNX Runtime against OpenVINO on the same fp32 and int8 ONNX files, side by side in one run.

Models: the reference CNN (28x28x1), an LSTM (the zoo default, 64 time steps) and a backbone head
(vgg16_gap at 64x64x3, weights=None: the speed of a pretrained one, without the download). Each is
exported with `convert.export_onnx` and lowered with `convert.quantize_int8` (QDQ, calibrated on
generated inputs: this benchmark times, the parity tests judge accuracy). Every file runs through
`convert.open_artifact`, what `zoo bench` uses: ONNX Runtime, and OpenVINO at f32 and, where the
CPU has bf16 units, at bf16 inference precision. All runners of one (model, batch) are timed in
interleaved rounds; the ratios (ONNX Runtime time / OpenVINO time, > 1: OpenVINO faster) are
per-round ratios, reported as median [min-max].

A round times a block of --block consecutive calls per runner (after one untimed call), not a
single call, and only one file's runners exist at a time. Both matter on a 2-core machine: each
runtime's worker threads linger after a call, and each compiled OpenVINO model keeps its own
pinned threads; alternating single calls with all four runners alive measured OpenVINO's cnn at
1.6-1.7 ms per call instead of 0.25-0.32 ms.

`--bf16-error` measures instead what bf16 compute does to the outputs (the basis of the gate's
bf16 criteria): OpenVINO at bf16 against f32 on the same ONNX file where the CPU has bf16, and
everywhere Keras' mixed_bfloat16 (bf16 matmul/conv inputs, f32 accumulation) against float32
with the same weights, as a stand-in on CPUs without bf16.

Usage: python bench/bench_openvino.py [--bf16-error] [--quick] [--batch-sizes 1 32] [--runs 15] [--block 10]
       [--threads N]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import _common
import numpy as np
from bench_latency import percentiles_ms, random_inputs

MODELS = (("cnn", None, {}), ("lstm", None, {}), ("vgg16_gap", (64, 64, 3), {"weights": None}))
SEQ_LEN = 64


def _files(name, shape, options, scratch: Path) -> tuple[dict[str, Path], tuple]:
    """{precision: ONNX path} and the model's input shape without batch."""
    import convert
    import zoo
    from convert.gate import generate_inputs

    model = zoo.create_model(name, input_shape=shape, **options)
    input_shape = tuple(model.inputs[0].shape[1:])
    fp32 = convert.export_onnx(model, scratch / f"{name}.onnx")
    calibration = np.concatenate(generate_inputs(input_shape, (32,), (SEQ_LEN,)) * 4)
    int8 = convert.quantize_int8(fp32, scratch / f"{name}.int8.onnx", calibration)
    return {"fp32": fp32, "int8": int8}, input_shape


def _runners(path: Path, ov_precisions, threads) -> dict[str, Any]:
    """ONNX Runtime and OpenVINO (one per inference precision) over one file."""
    import convert

    runners = {"ort": convert.open_artifact(path, "onnxruntime", threads=threads)}
    for compute in ov_precisions:
        runners[f"ov@{compute}"] = convert.open_artifact(
            path, "openvino", threads=threads, inference_precision=compute
        )
    return runners


def _interleave_blocks(runners: dict[str, Any], x: np.ndarray, args) -> dict[str, list[float]]:
    """Seconds per call of each runner: rotating rounds of one untimed call (the previous
    runtime's threads go idle meanwhile) and a timed block of `args.block` calls."""
    for runner in runners.values():
        for _ in range(args.warmup):
            runner.run(x)
    names = list(runners)
    times: dict[str, list[float]] = {name: [] for name in names}
    for index in range(args.runs):
        shift = index % len(names)  # rotate the order: no runtime always goes first
        for name in names[shift:] + names[:shift]:
            runners[name].run(x)
            start = time.perf_counter()
            for _ in range(args.block):
                runners[name].run(x)
            times[name].append((time.perf_counter() - start) / args.block)
    return times


def bench_model(name, shape, options, args, ov_precisions, scratch: Path) -> list[dict[str, Any]]:
    files, input_shape = _files(name, shape, options, scratch)
    rows = []
    for precision, path in files.items():
        # One file's runners at a time: every compiled OpenVINO model keeps its own pinned
        # worker threads, and on 2 cores idle extra ones slowed the timed one several-fold.
        runners = _runners(path, ov_precisions, args.threads)
        for batch in args.batch_sizes:
            x = random_inputs(input_shape, batch, SEQ_LEN)
            times = _interleave_blocks(runners, x, args)
            row = {
                "model": name,
                "input": [batch, *(SEQ_LEN if d is None else d for d in input_shape)],
                "file": precision,
                "batch_size": batch,
                "rounds": len(times["ort"]),
                "block": args.block,
                "onnxruntime": percentiles_ms(times["ort"]),
                "runtime": {key: runner.runtime for key, runner in runners.items()},
            }
            for compute in ov_precisions:
                ov = times[f"ov@{compute}"]
                row[f"openvino@{compute}"] = percentiles_ms(ov)
                ratios = [o / v for o, v in zip(times["ort"], ov, strict=True)]
                row[f"ratio@{compute}"] = _common.spread(ratios)
            rows.append(row)
        del runners
        print(f"  {name} {precision} done", flush=True)
    return rows


BF16_CASES = (
    ("cnn", None, {}),
    ("simple_rnn", None, {}),
    ("lstm", None, {}),
    ("gru", None, {}),
    ("vgg16_gap", (64, 64, 3), {"weights": None}),
)


def _bf16_row(name, shape, options, has_bf16: bool, scratch: Path) -> list[str]:
    import keras

    import convert
    import zoo
    from convert.gate import _top1, generate_inputs

    keras.utils.set_random_seed(0)
    model = zoo.create_model(name, input_shape=shape, **options)
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        low = zoo.create_model(name, input_shape=shape, **options)
    finally:
        keras.config.set_dtype_policy("float32")
    low.set_weights(model.get_weights())
    batches = generate_inputs(tuple(model.inputs[0].shape[1:]), (64,), (8, 64), seed=1)

    def outputs(run) -> np.ndarray:
        return np.concatenate([np.asarray(run(x), np.float64).reshape(len(x), -1) for x in batches])

    pairs = {"keras mixed_bfloat16": (outputs(model), outputs(low))}
    if has_bf16:
        path = convert.export_onnx(model, scratch / f"{name}.onnx")
        f32, bf16 = (
            convert.open_artifact(path, "openvino", inference_precision=p) for p in ("f32", "bf16")
        )
        pairs["openvino bf16"] = (
            outputs(lambda x: f32.run(x)[0]),
            outputs(lambda x: bf16.run(x)[0]),
        )
    row = [name, str(sum(len(b) for b in batches))]
    for reference, low_out in pairs.values():
        diff = np.abs(reference - low_out)
        agreement = float(np.mean(_top1(reference) == _top1(low_out)))
        row += [f"{diff.max():.1e}", f"{agreement:.2%}"]
    return row


def bf16_error(scratch: Path) -> None:
    from convert import openvino as ov_convert

    has_bf16 = ov_convert.has_bf16()
    headers = ["model", "samples", "keras bf16 max abs", "keras bf16 top-1"]
    if has_bf16:
        headers += ["openvino bf16 max abs", "openvino bf16 top-1"]
    rows = [_bf16_row(*case, has_bf16, scratch) for case in BF16_CASES]
    print(_common.table(headers, rows))
    _common.write_json("bench_openvino_bf16", {"headers": headers, "rows": rows})


def _table(rows: list[dict[str, Any]], ov_precisions) -> str:
    headers = ["model", "input", "file", "ORT p50 ms"]
    for compute in ov_precisions:
        headers += [f"OpenVINO {compute} p50 ms", f"ORT / OpenVINO {compute}"]
    body = []
    for r in rows:
        cells = [r["model"], "x".join(map(str, r["input"])), r["file"]]
        cells.append(f"{r['onnxruntime']['p50_ms']:.3f}")
        for compute in ov_precisions:
            cells.append(f"{r[f'openvino@{compute}']['p50_ms']:.3f}")
            cells.append(_common.fmt_range(r[f"ratio@{compute}"]))
        body.append(cells)
    return _common.table(headers, body)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--runs", type=int, default=15, help="interleaved rounds per batch size")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--block", type=int, default=10, help="consecutive calls per timing")
    parser.add_argument("--threads", type=int, default=None, help="intra-op threads, both")
    parser.add_argument("--quick", action="store_true", help="5 rounds of 5 calls, batch 1 only")
    parser.add_argument("--bf16-error", action="store_true", help="bf16 output error, no timing")
    args = parser.parse_args()
    if args.bf16_error:
        with tempfile.TemporaryDirectory(prefix="kerazoo-bench-openvino-") as scratch:
            bf16_error(Path(scratch))
        return
    if args.quick:
        args.runs, args.block, args.batch_sizes = 5, 5, [1]

    from convert import openvino as ov_convert

    ov_precisions = ov_convert.default_inference_precisions()
    capabilities = ov_convert.cpu_capabilities()
    print(f"OpenVINO CPU capabilities: {', '.join(capabilities)}", flush=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="kerazoo-bench-openvino-") as scratch:
        for name, shape, options in MODELS:
            rows += bench_model(name, shape, options, args, ov_precisions, Path(scratch))
    print(_table(rows, ov_precisions))
    if "bf16" not in ov_precisions:
        print("(no bf16 column: this CPU has no bf16 units, OpenVINO computes in f32 here)")
    payload = {"cpu_capabilities": capabilities, "ov_precisions": list(ov_precisions)}
    path = _common.write_json("bench_openvino", {**payload, "results": rows})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
