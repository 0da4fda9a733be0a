"""Image decoding for training: TensorFlow's ops against zoo.data's Pillow decoder in tf.data.

The tf.data pipelines decode image folders with `zoo.data.decode_image` (through
`finetune.data._tfdata.decode_files`, 32 files per `tf.numpy_function` call), so that training
and calibration get the same pixels. This measures what that costs against the TensorFlow
pipeline it replaced (`tf.io.decode_image` + `tf.image.resize(antialias=True)`), on generated
folders: small PNGs at and above their size, photo-sized JPEGs (320x240, 1024x768) resized down.

Each case runs both pipelines in interleaved rounds in one process over the same files (one cold
pass each, no cache) and reports images/s and process CPU time per image.

Usage: python bench/bench_decode.py [--rounds 6] [--quick]
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

import _common

CASES = (  # name, file count, file size (w, h), format, model input
    ("png 32x32 -> 32x32", 2000, (32, 32), "png", (32, 32, 3)),
    ("png 32x32 -> 64x64", 2000, (32, 32), "png", (64, 64, 3)),
    ("jpeg 320x240 -> 96x96", 300, (320, 240), "jpg", (96, 96, 3)),
    ("jpeg 320x240 -> 224x224", 300, (320, 240), "jpg", (224, 224, 3)),
    ("jpeg 1024x768 -> 224x224", 100, (1024, 768), "jpg", (224, 224, 3)),
)


def _write(root: Path, count: int, size: tuple[int, int], fmt: str) -> list[str]:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    ramp = np.linspace(0, 180, size[0], dtype=np.uint8)[None, :, None]
    root.mkdir(parents=True)
    for index in range(count):
        noise = rng.integers(0, 64, (size[1], size[0], 3), dtype=np.uint8)
        Image.fromarray(noise + ramp).save(root / f"{index:05d}.{fmt}")
    return sorted(str(p) for p in root.iterdir())


def _tensorflow_decoder(shape: tuple):
    import tensorflow as tf

    def decode(path, label):  # what finetune.data ran before zoo.data decoded images
        image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
        image = tf.cast(image, tf.float32)
        image = tf.image.resize(image, shape[:2], antialias=True)
        image.set_shape(shape)
        return image, label

    return decode


def _pass(paths: list[str], shape: tuple, kind: str) -> tuple[float, float]:
    import numpy as np
    import tensorflow as tf

    from finetune.data._tfdata import decode_files

    files = tf.data.Dataset.from_tensor_slices((paths, np.zeros(len(paths), np.int32)))
    if kind == "tensorflow":
        images = files.map(_tensorflow_decoder(shape), num_parallel_calls=tf.data.AUTOTUNE)
    else:
        images = decode_files(files, shape)
    dataset = images.batch(32).prefetch(tf.data.AUTOTUNE)
    cpu, begin, count = _cpu_seconds(), time.perf_counter(), 0
    for x, _ in dataset:
        count += int(x.shape[0])
    seconds = time.perf_counter() - begin
    return count / seconds, (_cpu_seconds() - cpu) / count * 1e6


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--quick", action="store_true", help="2 rounds")
    args = parser.parse_args()
    rounds = 2 if args.quick else args.rounds
    kinds = ("tensorflow", "zoo.data")
    results, rows = {}, []
    with tempfile.TemporaryDirectory(prefix="bench_decode_") as tmp:
        for name, count, size, fmt, shape in CASES:
            paths = _write(Path(tmp, f"{size[0]}x{size[1]}{fmt}{os.urandom(2).hex()}"), count, size, fmt)  # fmt: skip
            for kind in kinds:
                _pass(paths[:64], shape, kind)  # tracing and file cache
            rate = {k: [] for k in kinds}
            cpu = {k: [] for k in kinds}
            for index in range(rounds):
                for kind in kinds if index % 2 == 0 else kinds[::-1]:
                    images_per_s, cpu_us = _pass(paths, shape, kind)
                    rate[kind].append(images_per_s)
                    cpu[kind].append(cpu_us)
            stats = {k: (_common.spread(rate[k]), _common.spread(cpu[k])) for k in kinds}
            results[name] = {k: {"images_per_s": r, "cpu_us_per_image": c} for k, (r, c) in stats.items()}  # fmt: skip
            rows.append(
                [name]
                + [f"{_common.fmt_range(stats[k][0], 0)}, {stats[k][1]['median']:.0f} us" for k in kinds]
            )  # fmt: skip
    print(f"first pass, images/s [min-max] and CPU per image, {rounds} interleaved rounds")
    print(_common.table(["files -> model input", *kinds], rows))
    print(f"wrote {_common.write_json('decode', {'rounds': rounds, 'results': results})}")


if __name__ == "__main__":
    main()
