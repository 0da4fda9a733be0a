"""`predict(source, inputs)`: the top-k classes of image files, folders, globs or an `.npz`.

INPUTS are image files, folders (searched recursively for `zoo.data.IMAGE_EXTENSIONS`), shell
globs, or `.npz` files whose `x` holds a batch (images (N, H, W[, C]) or sequences (N, T, F)).
Images are decoded and resized by `zoo.data.decode_image`, as training does. Class names come
from the model file's metadata or its run (`convert.metadata`); without them classes are
"class 0" ... "class N-1" and `PredictResult.note` says so.

Example:
    >>> result = predict("runs/photos/model.onnx", ["cat.jpg", "more_photos/"], top_k=2)
    >>> result.predictions[0].input, result.predictions[0].top[0]
    ('cat.jpg', ('cat', 0.97))
"""

from __future__ import annotations

import csv
import dataclasses
import glob
import io
import json
import os
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from convert.classify import Classifier, open_classifier


@dataclasses.dataclass(frozen=True)
class Prediction:
    """One input's name and its top-k (class name, probability), most likely first."""

    input: str
    top: list[tuple[str, float]]


@dataclasses.dataclass
class PredictResult:
    """Every input's prediction, the runtime that made them, and a note on the class names."""

    predictions: list[Prediction]
    runtime: str
    class_names: list[str]
    note: str | None = None

    def to_json(self) -> str:
        rows = [
            {"input": p.input, "predictions": [{"class": c, "probability": v} for c, v in p.top]}
            for p in self.predictions
        ]
        return json.dumps(rows, indent=2)

    def to_csv(self) -> str:
        """`input,rank,class,probability`, one row per input and rank."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["input", "rank", "class", "probability"])
        for p in self.predictions:
            for rank, (name, value) in enumerate(p.top, 1):
                writer.writerow([p.input, rank, name, f"{value:.6f}"])
        return buffer.getvalue()

    def format_table(self) -> str:
        width = max([len("input"), *(len(p.input) for p in self.predictions)])
        lines = [f"{'input':<{width}}  top classes (probability)"]
        for p in self.predictions:
            top = ", ".join(f"{name} ({value:.3f})" for name, value in p.top)
            lines.append(f"{p.input:<{width}}  {top}")
        return "\n".join(lines)


def _expand(item: str) -> list[Path]:
    """One INPUTS entry as files: itself, a folder's images (recursively), or a glob's matches."""
    from zoo.data import IMAGE_EXTENSIONS

    path = Path(item)
    if path.is_dir():
        return sorted(
            p for p in path.rglob("*")
            if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".")
        )  # fmt: skip
    if path.is_file():
        return [path]
    matches = sorted(Path(m) for m in glob.glob(item, recursive=True) if Path(m).is_file())
    if not matches:
        raise ValueError(
            f"INPUTS should be image files, folders, globs or .npz files that exist. "
            f"Received: {item!r} (no such file, folder or match)"
        )
    return matches


def _npz_inputs(path: Path, clf: Classifier) -> tuple[list[str], np.ndarray]:
    """An .npz's `x` as model inputs, named `file.npz[i]`."""
    from zoo.data import to_shape_batch

    # Checked first: np.load would otherwise try to unpickle a file that is not a zip.
    if not zipfile.is_zipfile(path):
        raise ValueError(
            f"An .npz input should be a numpy archive (numpy.savez(path, x=...)). Received: "
            f"{str(path)!r} (not a zip archive; truncated or another format?)"
        )
    with np.load(path, allow_pickle=False) as archive:
        if "x" not in archive.files:
            raise ValueError(
                f"An .npz input should hold its batch as `x` (numpy.savez(path, x=...)). "
                f"Received: {str(path)!r} with arrays {', '.join(archive.files) or 'none'}"
            )
        x = np.asarray(archive["x"], dtype=np.float32)
    shape = clf.input_shape
    if clf.task == "image":
        x = x[..., None] if x.ndim == 3 else x
        if x.ndim != 4 or None in shape:
            raise ValueError(
                f"An .npz of images holds x shaped (N, H, W) or (N, H, W, C) for a model with a "
                f"fixed input size. Received: {str(path)!r} with x.shape={x.shape}"
            )
        x = to_shape_batch(x, shape)
    else:
        x = x[..., None] if x.ndim == 2 else x
        if x.ndim != 3 or x.shape[-1] != shape[-1]:
            raise ValueError(
                f"An .npz of sequences holds x shaped (N, T, {shape[-1]}) for this model. "
                f"Received: {str(path)!r} with x.shape={x.shape}"
            )
    return [f"{path}[{i}]" for i in range(len(x))], x


