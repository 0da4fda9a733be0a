"""Tiny ONNX graphs built with onnx.helper, shared by the convert tests.

Each builder returns an `onnx.ModelProto` at opset 17 (inside every TensorRT 10/11 range) that
passes `onnx.checker`, unless the point of the graph is to be wrong.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17


def _model(
    nodes: list[onnx.NodeProto],
    inputs: list[onnx.ValueInfoProto],
    outputs: list[onnx.ValueInfoProto],
    initializers: Sequence[onnx.TensorProto] = (),
    extra_opsets: dict[str, int] | None = None,
) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(initializers))
    opsets = [helper.make_opsetid("", OPSET)]
    opsets += [helper.make_opsetid(d, v) for d, v in (extra_opsets or {}).items()]
    # ir_version 8 keeps the files loadable by older onnxruntime/TensorRT parsers.
    return helper.make_model(graph, opset_imports=opsets, ir_version=8)


def _init(name: str, array: np.ndarray) -> onnx.TensorProto:
    return numpy_helper.from_array(array, name)


def _rng() -> np.random.Generator:
    return np.random.default_rng(0)


def conv_matmul(batch: int | str = "batch") -> onnx.ModelProto:
    """x[batch, 3, 8, 8] -> Conv -> Relu -> GlobalAveragePool -> Flatten -> MatMul + Add -> y[batch, 4]."""
    r = _rng()
    inits = [
        _init("w", r.standard_normal((8, 3, 3, 3)).astype(np.float32) * 0.2),
        _init("b", r.standard_normal(8).astype(np.float32) * 0.1),
        _init("w2", r.standard_normal((8, 4)).astype(np.float32) * 0.3),
        _init("b2", r.standard_normal(4).astype(np.float32) * 0.1),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("GlobalAveragePool", ["r"], ["p"], name="pool"),
        helper.make_node("Flatten", ["p"], ["f"], name="flatten"),
        helper.make_node("MatMul", ["f", "w2"], ["m"], name="matmul"),
        helper.make_node("Add", ["m", "b2"], ["y"], name="add"),
    ]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 3, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 4])
    return _model(nodes, [x], [y], inits)


def with_custom_op() -> onnx.ModelProto:
    """Relu followed by an op from a custom domain."""
    nodes = [
        helper.make_node("Relu", ["x"], ["r"], name="relu"),
        helper.make_node("FancyGelu", ["r"], ["y"], name="fancy", domain="com.example"),
    ]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    return _model(nodes, [x], [y], extra_opsets={"com.example": 1})


def with_unsupported_op() -> onnx.ModelProto:
    """Det, a standard ONNX op that operators.md marks unsupported."""
    nodes = [helper.make_node("Det", ["x"], ["y"], name="det")]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])
    return _model(nodes, [x], [y])


def lstm(layout: int = 0, seq: int = 5, batch: int = 2, hidden: int = 4) -> onnx.ModelProto:
    """One forward LSTM; layout=1 means batch-major X [batch, seq, input]."""
    r = _rng()
    features = 3
    inits = [
        _init("W", r.standard_normal((1, 4 * hidden, features)).astype(np.float32)),
        _init("R", r.standard_normal((1, 4 * hidden, hidden)).astype(np.float32)),
    ]
    shape = [seq, batch, features] if layout == 0 else [batch, seq, features]
    y_shape = [seq, 1, batch, hidden] if layout == 0 else [batch, seq, 1, hidden]
    node = helper.make_node(
        "LSTM", ["x", "W", "R"], ["y"], name="lstm", hidden_size=hidden, layout=layout
    )
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, y_shape)
    return _model([node], [x], [y], inits)


def bf16_initializer() -> onnx.ModelProto:
    """x (float32) + a bfloat16 bias cast up to float32."""
    bias = helper.make_tensor("bias_bf16", TensorProto.BFLOAT16, [4], [0.5, -1.0, 2.0, 0.25])
    nodes = [
        helper.make_node("Cast", ["bias_bf16"], ["bias"], name="cast", to=TensorProto.FLOAT),
        helper.make_node("Add", ["x", "bias"], ["y"], name="add"),
    ]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    return _model(nodes, [x], [y], [bias])


def fp16_cast(batch: int | str = "batch") -> onnx.ModelProto:
    """float32 I/O, float16 compute: Cast -> MatMul(fp16 W) + Add(fp16 b) -> Relu -> Cast."""
    r = _rng()
    inits = [
        _init("w16", (r.standard_normal((16, 8)) * 0.25).astype(np.float16)),
        _init("b16", (r.standard_normal(8) * 0.1).astype(np.float16)),
    ]
    nodes = [
        helper.make_node("Cast", ["x"], ["x16"], name="to_fp16", to=TensorProto.FLOAT16),
        helper.make_node("MatMul", ["x16", "w16"], ["m"], name="matmul"),
        helper.make_node("Add", ["m", "b16"], ["a"], name="add"),
        helper.make_node("Relu", ["a"], ["r"], name="relu"),
        helper.make_node("Cast", ["r"], ["y"], name="to_fp32", to=TensorProto.FLOAT),
    ]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 16])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 8])
    return _model(nodes, [x], [y], inits)


def qdq_conv(batch: int | str = "batch") -> onnx.ModelProto:
    """Explicit INT8 quantization: Q/DQ on the activation, DQ on int8 weights, then Conv.

    Symmetric (zero points 0), per-tensor activation scale, per-channel weight scales: the
    form TensorRT's explicit quantization accepts.
    """
    r = _rng()
    w = r.standard_normal((4, 3, 3, 3)).astype(np.float32) * 0.3
    w_scale = (np.abs(w).reshape(4, -1).max(axis=1) / 127.0).astype(np.float32)
    w_q = np.clip(np.round(w / w_scale[:, None, None, None]), -127, 127).astype(np.int8)
    inits = [
        _init("x_scale", np.array(4.0 / 127.0, dtype=np.float32)),
        _init("x_zp", np.array(0, dtype=np.int8)),
        _init("w_q", w_q),
        _init("w_scale", w_scale),
        _init("w_zp", np.zeros(4, dtype=np.int8)),
        _init("b", (r.standard_normal(4) * 0.1).astype(np.float32)),
    ]
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "x_scale", "x_zp"], ["xq"], name="q_x"),
        helper.make_node("DequantizeLinear", ["xq", "x_scale", "x_zp"], ["xd"], name="dq_x"),
        helper.make_node(
            "DequantizeLinear", ["w_q", "w_scale", "w_zp"], ["wd"], name="dq_w", axis=0
        ),
        helper.make_node("Conv", ["xd", "wd", "b"], ["y"], name="conv", pads=[1, 1, 1, 1]),
    ]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 3, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 4, 8, 8])
    return _model(nodes, [x], [y], inits)


def save(model: onnx.ModelProto, path: Path) -> Path:
    onnx.save(model, str(path))
    return path
