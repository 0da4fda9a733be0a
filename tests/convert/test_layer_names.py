"""`keras_layer_names`: every weighted ONNX node of an export is named after its Keras layer."""

from __future__ import annotations

import onnx
import pytest

import zoo
from convert.layer_names import WEIGHTED_OPS, keras_layer_names, unmatched_nodes
from convert.onnx import export_onnx
from tests.convert.digits import trained_cnn_run


def _keras_names(model) -> set[str]:
    names = set()
    for layer in model.layers:
        names.add(layer.name)
        names |= _keras_names(layer) if hasattr(layer, "layers") else set()
    return names


def _exported(model, tmp_path):
    path = export_onnx(model, tmp_path / f"{model.name}.onnx")
    return onnx.load(str(path)), keras_layer_names(path, model)


def _check_all_mapped(proto, names, model) -> None:
    weighted = [node.name for node in proto.graph.node if node.op_type in WEIGHTED_OPS]
    assert weighted and unmatched_nodes(proto, names) == []
    assert {ref.layer for ref in names.values()} <= _keras_names(model)
    # One node per layer kernel: no layer claimed twice.
    assert len({ref.layer for ref in names.values()}) == len(weighted)


def test_trained_cnn_layers(tmp_path):
    model = zoo.load_model(trained_cnn_run() / "model.keras")
    proto, names = _exported(model, tmp_path)
    _check_all_mapped(proto, names, model)
    by_layer = {ref.layer: (node, ref) for node, ref in names.items()}
    assert sorted(by_layer) == ["conv1", "conv2", "conv3", "dense", "predictions"]
    assert "conv2" in by_layer["conv2"][0] and by_layer["dense"][1].kind == "Dense"
    assert all(not ref.folded for ref in names.values())  # the cnn has no BatchNorm


@pytest.mark.slow
def test_mobilenet_v2_backbone_layers_and_folded_batchnorm(tmp_path):
    model = zoo.create_model(
        "mobilenet_v2_gap", weights=None, input_shape=(32, 32, 3), num_classes=4
    )
    proto, names = _exported(model, tmp_path)
    _check_all_mapped(proto, names, model)
    first = names["mobilenet_v2_gap_1/backbone_1/bn_Conv1_1/batchnorm/mul_1"]
    assert (first.layer, first.kind, first.folded) == ("Conv1", "Conv2D", ["bn_Conv1"])
    refs = {ref.layer: ref for ref in names.values()}
    assert refs["block_3_depthwise"].kind == "DepthwiseConv2D"
    assert refs["block_16_project"].folded == ["block_16_project_BN"]
    assert refs["predictions"].op_type == "MatMul"
    assert len(refs) == 53  # 52 convolutions (17 depthwise) + the classifier


@pytest.mark.slow
def test_vgg16_backbone_layers(tmp_path):
    model = zoo.create_model("vgg16_gap", weights=None, input_shape=(32, 32, 3), num_classes=4)
    proto, names = _exported(model, tmp_path)
    _check_all_mapped(proto, names, model)
    convs = sorted(ref.layer for ref in names.values() if ref.op_type == "Conv")
    assert len(convs) == 13 and "block3_conv2" in convs and "block5_conv3" in convs
    node = next(n for n, ref in names.items() if ref.layer == "block3_conv2")
    assert "block3_conv2" in node


def test_lstm_fused_operator_and_dense(tmp_path):
    model = zoo.create_model("lstm", input_shape=(None, 10), num_classes=3)
    proto, names = _exported(model, tmp_path)
    _check_all_mapped(proto, names, model)
    kinds = sorted((ref.op_type, ref.kind) for ref in names.values())
    assert kinds == [("LSTM", "LSTM"), ("MatMul", "Dense")]