def collect_inputs(inputs: Sequence[str], clf: Classifier) -> tuple[list[str], np.ndarray]:
    """(names, float32 batch) of INPUTS for this model; images as training decodes them."""
    from zoo.data import decode_image

    names: list[str] = []
    batches: list[np.ndarray] = []
    files = [path for item in inputs for path in _expand(str(item))]
    for path in [p for p in files if p.suffix == ".npz"]:
        found, x = _npz_inputs(path, clf)
        names += found
        batches.append(x)
    images = [p for p in files if p.suffix != ".npz"]
    if images and (clf.task != "image" or None in clf.input_shape):
        raise ValueError(
            f"Image files feed image models with a fixed input size; give this model's inputs "
            f"as an .npz with x. Received: {str(images[0])!r} for a model with input "
            f"{clf.input_shape}"
        )
    if images:
        shape = tuple(int(d) for d in clf.input_shape)
        batches.append(np.stack([decode_image(p, shape) for p in images]).astype(np.float32))
        names += [str(p) for p in images]
    if not names:
        raise ValueError(
            f"INPUTS held no images or .npz files. Received: {', '.join(map(str, inputs))}"
        )
    return names, np.concatenate(batches) if len(batches) > 1 else batches[0]


def top_k(probabilities: np.ndarray, class_names: list[str], k: int) -> list[list[tuple]]:
    """Each row's k most likely (class name, probability), most likely first."""
    k = min(k, probabilities.shape[1])
    order = np.argsort(-probabilities, axis=1, kind="stable")[:, :k]
    return [
        [(class_names[i], round(float(row[i]), 6)) for i in picks]
        for row, picks in zip(probabilities, order, strict=True)
    ]


def predict(
    source: str | os.PathLike[str],
    inputs: Sequence[str | os.PathLike[str]],
    *,
    top_k_classes: int = 5,
    batch_size: int = 32,
    runtime: str | None = None,
    safe_mode: bool = True,
) -> PredictResult:
    """The top `top_k_classes` classes of each input, with probabilities.

    Args:
        source: a `.keras` file, run directory, SavedModel, `.onnx`, OpenVINO `.xml` or engine.
        inputs: image files, folders (recursive), globs, `.npz` files (their `x`).
        top_k_classes: classes per input (at most the model's class count).
        batch_size: inputs per forward pass.
        runtime: the runtime for SOURCE (`convert.runners.RUNTIMES`); None: its default.
        safe_mode: False lets a `.keras` file run code stored in it; trusted files only.

    Example:
        >>> predict("model.onnx", ["digits.npz"], top_k_classes=1).predictions[0].top
        [('7', 0.998)]
    """
    for name, value in (("top_k", top_k_classes), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} should be a positive int. Received: {name}={value!r}")
    clf = open_classifier(source, runtime=runtime, safe_mode=safe_mode)
    names, x = collect_inputs([str(i) for i in inputs], clf)
    probabilities = clf.probabilities(x, batch_size)
    tops = top_k(probabilities, clf.class_names, top_k_classes)
    note = None
    if not clf.names_known:
        note = (
            f"{Path(source).name} carries no class names (no kerazoo metadata, no run beside "
            f"it): classes are numbered 0..{clf.num_classes - 1}"
        )
    return PredictResult(
        [Prediction(n, t) for n, t in zip(names, tops, strict=True)],
        clf.runner.runtime,
        clf.class_names,
        note,
    )
