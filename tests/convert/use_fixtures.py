"""A trained run that records everything a run records (class names, task, input shape, split
rules), and its artefacts in every format that runs here: what the evaluate/predict tests share.
"""

from __future__ import annotations

import functools
import shutil
import tempfile
from pathlib import Path

import yaml

from tests.convert.digits import trained_cnn_run

CLASS_NAMES = [str(d) for d in range(10)]


@functools.cache
def named_run() -> Path:
    """A copy of the digits cnn run whose config.yaml holds class names and split rules."""
    run = Path(tempfile.mkdtemp(prefix="kerazoo-named-run-"))
    shutil.copy(trained_cnn_run() / "model.keras", run / "model.keras")
    config = {
        "model": "cnn",
        "data": "builtin:digits",
        "seed": 3,
        "val_split": 0.3,
        "task": "image",
        "input_shape": [28, 28, 1],
        "num_classes": 10,
        "class_names": CLASS_NAMES,
    }
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    return run


@functools.cache
def artefacts() -> dict[str, Path]:
    """kind -> path: the run, its .keras, ONNX fp32/fp16/int8, OpenVINO fp32, SavedModel."""
    import convert

    run = named_run()
    made = {"run": run, "keras": run / "model.keras"}
    for kind, to, precision in (("onnx", "onnx", "fp32"), ("fp16", "onnx", "fp16"),
                                ("int8", "onnx", "int8"), ("xml", "openvino", "fp32"),
                                ("saved_model", "saved_model", "fp32")):  # fmt: skip
        made[kind] = convert.convert(run, to=to, precision=precision, batch_sizes=(1, 4)).artefact
    return made
