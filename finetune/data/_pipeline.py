"""`load_data`, the one entry point, and `LoadedData`, what it returns."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import numpy as np
import tensorflow as tf

from finetune.data._arrays import load_npz
from finetune.data._builtin import BUILTINS, load_builtin
from finetune.data._folder import scan_folder
from finetune.data._source import (
    Source,
    check_classes_present,
    keep_per_class,
    select_classes,
    stratified_split,
)
from finetune.data._spec import DataSpec, parse_data_spec
from finetune.data._tfdata import Builder


@dataclasses.dataclass
class LoadedData:
    """Batched, prefetched tf.data splits of `(x float32, y int32)` and what describes them.

    `train` is shuffled every epoch (and augmented if asked); `val` and `test` are None where
    the data has no such split. `skipped` counts what a folder scan left out.

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
    description: str = ""
    skipped: dict = dataclasses.field(default_factory=dict)
    train_files: tuple[np.ndarray, np.ndarray] | None = dataclasses.field(default=None, repr=False)
    _plain: dict[str, Callable[[], tf.data.Dataset]] = dataclasses.field(
        default_factory=dict, repr=False
    )

    def image_decoder(self) -> Callable:
        """`(path, label) -> (image, label)`: how `train_files` become model inputs in tf.data.

        `train_files` holds an image folder's training split as `(paths, labels)` in the loader's
        seeded order (None for in-memory sources), so a trainer can stream its own per-epoch
        order instead of this object's `train` pipeline.

        Example:
            >>> paths, labels = data.train_files
            >>> images = tf.data.Dataset.from_tensor_slices((paths, labels)).map(
            ...     data.image_decoder())
        """
        from finetune.data._tfdata import _image_decoder

        if self.task != "image":
            raise ValueError(f"Only image data has a decoder. Received: task={self.task!r}")
        return _image_decoder(tuple(self.input_shape))

    def arrays(
        self, split: str = "train", limit: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The split as numpy `(x float32, y int32)`, in a fixed order, without augmentation.

        Sequences are padded with 0.0 to the longest returned. `limit` keeps the first examples
        (a class-mixed sample for train, whose order is a seeded permutation).

        Example:
            >>> x, y = data.arrays("val", limit=64)  # calibration or parity inputs
        """
        if split not in ("train", "val", "test"):
            raise ValueError(f"split should be 'train', 'val' or 'test'. Received: split={split!r}")
        if self._plain.get(split) is None:
            raise ValueError(f"This data has no {split!r} split. Received: split={split!r}")
        if limit is not None and limit < 1:
            raise ValueError(f"limit should be a positive int or None. Received: limit={limit}")
        xs, ys, count = [], [], 0
        for x, y in self._plain[split]().as_numpy_iterator():
            xs.append(x)
            ys.append(y)
            count += len(y)
            if limit is not None and count >= limit:
                break
        if self.task == "sequence":
            steps = max(x.shape[1] for x in xs)
            xs = [np.pad(x, ((0, 0), (0, steps - x.shape[1]), (0, 0))) for x in xs]
        return np.concatenate(xs)[:limit], np.concatenate(ys)[:limit]


def load_data(
    spec: str | DataSpec,
    *,
    task: str,
    input_shape: tuple[int | None, ...] | None = None,
    batch_size: int = 32,
    val_split: float = 0.2,
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
        spec: `DIR`, `FILE.npz` or `builtin:NAME`, with optional `?classes=...&per_class=N`
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
    spec = parse_data_spec(spec)
    origin = str(spec).partition("?")[0]
    _check_arguments(task, input_shape, batch_size, val_split)
    # A shallow copy: builtin sources are cached per process and must not be changed.
    source = dataclasses.replace(_read_source(spec, origin, task, input_shape, allow_pickle))
    if spec.classes is not None:
        source = select_classes(source, spec.classes, origin)
    check_classes_present(source.train, source.class_names, origin)
    if source.val is None and val_split > 0:
        train_index, val_index = stratified_split(source.train.y, val_split, seed)
        source = dataclasses.replace(
            source, train=source.train.subset(train_index), val=source.train.subset(val_index)
        )
    if spec.per_class is not None:
        source.train = keep_per_class(source.train, spec.per_class, source.class_names, seed)
    # A fixed, seeded order: mixed classes in file caches, in shuffle buffers and in arrays().
    source.train = source.train.subset(
        np.random.default_rng([seed, 3]).permutation(len(source.train))
    )
    shape = _resolve_shape(task, input_shape, source, origin)
    build = Builder(source, shape, batch_size, seed, cache_dir)
    plain = {
        name: (build.plain(name) if part is not None and len(part) else None)
        for name, part in source.splits().items()
    }
    datasets = {
        name: (build.dataset(name, augment and task == "image") if plain[name] else None)
        for name in plain
    }
    return LoadedData(
        train=datasets["train"],
        val=datasets["val"],
        test=datasets["test"],
        class_names=list(source.class_names),
        num_classes=len(source.class_names),
        input_shape=shape,
        task=task,
        num_train=len(source.train),
        num_val=len(source.val) if plain["val"] else 0,
        num_test=len(source.test) if plain["test"] else 0,
        spec=spec,
        description=source.description,
        skipped=dict(source.skipped),
        train_files=(
            (np.asarray(source.train.items).astype(str), np.asarray(source.train.y, np.int32))
            if source.kind == "files"
            else None
        ),
        _plain=plain,
    )


def _check_arguments(task, input_shape, batch_size, val_split) -> None:
    if task not in ("image", "sequence"):
        raise ValueError(f"task should be 'image' or 'sequence'. Received: task={task!r}")
    rank = 3 if task == "image" else 2
    if input_shape is not None and len(input_shape) != rank:
        layout = "(height, width, channels)" if task == "image" else "(time, features)"
        raise ValueError(
            f"input_shape of an {task} model should be {layout}. Received: "
            f"input_shape={input_shape}"
        )
    if task == "image" and input_shape is not None and input_shape[-1] not in (None, 1, 3):
        raise ValueError(
            f"Images have 1 (gray) or 3 (RGB) channels. Received: input_shape={input_shape}"
        )
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(
            f"batch_size should be a positive int. Received: batch_size={batch_size!r}"
        )
    if not 0.0 <= val_split < 1.0:
        raise ValueError(f"val_split should be in [0, 1). Received: val_split={val_split}")


def _read_source(spec: DataSpec, origin: str, task: str, input_shape, allow_pickle: bool) -> Source:
    if spec.kind == "builtin":
        info = BUILTINS[spec.source]
        if info.task != task:
            others = ", ".join(f"builtin:{n}" for n, i in BUILTINS.items() if i.task == task)
            raise ValueError(
                f"{origin} holds {info.task}s but the model takes {task}s; use one of {others}. "
                f"Received: {origin}"
            )
        return load_builtin(spec.source)
    if spec.kind == "npz":
        return load_npz(spec.source, origin, task, input_shape or (), allow_pickle)
    if task != "image":
        raise ValueError(
            f"{origin}: an image folder can only feed an image model, but the model takes "
            f"sequences; give a .npz or builtin sequence set. Received: task={task!r}"
        )
    return scan_folder(spec.source, origin)


def _resolve_shape(task: str, input_shape, source: Source, origin: str) -> tuple:
    natural = tuple(source.item_shape)
    shape = tuple(input_shape) if input_shape is not None else natural
    shape = tuple(n if s is None else s for s, n in zip(shape, natural, strict=True))
    if task == "image" and None in shape:
        raise ValueError(
            f"{origin}: images of mixed sizes need the model's height and width; pass "
            f"input_shape=(H, W, C). Received: input_shape={input_shape}"
        )
    if task == "sequence" and shape[-1] != natural[-1]:
        raise ValueError(
            f"{origin}: sequences have {natural[-1]} features per step but the model takes "
            f"{shape[-1]}; create the model with input_shape=(None, {natural[-1]}). Received: "
            f"input_shape={input_shape}"
        )
    if task == "sequence" and shape[0] is not None:
        longest = max(
            len(s) for part in source.splits().values() if part is not None for s in part.items
        )
        if longest > shape[0]:
            raise ValueError(
                f"{origin}: sequences have up to {longest} steps but the model takes exactly "
                f"{shape[0]}; use input_shape=(None, {shape[-1]}). Received: "
                f"input_shape={input_shape}"
            )
    return shape
