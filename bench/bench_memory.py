"""Peak memory (RSS) of `zoo finetune` on an image folder of 2,000 and of 20,000 small images.

Writes both folders (PNG, 32x32 grayscale by default, 10 class folders) to a temporary
directory, then runs `zoo finetune` on each as a subprocess, alternating (small, large, large,
small, ...), and records each run's peak RSS two ways: the kernel's ru_maxrss of that child
(`os.wait4`, exact peak of the largest process) and psutil polling of the process tree every
20 ms (sum over processes, sampled). Streaming keeps the two peaks nearly equal; loading the
folder into memory makes the large one grow by roughly its decoded size.

Usage: python bench/bench_memory.py [--quick] [--sizes 2000 20000] [--input-shape 32,32,1]
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import _common

MIB = 2**20


def _poll_tree(pid: int, peak: list[int], done: threading.Event, interval: float = 0.02):
    import psutil

    try:
        root = psutil.Process(pid)
    except psutil.NoSuchProcess:
        return
    while not done.is_set():
        total = 0
        try:
            for proc in [root, *root.children(recursive=True)]:
                with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                    total += proc.memory_info().rss
        except psutil.NoSuchProcess:
            break
        peak[0] = max(peak[0], total)
        time.sleep(interval)


def run_once(zoo_cmd: list[str], folder: Path, out: Path, args) -> dict:
    command = [
        *zoo_cmd,
        "finetune",
        "--model",
        args.model,
        "--data",
        str(folder),
        "--input-shape",
        args.input_shape,
        "--epochs",
        "1",
        "--batch-size",
        str(args.batch_size),
        "--precision",
        "float32",
        "--out",
        str(out),
        "--overwrite",
        "--quiet",
    ]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    log = out.with_suffix(".log")
    begin = time.perf_counter()
    with open(log, "wb") as sink:  # a file, not a pipe: nobody reads a pipe while we wait
        proc = subprocess.Popen(command, env=env, stdout=sink, stderr=subprocess.STDOUT)
    peak, done = [0], threading.Event()
    poller = threading.Thread(target=_poll_tree, args=(proc.pid, peak, done), daemon=True)
    poller.start()
    # wait4 gives this child's own rusage (RUSAGE_CHILDREN would mix in earlier runs).
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - begin
    done.set()
    poller.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        output = log.read_text(errors="replace")
        raise RuntimeError(f"zoo finetune failed ({proc.returncode}): {output[-2000:]}")
    shutil.rmtree(out, ignore_errors=True)
    return {
        "maxrss_mib": usage.ru_maxrss * 1024 / MIB,  # Linux reports KiB
        "polled_peak_mib": peak[0] / MIB,
        "seconds": seconds,
        "command": " ".join(command),
    }


def breakdown(folder: Path, shape: tuple, batch_size: int) -> list[tuple[str, float]]:
    """RSS after each stage of what run_finetune does with the training data, in this process.

    Uses finetune.loop.TrainData (the per-epoch training data of run_finetune) directly.
    """
    import psutil

    process = psutil.Process()
    stages = []

    def mark(stage: str) -> None:
        stages.append((stage, process.memory_info().rss / MIB))

    import tensorflow as tf  # noqa: F401  (imported first so its own memory is the baseline)

    from finetune.data import load_data
    from finetune.loop import TrainData

    mark("import tensorflow, finetune")
    data = load_data(str(folder), task="image", input_shape=shape, batch_size=batch_size)
    mark("load_data(DIR) (file list, pipelines)")
    train = TrainData(data, 0, batch_size, augment=False)
    mark(f"TrainData(...) (in memory: {train.exact})")
    dataset = train.epoch(0)
    mark("TrainData.epoch(0) (shuffled copy -> tf.data)")
    for _ in dataset:
        pass
    mark("one pass over epoch 0")
    for _ in data.val:
        pass
    mark("one pass over val (cached in memory)")
    return stages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs=2, default=[2000, 20000], metavar="N")
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--model", default="cnn")
    parser.add_argument("--input-shape", default="32,32,1")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--reps", type=int, default=2, help="runs of each size, alternating")
    parser.add_argument(
        "--breakdown",
        action="store_true",
        help="then, in this process, RSS after each data stage of run_finetune on the large folder",
    )
    parser.add_argument("--quick", action="store_true", help="one run of each size")
    args = parser.parse_args()
    if args.quick:
        args.reps = 1

    exe = shutil.which("zoo", path=str(Path(sys.executable).parent)) or shutil.which("zoo")
    if exe is None:
        raise SystemExit("`zoo` is not on PATH: pip install -e . in this environment first")
    small, large = args.sizes
    runs: dict[int, list[dict]] = {small: [], large: []}
    with tempfile.TemporaryDirectory(prefix="bench_memory_") as tmp:
        folders = {}
        for count in (small, large):
            begin = time.perf_counter()
            folders[count] = _common.write_image_folder(
                Path(tmp) / f"images_{count}", count, size=args.image_size, mode="L"
            )
            print(f"wrote {count} images in {time.perf_counter() - begin:.1f}s", flush=True)
        order = []
        for rep in range(args.reps):
            order += [small, large] if rep % 2 == 0 else [large, small]
        for count in order:
            result = run_once([exe], folders[count], Path(tmp) / "run", args)
            runs[count].append(result)
            print(
                f"{count:>6} images: maxrss {result['maxrss_mib']:.0f} MiB, polled "
                f"{result['polled_peak_mib']:.0f} MiB, {result['seconds']:.1f}s",
                flush=True,
            )
        shape = [int(d) for d in args.input_shape.split(",")]
        stages = breakdown(folders[large], tuple(shape), args.batch_size) if args.breakdown else []

    stats = {
        count: {
            key: _common.spread([r[key] for r in runs[count]])
            for key in ("maxrss_mib", "polled_peak_mib", "seconds")
        }
        for count in (small, large)
    }
    rows = []
    for count in (small, large):
        s = stats[count]
        train = int(count * 0.8)
        decoded = train * math.prod(shape) * 4 / MIB
        rows.append(
            [
                f"{count:,}",
                f"{decoded:.0f}",
                _common.fmt_range(s["maxrss_mib"], 0),
                _common.fmt_range(s["polled_peak_mib"], 0),
                f"{s['seconds']['median']:.1f}",
            ]
        )
    ratio = stats[large]["maxrss_mib"]["median"] / stats[small]["maxrss_mib"]["median"]
    growth = stats[large]["maxrss_mib"]["median"] - stats[small]["maxrss_mib"]["median"]
    rows.append(
        [f"ratio {large:,}/{small:,}", f"{large / small:.0f}x", f"{ratio:.2f}x", "", ""],
    )
    print(
        f"\nzoo finetune --model {args.model} --input-shape {args.input_shape} --epochs 1 "
        f"--batch-size {args.batch_size} on {args.image_size}x{args.image_size} PNG folders; "
        f"{args.reps} run(s) per size, alternating"
    )
    headers = [
        "images",
        "decoded train split MiB",
        "peak RSS MiB (ru_maxrss) [min-max]",
        "peak RSS MiB (psutil tree)",
        "wall s",
    ]
    print(_common.table(headers, rows))
    print(f"growth: {growth:+.0f} MiB for {large - small:,} more images")
    if stages:
        print(f"\nwhere it goes, {large:,} images, in one process (RSS after each stage):")
        rows = [
            [name, f"{rss:.0f}", f"{rss - stages[max(i - 1, 0)][1]:+.0f}"]
            for i, (name, rss) in enumerate(stages)
        ]
        print(_common.table(["stage", "RSS MiB", "change MiB"], rows))
    path = _common.write_json(
        "memory",
        {
            "settings": vars(args),
            "summary": {str(k): v for k, v in stats.items()},
            "ratio_large_over_small": ratio,
            "growth_mib": growth,
            "runs": {str(k): v for k, v in runs.items()},
            "breakdown_large": stages,
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
