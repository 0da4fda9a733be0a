"""From a data spec to the splits a model trains, validates and is tested on (index work only).

`resolve_data` is the single place where the split rules live: class selection, the seeded
stratified validation split (when the source has none), per-class subsampling and the seeded
training order. finetune's tf.data pipelines and `load_arrays` both start from its result, so
"val" is the same examples for training and for calibration.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from zoo.data._builtin import BUILTINS, load_builtin
from zoo.data._folder import scan_folder
from zoo.data._image import decode_image, to_shape
from zoo.data._manifest import read_manifest
from zoo.data._npz import load_npz
from zoo.data._source import (
    Source,
    Split,
    check_classes_present,
    keep_per_class,
    select_classes,
    stratified_split,
)
from zoo.data._spec import DataSpec, parse_data_spec
from zoo.data._znorm import normalize_series

SPLITS = ("train", "val", "test")
# The validation fraction training uses when neither the user nor the source gives one.
DEFAULT_VAL_SPLIT = 0.2


@dataclasses.dataclass(frozen=True)
class ResolvedData:
    """A spec's splits, filtered and ordered as training sees them, and the resolved shape.

    Attributes:
        spec: the parsed spec; `origin` is its source part (for messages).
        task: "image" or "sequence".
        kind: "images" (in-memory arrays), "sequences" or "files" (image paths: a folder or a
            CSV manifest).
        splits: "train", "val", "test" -> Split, only for splits that exist and are non-empty.
            Train is in a seeded, class-mixed order; val and test keep the source's order.
        input_shape: the model input shape with None dims taken from the data where fixed.

    Example:
        >>> data = resolve_data("builtin:digits", task="image", input_shape=(28, 28, 1))
        >>> sorted(data.splits), data.input_shape
        (['test', 'train', 'val'], (28, 28, 1))
    """

    spec: DataSpec
    task: str
    kind: str
    splits: dict[str, Split]
    class_names: list[str]
    input_shape: tuple[int | None, ...]
    description: str = ""
    skipped: dict = dataclasses.field(default_factory=dict)
    fingerprint: str = ""

    @property
    def origin(self) -> str:
        return str(self.spec).partition("?")[0]

    def split(self, name: str) -> Split:
        """The named split; a one-line ValueError naming the spec and the splits it has."""
        if name not in SPLITS:
            raise ValueError(f"split should be 'train', 'val' or 'test'. Received: split={name!r}")
        if name not in self.splits:
            have = ", ".join(repr(s) for s in SPLITS if s in self.splits)
            raise ValueError(
                f"{self.spec} has no {name!r} split; its splits are {have}. Received: "
                f"split={name!r}"
            )
        return self.splits[name]

    def files(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """An image folder's split as (paths str, labels int64), in this object's order.

        Example:
            >>> paths, labels = resolve_data("photos/", task="image",
            ...                              input_shape=(96, 96, 3)).files("train")
        """
        if self.kind != "files":
            raise ValueError(
                f"Only an image folder has files; {self.spec} holds in-memory {self.kind}. "
                f"Received: {self.spec}"
            )
        split = self.split(name)
        return split.items.astype(str), split.y

    def image(self, item) -> np.ndarray:
        """One image item (a path or an array) as float32 model input at `input_shape`."""
        shape = tuple(self.input_shape)
        return decode_image(item, shape) if self.kind == "files" else to_shape(item, shape)


def resolve_data(
    spec: str | DataSpec,
    *,
    task: str,
    input_shape: tuple[int | None, ...] | None = None,
    val_split: float = DEFAULT_VAL_SPLIT,
    seed: int = 0,
    allow_pickle: bool = False,
) -> ResolvedData:
    """Read a spec and apply the split rules training uses (see `load_arrays` for the args).

    Validation is drawn (stratified, seeded) before `per_class` subsampling, which counts
    training examples only; `val_split=0` gives no validation split.

    Example:
        >>> data = resolve_data("builtin:digits?classes=5-9&per_class=10", task="image",
        ...                     input_shape=(32, 32, 3))
        >>> data.class_names, len(data.splits["train"])
        (['5', '6', '7', '8', '9'], 50)
    """
    spec = parse_data_spec(spec)
    origin = str(spec).partition("?")[0]
    check_arguments(task, input_shape, val_split)
    # A shallow copy: builtin sources are cached per process and must not be changed.
    source = dataclasses.replace(_read_source(spec, origin, task, input_shape, allow_pickle))
    if spec.normalize is not None:
        source = normalize_series(source, task, origin)
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
    # A fixed, seeded order: mixed classes in file caches, in shuffle buffers and in arrays.
    source.train = source.train.subset(
        np.random.default_rng([seed, 3]).permutation(len(source.train))
    )
    return ResolvedData(
        spec=spec,
        task=task,
        kind=source.kind,
        splits={n: s for n, s in source.splits().items() if s is not None and len(s)},
        class_names=list(source.class_names),
        input_shape=_resolve_shape(task, input_shape, source, origin),
        description=source.description,
        skipped=dict(source.skipped),
        fingerprint=source.fingerprint,
    )


def check_arguments(task: str, input_shape, val_split: float) -> None:
    """The checks every loader makes before reading anything."""
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
        what = "a CSV manifest of images" if spec.kind == "csv" else "an image folder"
        raise ValueError(
            f"{origin}: {what} can only feed an image model, but the model takes "
            f"sequences; give a .npz or builtin sequence set. Received: task={task!r}"
        )
    if spec.kind == "csv":
        return read_manifest(spec.source, origin)
    return scan_folder(spec.source, origin, spec.layout)


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
