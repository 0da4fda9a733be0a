"""tf.data pipelines from resolved splits: decoding, resizing, caching, shuffling, padding,
augmenting.

Pipeline decisions (see `load_data` for the user-facing summary):
- Every image is decoded and resized by `zoo.data` (Pillow), called through `tf.numpy_function`:
  the one implementation calibration (`zoo.data.load_arrays`) uses too, so both get the same
  pixels bit for bit (measured cost in docs/DESIGN.md).
- Image folders stream from disk: the file list is the only thing held in memory; files are
  read, decoded and resized in parallel `map`s, cached to `cache_dir` when given (a file cache
  keyed by the folder's content, the split and the shape), else in memory only when the decoded
  split is small (<= MEMORY_CACHE_BYTES), else not at all, so memory stays flat for big folders.
- Arrays (npz, builtin) are already in memory: they are batched first and resized per batch
  (image by image, as `load_arrays` does), and not cached (nothing to save). They become graph
  constants, so together they should stay under TensorFlow's 2 GB graph limit; bigger sets
  belong in an image folder.
- Augmentation (train only, images only) runs after the cache, so every epoch differs.
- Training order is `zoo.data.resolve_data`'s seeded permutation (file caches hold mixed
  batches), reshuffled every epoch; val/test keep it.
- Sequences are padded with 0.0 (the zoo RNNs' masking value) to the longest in each batch
  (`padded_batch`), or to the model's fixed length when it has one.
- Every pipeline ends with prefetch(AUTOTUNE).
"""

from __future__ import annotations

import hashlib
import math
import os
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import tensorflow as tf

from zoo.data import ResolvedData, Split, decode_image, to_shape_batch

AUTOTUNE = tf.data.AUTOTUNE
MEMORY_CACHE_BYTES = 256 * 2**20
SHUFFLE_BUFFER_BYTES = 64 * 2**20  # a bound on decoded images held by a file split's shuffle
DECODE_CHUNK = 32  # files decoded per Python call


