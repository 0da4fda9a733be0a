"""Input pipeline throughput against the model's consumption, on a generated PNG folder.

Writes N PNG images (default 2,000, 32x32 RGB, 10 class folders) to a temporary directory,
then, in interleaved rounds:

- scan: `load_data(DIR, ...)` itself (lists and checks every file with PIL), images/s;
- cold: one pass over a fresh `load_data(DIR).train` (reads, decodes, resizes every file and
  fills the in-memory cache that small folders get), images/s;
- warm: a second pass over the same dataset (served from that cache), images/s;
- each model: training steps (`train_on_batch`) on batches already in memory, images/s.

The pipeline is iterated alone (nothing trains meanwhile), so it has both cores; in a real run
decoding and training share them. pipeline/model > 1 means the input is not the bottleneck.

Usage: python bench/bench_pipeline.py [--quick] [--images 2000] [--models cnn vgg16_gap]
"""

from __future__ import annotations

import argparse
import tempfile
import time

import _common


def _load(root: str, shape: tuple, batch_size: int):
    from finetune.data import load_data

    return load_data(root, task="image", input_shape=shape, batch_size=batch_size, val_split=0.2)


def _pass(dataset) -> tuple[int, float]:
    count, begin = 0, time.perf_counter()
    for x, _ in dataset:
        count += int(x.shape[0])
    return count, time.perf_counter() - begin


def _consumer(name: str, shape: tuple, num_classes: int, batches: list, warmup: int = 2):
    import zoo
    from finetune.model import compile_model

    model = zoo.create_model(name, input_shape=shape, num_classes=num_classes, weights=None)
    compile_model(model, 1e-3)
    for x, y in batches[:warmup]:  # tracing; the same batch size as the timed steps
        model.train_on_batch(x, y)
    return model


def _steps(model, batches: list) -> tuple[int, float]:
    count, begin = 0, time.perf_counter()
    for x, y in batches:
        model.train_on_batch(x, y)
        count += len(x)
    return count, time.perf_counter() - begin


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--size", type=int, default=32, help="image and model height/width")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--models", nargs="*", default=["cnn", "vgg16_gap"])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--steps", type=int, default=20, help="timed cnn steps per round (a third for other models)"
    )
    parser.add_argument("--quick", action="store_true", help="3 rounds of 10 cnn steps")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.steps = 3, 10

    import numpy as np

    shape = (args.size, args.size, 3)
    with tempfile.TemporaryDirectory(prefix="bench_pipeline_") as root:
        begin = time.perf_counter()
        _common.write_image_folder(root, args.images, size=args.size)
        written = time.perf_counter() - begin
        data = _load(root, shape, args.batch_size)
        x, y = data.arrays("train")
        batches = [
            (x[i : i + args.batch_size], y[i : i + args.batch_size])
            for i in range(0, len(x) - args.batch_size + 1, args.batch_size)
        ]
        consumers = {m: _consumer(m, shape, data.num_classes, batches) for m in args.models}
        rates: dict[str, list[float]] = {k: [] for k in ("scan", "cold", "warm", *args.models)}
        for index in range(args.rounds):
            tasks = ["pipeline", *args.models]
            shift = index % len(tasks)
            for task in tasks[shift:] + tasks[:shift]:
                if task == "pipeline":
                    begin = time.perf_counter()
                    fresh = _load(root, shape, args.batch_size)
                    rates["scan"].append(args.images / (time.perf_counter() - begin))
                    for key in ("cold", "warm"):
                        count, seconds = _pass(fresh.train)
                        rates[key].append(count / seconds)
                else:
                    # Fewer steps for slow models keep the round short; start where the last
                    # round stopped so every step trains on other data.
                    steps = args.steps if task == "cnn" else max(2, args.steps // 3)
                    start = (index * steps) % max(1, len(batches) - steps)
                    count, seconds = _steps(consumers[task], batches[start : start + steps])
                    rates[task].append(count / seconds)

    stats = {key: _common.spread(values) for key, values in rates.items()}
    rows = [
        ["pipeline: load_data() scan + PIL check", _common.fmt_range(stats["scan"], 0), ""],
        ["pipeline: train, 1st pass (decode + cache)", _common.fmt_range(stats["cold"], 0), ""],
        ["pipeline: train, 2nd pass (from cache)", _common.fmt_range(stats["warm"], 0), ""],
    ]
    ratios = {}
    for model in args.models:
        ratios[model] = {
            key: stats[key]["median"] / stats[model]["median"] for key in ("cold", "warm")
        }
        rows.append(
            [
                f"model: {model} train step (in-memory batches)",
                _common.fmt_range(stats[model], 0),
                f"cold {ratios[model]['cold']:.1f}x, warm {ratios[model]['warm']:.1f}x",
            ]
        )
    print(
        f"{args.images} PNG images {args.size}x{args.size} RGB in {data.num_classes} folders "
        f"({data.num_train} train; written in {written:.1f}s), batch {args.batch_size}, "
        f"{args.rounds} interleaved rounds"
    )
    print(_common.table(["stage", "images/s [min-max]", "pipeline / model"], rows))
    path = _common.write_json(
        "pipeline",
        {
            "settings": vars(args),
            "num_train": data.num_train,
            "images_per_second": stats,
            "pipeline_over_model": ratios,
            "raw": rates,
            "train_batches_in_memory": len(batches),
            "numpy": np.__version__,
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
