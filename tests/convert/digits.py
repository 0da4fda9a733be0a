"""A cnn trained briefly on sklearn's 8x8 digits (upscaled to 28x28, 0-255), built once per session.

The quantization and CLI tests need a model that has learnt something, so int8 accuracy means
something; 3 epochs on 1,400 images take a few seconds and reach ~95% validation accuracy.
"""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

import numpy as np

TRAIN = 1400


def digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """All 1,797 digits as (28, 28, 1) float32 pixels in 0-255, shuffled with a fixed seed."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = digits.images.astype("float32") * (255.0 / 16.0)
    x = np.kron(x, np.ones((1, 3, 3), "float32"))  # 8x8 -> 24x24
    x = np.pad(x, ((0, 0), (2, 2), (2, 2)))[..., None]  # -> 28x28x1
    order = np.random.default_rng(0).permutation(len(x))
    return x[order], digits.target[order].astype("int32")


@functools.cache
def trained_cnn_run() -> Path:
    """A run directory: model.keras (cnn on digits), config.yaml (data: builtin:digits), data.npz."""
    import keras
    import yaml

    import zoo

    run = Path(tempfile.mkdtemp(prefix="kerazoo-test-run-"))
    atexit.register(shutil.rmtree, run, ignore_errors=True)
    x, y = digits_arrays()
    keras.utils.set_random_seed(0)
    model = zoo.create_model("cnn")
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x[:TRAIN], y[:TRAIN], epochs=3, batch_size=64, verbose=0)
    model.save(run / "model.keras")
    np.savez(run / "data.npz", x=x[:TRAIN], y=y[:TRAIN], x_val=x[TRAIN:], y_val=y[TRAIN:])
    (run / "config.yaml").write_text(yaml.safe_dump({"model": "cnn", "data": "builtin:digits"}))
    return run
