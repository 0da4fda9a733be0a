"""The int8 ONNX file of a quantization-aware (QAT) model, from its learned ranges.

`zoo convert QAT_RUN --precision int8` lands here (`convert.pipeline` checks `is_qat_model`);
nothing is recalibrated. Why not ONNX Runtime's `quantize_static` with `TensorQuantOverrides`:
it would need every activation tensor's ONNX name matched to its Keras layer, and it quantizes
tensors QAT did not (its own choice of points), which then need calibrated ranges. Instead the
fake quantization itself is exported:

1. `export_form(model)`: a float clone in which each `FakeQuant` becomes TensorFlow's
   `FakeQuantWithMinMaxArgs` with its learned (nudged) range as constants, which tf2onnx writes
   as a QuantizeLinear/DequantizeLinear pair (uint8, scale = range / 255) at exactly that tensor;
   each `Quant*` layer becomes the stock layer holding its kernel already snapped to the grid.
2. `quantize_weights(proto, bits)`: each Conv/MatMul/Gemm weight initializer (on the grid)
   becomes int8 + a per-channel DequantizeLinear with scale max|w| / (2**(bits-1) - 1) (the
   fake-quant grid: a weight off it is an error), and a Conv bias becomes int32 with scale
   input scale x weight scale, as ONNX Runtime's quantizer writes it: its QDQ fusions
   (QLinearConv, ...) want both.

Example:
    >>> from convert.qat import export_qat_onnx
    >>> export_qat_onnx(zoo.load_model("runs/digits-qat/model.keras"), "model.int8.onnx")
    PosixPath('model.int8.onnx')
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from convert._common import DEFAULT_OPSET

# Nodes that carry a quantized tensor's values unchanged (the scale of the bias reads through).
_SAME_SCALE_OPS = ("Transpose", "Reshape", "MaxPool", "Pad", "Identity", "Flatten", "Squeeze")
# Where the weight input is and which axis of it holds the output channels.
_WEIGHT_AXIS = {"Conv": 0, "MatMul": 1}


def is_qat_model(model: Any) -> bool:
    """Whether `model` holds zoo's fake-quantization layers (`zoo.quantization`).

    Example:
        >>> is_qat_model(zoo.load_model("runs/digits-qat/model.keras"))
        True
    """
    from zoo.quantization import is_qat_model as holds_fake_quant

    return holds_fake_quant(model)


def weight_bits(model: Any) -> int:
    """The kernel bits of a QAT model (one value for the whole model)."""
    from zoo.quantization import QUANT_WEIGHT_LAYERS

    bits = {
        layer.weight_bits
        for layer in model._flatten_layers(include_self=False, recursive=True)
        if isinstance(layer, QUANT_WEIGHT_LAYERS)
    }
    if len(bits) != 1:
        raise ValueError(f"A QAT model has one weight bit width. Received: {sorted(bits)}")
    return bits.pop()


def _fixed_fake_quant(name: str, low: float, high: float) -> Any:
    import keras
    import tensorflow as tf

    class FixedFakeQuant(keras.layers.Layer):
        """A FakeQuant frozen to constants: traces to FakeQuantWithMinMaxArgs (tf2onnx: Q/DQ)."""

        def call(self, inputs):
            return tf.quantization.fake_quant_with_min_max_args(
                inputs, min=low, max=high, num_bits=8
            )

    return FixedFakeQuant(name=name, dtype="float32")


def export_form(model: Any) -> Any:
    """The float twin of a QAT model whose ONNX export is the Q/DQ file (see module docstring).

    Example:
        >>> form = export_form(qat_model)  # same outputs as qat_model in inference
    """
    import keras

    from zoo.quantization import QUANT_WEIGHT_LAYERS, FakeQuant

    weights: list[tuple[Any, list[np.ndarray]]] = []
    _STOCK = {
        "QuantConv2D": keras.layers.Conv2D,
        "QuantDepthwiseConv2D": keras.layers.DepthwiseConv2D,
        "QuantDense": keras.layers.Dense,
    }

    def clone(layer):
        if isinstance(layer, FakeQuant):
            return _fixed_fake_quant(layer.name, *layer.quant_range())
        config = layer.get_config()
        if isinstance(layer, QUANT_WEIGHT_LAYERS):
            config.pop("weight_bits")
            new = _STOCK[type(layer).__name__].from_config(config)
            snapped = np.asarray(layer.quantized_kernel())
            weights.append((new, [snapped, *[w.numpy() for w in layer.weights[1:]]]))
            return new
        new = type(layer).from_config(config)
        weights.append((new, layer.get_weights()))
        return new

    form = keras.models.clone_model(model, clone_function=clone, recursive=True)
    for layer, values in weights:
        layer.set_weights(values)
    return form


def _initializers(graph: Any) -> dict[str, Any]:
    return {init.name: init for init in graph.initializer}


def _input_scale(graph: Any, tensor: str, inits: dict[str, Any]) -> float | None:
    """The scale of the DequantizeLinear that `tensor` comes from (through same-scale ops)."""
    from onnx import numpy_helper

    producers = {out: node for node in graph.node for out in node.output}
    node = producers.get(tensor)
    while node is not None and node.op_type in _SAME_SCALE_OPS:
        node = producers.get(node.input[0])
    if node is None or node.op_type != "DequantizeLinear" or node.input[1] not in inits:
        return None
    return float(numpy_helper.to_array(inits[node.input[1]]))


def _channel_scales(w: np.ndarray, axis: int, bits: int, name: str) -> tuple[np.ndarray, Any]:
    """(per-channel scales, int8 weights) of on-grid weights `w`; an off-grid `w` is an error."""
    levels = 2 ** (bits - 1) - 1
    other = tuple(i for i in range(w.ndim) if i != axis)
    high = np.max(np.abs(w), axis=other).astype(np.float32)
    scale = np.where(high > 0, high / np.float32(levels), np.float32(1.0)).astype(np.float32)
    shape = [1] * w.ndim
    shape[axis] = -1
    ratio = w / scale.reshape(shape)
    q = np.round(ratio)
    if np.max(np.abs(ratio - q), initial=0.0) > 1e-2 or np.max(np.abs(q), initial=0) > levels:
        raise ValueError(
            f"The weight {name!r} of the QAT export is not on its {bits}-bit grid; the export "
            f"would not match the fake-quantized model. Received: off by "
            f"{float(np.max(np.abs(ratio - q))):.3g} levels"
        )
    return scale, q.astype(np.int8)


def _dequantize(graph: Any, name: str, q: np.ndarray, scale, axis: int | None, zero_type) -> str:
    """Add `q` (+ scale, zero point) as initializers and a DequantizeLinear; its output name."""
    from onnx import helper, numpy_helper

    scale = np.asarray(scale, np.float32)
    zero = np.zeros(scale.shape, zero_type)
    for suffix, value in (("_quantized", q), ("_scale", scale), ("_zero_point", zero)):
        graph.initializer.append(numpy_helper.from_array(value, name + suffix))
    out = name + "_dequantized"
    attrs = {"axis": axis} if axis is not None else {}
    node = helper.make_node(
        "DequantizeLinear",
        [name + "_quantized", name + "_scale", name + "_zero_point"],
        [out],
        name=name + "_DequantizeLinear",
        **attrs,
    )
    graph.node.insert(0, node)  # its inputs are initializers: first is topologically fine
    return out


def _weight_axis(node: Any) -> int | None:
    if node.op_type == "Gemm":
        trans_b = next((a.i for a in node.attribute if a.name == "transB"), 0)
        return 0 if trans_b else 1
    return _WEIGHT_AXIS.get(node.op_type)


def quantize_weights(proto: Any, bits: int) -> int:
    """Int8 weights + per-channel DequantizeLinear for every Conv/MatMul/Gemm; returns the count.

    Example:
        >>> quantize_weights(onnx.load("form.onnx"), 7)
        5
    """
    from onnx import numpy_helper

    graph = proto.graph
    inits = _initializers(graph)
    done: dict[str, tuple[str, np.ndarray]] = {}
    count = 0
    for node in list(graph.node):
        axis = _weight_axis(node)
        if axis is None or node.input[1] in done:
            if axis is not None:
                node.input[1] = done[node.input[1]][0]
            continue
        name = node.input[1]
        if name not in inits:
            raise ValueError(
                f"The QAT export found no constant weight for {node.op_type} {node.name!r}: "
                f"it cannot be quantized. Received: input {name!r}"
            )
        w = numpy_helper.to_array(inits[name]).astype(np.float32)
        scale, q = _channel_scales(w, axis, bits, name)
        done[name] = (_dequantize(graph, name, q, scale, axis, np.int8), scale)
        node.input[1] = done[name][0]
        count += 1
        _quantize_bias(graph, node, scale, inits)
    return count


def _quantize_bias(graph: Any, node: Any, w_scale: np.ndarray, inits: dict[str, Any]) -> None:
    """A Conv/Gemm bias as int32 with scale input x weight scale (ONNX Runtime's QDQ fusions)."""
    from onnx import numpy_helper

    if node.op_type not in ("Conv", "Gemm") or len(node.input) < 3 or node.input[2] not in inits:
        return
    x_scale = _input_scale(graph, node.input[0], inits)
    if x_scale is None:
        return
    bias = numpy_helper.to_array(inits[node.input[2]]).astype(np.float64)
    scale = (np.float64(x_scale) * w_scale.astype(np.float64)).astype(np.float32)
    q = np.round(bias / np.where(scale > 0, scale, 1.0)).astype(np.int32)
    node.input[2] = _dequantize(graph, node.input[2], q, scale, 0, np.int32)


def _fuse_matmul_add(proto: Any) -> None:
    """MatMul(x, W) + Add(bias) -> Gemm, as ONNX Runtime's quantizer sees a Dense layer."""
    from onnx import helper, numpy_helper

    graph = proto.graph
    inits = _initializers(graph)
    consumers: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    outputs = {value.name for value in graph.output}
    for node in list(graph.node):
        if node.op_type != "MatMul" or node.input[1] not in inits:
            continue
        after = consumers.get(node.output[0], [])
        if len(after) != 1 or after[0].op_type != "Add" or node.output[0] in outputs:
            continue
        add = after[0]
        bias = next((name for name in add.input if name != node.output[0]), None)
        if bias not in inits or numpy_helper.to_array(inits[bias]).ndim != 1:
            continue
        gemm = helper.make_node(
            "Gemm", [node.input[0], node.input[1], bias], [add.output[0]], name=node.name
        )
        index = list(graph.node).index(node)
        graph.node.remove(node)
        graph.node.remove(add)
        graph.node.insert(index, gemm)


def _drop_unused_initializers(graph: Any) -> None:
    """The float weights the int8 ones replaced (ONNX Runtime would warn and drop each)."""
    used = {name for node in graph.node for name in node.input}
    used |= {value.name for value in graph.output}
    for init in [init for init in graph.initializer if init.name not in used]:
        graph.initializer.remove(init)


def export_qat_onnx(
    model: Any,
    out_path: str | os.PathLike[str],
    *,
    opset: int = DEFAULT_OPSET,
    source: str | os.PathLike[str] | None = None,
    precision: str = "int8",
    symmetric: bool = False,
) -> Path:
    """Write the Q/DQ int8 ONNX file of QAT `model` from its learned ranges (module docstring).

    Args:
        model: a QAT Keras model (`is_qat_model`).
        out_path: the `.onnx` file to write.
        opset: ONNX opset (13 or later: per-channel DequantizeLinear).
        source: the model's file or run, for the metadata written into the file.
        precision: must be "int8": a QAT model is the int8 model (its float parent is the
            float one).
        symmetric: must be False: the learned activation ranges are asymmetric (uint8), which
            TensorRT (zero points of 0) does not take.

    Example:
        >>> export_qat_onnx(model, "runs/digits-qat/model.int8.onnx")
        PosixPath('runs/digits-qat/model.int8.onnx')
    """
    import onnx

    from convert.metadata import of_keras, write_onnx
    from convert.onnx import export_onnx_proto

    if not is_qat_model(model):
        raise ValueError("export_qat_onnx takes a QAT model (zoo finetune --qat).")
    if precision != "int8":
        raise ValueError(
            "A QAT model converts with --precision int8 (its fake quantization is int8); convert "
            f"its float parent (--from) for fp32/fp16. Received: precision={precision!r}"
        )
    if symmetric:
        raise ValueError(
            "A QAT model's learned activation ranges are asymmetric (uint8); TensorRT wants "
            "symmetric int8. Convert it --to onnx or --to openvino. Received: --to tensorrt"
        )
    proto = export_onnx_proto(export_form(model), opset=max(int(opset), 13))
    _fuse_matmul_add(proto)
    quantize_weights(proto, weight_bits(model))
    _drop_unused_initializers(proto.graph)
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(proto, str(out))
    write_onnx(out, of_keras(model, source))
    return out


def _parent_model_file(src: Any) -> Path | None:
    """The float model a QAT run fine-tuned (its config's `from_run`), None when unknown."""
    parent = (src.config or {}).get("from_run") if src is not None else None
    if not parent:
        return None
    path = Path(str(parent))
    path = path / "model.keras" if path.is_dir() else path
    return path if path.is_file() else None


def float_parent_report(src: Any, model: Any, evaluation: Any, artefact_accuracy, say) -> dict:
    """For a QAT model's int8 gate: the float parent's accuracy on the gate's labelled data,
    and the artefact's drop against it (the gate itself compares with the fake-quant model).

    Returns {} for a model that is not QAT.

    Example:
        >>> float_parent_report(src, model, (x, y), 0.95, print)["drop_vs_float_parent"]
        0.008
    """
    if model is None or not is_qat_model(model):
        return {}
    parent = _parent_model_file(src)
    if parent is None or not isinstance(evaluation, tuple) or artefact_accuracy is None:
        say("QAT: no float parent (config from_run) or labelled data to compare accuracy with")
        return {"float_parent": str(parent) if parent else None}
    import zoo
    from convert.gate import _top1

    x, y = evaluation
    float_model = zoo.load_model(parent)
    scores = np.concatenate(
        [np.asarray(float_model(x[i : i + 256], training=False)) for i in range(0, len(x), 256)]
    )
    accuracy = float(np.mean(_top1(scores) == np.asarray(y).reshape(-1)))
    drop = accuracy - float(artefact_accuracy)
    say(
        f"QAT: float parent {accuracy:.2%}, this int8 file {artefact_accuracy:.2%} "
        f"({drop * 100:+.2f} points drop) on the gate's {len(x)} labelled examples"
    )
    return {
        "float_parent": str(parent),
        "accuracy_float_parent": accuracy,
        "drop_vs_float_parent": drop,
    }
