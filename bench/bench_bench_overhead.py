"""`zoo bench`'s own overhead: `convert.benchmark` against a bare ONNX Runtime loop (goal <= 1.10x).

Both time the same .onnx file (the reference CNN, exported with `convert.export_onnx`) at the
same batch size, with the same thread settings (intra-op --threads, inter-op 1), the same
warm-up and number of runs, on a fresh session each round. Rounds alternate which path goes
first. Per round the ratio of the two p50s is taken; the table gives its median and spread.
The end-to-end time of one `convert.benchmark` call (session creation, input generation,
warm-up and runs) is reported too, against the same steps written by hand.

Usage: python bench/bench_bench_overhead.py [--quick] [--rounds 9] [--runs 200] [--threads 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import _common
import numpy as np


def bare_loop(path: Path, batch: int, warmup: int, runs: int, threads: int) -> dict[str, float]:
    """The hand-written equivalent: one session, one feed dict, `sess.run` in a timed loop."""
    import onnxruntime as ort

    begin = time.perf_counter()
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    spec = sess.get_inputs()[0]
    shape = [batch] + [int(d) for d in spec.shape[1:]]
    feed = {spec.name: np.random.default_rng(0).uniform(0, 255, shape).astype(np.float32)}
    for _ in range(warmup):
        sess.run(None, feed)
    times = np.empty(runs)
    for index in range(runs):
        start = time.perf_counter()
        sess.run(None, feed)
        times[index] = time.perf_counter() - start
    return {
        "p50_ms": float(np.percentile(times, 50) * 1000.0),
        "total_s": time.perf_counter() - begin,
    }


def zoo_bench(path: Path, batch: int, warmup: int, runs: int, threads: int) -> dict[str, float]:
    """The `zoo bench` engine, as the CLI calls it."""
    import convert

    begin = time.perf_counter()
    record = convert.benchmark([path], [batch], warmup=warmup, runs=runs, threads=threads)[0]
    return {"p50_ms": record["p50_ms"], "total_s": time.perf_counter() - begin}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 64])
    parser.add_argument("--rounds", type=int, default=9, help="alternating rounds per batch")
    parser.add_argument("--runs", type=int, default=200, help="timed runs per path per round")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2, help="intra-op threads, both paths")
    parser.add_argument("--quick", action="store_true", help="5 rounds of 100 runs")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.runs = 5, 100

    import convert
    import zoo

    results = {}
    with tempfile.TemporaryDirectory(prefix="kerazoo-bench-overhead-") as scratch:
        path = convert.export_onnx(zoo.create_model("cnn"), Path(scratch) / "cnn.onnx")
        paths = {"convert.benchmark": zoo_bench, "bare sess.run": bare_loop}
        for batch in args.batch_sizes:
            runs: dict[str, list[dict[str, float]]] = {name: [] for name in paths}
            for index in range(args.rounds):
                order = list(paths) if index % 2 == 0 else list(paths)[::-1]
                for name in order:
                    runs[name].append(
                        paths[name](path, batch, args.warmup, args.runs, args.threads)
                    )
            zoo_runs, bare_runs = runs["convert.benchmark"], runs["bare sess.run"]
            results[batch] = {
                name: {
                    "p50_ms": _common.spread([r["p50_ms"] for r in entries]),
                    "total_s": _common.spread([r["total_s"] for r in entries]),
                }
                for name, entries in runs.items()
            }
            results[batch]["p50_ratio"] = _common.spread(
                [z["p50_ms"] / b["p50_ms"] for z, b in zip(zoo_runs, bare_runs, strict=True)]
            )
            results[batch]["total_ratio"] = _common.spread(
                [z["total_s"] / b["total_s"] for z, b in zip(zoo_runs, bare_runs, strict=True)]
            )
    rows = []
    for batch, entry in results.items():
        ratio = entry["p50_ratio"]
        rows.append(
            [
                batch,
                _common.fmt_range(entry["convert.benchmark"]["p50_ms"], 3),
                _common.fmt_range(entry["bare sess.run"]["p50_ms"], 3),
                _common.fmt_range(ratio, 3),
                _common.fmt_range(entry["total_ratio"], 3),
                "yes" if ratio["median"] <= 1.10 else "no",
            ]
        )
    headers = [
        "batch",
        "zoo bench p50 ms",
        "bare p50 ms",
        "p50 ratio [min-max]",
        "end-to-end ratio",
        "<= 1.10x",
    ]
    print(
        f"cnn.onnx, threads={args.threads} (inter-op 1), warmup {args.warmup}, "
        f"{args.runs} runs x {args.rounds} alternating rounds"
    )
    print(_common.table(headers, rows))
    path = _common.write_json("bench_overhead", {"settings": vars(args), "results": results})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
