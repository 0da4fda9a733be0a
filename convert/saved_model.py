"""Keras -> TensorFlow SavedModel with one `serve` endpoint (and `serving_default` signature).

Exports the same float32, cuDNN-free copy as the ONNX export (`export_ready_copy`), so the
SavedModel runs on any TF install, and TF-TRT / TF Serving see named inputs and outputs
("image"/"sequence" -> {"predictions": ...}) with a dynamic batch (and time) axis.

Example:
    >>> export_saved_model("runs/demo/model.keras", "runs/demo/saved_model")
    PosixPath('runs/demo/saved_model')
    >>> tf.saved_model.load("runs/demo/saved_model").serve(x)["predictions"].shape
    TensorShape([8, 10])
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def export_saved_model(model_or_path: Any, out_dir: str | os.PathLike[str]) -> Path:
    """Write a SavedModel directory whose `serve(x)` returns `{output_name: tensor}`.

    Args:
        model_or_path: a `keras.Model` or a path to a `.keras` file.
        out_dir: the SavedModel directory to create (replaced if it exists).

    Example:
        >>> export_saved_model(zoo.create_model("gru"), "gru_saved_model")
        PosixPath('gru_saved_model')
    """
    import keras
    import tensorflow as tf

    from convert._common import keras_output_names
    from convert.export_utils import export_ready_copy, input_spec, load_keras

    model = export_ready_copy(load_keras(model_or_path))
    spec = input_spec(model)
    names = keras_output_names(model)

    def serve(x):
        outputs = model(x, training=False)
        outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        return {name: tf.cast(y, tf.float32) for name, y in zip(names, outputs, strict=True)}

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(name="serve", fn=serve, input_signature=[spec])
    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    archive.write_out(str(out), verbose=False)
    return out
