"""Keras -> ONNX export for every zoo model, through `tf2onnx.convert.from_function`.

Why not `tf2onnx.convert.from_keras`: it fails on Sequential models. `from_function` over a
`tf.function` with a `TensorSpec` signature whose batch (and, for sequence models, time) axes are
None works for every model kind and keeps the input/output names we choose; the captured constant
tensors it turns into graph inputs (EfficientNet's Normalization statistics) are folded back into
initializers.

Two rewrites happen on a *copy* before tracing, never on the caller's model:
- a mixed_bfloat16 / mixed_float16 model is rebuilt under the float32 policy with its weights cast
  to float32 (ONNX Runtime rejects a bfloat16 graph);
- LSTM/GRU layers get `use_cudnn=False`, since on a GPU machine the `"auto"` default traces the
  `CudnnRNNV3` kernel, which has no ONNX equivalent.

Example:
    >>> import zoo
    >>> from convert.onnx_export import export_onnx
    >>> path = export_onnx(zoo.create_model("cnn"), "cnn.onnx")
    >>> [i.name for i in onnxruntime.InferenceSession(path).get_inputs()]
    ['image']
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

DEFAULT_OPSET = 17
# Standard ONNX domains; anything else left in the graph is a TF op tf2onnx could not convert.
_ONNX_DOMAINS = ("", "ai.onnx", "ai.onnx.ml")
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


def _input_spec(model: Any):
    import tensorflow as tf

    if len(model.inputs) != 1:
        raise ValueError(
            f"export_onnx supports single-input models. Received: {len(model.inputs)} inputs"
        )
    tensor = model.inputs[0]
    # The batch axis is always dynamic; a None time axis (sequence models) stays None.
    shape = (None, *tensor.shape[1:])
    name = getattr(tensor, "name", None) or "input"
    return tf.TensorSpec(shape, tf.float32, name=name)


def _output_names(model: Any) -> list[str]:
    names = list(getattr(model, "output_names", None) or [])
    return (
        names
        if len(names) == len(model.outputs)
        else [f"output_{i}" for i in range(len(model.outputs))]
    )


def _name_dynamic_axes(proto: Any, time_axis: bool) -> None:
    """Give the dynamic axes readable names ("batch", "time") instead of tf2onnx's `unk__N`."""
    for value in [*proto.graph.input, *proto.graph.output]:
        dims = value.type.tensor_type.shape.dim
        if dims and not dims[0].HasField("dim_value"):
            dims[0].dim_param = "batch"
    if time_axis:
        for value in proto.graph.input:
            dims = value.type.tensor_type.shape.dim
            if len(dims) == 3 and not dims[1].HasField("dim_value"):
                dims[1].dim_param = "time"


def unconverted_ops(proto: Any) -> list[str]:
    """Node types of `proto` outside the standard ONNX domains (TF ops tf2onnx left as-is)."""
    found = set()
    graphs = [proto.graph]
    while graphs:
        graph = graphs.pop()
        for node in graph.node:
            if node.domain not in _ONNX_DOMAINS:
                found.add(f"{node.domain}:{node.op_type}")
            for attribute in node.attribute:
                graphs.extend([attribute.g] if attribute.HasField("g") else [])
                graphs.extend(attribute.graphs)
    return sorted(found)


def _inline_captured_constants(proto: Any, concrete: Any) -> None:
    """Turn graph inputs that are captured constant tensors into initializers.

    `from_function` makes every non-variable capture of the traced function a graph input; Keras
    layers that keep plain tensors (EfficientNet's Normalization mean/variance) would otherwise
    leave the ONNX graph with inputs nobody can feed.
    """
    from onnx import numpy_helper

    args = len(concrete.inputs) - len(concrete.captured_inputs)
    captured = {
        tensor.name: value
        for tensor, value in zip(concrete.inputs[args:], concrete.captured_inputs, strict=True)
        if value.dtype != "resource"
    }
    for value_info in list(proto.graph.input):
        if value_info.name in captured:
            array = captured[value_info.name].numpy()
            proto.graph.input.remove(value_info)
            proto.graph.initializer.append(numpy_helper.from_array(array, value_info.name))


def export_onnx_proto(model_or_path: Any, *, opset: int = DEFAULT_OPSET):
    """The `onnx.ModelProto` of a Keras model (see `export_onnx`)."""
    import tensorflow as tf
    import tf2onnx

    if not isinstance(opset, int) or not 13 <= opset <= 21:
        raise ValueError(f"opset should be an int between 13 and 21. Received: opset={opset!r}")
    model = export_ready_copy(load_keras(model_or_path))
    spec = _input_spec(model)
    names = _output_names(model)

    @tf.function(input_signature=[spec])
    def serve(x):
        outputs = model(x, training=False)
        outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        # A dict keyed by output name: its keys become the ONNX output names (renames below).
        return {name: tf.cast(y, tf.float32) for name, y in zip(names, outputs, strict=True)}

    try:  # Keras' numpy-2 compatibility patch for tf2onnx; harmless when already applied.
        from keras.src.export.tf2onnx_lib import patch_tf2onnx

        with warnings.catch_warnings():  # its `np.object` probe warns on numpy 2
            warnings.simplefilter("ignore", FutureWarning)
            patch_tf2onnx()
    except ImportError:  # pragma: no cover - a future Keras may drop the private helper
        pass
    concrete = serve.get_concrete_function()
    proto, _ = tf2onnx.convert.from_function(serve, input_signature=[spec], opset=opset)
    _inline_captured_constants(proto, concrete)
    leftover = unconverted_ops(proto)
    if leftover:
        raise ValueError(
            f"The ONNX export of {model.name!r} kept ops ONNX cannot run: {', '.join(leftover)}. "
            f"Every op must convert to a standard ONNX op."
        )
    _name_dynamic_axes(proto, time_axis=spec.shape.rank == 3 and spec.shape[1] is None)
    proto.producer_name = "kerazoo"
    return proto


def export_onnx(
    model_or_path: Any, out_path: str | os.PathLike[str], *, opset: int = DEFAULT_OPSET
) -> Path:
    """Export a Keras model (or `.keras` file) to ONNX with a dynamic batch axis.

    The graph input keeps the model's input name ("image" / "sequence" for zoo models) and the
    output its layer name ("predictions"); a sequence model's time axis stays dynamic. No parity
    check happens here: `convert.verify` is the gate.

    Args:
        model_or_path: a `keras.Model` or a path to a `.keras` file.
        out_path: where to write the `.onnx` file (parent folders are created).
        opset: ONNX opset, 13-21. Defaults to 17.

    Example:
        >>> export_onnx("runs/demo/model.keras", "runs/demo/model.onnx", opset=17)
        PosixPath('runs/demo/model.onnx')
    """
    import onnx

    proto = export_onnx_proto(model_or_path, opset=opset)
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(proto, str(out))
    return out
