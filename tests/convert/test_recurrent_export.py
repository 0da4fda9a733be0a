"""Recurrent models export as fused ONNX RNN/GRU/LSTM operators that two runtimes read alike.

Every recurrent registry entry and option (layers, bidirectional, masking) is exported, checked
for the fused operator and the absence of Loop/Scan, and run in ONNX Runtime and in OpenVINO
(CPU, f32 inference precision) against Keras at two batch sizes and two lengths, with padded rows.
"""

from __future__ import annotations

import itertools

import keras
import numpy as np
import onnxruntime as ort
import openvino as ov
import pytest
from keras import layers

import zoo
from convert.onnx_recurrent import recurrent_onnx_proto

FUSED = {"simple_rnn": "RNN", "gru": "GRU", "lstm": "LSTM"}
SHAPES = ((1, 5), (4, 12))  # (batch, time)
ATOL = 1e-5
_CORE = ov.Core()


def _padded(batch: int, time: int, features: int, seed: int = 0) -> np.ndarray:
    """Standard-normal sequences; every other row zero-padded at the end (row 0 shortest)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, time, features)).astype(np.float32)
    for row in range(0, batch, 2):
        x[row, int(rng.integers(1, time)) :] = 0.0
    return x


def _runtimes(proto, precision: str = "f32"):
    """(ONNX Runtime, OpenVINO) callables on one float32 batch."""
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    compiled = _CORE.compile_model(
        _CORE.read_model(proto.SerializeToString(), b""),
        "CPU",
        {"INFERENCE_PRECISION_HINT": precision} if precision else {},
    )
    name = proto.graph.input[0].name
    return (lambda x: session.run(None, {name: x})[0]), (lambda x: compiled(x)[0])


def _assert_parity(model, proto, batches, atol=ATOL):
    onnx_runtime, openvino = _runtimes(proto)
    for x in batches:
        expected = np.asarray(model(x, training=False))
        for runtime, run in (("onnxruntime", onnx_runtime), ("openvino", openvino)):
            got = run(x)
            assert got.shape == expected.shape, runtime
            np.testing.assert_allclose(got, expected, atol=atol, rtol=0, err_msg=runtime)


def _op_types(proto) -> set[str]:
    return {node.op_type for node in proto.graph.node}


@pytest.mark.parametrize(
    "name,num_layers,bidirectional,masking",
    list(itertools.product(sorted(FUSED), (1, 2), (False, True), (False, True))),
)
def test_registry_recurrent_models_export_fused_and_match_in_two_runtimes(
    name, num_layers, bidirectional, masking
):
    model = zoo.create_model(
        name, num_layers=num_layers, bidirectional=bidirectional, masking=masking, num_classes=3
    )
    proto = recurrent_onnx_proto(model)
    ops = _op_types(proto)
    assert FUSED[name] in ops
    assert not ops & {"Loop", "Scan"}
    # Unmasked: one node per layer; masked: one per direction (each over its row's real steps).
    fused_nodes = [n for n in proto.graph.node if n.op_type == FUSED[name]]
    per_layer = 2 if (masking and bidirectional) else 1
    assert len(fused_nodes) == num_layers * per_layer
    _assert_parity(model, proto, [_padded(b, t, 10, seed=b + t) for b, t in SHAPES])


def test_masked_rows_shorter_than_the_batch_and_all_padding_rows_match_keras():
    model = zoo.create_model("gru", masking=True, bidirectional=True, num_classes=2)
    x = _padded(6, 9, 10)
    x[1, 1:] = 0.0  # one real step
    x[3, :] = 0.0  # no real step: Keras keeps the zero state
    _assert_parity(model, recurrent_onnx_proto(model), [x])


def test_a_mask_with_holes_in_the_middle_exports_exactly():
    model = zoo.create_model("lstm", masking=True, num_layers=2, bidirectional=True, num_classes=4)
    x = _padded(4, 10, 10)
    x[0, 2:4] = 0.0  # masked steps between real ones
    x[2, 0] = 0.0  # a masked first step
    x[3, ::3] = 0.0
    _assert_parity(model, recurrent_onnx_proto(model), [x])


def _sequence_model(cell, merge=None, zero_output=False, mask_value=0.0):
    inputs = keras.Input((None, 6), name="sequence")
    x = layers.Masking(mask_value=mask_value)(inputs)
    rnn = cell(8, return_sequences=True, zero_output_for_mask=zero_output)
    x = layers.Bidirectional(rnn, merge_mode=merge)(x) if merge else rnn(x)
    x = layers.Dropout(0.5)(x)
    outputs = layers.Dense(3, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs)


@pytest.mark.parametrize(
    "cell,merge,zero_output",
    [
        (layers.LSTM, None, False),  # masked steps repeat the previous output
        (layers.GRU, None, True),  # masked steps are zeros
        (layers.SimpleRNN, "concat", False),
        (layers.GRU, "sum", False),
        (layers.LSTM, "ave", False),
        (layers.SimpleRNN, "mul", False),
    ],
)
def test_sequence_outputs_keep_keras_values_on_masked_steps(cell, merge, zero_output):
    model = _sequence_model(cell, merge, zero_output, mask_value=-1.0)
    x = np.random.default_rng(3).standard_normal((4, 7, 6)).astype(np.float32)
    x[0, 4:] = -1.0
    x[2, 1:3] = -1.0
    x[3, 0] = -1.0
    proto = recurrent_onnx_proto(model)
    _assert_parity(model, proto, [x, x[:1, :3]])


def test_layer_options_convert_gate_layouts():
    """reset_after=False, no bias, relu and go_backwards, in a Sequential model."""
    model = keras.Sequential(
        [
            keras.Input((None, 5)),
            layers.GRU(7, reset_after=False, return_sequences=True),
            layers.SimpleRNN(6, activation="relu", use_bias=False, return_sequences=True),
            layers.LSTM(5, go_backwards=True),
            layers.Dense(2),
            layers.Activation("sigmoid"),
        ]
    )
    proto = recurrent_onnx_proto(model, opset=13)
    gru = next(n for n in proto.graph.node if n.op_type == "GRU")
    assert [a.i for a in gru.attribute if a.name == "linear_before_reset"] == [0]
    lstm = next(n for n in proto.graph.node if n.op_type == "LSTM")
    assert [a.s for a in lstm.attribute if a.name == "direction"] == [b"reverse"]
    x = np.random.default_rng(1).standard_normal((3, 8, 5)).astype(np.float32)
    _assert_parity(model, proto, [x, x[:1, :2]])


def test_a_model_without_recurrent_layers_is_left_to_the_generic_export():
    assert recurrent_onnx_proto(zoo.create_model("cnn")) is None


@pytest.mark.parametrize(
    "build,message",
    [
        (
            lambda: keras.Sequential([keras.Input((None, 4)), layers.Conv1D(3, 2), layers.LSTM(4)]),
            "Conv1D",
        ),
        (
            lambda: keras.Sequential([keras.Input((None, 4)), layers.GRU(4, activation="elu")]),
            "activation 'elu'",
        ),
        (
            lambda: keras.Sequential(
                [keras.Input((None, 4)), layers.Bidirectional(layers.LSTM(4), merge_mode=None)]
            ),
            "2 outputs",  # merge_mode=None returns both directions
        ),
        (
            lambda: keras.Sequential(
                [keras.Input((None, 4)), layers.LSTM(4, go_backwards=True, return_sequences=True)]
            ),
            "go_backwards",
        ),
    ],
)
def test_what_the_fused_form_cannot_express_is_one_line_error(build, message):
    with pytest.raises(ValueError, match=message) as caught:
        recurrent_onnx_proto(build())
    assert "\n" not in str(caught.value)


def test_openvino_default_precision_agrees_within_bf16_tolerance():
    """OpenVINO's default CPU mode (bf16 inference where the CPU has it) on the fused graphs."""
    for name in sorted(FUSED):
        model = zoo.create_model(name, masking=True, num_classes=3)
        proto = recurrent_onnx_proto(model)
        _, openvino = _runtimes(proto, precision="")
        x = _padded(4, 12, 10)
        expected = np.asarray(model(x, training=False))
        np.testing.assert_allclose(openvino(x), expected, atol=2e-2, rtol=0)


