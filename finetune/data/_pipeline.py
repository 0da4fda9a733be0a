"""`load_data`, the one entry point, and `LoadedData`, what it returns: tf.data pipelines on
top of `zoo.data.resolve_data` (which owns the split rules and the image decoding)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import tensorflow as tf

from finetune.data._tfdata import Builder, decode_files
from zoo.data import (
    DEFAULT_VAL_SPLIT,
    DataSpec,
    ResolvedData,
    check_arguments,
    resolve_data,
    split_arrays,
)


@dataclasses.dataclass
class LoadedData:
    """Batched, prefetched tf.data splits of `(x float32, y int32)` and what describes them.

    `train` is shuffled every epoch (and augmented if asked); `val` and `test` are None where
    the data has no such split. `skipped` counts what a folder scan left out. `resolved` is the
    `zoo.data.ResolvedData` the pipelines were built from.

    Example:
        >>> data = load_data("builtin:digits", task="image", input_shape=(28, 28, 1))
        >>> model.fit(data.train, validation_data=data.val)
        >>> x, y = data.arrays("test", limit=100)
    """

    train: tf.data.Dataset
    val: tf.data.Dataset | None
    test: tf.data.Dataset | None
    class_names: list[str]
    num_classes: int
    input_shape: tuple[int | None, ...]
    task: str
    num_train: int
    num_val: int
    num_test: int
    spec: DataSpec
    resolved: ResolvedData = dataclasses.field(repr=False)
    description: str = ""
    skipped: dict = dataclasses.field(default_factory=dict)
    train_files: tuple[np.ndarray, np.ndarray] | None = dataclasses.field(default=None, repr=False)

    def decode_files(self, files: tf.data.Dataset) -> tf.data.Dataset:
        """`(path, label)` elements -> `(image, label)`: how `train_files` become model inputs.

        `train_files` holds an image folder's training split as `(paths, labels)` in the loader's
        seeded order (None for in-memory sources), so a trainer can stream its own per-epoch
        order instead of this object's `train` pipeline. Images are decoded by `zoo.data`, as
        in every other pipeline; a file that fails to decode is dropped with a warning.

        Example:
            >>> paths, labels = data.train_files
            >>> images = data.decode_files(tf.data.Dataset.from_tensor_slices((paths, labels)))
        """
        if self.task != "image":
            raise ValueError(f"Only image data has files to decode. Received: task={self.task!r}")
        return decode_files(files, tuple(self.input_shape))

    def arrays(
        self, split: str = "train", limit: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The split as numpy `(x float32, y int32)`, in a fixed order, without augmentation.

        The same arrays as `zoo.data.load_arrays` with this loader's spec, seed and val_split:
        sequences padded with 0.0 to the model's length or the longest returned; `limit` keeps
        the first examples (a class-mixed sample for train, whose order is a seeded permutation).

        Example:
            >>> x, y = data.arrays("val", limit=64)  # calibration or parity inputs
        """
        arrays = split_arrays(self.resolved, split, limit)
        return arrays.x, arrays.y.astype(np.int32)


def load_data(
    spec: str | DataSpec,
    *,
    task: str,
    input_shape: tuple[int | None, ...] | None = None,
    batch_size: int = 32,
    val_split: float = DEFAULT_VAL_SPLIT,
    seed: int = 0,
    augment: bool = False,
    cache_dir: str | Path | None = None,
    allow_pickle: bool = False,
) -> LoadedData:
    """Load a data spec as tf.data splits shaped for a model's input.

    Images come out float32 raw 0-255 pixels at (height, width, channels) of `input_shape`
    (resized bilinearly, gray/RGB converted); sequences float32 (batch, time, features) padded
    with 0.0. Labels are int32 class indices (0/1 for two classes: the trainer picks the loss).

    Args:
        spec: `DIR` (class folders, or train/ val/ test/ folders of them), `FILE.csv`,
            `FILE.npz` or `builtin:NAME`, with optional `?classes=...&per_class=N`
            (see `parse_data_spec`).
        task: "image" or "sequence": the model's task (`zoo.model_info(name).task`).
        input_shape: the model's input shape; None entries (or None) are taken from the data,
            e.g. (None, None) for a sequence model sized to the data. LoadedData.input_shape
            gives the result.
        batch_size: examples per batch.
        val_split: fraction of each class held out for validation (seeded, stratified) when the
            source has no validation split; 0 gives no validation split. Validation is drawn
            before `per_class` subsampling, which counts training examples only.
        seed: seeds the validation split, per_class choice, shuffling and augmentation.
        augment: light random rotation/zoom/translation of training images; no-op for sequences.
        cache_dir: where image folders cache decoded images (a file per split, keyed by the
            folder's content and shape); without it, only small folders are cached (in memory).
        allow_pickle: let .npz files hold object arrays (variable-length sequences); pickle can
            run code, so only for files you trust.

    Example:
        >>> data = load_data("builtin:digits?classes=5-9&per_class=10", task="image",
        ...                  input_shape=(32, 32, 3))
        >>> data.class_names, data.num_train
        (['5', '6', '7', '8', '9'], 50)
    """
    check_arguments(task, input_shape, val_split)
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(
            f"batch_size should be a positive int. Received: batch_size={batch_size!r}"
        )
    data = resolve_data(
        spec,
        task=task,
        input_shape=input_shape,
        val_split=val_split,
        seed=seed,
        allow_pickle=allow_pickle,
    )
    build = Builder(data, batch_size, seed, cache_dir)
    paths, labels = data.files("train") if data.kind == "files" else (None, None)
    datasets = {
        name: build.dataset(name, augment and task == "image") if name in data.splits else None
        for name in ("train", "val", "test")
    }
    return LoadedData(
        train=datasets["train"],
        val=datasets["val"],
        test=datasets["test"],
        class_names=list(data.class_names),
        num_classes=len(data.class_names),
        input_shape=tuple(data.input_shape),
        task=task,
        num_train=len(data.splits["train"]),
        num_val=len(data.splits.get("val", ())),
        num_test=len(data.splits.get("test", ())),
        spec=data.spec,
        description=data.description,
        skipped=dict(data.skipped),
        train_files=(paths, labels.astype(np.int32)) if paths is not None else None,
        resolved=data,
    )
