"""`quantize_int8(exclude_nodes=...)`: the named layers of a trained digits cnn really stay float."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest

import zoo
from convert.lowering import quantize_int8
from convert.onnx import export_onnx
from tests.convert.digits import TRAIN, digits_arrays, trained_cnn_run

LAYER_OPS = ("Conv", "MatMul", "Gemm")


@pytest.fixture(scope="module")
def digits_cnn(tmp_path_factory):
    model = zoo.load_model(trained_cnn_run() / "model.keras")
    fp32 = export_onnx(model, tmp_path_factory.mktemp("exclude") / "cnn.onnx")
    x, _ = digits_arrays()
    return fp32, x[:TRAIN], x[TRAIN:]


def _dq_fed(path) -> dict[str, bool]:
    """Each Conv/MatMul/Gemm of a file: whether any of its inputs comes out of a Q/DQ node."""
    graph = onnx.load(str(path)).graph
    producer = {out: node.op_type for node in graph.node for out in node.output}
    return {
        node.name: any(
            producer.get(t) in ("QuantizeLinear", "DequantizeLinear") for t in node.input
        )
        for node in graph.node
        if node.op_type in LAYER_OPS
    }


def _outputs(path, x):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def test_excluded_layers_stay_float_and_the_rest_int8(digits_cnn, tmp_path):
    fp32, x_train, x_val = digits_cnn
    names = [n.name for n in onnx.load(str(fp32)).graph.node if n.op_type in LAYER_OPS]
    # The trained cnn's Dense is MatMul + bias Add in the export; preprocessing fuses it into a
    # Gemm named "<matmul>/MatMulAddFusion": the fp32 name must still work.
    dense = next(name for name in names if "/dense" in name)
    conv3 = next(name for name in names if "/conv3" in name)
    plain = _dq_fed(quantize_int8(fp32, tmp_path / "int8.onnx", x_train[:256]))
    mixed_path = quantize_int8(
        fp32, tmp_path / "mixed.onnx", x_train[:256], exclude_nodes=[conv3, dense]
    )
    mixed = _dq_fed(mixed_path)
    assert all(plain.values()) and len(plain) == len(names)
    floating = sorted(name for name, fed in mixed.items() if not fed)
    assert len(floating) == 2
    assert floating[0] == conv3 and floating[1].startswith(dense + "/")
    assert sum(mixed.values()) == len(names) - 2  # conv1, conv2, predictions: still int8

    reference, int8, out = (_outputs(p, x_val) for p in (fp32, tmp_path / "int8.onnx", mixed_path))
    assert (out.argmax(1) == reference.argmax(1)).mean() >= 0.98
    # Two of five layers float: closer to fp32 than the all-int8 file, on 397 held-out digits.
    assert np.abs(out - reference).mean() < np.abs(int8 - reference).mean()


def test_every_layer_excluded_leaves_only_the_softmax_quantized(digits_cnn, tmp_path):
    fp32, x_train, _ = digits_cnn
    names = [n.name for n in onnx.load(str(fp32)).graph.node if n.op_type in LAYER_OPS]
    path = quantize_int8(fp32, tmp_path / "float.onnx", x_train[:64], exclude_nodes=names)
    assert not any(_dq_fed(path).values())
    graph = onnx.load(str(path)).graph
    dequantized = {n.output[0] for n in graph.node if n.op_type == "DequantizeLinear"}
    readers = {n.op_type for n in graph.node if dequantized & set(n.input)}
    assert readers == {"Softmax"}  # ORT's QDQ quantizes the Softmax's input and the output
    # No int8 weight is left behind once nobody reads it.
    assert not [i for i in graph.initializer if i.data_type == onnx.TensorProto.INT8]


def test_unknown_exclude_node_is_an_error(digits_cnn, tmp_path):
    fp32, x_train, _ = digits_cnn
    with pytest.raises(ValueError, match="not in the fp32 file.*Received: 'conv9'"):
        quantize_int8(fp32, tmp_path / "q.onnx", x_train[:8], exclude_nodes=["conv9"])
    with pytest.raises(ValueError, match="list of node names"):
        quantize_int8(fp32, tmp_path / "q.onnx", x_train[:8], exclude_nodes="conv1")
    assert not (tmp_path / "q.onnx").exists()


@pytest.mark.slow
def test_mobilenet_v2_residual_and_depthwise_layers_stay_float(tmp_path):
    """Shared tensors (a block's input also feeds its residual Add), folded BatchNorms, Clip."""
    model = zoo.create_model(
        "mobilenet_v2_gap", weights=None, input_shape=(32, 32, 3), num_classes=4
    )
    fp32 = export_onnx(model, tmp_path / "mnv2.onnx")
    x, _ = digits_arrays()
    images = np.repeat(np.resize(x[:96], (96, 32, 32, 1)), 3, axis=-1)
    backbone = "mobilenet_v2_gap_1/backbone_1/"
    names = [
        backbone + "block_2_expand_BN_1/batchnorm/mul_1",  # reads block_1's output, as the Add
        backbone + "block_2_depthwise_1/depthwise",  # after a Clip (ReLU6) and a Pad
        "mobilenet_v2_gap_1/predictions_1/MatMul",
    ]
    path = quantize_int8(fp32, tmp_path / "mixed.onnx", images[:64], exclude_nodes=names)
    fed = _dq_fed(path)
    # (Random init: zero biases, which tf2onnx drops, so the classifier stays a MatMul here.)
    assert sorted(name for name, dq in fed.items() if not dq) == sorted(names)
    assert sum(fed.values()) == len(fed) - 3 == 50
    reference, out = _outputs(fp32, images[64:]), _outputs(path, images[64:])
    assert out.shape == reference.shape and np.all(np.isfinite(out))
