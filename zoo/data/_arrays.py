"""A split as numpy arrays shaped for a model: what calibration, parity checks and small
in-memory training sets read (`load_arrays`, `split_arrays`)."""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np

from zoo.data._resolve import DEFAULT_VAL_SPLIT, ResolvedData, resolve_data
from zoo.data._spec import DataSpec


@dataclasses.dataclass(frozen=True)
class Arrays:
    """One split as arrays.

    Attributes:
        x: float32 (n, *input_shape), None dims resolved: images raw 0-255 pixels, sequences
            padded with 0.0 at the end (to the model's fixed length, else the longest returned).
        y: int64 class indices (n,).
        class_names: the class of each index.
        split: "train", "val" or "test".
        origin: the data spec it was read from.
    """

    x: np.ndarray
    y: np.ndarray
    class_names: list[str]
    split: str
    origin: str

    def __len__(self) -> int:
        return len(self.y)


def load_arrays(
    spec: str | DataSpec,
    *,
    task: str,
    input_shape: tuple[int | None, ...] | None,
    split: str = "train",
    limit: int | None = None,
    seed: int = 0,
    val_split: float = DEFAULT_VAL_SPLIT,
    allow_pickle: bool = False,
) -> Arrays:
    """A split of a data spec as numpy arrays, with the pixels and examples training uses.

    Args:
        spec: `DIR` (class folders, or train/ val/ test/ folders of them), `FILE.csv`,
            `FILE.npz` or `builtin:NAME`, with optional `?classes=...&per_class=N`.
        task: "image" or "sequence": the model's task.
        input_shape: the model's input shape without the batch axis; None dims (or None) are
            taken from the data.
        split: "train", "val" or "test". "val" of a source without its own validation split is
            carved as training carves it: the same `seed` and `val_split` give the same examples.
        limit: keep the first `limit` examples (train's order is a seeded, class-mixed
            permutation, so its first examples are a mixed sample).
        seed: seeds the validation split, per_class choice and training order, as in training.
        val_split: fraction of each class held out for validation when the source has none.
        allow_pickle: let .npz files hold object arrays; pickle can run code, trusted files only.

    Raises:
        ValueError: one line, e.g. for a split the data does not have (naming those it has).

    Example:
        >>> val = load_arrays("builtin:digits", task="image", input_shape=(28, 28, 1),
        ...                   split="val", limit=64)
        >>> val.x.shape, val.y.dtype, val.class_names[:2]
        ((64, 28, 28, 1), dtype('int64'), ['0', '1'])
    """
    _check_limit(limit)
    data = resolve_data(
        spec,
        task=task,
        input_shape=input_shape,
        val_split=val_split,
        seed=seed,
        allow_pickle=allow_pickle,
    )
    return split_arrays(data, split, limit)


def split_arrays(data: ResolvedData, split: str = "train", limit: int | None = None) -> Arrays:
    """A resolved split as `Arrays` (what `load_arrays` returns; finetune's `arrays()` too).

    Example:
        >>> data = resolve_data("builtin:gunpoint", task="sequence", input_shape=(None, 1))
        >>> split_arrays(data, "test", limit=10).x.shape
        (10, 150, 1)
    """
    _check_limit(limit)
    part = data.split(split)
    if data.task == "sequence":
        x = _padded(part.items[:limit], data.input_shape)
        y = part.y[:limit]
    else:
        x, keep = _images(data, part.items, limit)
        y = part.y[keep]
    return Arrays(
        x=x,
        y=np.asarray(y, dtype=np.int64),
        class_names=list(data.class_names),
        split=split,
        origin=str(data.spec),
    )


def _check_limit(limit) -> None:
    if limit is not None and (not isinstance(limit, int) or limit < 1):
        raise ValueError(f"limit should be a positive int or None. Received: limit={limit!r}")


def _images(data: ResolvedData, items: np.ndarray, limit: int | None) -> tuple:
    """Decoded images and the positions they came from; unreadable files are skipped (as the
    training pipeline drops them), and later files fill the limit."""
    wanted = len(items) if limit is None else min(limit, len(items))
    x = np.empty((wanted, *data.input_shape), dtype=np.float32)
    keep, failed = [], []
    for index, item in enumerate(items):
        if len(keep) == wanted:
            break
        try:
            x[len(keep)] = data.image(item)
        except Exception:  # Pillow raises many types for a damaged file (OSError, SyntaxError)
            failed.append(str(item))
            continue
        keep.append(index)
    if failed:
        warnings.warn(
            f"{data.origin}: skipped {len(failed)} image(s) that failed to decode, e.g. "
            f"{', '.join(failed[:3])}{', ...' if len(failed) > 3 else ''}",
            stacklevel=4,
        )
    return x[: len(keep)], np.asarray(keep, dtype=np.int64)


def _padded(series: np.ndarray, input_shape: tuple) -> np.ndarray:
    steps = input_shape[0] or max(len(s) for s in series)
    x = np.zeros((len(series), steps, input_shape[-1]), dtype=np.float32)
    for index, s in enumerate(series):
        x[index, : len(s)] = s
    return x