class Builder:
    """Makes each split's pipeline for training and evaluation."""

    def __init__(self, data: ResolvedData, batch_size: int, seed: int, cache_dir):
        self.data, self.shape = data, tuple(data.input_shape)
        self.batch_size, self.seed = batch_size, seed
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir is not None else None

    def dataset(self, name: str, augment: bool) -> tf.data.Dataset:
        split = self.data.splits[name]
        ds = self._batched(split, shuffle=name == "train", cache=name)
        if augment and name == "train":
            ds = ds.map(_augmenter(self.seed), num_parallel_calls=AUTOTUNE)
        return ds.prefetch(AUTOTUNE)

    def _batched(self, split: Split, shuffle: bool, cache: str) -> tf.data.Dataset:
        labels = split.y.astype(np.int32)
        kind = self.data.kind
        if kind == "files":
            ds = tf.data.Dataset.from_tensor_slices((split.items.astype(str), labels))
            # Anything the up-front check missed is dropped with a warning, not a crash.
            ds = decode_files(ds, self.shape)
            ds = self._cache(ds, split, cache)
            if shuffle:
                element = math.prod(self.shape) * 4
                ds = ds.shuffle(
                    max(64, min(len(split), SHUFFLE_BUFFER_BYTES // element)), seed=self.seed
                )
            return ds.batch(self.batch_size)
        if kind == "images":
            x = split.items if split.items.dtype == np.uint8 else split.items.astype(np.float32)
            ds = tf.data.Dataset.from_tensor_slices((x, labels))
            if shuffle:
                ds = ds.shuffle(len(split), seed=self.seed)
            return ds.batch(self.batch_size).map(
                lambda x, y: (_batch_to_shape(x, self.shape), y), num_parallel_calls=AUTOTUNE
            )
        lengths = np.array([len(s) for s in split.items], dtype=np.int64)
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
        flat = tf.constant(np.concatenate(list(split.items)).astype(np.float32))
        ds = tf.data.Dataset.from_tensor_slices((starts, lengths, labels))
        if shuffle:
            ds = ds.shuffle(len(split), seed=self.seed)
        ds = ds.map(lambda s, n, y: (flat[s : s + n], y), num_parallel_calls=AUTOTUNE)
        return ds.padded_batch(
            self.batch_size,
            padded_shapes=([self.shape[0], self.shape[1]], []),
            padding_values=(0.0, 0),
        )

    def _cache(self, ds: tf.data.Dataset, split: Split, name: str) -> tf.data.Dataset:
        if self.cache_dir is not None:
            # The key changes whenever the folder's files, the split's members or the shape do,
            # so a stale cache is never read.
            key = hashlib.sha1(f"{self.data.fingerprint}|{self.shape}".encode())
            key.update("\n".join(split.items.astype(str)).encode())
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            return ds.cache(str(self.cache_dir / f"images-{name}-{key.hexdigest()[:16]}"))
        if len(split) * math.prod(self.shape) * 4 <= MEMORY_CACHE_BYTES:
            return ds.cache()
        return ds


def _batch_to_shape(x: tf.Tensor, shape: tuple) -> tf.Tensor:
    """A batch of in-memory images as float32 (batch, *shape), through `zoo.data`."""
    out = tf.numpy_function(lambda b: to_shape_batch(b, shape), [x], tf.float32, stateful=False)
    out.set_shape((None, *shape))
    return out


def decode_files(files: tf.data.Dataset, shape: tuple) -> tf.data.Dataset:
    """`(path, label)` elements -> `(image float32 at shape, label)`, through `zoo.data`.

    Files are decoded DECODE_CHUNK at a time in one `tf.numpy_function` call: one call per file
    cost ~100 us of Python-call overhead and a GIL hand-off each (measured, docs/DESIGN.md). A
    file that fails to decode is dropped with a warning, not a crash.

    Example:
        >>> files = tf.data.Dataset.from_tensor_slices((paths, labels))
        >>> images = decode_files(files, (96, 96, 3)).batch(32)
    """

    def decode(paths: tf.Tensor, labels: tf.Tensor):
        images, ok = tf.numpy_function(
            lambda p: _decode_chunk(p, shape), [paths], (tf.float32, tf.bool), stateful=False
        )
        images.set_shape((None, *shape))
        ok.set_shape((None,))
        return images, labels, ok

    def decoded(image, label, ok):
        return ok

    def without_flag(image, label, ok):
        return image, label

    chunks = files.batch(DECODE_CHUNK).map(decode, num_parallel_calls=AUTOTUNE)
    return chunks.unbatch().filter(decoded).map(without_flag)


def _decode_chunk(paths: np.ndarray, shape: tuple) -> tuple[np.ndarray, np.ndarray]:
    images = np.zeros((len(paths), *shape), dtype=np.float32)
    ok = np.ones(len(paths), dtype=bool)
    failed = []
    for index, path in enumerate(paths):
        try:
            images[index] = decode_image(path, shape)
        except Exception as error:  # Pillow raises many types for a damaged file
            ok[index] = False
            failed.append(f"{os.fsdecode(path)} ({error})")
    if failed:  # one line per chunk, not per file (the up-front check catches almost all)
        # Called from a tf.data thread: there is no user frame to point at.
        warnings.warn(
            f"skipping {len(failed)} image(s) that failed to decode, e.g. "
            f"{', '.join(failed[:3])}{', ...' if len(failed) > 3 else ''}",
            stacklevel=1,
        )
    return images, ok


def _augmenter(seed: int) -> Callable:
    import keras

    # Called one by one, not wrapped in keras.Sequential: each preprocessing layer switches to
    # TensorFlow ops inside tf.data whatever the Keras backend, a Sequential (under JAX) does not.
    layers = [
        keras.layers.RandomRotation(0.05, seed=seed),  # +-18 degrees
        keras.layers.RandomZoom(0.1, seed=seed + 1),
        keras.layers.RandomTranslation(0.1, 0.1, seed=seed + 2),
    ]

    def augment(x, y):
        for layer in layers:
            x = layer(x, training=True)
        # Interpolation can overshoot by a rounding error; keep the 0-255 promise exact.
        return tf.clip_by_value(x, 0.0, 255.0), y

    return augment
