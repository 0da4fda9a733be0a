"""Reading and validating a `.npz` data file.

Arrays: `x`, `y` (required); `x_val`/`y_val`, `x_test`/`y_test` (optional pairs); `class_names`
(optional strings); `lengths`, `lengths_val`, `lengths_test` (optional, for padded sequences).

- Images: x is (N, H, W) or (N, H, W, C) with C 1 or 3, raw 0-255 pixels (not rescaled).
- Sequences: x is (N, T, F), (N, T) for one feature, padded (N, T, F) with `lengths` (N,), or an
  object array of (T_i, F) arrays (variable length; needs `allow_pickle=True`, because numpy
  stores object arrays with pickle, which can run code: only for files you trust).
- y holds class indices 0..k-1 (ints, or floats with integer values), shape (N,) or (N, 1).

Every problem is a one-line ValueError naming the array and the fix.
"""

from __future__ import annotations

import warnings
import zipfile
from pathlib import Path

import numpy as np

from zoo.data._source import Source, Split

_SPLITS = {"train": ("x", "y", "lengths"), "val": ("x_val", "y_val", "lengths_val"),
           "test": ("x_test", "y_test", "lengths_test")}  # fmt: skip
_KNOWN = {name for names in _SPLITS.values() for name in names} | {"class_names"}


