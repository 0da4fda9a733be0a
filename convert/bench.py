"""The `zoo bench` engine: latency percentiles and throughput per artefact, runtime and batch size.

A `.keras` file is measured twice, eagerly (`model(x)`, runtime "keras-eager") and through its
traced function (`predict_on_batch`, "keras-function"); an `.onnx` file in ONNX Runtime
("onnxruntime-fp32" / "-fp16" / "-int8") and in OpenVINO at each inference precision
("openvino-int8@bf16", "openvino-fp32@f32", ...); an OpenVINO IR `.xml` in OpenVINO; a
SavedModel in TensorFlow; a TensorRT engine in TensorRT. Every runner comes from
`convert.runners.open_artifact`. Each record carries `runtime` and `inference_precision`.
Inputs are random float32 batches (0-255 pixels for images); warm-up runs are excluded.

Example:
    >>> records = benchmark(["model.keras", "model.onnx", "model.int8.onnx"], batch_sizes=[1, 32])
    >>> records[0].keys() >= {"artifact", "runtime", "batch_size", "p50_ms", "throughput_per_s"}
    True
    >>> print(format_table(records))
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from convert._common import INFERENCE_PRECISIONS, ONNX_RUNTIMES

RECORD_KEYS = (
    "artifact",
    "runtime",
    "inference_precision",
    "batch_size",
    "p50_ms",
    "p90_ms",
    "p99_ms",
    "throughput_per_s",
)
DEFAULT_SEQ_LEN = 64


def check_runtimes(
    runtimes: Sequence[str] | None, ov_precisions: Sequence[str] | None
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The runtimes for `.onnx` files and OpenVINO's inference precisions, defaults filled in.

    Defaults: both runtimes (ONNX Runtime only where OpenVINO is not installed); OpenVINO at bf16
    and f32 on a CPU with bf16, else at f32 only. An explicit bf16 on a CPU without it is an
    error (OpenVINO would silently run f32).
    """
    from convert import openvino as ov_convert

    if not runtimes:  # OpenVINO is optional: without it, .onnx files run in ONNX Runtime only
        runtimes = ONNX_RUNTIMES if ov_convert.is_available()[0] else ("onnxruntime",)
    runtimes = tuple(runtimes)
    for runtime in runtimes:
        if runtime not in ONNX_RUNTIMES:
            raise ValueError(
                f"runtimes should be among {', '.join(ONNX_RUNTIMES)}. Received: {runtime!r}"
            )
    if "openvino" not in runtimes and not ov_precisions:
        return runtimes, ()
    if not ov_precisions:
        return runtimes, ov_convert.default_inference_precisions()
    for precision in ov_precisions:
        if precision not in INFERENCE_PRECISIONS:
            raise ValueError(
                f"OpenVINO inference precisions should be among {', '.join(INFERENCE_PRECISIONS)}."
                f" Received: {precision!r}"
            )
    if "bf16" in ov_precisions and not ov_convert.has_bf16():
        raise ValueError(
            f"--ov-precision bf16 needs a CPU with bf16 units (this one offers "
            f"{', '.join(ov_convert.cpu_capabilities())}): pass --ov-precision f32. "
            f"Received: --ov-precision {','.join(ov_precisions)}"
        )
    return runtimes, tuple(ov_precisions)


def _runners(
    path: Path,
    threads: int | None,
    runtimes: Sequence[str],
    ov_precisions: Sequence[str],
    safe_mode: bool = True,
) -> list[Any]:
    """Every runner `path` is measured in (the order of `runtimes`, then of `ov_precisions`)."""
    from convert.runners import KerasRunner, open_artifact, runtimes_for

    valid = runtimes_for(path)
    chosen = [r for r in runtimes if r in valid] or [valid[0] if valid else None]
    runners = []
    for runtime in chosen:
        if runtime == "openvino":
            runners += [
                open_artifact(path, "openvino", threads=threads, inference_precision=precision)
                for precision in ov_precisions or (None,)
            ]
            continue
        runner = open_artifact(path, runtime, threads=threads, safe_mode=safe_mode)
        runners.append(runner)
        if isinstance(runner, KerasRunner):  # one load, both ways of calling it
            runners.append(KerasRunner(runner.model, compiled=True))
    return runners


