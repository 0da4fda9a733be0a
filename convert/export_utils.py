"""Shared by the Keras exporters (ONNX, SavedModel): the export-ready copy and the input spec.

Two rewrites happen on a *copy* before tracing, never on the caller's model:
- a mixed_bfloat16 / mixed_float16 model is rebuilt under the float32 policy with its weights cast
  to float32 (ONNX Runtime rejects a bfloat16 graph);
- LSTM/GRU layers get `use_cudnn=False`, since on a GPU machine the `"auto"` default traces the
  `CudnnRNNV3` kernel, which has no ONNX equivalent.

Example:
    >>> copy = export_ready_copy(zoo.load_model("runs/demo/model.keras"))
    >>> input_spec(copy)
    TensorSpec(shape=(None, 28, 28, 1), dtype=tf.float32, name='image')
"""

from __future__ import annotations

import os
from typing import Any

from convert._common import keras_signature

_RNN_CLASSES = ("LSTM", "GRU")


def load_keras(model_or_path: Any):
    """A `keras.Model` from a model or a `.keras` path (zoo's custom layers registered)."""
    if isinstance(model_or_path, (str, os.PathLike)):
        import zoo

        return zoo.load_model(model_or_path)
    return model_or_path


def _is_float32_policy(policy: Any) -> bool:
    if isinstance(policy, dict):  # a serialized DTypePolicy
        policy = policy.get("config", {}).get("name")
    name = getattr(policy, "name", policy)
    return name in (None, "float32")


def _rewrite_config(config: Any, *, float32: bool) -> Any:
    """Recursively rewrite a model config: float32 policies and non-cuDNN RNN layers."""
    if isinstance(config, list):
        return [_rewrite_config(item, float32=float32) for item in config]
    if not isinstance(config, dict):
        return config
    out = {key: _rewrite_config(value, float32=float32) for key, value in config.items()}
    if out.get("class_name") in _RNN_CLASSES and isinstance(out.get("config"), dict):
        out["config"]["use_cudnn"] = False
    if float32 and "dtype" in out and not _is_float32_policy(out["dtype"]):
        dtype = out["dtype"]
        if isinstance(dtype, dict) and "config" in dtype:
            out["dtype"] = {**dtype, "config": {**dtype["config"], "name": "float32"}}
        else:
            out["dtype"] = "float32"
    return out


def _needs_copy(model: Any) -> tuple[bool, bool]:
    """(has a non-float32 layer, has an LSTM/GRU layer that could take the cuDNN path)."""
    layers = list(model._flatten_layers(include_self=False, recursive=True))
    low_precision = any(not _is_float32_policy(layer.dtype_policy) for layer in layers)
    cudnn = any(
        type(layer).__name__ in _RNN_CLASSES and getattr(layer, "use_cudnn", False) is not False
        for layer in layers
    )
    return low_precision, cudnn


def export_ready_copy(model: Any):
    """`model` itself, or a float32, cuDNN-free rebuild of it with the same weights.

    Example:
        >>> keras.config.set_dtype_policy("mixed_bfloat16")
        >>> model = zoo.create_model("cnn")
        >>> export_ready_copy(model).layers[1].compute_dtype
        'float32'
    """
    import keras
    import numpy as np

    low_precision, cudnn = _needs_copy(model)
    if not (low_precision or cudnn):
        return model
    config = _rewrite_config(model.get_config(), float32=low_precision)
    # The global policy applies to layers whose config carries no dtype; pin it to float32.
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("float32")
    try:
        copy = model.__class__.from_config(config)
    finally:
        keras.config.set_dtype_policy(previous)
    weights = model.get_weights()
    copy.set_weights([np.asarray(w, dtype=np.float32) for w in weights])
    return copy


def input_spec(model: Any):
    """The `tf.TensorSpec` of the model's input: batch (and a None time axis) dynamic."""
    import tensorflow as tf

    name, shape = keras_signature(model)
    return tf.TensorSpec((None, *shape), tf.float32, name=name)