def load_npz(
    path: str | Path, origin: str, task: str, input_shape: tuple, allow_pickle: bool = False
) -> Source:
    """Read and validate a .npz file for a model of `task` taking `input_shape`.

    Example:
        >>> np.savez("d.npz", x=np.zeros((4, 8, 8)), y=[0, 1, 0, 1])
        >>> load_npz("d.npz", "d.npz", "image", (8, 8, 1)).item_shape
        (8, 8, 1)
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise ValueError(
            f"{origin}: no such file; give the path of an existing .npz file. Received: "
            f"{str(path)!r}"
        )
    # Checked first: np.load falls back to unpickling anything that is not a zip or .npy, and
    # would then blame a damaged file on pickled object arrays.
    if not zipfile.is_zipfile(path):
        raise ValueError(
            f"{origin}: not a readable .npz file (not a zip archive; truncated or another "
            f"format?); re-save it with numpy.savez(path, x=..., y=...)."
        )
    try:
        archive = np.load(path, allow_pickle=allow_pickle)
        arrays = {name: archive[name] for name in archive.files}
    except ValueError as error:
        if "allow_pickle" not in str(error):
            raise ValueError(f"{origin}: unreadable .npz ({error}).") from error
        raise ValueError(
            f"{origin}: holds an object array (variable-length sequences), which numpy stores with "
            "pickle, and pickle can run code; pass allow_pickle=True if you trust the file, or "
            "save "
            "padded x with a `lengths` array instead. Received: allow_pickle=False"
        ) from None
    except (OSError, zipfile.BadZipFile, EOFError) as error:
        raise ValueError(
            f"{origin}: not a readable .npz file ({error}); re-save it with numpy.savez."
        ) from error
    unknown = sorted(set(arrays) - _KNOWN)
    if unknown:
        warnings.warn(
            f"{origin}: ignoring unknown arrays {unknown}; known: {sorted(_KNOWN)}", stacklevel=5
        )
    if "x" not in arrays or "y" not in arrays:
        raise ValueError(
            f"{origin}: needs arrays 'x' and 'y' (np.savez(path, x=..., y=...)). Received: "
            f"{sorted(arrays)}"
        )
    class_names = _class_names(arrays, origin)
    splits: dict[str, Split | None] = {}
    for split, (x_name, y_name, len_name) in _SPLITS.items():
        if (x_name in arrays) != (y_name in arrays):
            raise ValueError(
                f"{origin}: {x_name} and {y_name} go together; give both or neither. Received: "
                f"{sorted(arrays)}"
            )
        if x_name not in arrays:
            splits[split] = None
            continue
        y = _labels(arrays[y_name], y_name, origin, class_names)
        x = arrays[x_name]
        if x.ndim == 0:
            raise ValueError(
                f"{origin}: {x_name} should hold one example per row, (N, ...); it is a single "
                f"value. Received: {x_name}.shape=()"
            )
        if len(x) != len(y):
            raise ValueError(
                f"{origin}: {x_name} has {len(x)} rows but {y_name} has {len(y)}; they should "
                f"match. Received: {x_name}.shape={x.shape}, {y_name}.shape={arrays[y_name].shape}"
            )
        if len(y) == 0:
            raise ValueError(
                f"{origin}: {x_name} is empty; give at least one example per class. Received: "
                f"{x_name}.shape={x.shape}"
            )
        if task == "image":
            items = _images(x, x_name, origin, input_shape)
        else:
            items = _sequences(x, arrays.get(len_name), x_name, origin, input_shape)
        splits[split] = Split(items, y)
    num_classes = (
        len(class_names)
        if class_names
        else 1 + max(int(s.y.max()) for s in splits.values() if s is not None)
    )
    if num_classes < 2:
        raise ValueError(
            f"{origin}: every label is 0, a single class; classification needs at least 2 "
            f"classes (labels 0..k-1). Received: y holds only class 0"
        )
    if task == "image":
        item_shape = splits["train"].items.shape[1:]
    else:
        lengths = {len(s) for part in splits.values() if part is not None for s in part.items}
        item_shape = (
            lengths.pop() if len(lengths) == 1 else None,
            splits["train"].items[0].shape[-1],
        )
    return Source(
        kind="images" if task == "image" else "sequences",
        train=splits["train"],
        val=splits["val"],
        test=splits["test"],
        class_names=class_names or [str(i) for i in range(max(num_classes, 2))],
        item_shape=tuple(item_shape),
        description=f"arrays from {path}",
    )


def _class_names(arrays: dict, origin: str) -> list[str] | None:
    if "class_names" not in arrays:
        return None
    names = [str(n) for n in np.asarray(arrays["class_names"]).reshape(-1)]
    if len(names) < 2 or len(set(names)) != len(names):
        raise ValueError(
            f"{origin}: class_names should hold at least 2 distinct names. Received: {names}"
        )
    return names


def _labels(y: np.ndarray, name: str, origin: str, class_names: list[str] | None) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        hint = f"; for one-hot labels save {name}.argmax(axis=1)" if y.ndim == 2 else ""
        raise ValueError(
            f"{origin}: {name} should be a 1-D array of class indices{hint}. Received: "
            f"{name}.shape={y.shape}"
        )
    if y.dtype == bool:
        y = y.astype(np.int64)
    if y.dtype.kind == "f":
        if not np.isfinite(y).all() or (y != np.round(y)).any():
            raise ValueError(
                f"{origin}: {name} should hold integer class indices; it has non-integer values. "
                f"Received: e.g. {y[(~np.isfinite(y)) | (y != np.round(y))][:3].tolist()}"
            )
    elif y.dtype.kind not in "iu":
        raise ValueError(
            f"{origin}: {name} should hold integer class indices. Received: dtype {y.dtype}"
        )
    y = y.astype(np.int64)
    if len(y) and y.min() < 0:
        raise ValueError(
            f"{origin}: {name} has negative labels; class indices are 0..k-1. Received: min "
            f"{y.min()}"
        )
    if class_names and len(y) and y.max() >= len(class_names):
        raise ValueError(
            f"{origin}: {name} has label {y.max()} but class_names lists {len(class_names)} "
            f"classes (0-{len(class_names) - 1}). Received: max {y.max()}"
        )
    return y


def _check_finite(x: np.ndarray, name: str, origin: str) -> None:
    if x.dtype.kind == "f" and not np.isfinite(x).all():
        raise ValueError(
            f"{origin}: {name} contains NaN or inf; replace or drop those rows. Received: "
            f"{int((~np.isfinite(x)).sum())} non-finite values"
        )
    if x.dtype.kind not in "fiub":
        raise ValueError(f"{origin}: {name} should be numeric. Received: dtype {x.dtype}")


def _images(x: np.ndarray, name: str, origin: str, input_shape: tuple) -> np.ndarray:
    if x.dtype == object or x.ndim < 3:
        raise ValueError(
            f"{origin}: {name} looks like sequences (rank "
            f"{x.ndim}{', variable length' if x.dtype == object else ''}) but the model takes "
            f"images (N, H, W[, C]); use a sequence model or image data. Received: "
            f"{name}.shape={x.shape}"
        )
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4 or x.shape[-1] not in (1, 3) or 0 in x.shape[1:3]:
        raise ValueError(
            f"{origin}: {name} should be images (N, H, W) or (N, H, W, C) with H, W >= 1 and C "
            f"1 or 3. Received: {name}.shape={x.shape}"
        )
    _check_finite(x, name, origin)
    if x.dtype.kind == "f" and x.size and float(x.max()) <= 1.0:
        warnings.warn(
            f"{origin}: {name} is in 0-1, but models take raw 0-255 pixels; multiply by 255",
            stacklevel=6,
        )
    return x


def _sequences(x: np.ndarray, lengths, name: str, origin: str, input_shape: tuple) -> np.ndarray:
    if x.dtype == object:
        series = [np.asarray(s) for s in x]
        if lengths is not None:
            raise ValueError(
                f"{origin}: {name} is already variable-length; drop the lengths array. Received: "
                f"object array and lengths"
            )
    else:
        if x.ndim == 4:
            raise ValueError(
                f"{origin}: {name} looks like images (N, H, W, C) but the model takes sequences "
                f"(N, T, F); use an image model or sequence data. Received: {name}.shape={x.shape}"
            )
        if x.ndim not in (2, 3):
            raise ValueError(
                f"{origin}: {name} should be sequences (N, T, F), (N, T) or an object array of "
                f"(T_i, F) arrays. Received: {name}.shape={x.shape}"
            )
        _check_finite(x, name, origin)
        if x.ndim == 2:
            x = x[..., None]
        series = list(x)
        if lengths is not None:
            series = _cut(series, np.asarray(lengths), name, origin, x.shape[1])
    for index, s in enumerate(series):
        s = s[:, None] if s.ndim == 1 else s
        if s.ndim != 2 or len(s) == 0:
            raise ValueError(
                f"{origin}: {name}[{index}] should be a non-empty (T, F) array. Received: shape "
                f"{s.shape}"
            )
        _check_finite(s, f"{name}[{index}]", origin)
        series[index] = s.astype(np.float32, copy=False)
    widths = {s.shape[1] for s in series}
    features = input_shape[-1] if input_shape else None
    if len(widths) > 1 or (features is not None and widths != {features}):
        raise ValueError(
            f"{origin}: {name} has {sorted(widths)} features per step but the model takes "
            f"{features}; create the model with input_shape=(None, {sorted(widths)[0]}). "
            f"Received: feature widths {sorted(widths)}"
        )
    steps = input_shape[0] if input_shape and len(input_shape) == 2 else None
    longest = max(len(s) for s in series)
    if steps is not None and longest > steps:
        raise ValueError(
            f"{origin}: {name} has sequences of up to {longest} steps but the model takes exactly "
            f"{steps}; use input_shape=(None, F). Received: longest {longest}"
        )
    items = np.empty(len(series), dtype=object)
    items[:] = series
    return items


def _cut(series: list, lengths: np.ndarray, name: str, origin: str, steps: int) -> list:
    if lengths.shape != (len(series),) or lengths.dtype.kind not in "iu":
        raise ValueError(
            f"{origin}: lengths for {name} should be ({len(series)},) integers. Received: shape "
            f"{lengths.shape}, dtype {lengths.dtype}"
        )
    if len(lengths) and (lengths.min() < 1 or lengths.max() > steps):
        raise ValueError(
            f"{origin}: lengths for {name} should be in 1..{steps} (the padded length). Received: "
            f"{lengths.min()}..{lengths.max()}"
        )
    return [s[:n] for s, n in zip(series, lengths, strict=True)]
