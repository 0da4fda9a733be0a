"""`zoo predict` on a folder of 1,000 images: a `.keras` source against its ONNX export.

The folder holds 1,000 of scikit-learn's digits as 28x28 gray PNGs (real files, decoded and
resized by `zoo.data` as training does). Each model (random init; speed does not depend on the
weights) is saved as `.keras` and converted with `convert.convert(..., to="onnx")`. Two numbers:

- **CLI**: `zoo predict SOURCE FOLDER --csv` as a fresh process (the console script's code path),
  wall time from start to exit, so Keras/TensorFlow's start-up counts for the `.keras` source;
- **in process**: `convert.predict(SOURCE, [FOLDER])` after one warm-up call: decoding plus
  inference, no start-up.

Rounds are interleaved across sources, so a shared machine's load falls on every row alike.
Reported: images/s, median [min-max] over `--runs`.

Usage:
    .venv/bin/python bench/bench_predict.py --runs 3 [--models cnn,mobilenet_v2_gap]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _common

IMAGES = 1000
INPUT_SHAPES = {"cnn": (28, 28, 1), "mobilenet_v2_gap": (96, 96, 3)}


def write_folder(root: Path, count: int = IMAGES) -> Path:
    """`count` digits as 28x28 gray PNGs in one folder per class."""
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    for index in range(count):
        folder = root / str(digits.target[index])
        folder.mkdir(parents=True, exist_ok=True)
        pixels = (digits.images[index] * (255.0 / 16.0)).astype(np.uint8)
        Image.fromarray(pixels, mode="L").resize((28, 28)).save(folder / f"{index:04d}.png")
    return root


def make_sources(name: str, root: Path) -> dict[str, Path]:
    """{".keras": path, ".onnx": path} of a random-init zoo model."""
    import convert
    import zoo

    model = zoo.create_model(name, input_shape=INPUT_SHAPES[name], num_classes=10, weights=None)
    keras_path = root / f"{name}.keras"
    model.save(keras_path)
    onnx_path = convert.convert(keras_path, to="onnx", batch_sizes=(1, 8)).artefact
    return {".keras": keras_path, ".onnx": onnx_path}


def cli_seconds(source: Path, folder: Path) -> float:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "zoo", "predict", str(source), str(folder), "--csv"],
        capture_output=True,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-2000:])
    return time.perf_counter() - started


def in_process_seconds(source: Path, folder: Path) -> float:
    import convert

    started = time.perf_counter()
    result = convert.predict(source, [folder], top_k_classes=5)
    assert len(result.predictions) == IMAGES
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--models", default="cnn,mobilenet_v2_gap")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kerazoo-bench-predict-") as scratch:
        root = Path(scratch)
        folder = write_folder(root / "digits")
        sources = {name: make_sources(name, root) for name in args.models.split(",")}
        for paths in sources.values():  # warm-up: file caches, lazy imports
            for path in paths.values():
                in_process_seconds(path, folder)
        times: dict[tuple[str, str, str], list[float]] = {}
        for _ in range(args.runs):
            for name, paths in sources.items():
                for kind, path in paths.items():
                    for how, measure in (("CLI", cli_seconds), ("in process", in_process_seconds)):
                        times.setdefault((name, kind, how), []).append(measure(path, folder))
        rows = []
        for name in sources:
            for how in ("CLI", "in process"):
                cells = [_common.fmt_range(_common.spread([IMAGES / s for s in times[(name, k, how)]]), 0)
                         for k in (".keras", ".onnx")]  # fmt: skip
                rows.append([name, INPUT_SHAPES[name], how, *cells])
        print(f"zoo predict on {IMAGES} PNG files; images/s, median [min-max] of {args.runs}")
        print(_common.table(["model", "input", "measured", ".keras", ".onnx"], rows))


if __name__ == "__main__":
    main()