def _inputs(shape: tuple[int | None, ...], batch: int, seq_len: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    dims = [batch] + [seq_len if d is None else int(d) for d in shape[1:]]
    if len(dims) == 4:  # images: raw pixels, as the zoo models expect
        return rng.uniform(0, 255, dims).astype(np.float32)
    return rng.standard_normal(dims).astype(np.float32)


def time_runner(run: Callable[[], Any], *, warmup: int, runs: int) -> dict[str, float]:
    """p50/p90/p99 latency (ms) of `run()` over `runs` calls after `warmup` untimed calls."""
    for _ in range(warmup):
        run()
    times = np.empty(runs)
    for index in range(runs):
        start = time.perf_counter()
        run()
        times[index] = time.perf_counter() - start
    p50, p90, p99 = np.percentile(times * 1000.0, [50, 90, 99])
    return {
        "p50_ms": float(p50),
        "p90_ms": float(p90),
        "p99_ms": float(p99),
        "mean_ms": float(times.mean() * 1000.0),
    }


def _set_tf_threads(threads: int | None) -> None:
    if not threads:
        return
    import tensorflow as tf

    try:  # only possible before TensorFlow's runtime starts
        tf.config.threading.set_intra_op_parallelism_threads(int(threads))
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:
        pass


def benchmark(
    artifacts: Sequence[str | os.PathLike[str]],
    batch_sizes: Sequence[int] = (1, 8, 32),
    *,
    seq_lens: Sequence[int] = (DEFAULT_SEQ_LEN,),
    warmup: int = 10,
    runs: int = 50,
    threads: int | None = None,
    runtimes: Sequence[str] | None = None,
    ov_precisions: Sequence[str] | None = None,
    progress: Callable[[str], None] | None = None,
    safe_mode: bool = True,
) -> list[dict[str, Any]]:
    """Measure every artefact at every batch size (and sequence length, for sequence models).

    Args:
        artifacts: `.keras`, `.onnx`, TensorRT engines, SavedModel or run directories.
        batch_sizes: batch sizes to time.
        seq_lens: time steps for models with a dynamic time axis.
        warmup: untimed calls before each measurement.
        runs: timed calls per measurement.
        threads: intra-op threads for ONNX Runtime, OpenVINO and TensorFlow (None: their default).
        runtimes: what runs `.onnx` files: "onnxruntime", "openvino" (default: both). `.xml`
            files always run in OpenVINO, `.keras` in Keras, engines in TensorRT.
        ov_precisions: OpenVINO inference precisions, "bf16" and/or "f32" (default: both on a
            CPU with bf16, else "f32").
        progress: called with one line per measurement (e.g. to print on stderr).

    Returns:
        One dict per measurement with `RECORD_KEYS` plus `seq_len` (sequence models), `mean_ms`,
        `runs`, `warmup` and `threads`.

    Example:
        >>> benchmark(["cnn.onnx"], [1], runs=20)[0]["runtime"]
        'onnxruntime-fp32'
    """
    if not artifacts:
        raise ValueError("benchmark needs at least one artifact. Received: []")
    sizes = [int(b) for b in batch_sizes]
    if not sizes or min(sizes) < 1:
        raise ValueError(f"batch_sizes should be positive ints. Received: {list(batch_sizes)}")
    if int(warmup) < 0 or int(runs) < 1:
        raise ValueError(f"warmup should be >= 0 and runs >= 1. Received: {warmup}, {runs}")
    runtimes, ov_precisions = check_runtimes(runtimes, ov_precisions)
    _set_tf_threads(threads)
    records = []
    for artifact in artifacts:
        for runner in _runners(Path(artifact), threads, runtimes, ov_precisions, safe_mode):
            timing = {"warmup": int(warmup), "runs": int(runs), "threads": threads}
            records += _measure(str(artifact), runner, sizes, seq_lens, timing, progress)
    return records


def _measure(artifact, runner, sizes, seq_lens, timing, progress) -> list[dict[str, Any]]:
    """The records of one runner: every batch size (times every sequence length)."""
    shape = runner.input_shape
    lengths = list(seq_lens) if len(shape) == 3 and shape[1] is None else [None]
    records = []
    for seq_len in lengths:
        for batch in sizes:
            x = _inputs(shape, batch, seq_len or DEFAULT_SEQ_LEN)
            stats = time_runner(
                lambda r=runner, x=x: r.run(x), warmup=timing["warmup"], runs=timing["runs"]
            )
            record = {
                "artifact": artifact,
                "runtime": runner.runtime,
                "inference_precision": runner.inference_precision,
                "batch_size": batch,
                **stats,
                "throughput_per_s": batch / (stats["p50_ms"] / 1000.0),
                **timing,
            }
            if seq_len is not None:
                record["seq_len"] = int(seq_len)
            records.append(record)
            if progress:
                progress(
                    f"{Path(artifact).name} {runner.runtime} batch={batch}"
                    + (f" seq_len={seq_len}" if seq_len else "")
                    + f": p50 {stats['p50_ms']:.3f} ms"
                )
    return records


def format_table(records: Sequence[dict[str, Any]]) -> str:
    """A fixed-width table of benchmark records ("compute" is the inference precision)."""
    header = (
        "artifact", "runtime", "compute", "batch", "seq", "p50 ms", "p90 ms", "p99 ms", "items/s"
    )  # fmt: skip
    rows = [
        (
            Path(r["artifact"]).name,
            r["runtime"],
            str(r.get("inference_precision", "-")),
            str(r["batch_size"]),
            str(r.get("seq_len", "-")),
            f"{r['p50_ms']:.3f}",
            f"{r['p90_ms']:.3f}",
            f"{r['p99_ms']:.3f}",
            f"{r['throughput_per_s']:.1f}",
        )
        for r in records
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = []
    for row in [header, *rows]:
        cells = [
            c.ljust(w) if i < 3 else c.rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells))
    return "\n".join(lines)


def plot_records(records: Sequence[dict[str, Any]], path: str | os.PathLike[str]) -> Path:
    """A grouped bar chart of p50 latency: one group per batch size, one bar per artefact/runtime.

    Example:
        >>> plot_records(records, "bench.png")
        PosixPath('bench.png')
    """
    import matplotlib

    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt

    series: dict[str, dict[str, float]] = {}
    groups: list[str] = []
    for r in records:
        group = f"b={r['batch_size']}" + (f" t={r['seq_len']}" if "seq_len" in r else "")
        if group not in groups:
            groups.append(group)
        series.setdefault(f"{Path(r['artifact']).name} ({r['runtime']})", {})[group] = r["p50_ms"]
    width = 0.8 / max(len(series), 1)
    figure, axes = plt.subplots(figsize=(max(6, 1.5 * len(groups) + 2), 4))
    for index, (label, values) in enumerate(series.items()):
        xs = [g + index * width for g in range(len(groups))]
        axes.bar(xs, [values.get(g, 0.0) for g in groups], width, label=label)
    axes.set_xticks([g + width * (len(series) - 1) / 2 for g in range(len(groups))], groups)
    axes.set_ylabel("p50 latency (ms)")
    axes.set_title("zoo bench")
    axes.legend(fontsize="small")
    figure.tight_layout()
    out = Path(path)
    # Written beside the target, then renamed: a crash never leaves half a PNG under `out`.
    temp = out.with_name(f".{out.name}.tmp-{os.getpid()}.png")
    try:
        figure.savefig(temp, dpi=100)
        os.replace(temp, out)
    except OSError as error:  # name the file the user asked for, not our temp file
        raise OSError(error.errno, error.strerror, str(out)) from None
    finally:
        plt.close(figure)
        if temp.exists():
            temp.unlink()
    return out


def stderr_progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
