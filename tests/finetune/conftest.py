"""Shared fixtures of the training tests (names start with `train_`): tiny real data and runs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

# A small cnn keeps every run to a second or two on 2 CPU cores.
TINY_CNN = {"filters": [8, 16], "dense_units": 16}


def tiny_digits_run(**settings) -> dict:
    """FinetuneConfig keywords of a tiny cnn on digits 0-4 at 16x16 (a fresh dict each call)."""
    return dict(
        model="cnn",
        data="builtin:digits?classes=0-4",
        model_options=dict(TINY_CNN),
        input_shape=(16, 16, 1),
        batch_size=64,
        **settings,
    )


@pytest.fixture(autouse=True)
def _precision_cache(tmp_path_factory, monkeypatch):
    """Each test its own precision cache, so no test reads another's (or the user's) timings."""
    monkeypatch.setenv("KERAZOO_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture(scope="session")
def train_image_folder(tmp_path_factory) -> Path:
    """3 classes x 10 RGB 32x32 PNGs: a bright band at the top, middle or bottom, plus noise."""
    from PIL import Image

    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for index, name in enumerate(("top", "middle", "bottom")):
        folder = root / name
        folder.mkdir()
        for number in range(10):
            pixels = rng.integers(0, 60, size=(32, 32, 3), dtype=np.uint8)
            pixels[index * 10 : index * 10 + 12] += 180
            Image.fromarray(pixels).save(folder / f"{number}.png")
    return root


@pytest.fixture(scope="session")
def train_sequence_npz(tmp_path_factory) -> Path:
    """30 variable-length (5-15 steps) sequences of 4 features, 3 classes by their mean level."""
    rng = np.random.default_rng(0)
    lengths = rng.integers(5, 16, size=30)
    y = np.arange(30) % 3
    x = np.zeros((30, 15, 4), np.float32)
    for i, (length, label) in enumerate(zip(lengths, y, strict=True)):
        x[i, :length] = label + 0.3 * rng.standard_normal((length, 4))
    path = tmp_path_factory.mktemp("sequences") / "seqs.npz"
    np.savez(path, x=x, y=y, lengths=lengths)
    return path


@pytest.fixture(scope="session")
def train_digits_run(tmp_path_factory) -> Path:
    """A finished tiny cnn run on digits 0-4: the `--from` source of the transfer tests."""
    from finetune import FinetuneConfig, run_finetune

    out = tmp_path_factory.mktemp("runs") / "digits04"
    run_finetune(
        FinetuneConfig(
            **tiny_digits_run(epochs=1),
            out=str(out),
            quiet=True,
        )
    )
    return out
