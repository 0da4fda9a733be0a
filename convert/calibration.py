"""Calibration and parity data for `convert`: a data SPEC read through `zoo.data` (resolved once,
then sliced per split with `split_arrays`, as `load_arrays` does).

Calibration (int8 activation ranges) reads the train split; the parity gate scores the
validation split, else the test split, else the train split. Images are resized to the model's
input. Labelled data must fit the model: as many classes as the model predicts (its softmax
width; a 1-unit sigmoid predicts 2), and for a run directory the run's own class names, or the
gate's accuracy would compare labels of one task with predictions of another. A run's data is
split with the run's own `seed` and `val_split` (`run_split_rules`), so the gate scores the
examples that run validated on.

Example:
    >>> data = load_calibration("builtin:digits", input_name="image", input_shape=(28, 28, 1),
    ...                         output_width=10)
    >>> data.calibration[0].shape, data.evaluation[0].shape
    ((256, 28, 28, 1), (256, 28, 28, 1))
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from convert._common import CALIBRATION_LIMIT, EVALUATION_LIMIT

_EVALUATION_SPLITS = ("val", "test", "train")


@dataclasses.dataclass(frozen=True)
class CalibrationData:
    """`(x, y)` to calibrate on, `(x, y)` for the parity gate, and the data's class names."""

    calibration: tuple[Any, Any]
    evaluation: tuple[Any, Any]
    class_names: list[str]


def _task(spec: str, input_name: str, input_shape: Sequence[int | None]) -> str:
    if len(input_shape) == 3:
        return "image"
    if len(input_shape) == 2:
        return "sequence"
    dims = ", ".join("?" if d is None else str(d) for d in input_shape)
    raise ValueError(
        f"The model's input {input_name!r} has shape (batch, {dims}): calibration data "
        f"({spec}) comes as images (batch, H, W, C) or sequences (batch, T, F) only. Convert "
        f"without --calib-data, or export a model whose input is an image or a sequence."
    )


def model_classes(output_width: int | None) -> int | None:
    """How many classes a classifier with this output width predicts (1 sigmoid unit: 2)."""
    if output_width is None:
        return None
    return 2 if output_width == 1 else int(output_width)


def check_classes(
    spec: str,
    class_names: Sequence[str],
    *,
    output_width: int | None,
    run_class_names: Sequence[str] | None = None,
    option: str = "--calib-data",
) -> None:
    """One-line ValueError when labelled data does not fit the model's classes.

    `option` names the data in the message (`zoo evaluate` passes "--data").

    Example:
        >>> check_classes("builtin:digits", [str(d) for d in range(10)], output_width=4)
        ValueError: --calib-data builtin:digits has 10 classes but the model predicts 4: ...
    """
    names = [str(name) for name in class_names]
    predicted = model_classes(output_width)
    if predicted is not None and len(names) != predicted:
        raise ValueError(
            f"{option} {spec} has {len(names)} classes but the model predicts {predicted}: "
            f"pass data with the model's classes (e.g. builtin:NAME?classes=..., or a folder with "
            f"{predicted} class sub-folders). Received: {option} {spec} "
            f"(classes {', '.join(names[:12])}{', ...' if len(names) > 12 else ''})"
        )
    if run_class_names is not None and names != [str(name) for name in run_class_names]:
        raise ValueError(
            f"{option} {spec} should have the classes the run was trained on, in order: "
            f"{', '.join(map(str, run_class_names))}. Received: {option} {spec} (classes "
            f"{', '.join(names)})"
        )


def run_split_rules(config: dict[str, Any]) -> dict[str, Any]:
    """The split rules a run trained with (its config.yaml), as `load_calibration` keywords.

    Example:
        >>> run_split_rules({"seed": 3, "val_split": 0.1})
        {'seed': 3, 'val_split': 0.1}
    """
    from zoo.data import DEFAULT_VAL_SPLIT

    return {
        "seed": config.get("seed", 0),
        "val_split": config.get("val_split", DEFAULT_VAL_SPLIT),
    }


def load_calibration(
    spec: str,
    *,
    input_name: str,
    input_shape: Sequence[int | None],
    output_width: int | None = None,
    run_class_names: Sequence[str] | None = None,
    seed: int = 0,
    val_split: float | None = None,
) -> CalibrationData:
    """Read SPEC for a model with this input: calibration from train, evaluation from val/test.

    Args:
        spec: a data SPEC (a folder, FILE.npz or builtin:NAME[?query]).
        input_name, input_shape: the model's input (shape without batch; None for a free axis).
        output_width: the model's output width, to check the class count (None: unchecked).
        run_class_names: the run's class names, checked when given.
        seed, val_split: the split rules of `zoo.data.load_arrays` (a run's: `run_split_rules`);
            val_split None is zoo.data's default.
    """
    from zoo.data import DEFAULT_VAL_SPLIT, resolve_data, split_arrays

    task = _task(spec, input_name, input_shape)
    split_rules = dict(seed=seed, val_split=DEFAULT_VAL_SPLIT if val_split is None else val_split)
    # Resolved once: a folder is scanned (and its files checked) once, not once per split.
    data = resolve_data(spec, task=task, input_shape=tuple(input_shape), **split_rules)
    train = split_arrays(data, "train", CALIBRATION_LIMIT)
    check_classes(
        spec, train.class_names, output_width=output_width, run_class_names=run_class_names
    )
    for split in (s for s in _EVALUATION_SPLITS if s in data.splits):
        evaluation = split_arrays(data, split, EVALUATION_LIMIT)
        if len(evaluation.x):
            break
    else:
        evaluation = train
    return CalibrationData(
        (train.x, train.y), (evaluation.x, evaluation.y), list(train.class_names)
    )


def load_for_source(src: Any, model: Any, spec: str, say=None) -> CalibrationData:
    """`load_calibration` for a resolved SOURCE (`convert.source`): its model's input and output
    width (the Keras model when loaded, else the ONNX file's), its run's class names and split
    rules, so the gate and `--explain` read the same examples `convert()` does.

    Example:
        >>> load_for_source(resolve_source("runs/demo"), model, "builtin:digits").evaluation[0].shape
        (287, 28, 28, 1)
    """
    from convert._common import keras_signature, onnx_signature

    if model is not None:
        name, shape = keras_signature(model)
        width = model.outputs[0].shape[-1]
    else:
        name, shape, width = onnx_signature(src.onnx_path)
    if say is not None:
        say(f"loading calibration data {spec}")
    return load_calibration(
        str(spec), input_name=name, input_shape=shape, output_width=width,
        run_class_names=src.class_names,
        **run_split_rules(src.config),  # the run's seed and val_split: its validation examples
    )  # fmt: skip
