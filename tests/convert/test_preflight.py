"""CPU preflight of ONNX graphs against the TensorRT ONNX parser's documented support."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from convert.preflight import derive_profiles, detect_precision, preflight
from tests.convert import onnx_graphs as graphs


def _errors(report, check=None):
    return [f for f in report.errors if check is None or f.check == check]


def test_clean_conv_matmul_graph_passes_with_derived_profile():
    model = graphs.conv_matmul()
    report = preflight(model, profiles=derive_profiles(model, [1, 8, 32]))
    assert report.ok, report.format_table()
    assert report.findings == []
    assert report.opset == graphs.OPSET
    assert report.op_counts == {
        "Add": 1,
        "Conv": 1,
        "Flatten": 1,
        "GlobalAveragePool": 1,
        "MatMul": 1,
        "Relu": 1,
    }


def test_static_graph_needs_no_profile(tmp_path):
    path = graphs.save(graphs.conv_matmul(batch=2), tmp_path / "static.onnx")
    assert preflight(path).ok


def test_custom_domain_op_is_an_error():
    report = preflight(graphs.with_custom_op())
    [finding] = _errors(report)
    assert (finding.check, finding.node, finding.op_type) == ("operator", "fancy", "FancyGelu")
    assert "com.example" in finding.message and "plugin" in finding.message


def test_op_marked_unsupported_in_operators_md_is_an_error():
    [finding] = _errors(preflight(graphs.with_unsupported_op()))
    assert finding.op_type == "Det" and "not supported" in finding.message


def test_op_missing_from_the_table_is_an_error():
    model = graphs.conv_matmul(batch=1)
    model.graph.node[1].op_type = "Relu6"  # not an ONNX op at all
    findings = [f for f in _errors(preflight(model)) if f.check == "operator"]
    assert [f.op_type for f in findings] == ["Relu6"]


def test_model_local_function_is_checked_through_its_body():
    body = [helper.make_node("Det", ["a"], ["b"])]
    function = helper.make_function(
        "local", "MyDet", ["a"], ["b"], body, [helper.make_opsetid("", graphs.OPSET)]
    )
    node = helper.make_node("MyDet", ["x"], ["y"], name="call", domain="local")
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])
    graph = helper.make_graph([node], "g", [x], [y])
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", graphs.OPSET), helper.make_opsetid("local", 1)],
        functions=[function],
        ir_version=8,
    )
    [finding] = _errors(preflight(model))
    assert finding.op_type == "Det" and finding.node.startswith("call/")


def test_lstm_layout_1_is_flagged_and_layout_0_passes():
    assert preflight(graphs.lstm(layout=0)).ok
    [finding] = _errors(preflight(graphs.lstm(layout=1)))
    assert (finding.check, finding.op_type) == ("attribute", "LSTM")
    assert "layout must be 0" in finding.message and "Received: layout=1" in finding.message


def test_bidirectional_lstm_with_different_activations_is_flagged():
    model = graphs.lstm()
    node = model.graph.node[0]
    node.attribute.extend(
        [
            helper.make_attribute("direction", "bidirectional"),
            helper.make_attribute(
                "activations", ["Sigmoid", "Tanh", "Tanh", "Sigmoid", "Relu", "Tanh"]
            ),
        ]
    )
    messages = [f.message for f in _errors(preflight(model), "attribute")]
    assert any("forward and reverse" in m for m in messages)


def test_bfloat16_initializer_is_flagged():
    report = preflight(graphs.bf16_initializer())
    [finding] = [f for f in report.findings if f.check == "dtype"]
    assert finding.severity == "warning"
    assert "bfloat16" in finding.message and "bias_bf16" in finding.message
    assert "operators.md" in finding.message


def test_bfloat16_into_an_op_without_bf16_support_is_an_error():
    # operators.md lists only FP32, FP16 for Mish.
    nodes = [helper.make_node("Mish", ["x"], ["y"], name="mish")]
    x = helper.make_tensor_value_info("x", TensorProto.BFLOAT16, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.BFLOAT16, [1, 4])
    model = helper.make_model(
        helper.make_graph(nodes, "g", [x], [y]),
        opset_imports=[helper.make_opsetid("", graphs.OPSET)],
        ir_version=8,
    )
    [finding] = _errors(preflight(model), "dtype")
    assert finding.op_type == "Mish" and "BF16" in finding.message


def test_dynamic_batch_without_profile_is_flagged_and_derive_profiles_fixes_it(tmp_path):
    path = graphs.save(graphs.conv_matmul(), tmp_path / "dyn.onnx")
    [finding] = _errors(preflight(path), "profile")
    assert finding.node == "input:x" and "Dim 0 ('batch')" in finding.message

    profiles = derive_profiles(path, batch_sizes=[32, 1, 8])
    assert profiles == {"x": ((1, 3, 8, 8), (8, 3, 8, 8), (32, 3, 8, 8))}
    assert preflight(path, profiles=profiles).ok


def test_derive_profiles_ranges_sequence_length_and_leaves_other_dims_unranged():
    x = helper.make_tensor_value_info("tokens", TensorProto.FLOAT, ["b", "t", 16])
    img = helper.make_tensor_value_info("image", TensorProto.FLOAT, ["b", "h", "w", 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["b", "t", 16])
    nodes = [helper.make_node("Relu", ["tokens"], ["y"], name="relu")]
    model = helper.make_model(
        helper.make_graph(nodes, "g", [x, img], [y]),
        opset_imports=[helper.make_opsetid("", graphs.OPSET)],
        ir_version=8,
    )
    profiles = derive_profiles(model, batch_sizes=[1, 4], seq_lens=[16, 64, 128])
    assert profiles["tokens"] == ((1, 16, 16), (4, 64, 16), (4, 128, 16))
    assert profiles["image"] == ((1, -1, -1, 3), (4, -1, -1, 3), (4, -1, -1, 3))
    unranged = _errors(preflight(model, profiles=profiles), "profile")
    assert [(f.node, f.message.split(" is ")[0]) for f in unranged] == [
        ("input:image", "Dim 1 ('h')"),
        ("input:image", "Dim 2 ('w')"),
    ]


@pytest.mark.parametrize(
    "profile, expected",
    [
        (((1, 3, 8, 8), (8, 3, 8, 8), (4, 3, 8, 8)), "min <= opt <= max"),
        (((1, 3, 8, 8), (1, 3, 8, 8), (1, 3, 9, 8)), "Dim 2 is static (8)"),
        (((1, 3, 8), (1, 3, 8), (1, 3, 8)), "rank must match"),
    ],
)
def test_inconsistent_profiles_are_errors(profile, expected):
    report = preflight(graphs.conv_matmul(), profiles={"x": profile})
    [finding] = _errors(report, "profile")
    assert expected in finding.message


def test_profile_for_unknown_input_warns_and_malformed_profile_raises():
    model = graphs.conv_matmul(batch=1)
    [finding] = preflight(model, profiles={"nope": ((1,), (1,), (1,))}).warnings
    assert "not a graph input" in finding.message
    with pytest.raises(ValueError, match="three shapes of equal rank"):
        preflight(model, profiles={"x": ((1, 3, 8, 8), (1, 3, 8, 8))})
    with pytest.raises(ValueError, match="positive ints"):
        derive_profiles(model, batch_sizes=[])


def test_opset_range_depends_on_tensorrt_version():
    model = graphs.conv_matmul(batch=1)
    model.opset_import[0].version = 25
    [finding] = _errors(preflight(model, trt_version="10"), "opset")
    assert "opset 9 to 24" in finding.message and "Received: opset 25" in finding.message
    assert not _errors(preflight(model, trt_version="11.5"), "opset")
    with pytest.raises(ValueError, match="Received: trt_version='8.6'"):
        preflight(model, trt_version="8.6")


def test_uint8_quantization_and_cubic_resize_are_errors():
    model = graphs.qdq_conv(batch=1)
    for init in model.graph.initializer:
        if init.name == "x_zp":
            init.CopyFrom(onnx.numpy_helper.from_array(np.array(0, np.uint8), "x_zp"))
    assert any("UINT8" in f.message for f in _errors(preflight(model), "attribute"))

    nodes = [helper.make_node("Resize", ["x", "", "scales"], ["y"], name="up", mode="cubic")]
    scales = onnx.numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales")
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 4, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 8, 8])
    resize = helper.make_model(
        helper.make_graph(nodes, "g", [x], [y], [scales]),
        opset_imports=[helper.make_opsetid("", graphs.OPSET)],
        ir_version=8,
    )
    [finding] = _errors(preflight(resize))
    assert "Received: cubic" in finding.message


def test_garbage_and_missing_files_raise_one_line_value_errors(tmp_path):
    path = tmp_path / "garbage.onnx"
    path.write_bytes(b"definitely not protobuf \x00\xff\xfe" * 10)
    with pytest.raises(ValueError, match="is not a valid ONNX file") as info:
        preflight(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="is not a valid ONNX file"):
        preflight(empty)
    with pytest.raises(ValueError, match="ONNX file not found"):
        preflight(tmp_path / "missing.onnx")


def test_format_table_and_to_dict():
    report = preflight(graphs.with_custom_op())
    table = report.format_table()
    assert "FancyGelu" in table and "error" in table and table.splitlines()[-1].startswith("FAILED")
    data = json.loads(json.dumps(report.to_dict()))
    assert data["ok"] is False and data["findings"][0]["op_type"] == "FancyGelu"
    ok_table = preflight(graphs.conv_matmul(batch=1)).format_table()
    assert ok_table.startswith("OK: TensorRT 10 preflight")


def test_detect_precision():
    assert detect_precision(graphs.conv_matmul()) == "fp32"
    assert detect_precision(graphs.fp16_cast()) == "fp16"
    assert detect_precision(graphs.qdq_conv()) == "int8"
    assert detect_precision(graphs.bf16_initializer()) == "bf16"


@pytest.mark.slow
def test_tf2onnx_export_of_a_keras_lstm_passes():
    keras = pytest.importorskip("keras")
    tf = pytest.importorskip("tensorflow")
    tf2onnx = pytest.importorskip("tf2onnx")
    from keras.src.export.tf2onnx_lib import patch_tf2onnx

    patch_tf2onnx()  # numpy 2 compatibility shim that Keras applies for its own export
    model = keras.Sequential([keras.Input((None, 3)), keras.layers.LSTM(4), keras.layers.Dense(2)])
    spec = tf.TensorSpec((None, None, 3), tf.float32, name="sequence")

    @tf.function(input_signature=[spec])
    def serve(x):
        return {"y": model(x, training=False)}

    proto, _ = tf2onnx.convert.from_function(serve, input_signature=[spec], opset=17)
    assert "LSTM" in {n.op_type for n in proto.graph.node}
    assert not preflight(proto).ok  # batch and time axes are dynamic
    profiles = derive_profiles(proto, batch_sizes=[1, 4], seq_lens=[5, 10])
    assert profiles["sequence"] == ((1, 5, 3), (4, 10, 3), (4, 10, 3))
    report = preflight(proto, profiles=profiles)
    assert report.ok, report.format_table()


# --------------------------------------------------------------------------- fused RNN/GRU/LSTM

_GATES = {"RNN": 1, "GRU": 3, "LSTM": 4}


def _recurrent(
    op, direction="forward", lens_type=TensorProto.INT32, x_type=TensorProto.FLOAT, **attrs
):
    """X[time, batch, 3] -> one fused `op` with sequence_lens -> Y_h[dirs, batch, 4]."""
    dirs, hidden, gates = (2 if direction == "bidirectional" else 1), 4, _GATES[op]
    r = np.random.default_rng(0)
    dtype = helper.tensor_dtype_to_np_dtype(x_type)
    inits = [
        graphs._init("W", r.standard_normal((dirs, gates * hidden, 3)).astype(dtype)),
        graphs._init("R", r.standard_normal((dirs, gates * hidden, hidden)).astype(dtype)),
        graphs._init("B", np.zeros((dirs, 2 * gates * hidden), dtype)),
    ]
    node = helper.make_node(
        op,
        ["X", "W", "R", "B", "lens"],
        ["Y", "Y_h"],
        name="rnn",
        hidden_size=hidden,
        direction=direction,
        **attrs,
    )
    x = helper.make_tensor_value_info("X", x_type, ["time", "batch", 3])
    lens = helper.make_tensor_value_info("lens", lens_type, ["batch"])
    y_h = helper.make_tensor_value_info("Y_h", x_type, [dirs, "batch", hidden])
    return graphs._model([node], [x, lens], [y_h], inits)


def _rnn_findings(model, severity="error"):
    return [f.message for f in preflight(model).findings if f.severity == severity and f.op_type]


@pytest.mark.parametrize("op", ["RNN", "GRU", "LSTM"])
@pytest.mark.parametrize("direction", ["forward", "reverse", "bidirectional"])
def test_fused_recurrent_ops_with_sequence_lens_pass(op, direction):
    attrs = {"linear_before_reset": 1} if op == "GRU" else {}
    model = _recurrent(op, direction, clip=5.0, **attrs)
    report = preflight(model, profiles=derive_profiles(model, [1, 8], [4, 16]))
    # The time-major X ranges dim 0 as a batch; only the recurrent rules matter here.
    assert not [f for f in report.findings if f.op_type == op], report.format_table()


def test_recurrent_sequence_lens_must_be_int32():
    [message] = _rnn_findings(_recurrent("GRU", lens_type=TensorProto.INT64))
    assert "sequence_lens should be INT32" in message and "Received: INT64" in message


@pytest.mark.parametrize(
    "op, attrs, expected",
    [
        ("LSTM", {"activations": ["Sigmoid", "Tanh"]}, "needs 3 activations (3 per direction)"),
        ("GRU", {"activations": ["Sigmoid", "Affine"]}, "activations should be among"),
        ("RNN", {"direction": "sideways"}, "direction should be one of"),
        ("LSTM", {"input_forget": 1}, "input_forget must be 0"),
        ("GRU", {"layout": 1}, "layout must be 0"),
    ],
)
def test_recurrent_attribute_errors(op, attrs, expected):
    direction = attrs.pop("direction", "forward")
    messages = _rnn_findings(_recurrent(op, direction, **attrs))
    assert any(expected in m for m in messages), messages


def test_recurrent_without_hidden_size_is_an_error():
    model = _recurrent("RNN")
    node = model.graph.node[0]
    kept = [a for a in node.attribute if a.name != "hidden_size"]
    del node.attribute[:]
    node.attribute.extend(kept)
    assert any("hidden_size is required" in m for m in _rnn_findings(model))


def test_recurrent_negative_clip_and_fp16_are_warnings():
    assert any("negative clip" in m for m in _rnn_findings(_recurrent("RNN", clip=-1.0), "warning"))
    [message] = _rnn_findings(_recurrent("LSTM", x_type=TensorProto.FLOAT16), "warning")
    assert message.startswith("LSTM on FP16:") and "strongly typed" in message
    assert not _rnn_findings(_recurrent("LSTM"), "warning")
