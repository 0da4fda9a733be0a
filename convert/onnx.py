"""Keras -> ONNX for every zoo model: `export_onnx(model_or_path, path) -> Path`.

Recurrent models go through `convert.onnx_recurrent` (fused ONNX RNN/GRU/LSTM operators written
from the weights, which every runtime reads; a recurrent model it cannot express is a one-line
error, never a `Loop` graph only ONNX Runtime reads); everything else through
`tf2onnx.convert.from_function`.

This module is `convert.onnx`; it imports the `onnx` library by its absolute name, which a
submodule never shadows (`from __future__ import annotations` keeps the file Python 3 only).

Why not `tf2onnx.convert.from_keras`: it fails on Sequential models. `from_function` over a
`tf.function` with a `TensorSpec` signature whose batch (and, for sequence models, time) axes are
None works for every model kind and keeps the input/output names we choose; the captured constant
tensors it turns into graph inputs (EfficientNet's Normalization statistics) are folded back into
initializers.

The export runs on `convert.export_utils.export_ready_copy(model)` (float32, cuDNN-free).

Example:
    >>> import zoo
    >>> from convert.onnx import export_onnx
    >>> path = export_onnx(zoo.create_model("cnn"), "cnn.onnx")
    >>> [i.name for i in onnxruntime.InferenceSession(path).get_inputs()]
    ['image']
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

from convert._common import DEFAULT_OPSET, check_opset, keras_output_names
from convert.export_utils import export_ready_copy, input_spec, load_keras
from convert.onnx_recurrent import recurrent_onnx_proto

# Standard ONNX domains; anything else left in the graph is a TF op tf2onnx could not convert.
_ONNX_DOMAINS = ("", "ai.onnx", "ai.onnx.ml")


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


def _tf2onnx_proto(model: Any, opset: int):
    """The graph tf2onnx traces from a `tf.function` over the model."""
    import tensorflow as tf
    import tf2onnx

    spec = input_spec(model)
    names = keras_output_names(model)

    @tf.function(input_signature=[spec])
    def serve(x):
        outputs = model(x, training=False)
        outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        # A dict keyed by output name: its keys become the ONNX output names.
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
    return proto


def export_onnx_proto(model_or_path: Any, *, opset: int = DEFAULT_OPSET):
    """The `onnx.ModelProto` of a Keras model (see `export_onnx`).

    Example:
        >>> [n.op_type for n in export_onnx_proto(zoo.create_model("gru")).graph.node][:2]
    """
    check_opset(opset)
    model = export_ready_copy(load_keras(model_or_path))
    proto = recurrent_onnx_proto(model, opset=opset)  # None: no recurrent layer
    if proto is None:
        proto = _tf2onnx_proto(model, opset)
    proto.producer_name = "kerazoo"
    return proto


def export_onnx(
    model_or_path: Any, out_path: str | os.PathLike[str], *, opset: int = DEFAULT_OPSET
) -> Path:
    """Export a Keras model (or `.keras` file) to ONNX with a dynamic batch axis.

    The graph input keeps the model's input name ("image" / "sequence" for zoo models) and the
    output its layer name ("predictions"); a sequence model's time axis stays dynamic. No parity
    check happens here: `convert.gate.verify` is the gate.

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
