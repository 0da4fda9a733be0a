"""Recurrent ONNX exports: fused RNN/GRU/LSTM against tf2onnx's Loop graphs and Keras predict.

For simple_rnn, gru and lstm (the registry defaults: 64 units, 10 features) at --seq-len steps,
batch 1 and 64, every form runs in one set of interleaved rounds (one call each per round, the
order rotated), so the ratios compare the same minutes of a shared machine:
- "fused": `convert.export_onnx` (the fused ONNX RNN/GRU/LSTM operator) in ONNX Runtime;
- "loop": the same model traced by tf2onnx (the export before the fused emitter: a `Loop` for
  SimpleRNN and GRU, tf2onnx's own LSTM rewrite for the LSTM) in ONNX Runtime;
- "openvino": the fused file in OpenVINO at f32 inference precision;
- "keras-predict" (batch 1 only): `model.predict(x)`, what a user without an export calls.
The cnn's ONNX file against Keras predict at batch 1 completes the four reference models.

Usage: python bench/bench_rnn.py [--runs 200] [--seq-len 32] [--threads N] [--quick]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

import _common
from bench_latency import interleave, percentiles_ms, random_inputs

RECURRENT = ("simple_rnn", "gru", "lstm")


def _exports(name: str, scratch: Path, threads: int | None) -> tuple[Any, dict[str, Any]]:
    """The Keras model and a runner per form (fused / loop in ORT, fused in OpenVINO)."""
    import onnx

    import convert
    import zoo
    from convert.export_utils import export_ready_copy
    from convert.onnx import _tf2onnx_proto

    model = zoo.create_model(name)
    fused = convert.export_onnx(model, scratch / f"{name}.onnx")
    runners = {"fused": convert.open_artifact(fused, threads=threads)}
    if name in RECURRENT:
        loop = scratch / f"{name}.loop.onnx"
        onnx.save(_tf2onnx_proto(export_ready_copy(model), 17), loop)
        runners["loop"] = convert.open_artifact(loop, threads=threads)
        runners["openvino"] = convert.open_artifact(
            fused, runtime="openvino", inference_precision="f32", threads=threads
        )
    return model, runners


def bench_batch(batch: int, models: dict, args) -> dict[str, list[float]]:
    """Seconds per call of every (model, form) at one batch size, interleaved."""
    calls = {}
    for name, (model, runners) in models.items():
        x = random_inputs(tuple(model.inputs[0].shape[1:]), batch, args.seq_len)
        for form, runner in runners.items():
            calls[f"{name}/{form}"] = lambda r=runner, x=x: r.run(x)
        if batch == 1:
            calls[f"{name}/keras-predict"] = lambda m=model, x=x: m.predict(x, verbose=0)
    return interleave(calls, warmup=args.warmup, runs=args.runs)


def _ratio(times: dict[str, list[float]], top: str, bottom: str) -> str:
    if top not in times or bottom not in times:
        return "-"
    pairs = zip(times[top], times[bottom], strict=True)
    return _common.fmt_range(_common.spread([a / b for a, b in pairs]), 2)


def rows_for(batch: int, times: dict[str, list[float]]) -> list[list[Any]]:
    rows = []
    for key, seconds in times.items():
        name, form = key.split("/")
        stats = percentiles_ms(seconds)
        rows.append(
            [
                name,
                form,
                batch,
                f"{stats['p50_ms']:.3f}",
                _ratio(times, key, "lstm/fused") if form == "fused" else "-",
                _ratio(times, key, f"{name}/fused"),
            ]
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200, help="interleaved rounds per batch")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--seq-len", type=int, default=32)
    parser.add_argument("--threads", type=int, default=None, help="intra-op threads")
    parser.add_argument("--quick", action="store_true", help="40 rounds")
    args = parser.parse_args()
    if args.quick:
        args.runs = 40
    results, rows = {}, []
    with tempfile.TemporaryDirectory(prefix="kerazoo-bench-rnn-") as scratch:
        models = {name: _exports(name, Path(scratch), args.threads) for name in ("cnn", *RECURRENT)}
        for batch in (1, 64):
            times = bench_batch(batch, models, args)
            results[batch] = {key: [t * 1000 for t in value] for key, value in times.items()}
            rows += rows_for(batch, times)
    headers = ["model", "form", "batch", "p50 ms", "x lstm fused", "x own fused"]
    print(f"seq_len={args.seq_len}, threads={args.threads or 'default'}, {args.runs} rounds")
    print(_common.table(headers, rows))
    print(f"wrote {_common.write_json('rnn', {'settings': vars(args), 'raw_ms': results})}")


if __name__ == "__main__":
    main()
