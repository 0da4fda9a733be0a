"""A model ready to classify: any artefact's runner, its class names and input contract, and
class probabilities in batches. What `convert.evaluate` and `convert.predict` share.

Outputs become probabilities the same way for every runtime: a softmax (rows of values in [0, 1]
summing to 1, within 0.05 for int8 files whose softmax output is quantized) is kept as is, any
other multi-class output (logits, `classifier_activation="linear"`) goes through a softmax; one
output unit is the probability of class 1 (a sigmoid; values outside [0, 1] are logits and go
through one), so top-1 is class 1 exactly when it is > 0.5.

Example:
    >>> clf = open_classifier("runs/demo/model.onnx")
    >>> clf.runner.runtime, clf.task, clf.input_shape, clf.class_names[:2]
    ('onnxruntime-fp32', 'image', (28, 28, 1), ['0', '1'])
    >>> clf.probabilities(x).shape
    (64, 10)
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import numpy as np

from convert._common import Runner
from convert.calibration import model_classes
from convert.metadata import ModelMeta, describe, run_config_of

_TASKS = {3: "image", 2: "sequence"}


@dataclasses.dataclass
class Classifier:
    """An artefact opened for inference.

    `meta` is what the file (or its run) says about itself, `run_config` the config.yaml of the
    run holding it ({} outside a run), `width` the output width (1 for a sigmoid).
    """

    path: Path
    runner: Runner
    meta: ModelMeta
    run_config: dict[str, Any]
    width: int

    @property
    def num_classes(self) -> int:
        return int(model_classes(self.width))

    @property
    def task(self) -> str:
        return self.meta.task or _TASKS[len(self.input_shape)]

    @property
    def input_shape(self) -> tuple[int | None, ...]:
        """The input without the batch axis; a free image axis is taken from the metadata."""
        shape = tuple(self.runner.input_shape[1:])
        known = self.meta.input_shape
        if known is not None and len(known) == len(shape):
            shape = tuple(k if s is None else s for s, k in zip(shape, known, strict=True))
        return shape

    @property
    def names_known(self) -> bool:
        names = self.meta.class_names
        return names is not None and len(names) == self.num_classes

    @property
    def class_names(self) -> list[str]:
        """The model's class names, else "class 0" ... "class N-1"."""
        if self.names_known:
            return list(self.meta.class_names or [])
        return [f"class {i}" for i in range(self.num_classes)]

    def probabilities(self, x: np.ndarray, batch_size: int = 64) -> np.ndarray:
        """Class probabilities (n, num_classes) of float32 inputs, `batch_size` at a time."""
        parts = [
            as_probabilities(self.runner.run(np.ascontiguousarray(x[i : i + batch_size]))[0])
            for i in range(0, len(x), batch_size)
        ]
        return np.concatenate(parts) if parts else np.zeros((0, self.num_classes), np.float32)


def as_probabilities(scores: np.ndarray) -> np.ndarray:
    """One batch of outputs as class probabilities (see the module docstring).

    Example:
        >>> as_probabilities(np.array([[0.9], [0.2]]))
        array([[0.1, 0.9], [0.8, 0.2]])
    """
    scores = np.asarray(scores, dtype=np.float64).reshape(len(scores), -1)
    in_range = bool(np.all((scores >= 0.0) & (scores <= 1.0)))
    if scores.shape[1] == 1:
        p = scores[:, 0] if in_range else 1.0 / (1.0 + np.exp(-scores[:, 0]))
        return np.stack([1.0 - p, p], axis=1)
    if in_range and np.allclose(scores.sum(axis=1), 1.0, atol=0.05):
        return scores
    shifted = np.exp(scores - scores.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def _check_input(path: Path, shape: tuple[int | None, ...]) -> None:
    if len(shape) not in _TASKS:
        dims = ", ".join("?" if d is None else str(d) for d in shape)
        raise ValueError(
            f"evaluate and predict take models whose input is images (batch, H, W, C) or "
            f"sequences (batch, T, F). Received: {str(path)!r} with input (batch, {dims})"
        )


def _output_width(runner: Runner, shape: tuple[int | None, ...]) -> int:
    """The width of the first output, from one forward pass on zeros (every runtime has run)."""
    probe = np.zeros((1, *[d or 1 for d in shape]), dtype=np.float32)
    output = np.asarray(runner.run(probe)[0])
    return int(output.reshape(1, -1).shape[1])


def open_classifier(
    source: str | os.PathLike[str], *, runtime: str | None = None, safe_mode: bool = True
) -> Classifier:
    """Open SOURCE (`.keras`, run directory, SavedModel, `.onnx`, `.xml`, engine) to classify.

    Args:
        source: the artefact; a run directory means its `model.keras`.
        runtime: one of `convert.runners.RUNTIMES` that runs it (None: its default).
        safe_mode: False lets a `.keras` file run code stored in it; trusted files only.

    Example:
        >>> open_classifier("model.int8.xml").runner.runtime
        'openvino-int8@f32'
    """
    from convert.runners import open_artifact

    path = Path(source)
    # Keras through its traced predict function: 3-10x the eager call's images/s measured on a
    # mobilenet_v2_gap at 96x96 (batches of 32, 2 CPU cores).
    runner = open_artifact(path, runtime, compiled=True, safe_mode=safe_mode)
    shape = tuple(runner.input_shape[1:])
    _check_input(path, shape)
    meta = describe(path)
    if meta.input_shape is not None and len(meta.input_shape) == len(shape):
        shape = tuple(k if s is None else s for s, k in zip(shape, meta.input_shape, strict=True))
    return Classifier(path, runner, meta, run_config_of(path), _output_width(runner, shape))
