"""The `zoo bench` engine: latency percentiles and throughput per artefact, runtime and batch size.

A `.keras` file is measured twice, eagerly (`model(x)`, runtime "keras-eager") and through its
traced function (`predict_on_batch`, "keras-function"); an `.onnx` file in ONNX Runtime on the
CPU, labelled by the graph's precision ("onnxruntime-fp32" / "-fp16" / "-int8"); a SavedModel in
TensorFlow; a TensorRT engine through `convert.tensorrt.TensorRTRunner`. Inputs are random
float32 batches (0-255 pixels for images); warm-up runs are excluded from the statistics.

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
import types
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

RECORD_KEYS = (
    "artifact",
    "runtime",
    "batch_size",
    "p50_ms",
    "p90_ms",
    "p99_ms",
    "throughput_per_s",
)
DEFAULT_SEQ_LEN = 64


def _runners(path: Path, threads: int | None, safe_mode: bool = True) -> list[Any]:
    from convert.source import KerasRunner, open_artifact

    runner = open_artifact(path, threads=threads, safe_mode=safe_mode)
    if isinstance(runner, KerasRunner):  # one load, both ways of calling it
        return [runner, KerasRunner(runner.model, compiled=True)]
    return [runner]


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
        threads: intra-op threads for ONNX Runtime and TensorFlow (None: the runtime's default).
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
    _set_tf_threads(threads)
    records = []
    for artifact in artifacts:
        for runner in _runners(Path(artifact), threads, safe_mode):
            shape = runner.input_shape
            lengths = list(seq_lens) if len(shape) == 3 and shape[1] is None else [None]
            for seq_len in lengths:
                for batch in sizes:
                    x = _inputs(shape, batch, seq_len or DEFAULT_SEQ_LEN)
                    stats = time_runner(lambda r=runner, x=x: r.run(x), warmup=warmup, runs=runs)
                    record = {
                        "artifact": str(artifact),
                        "runtime": runner.runtime,
                        "batch_size": batch,
                        **stats,
                        "throughput_per_s": batch / (stats["p50_ms"] / 1000.0),
                        "runs": int(runs),
                        "warmup": int(warmup),
                        "threads": threads,
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
    """A fixed-width table of benchmark records."""
    header = ("artifact", "runtime", "batch", "seq", "p50 ms", "p90 ms", "p99 ms", "items/s")
    rows = [
        (
            Path(r["artifact"]).name,
            r["runtime"],
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
            c.ljust(w) if i < 2 else c.rjust(w)
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


class _CallableModule(types.ModuleType):
    """`convert.benchmark` is both this module and its main function: importing the module
    rebinds the package attribute, so the module forwards calls to keep `convert.benchmark(...)`
    working whatever was imported first."""

    def __call__(self, *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        return benchmark(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