def test_lowerings_keep_the_step_arithmetic_of_masked_graphs_in_float32(tmp_path):
    """Quantized or float16, the mask compare must read the raw input and the TopK keys that
    order the steps must stay exact: rounded, padding is found where there is none."""
    import onnx

    from convert.lowering import quantize_fp16, quantize_int8

    model = zoo.create_model("lstm", masking=True, bidirectional=True, input_shape=(None, 1))
    fp32 = tmp_path / "lstm.onnx"
    onnx.save(recurrent_onnx_proto(model), fp32)
    x = _padded(32, 40, 1)
    x[1, 5] = 1e-3  # a real step close to the mask value, which int8/fp16 would round to it
    for path in (
        quantize_int8(fp32, tmp_path / "lstm.int8.onnx", x),
        quantize_fp16(fp32, tmp_path / "lstm.fp16.onnx"),
    ):
        graph = onnx.load(path).graph
        producers = {out: node.op_type for node in graph.node for out in node.output}
        for node in graph.node:
            if node.op_type in ("Equal", "TopK"):
                assert producers.get(node.input[0], "input") not in ("DequantizeLinear", "Cast")
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        got = session.run(None, {"sequence": x})[0]
        np.testing.assert_allclose(got, np.asarray(model(x)), atol=2e-2)
