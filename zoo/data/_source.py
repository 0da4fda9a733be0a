"""Data read from a spec before it becomes model input: splits of items and labels, and the
class filter, validation split and per-class subsampling applied to them (all index work, no
TensorFlow)."""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

# Items of a split: "images" (N, H, W, C) numeric array, "sequences" object array of (T_i, F)
# float32 arrays, or "files" array of image paths (str). All three are numpy arrays so that
# subsetting is `items[index]` for every kind.
KINDS = ("images", "sequences", "files")


@dataclasses.dataclass
class Split:
    """One split's items and int64 class indices."""

    items: np.ndarray
    y: np.ndarray

    def __len__(self) -> int:
        return len(self.y)

    def subset(self, index: np.ndarray) -> Split:
        return Split(self.items[index], self.y[index])


@dataclasses.dataclass
class Source:
    """Everything a spec provides before its splits are resolved (`resolve_data`)."""

    kind: str
    train: Split
    class_names: list[str]
    val: Split | None = None
    test: Split | None = None
    # Source-side shape of one item where fixed: (H, W, C) images, (T or None, F) sequences.
    item_shape: tuple[int | None, ...] | None = None
    description: str = ""
    # Counts of what a folder scan left out, e.g. {"corrupt": 1, "non_image": 2}.
    skipped: dict[str, Any] = dataclasses.field(default_factory=dict)
    # Identifies the source's content for cache file names (folders only).
    fingerprint: str = ""

    def splits(self) -> dict[str, Split | None]:
        return {"train": self.train, "val": self.val, "test": self.test}


def select_classes(source: Source, classes: Sequence[int | str], origin: str) -> Source:
    """Keep only `classes` (indices or names) and re-index them 0..k-1 in their original order."""
    names = source.class_names
    chosen = set()
    for entry in classes:
        if isinstance(entry, int):
            if entry >= len(names):
                raise ValueError(
                    f"{origin}: class index {entry} is out of range; this data has "
                    f"{len(names)} classes (0-{len(names) - 1}). Received: classes={list(classes)}"
                )
            chosen.add(entry)
        elif entry in names:
            chosen.add(names.index(entry))
        else:
            raise ValueError(
                f"{origin}: unknown class name {entry!r}; valid names: {', '.join(names)}. "
                f"Received: classes={list(classes)}"
            )
    kept = sorted(chosen)
    if len(kept) < 2:
        raise ValueError(
            f"{origin}: classes should select at least 2 classes to classify. "
            f"Received: classes={list(classes)}"
        )
    remap = np.full(len(names), -1, dtype=np.int64)
    remap[kept] = np.arange(len(kept))

    def _filter(split: Split | None) -> Split | None:
        if split is None:
            return None
        part = split.subset(np.flatnonzero(remap[split.y] >= 0))
        return Split(part.items, remap[part.y])

    return dataclasses.replace(
        source,
        train=_filter(source.train),
        val=_filter(source.val),
        test=_filter(source.test),
        class_names=[names[i] for i in kept],
    )


def stratified_split(y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, val): `fraction` of each class to val, reproducibly for `seed`.

    Each class with at least 2 examples gives round(n * fraction) examples, at least 1 and at
    most n - 1, so every class stays in both parts.

    Example:
        >>> train, val = stratified_split(np.array([0, 0, 0, 1, 1, 1]), 0.34, seed=0)
        >>> len(val)
        2
    """
    rng = np.random.default_rng([seed, 1])  # a stream of its own: per_class uses [seed, 2]
    train, val = [], []
    for label in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == label))
        count = min(max(int(round(len(members) * fraction)), 1), len(members) - 1)
        val.append(members[:count])
        train.append(members[count:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))


def keep_per_class(split: Split, per_class: int, class_names: list[str], seed: int) -> Split:
    """Keep `per_class` examples of each class (all of a class that has fewer, with a warning)."""
    rng = np.random.default_rng([seed, 2])
    kept = []
    for label in range(len(class_names)):
        members = np.flatnonzero(split.y == label)
        if len(members) < per_class:
            warnings.warn(
                f"class {class_names[label]!r} has {len(members)} training examples, fewer than "
                f"per_class={per_class}; keeping all {len(members)}.",
                stacklevel=4,
            )
        kept.append(rng.permutation(members)[:per_class])
    return split.subset(np.sort(np.concatenate(kept)))


def check_classes_present(split: Split, class_names: list[str], origin: str) -> None:
    """Every class needs training examples, or the model learns a class it never sees."""
    counts = np.bincount(split.y, minlength=len(class_names))
    missing = [class_names[i] for i in np.flatnonzero(counts == 0)]
    if missing:
        raise ValueError(
            f"{origin}: classes {missing} have no training examples; add examples or drop them "
            f"with ?classes=... Received: {len(class_names)} classes, "
            f"counts={counts.tolist()}"
        )
