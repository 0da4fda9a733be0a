"""Keras -> ONNX for every registry model, with the parity gate at two batch sizes/lengths, read by
two runtimes: ONNX Runtime and OpenVINO (f32 compute), both within 1e-4 of Keras.

Backbones (12 variants) are the slow part (10-25 s each on 2 cores), so they carry `slow`; they
still run in the default suite (`-m "not slow"` skips them).
"""

from __future__ import annotations

import importlib
from unittest import mock

import keras
import numpy as np
import onnx
import onnxruntime as ort
import pytest

import zoo
from convert.export_utils import export_ready_copy
from convert.gate import verify
from convert.lowering import quantize_fp16, quantize_int8
from convert.onnx import export_onnx, export_onnx_proto, unconverted_ops
from convert.runners import OnnxRuntimeRunner, OpenVinoRunner
from tests.zoo.helpers import small_input_shape

BATCH_SIZES = (1, 3)
SEQ_LENS = (5, 12)
SMALL_MODELS = [name for name in zoo.list_models() if not zoo.model_info(name).pretrained]
BACKBONE_MODELS = [name for name in zoo.list_models() if zoo.model_info(name).pretrained]
# The 12 backbone entries are 4 keras.applications bodies x 3 pooling heads built by one
# function: every head on the smallest body and the `gap` head on the others exports every op
# the 12 contain (ReduceMean, ReduceMax, Flatten's Reshape, each body's own ops), at half the
# cost (a resnet50 head export takes about a minute in CI).
ROUND_TRIP_BACKBONES = [
    name for name in BACKBONE_MODELS
    if name.startswith("mobilenet_v2_") or name.endswith("_gap")
]  # fmt: skip
FUSED = {"simple_rnn": "RNN", "gru": "GRU", "lstm": "LSTM"}


def _roundtrip(name: str, tmp_path) -> None:
    model = zoo.create_model(name, input_shape=small_input_shape(name), weights=None)
    path = export_onnx(model, tmp_path / f"{name}.onnx")
    report = verify(path, model, batch_sizes=BATCH_SIZES, seq_lens=SEQ_LENS)
    assert report.passed, report.format_table()
    assert report.outputs[0].max_abs < 1e-4
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (graph_input,) = session.get_inputs()
    assert graph_input.name == model.inputs[0].name  # "image" / "sequence"
    assert [o.name for o in session.get_outputs()] == ["predictions"]
    assert graph_input.shape[0] == "batch"
    if zoo.model_info(name).task == "sequence":
        ops = {node.op_type for node in onnx.load(path).graph.node}
        assert not ops & {"Loop", "Scan"}  # every runtime reads it
        # Recurrent entries go through the fused emitter; the convolutional ones through tf2onnx.
        assert FUSED[name] in ops if name in FUSED else "Conv" in ops
        assert graph_input.shape[1] == "time"
        features = zoo.model_info(name).input_shape[-1]
        assert {tuple(s) for s in report.shapes} >= {(1, 5, features), (3, 12, features)}
    else:
        assert {s[0] for s in report.shapes} == set(BATCH_SIZES)
    # The second reader: OpenVINO at f32 compute, same inputs, same tolerance.
    runner = OpenVinoRunner(path, inference_precision="f32")
    assert runner.runtime == "openvino-fp32@f32"
    ov_report = verify(runner, model, batch_sizes=BATCH_SIZES, seq_lens=SEQ_LENS)
    assert ov_report.passed, ov_report.format_table()
    assert ov_report.outputs[0].max_abs < 1e-4


@pytest.mark.parametrize("name", SMALL_MODELS)
def test_registry_model_round_trips(name, tmp_path):
    _roundtrip(name, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("name", ROUND_TRIP_BACKBONES)
def test_backbone_model_round_trips(name, tmp_path):
    _roundtrip(name, tmp_path)


def test_default_opset_is_17_and_invalid_opset_is_refused(tmp_path):
    model = zoo.create_model("cnn")
    path = export_onnx(model, tmp_path / "cnn.onnx")
    opsets = {o.domain: o.version for o in onnx.load(str(path)).opset_import}
    assert opsets[""] == 17
    with pytest.raises(ValueError, match="opset should be an int between 13 and 21"):
        export_onnx(model, tmp_path / "x.onnx", opset=7)


def test_export_accepts_a_keras_file(tmp_path):
    model = zoo.create_model("gru", units=8)
    model.save(tmp_path / "gru.keras")
    path = export_onnx(tmp_path / "gru.keras", tmp_path / "gru.onnx")
    assert verify(path, model, batch_sizes=(2,), seq_lens=(6,)).passed


def test_mixed_bfloat16_model_exports_as_float32(tmp_path):
    keras.config.set_dtype_policy("mixed_bfloat16")
    model = zoo.create_model("cnn", filters=(8, 16), dense_units=16)
    keras.config.set_dtype_policy("float32")
    assert model.get_layer("conv1").compute_dtype == "bfloat16"
    copy = export_ready_copy(model)
    assert all(layer.compute_dtype == "float32" for layer in copy.layers)
    path = export_onnx(model, tmp_path / "bf16.onnx")
    proto = onnx.load(str(path))
    low = (onnx.TensorProto.BFLOAT16, onnx.TensorProto.FLOAT16)
    assert not any(init.data_type in low for init in proto.graph.initializer)
    report = verify(path, model, batch_sizes=BATCH_SIZES)
    assert report.passed, report.format_table()
    # Against the bf16 model itself only bf16 rounding separates them.
    x = np.random.default_rng(0).uniform(0, 255, (4, 28, 28, 1)).astype("float32")
    onnx_out = ort.InferenceSession(str(path)).run(None, {"image": x})[0]
    assert np.abs(onnx_out - np.asarray(model(x), dtype="float32")).max() < 0.05


@pytest.mark.parametrize("name", ["lstm", "gru"])
def test_rnn_export_never_traces_the_cudnn_kernel(name, tmp_path):
    import tensorflow as tf

    model = zoo.create_model(name, units=8, masking=True, bidirectional=True)
    rnn_backend = importlib.import_module("keras.src.backend.tensorflow.rnn")
    # Pretend to be on a GPU, where use_cudnn="auto" would pick the CudnnRNNV3 kernel.
    with mock.patch.object(rnn_backend, "_is_gpu_available", return_value=True):
        naive = tf.function(lambda x: model(x, training=False)).get_concrete_function(
            tf.TensorSpec((None, None, 10), tf.float32)
        )
        assert any("CudnnRNN" in op.type for op in naive.graph.get_operations())
        proto = export_onnx_proto(model)
    assert unconverted_ops(proto) == []
    assert not any("Cudnn" in node.op_type for node in proto.graph.node)
    onnx.save(proto, str(tmp_path / f"{name}.onnx"))
    assert verify(tmp_path / f"{name}.onnx", model, batch_sizes=(2,), seq_lens=(9,)).passed


@pytest.mark.parametrize("name", ["simple_rnn", "lstm", "gru"])
def test_masking_survives_export(name, tmp_path):
    model = zoo.create_model(name, units=8, masking=True)
    path = export_onnx(model, tmp_path / f"{name}.onnx")
    rng = np.random.default_rng(1)
    x = rng.normal(size=(4, 10, 10)).astype("float32")
    x[0, 4:] = 0.0
    x[2, 7:] = 0.0
    session = ort.InferenceSession(str(path))
    got = session.run(None, {"sequence": x})[0]
    np.testing.assert_allclose(got, np.asarray(model(x)), atol=1e-5)
    # Padding must not change the answer: the same rows without the padded tail agree.
    short = session.run(None, {"sequence": x[:1, :4]})[0]
    np.testing.assert_allclose(short, got[:1], atol=1e-5)


@pytest.mark.parametrize("precision", ["fp16", "int8"])
@pytest.mark.parametrize("name", ["cnn", "simple_rnn", "lstm", "gru"])
def test_lowered_onnx_files_run_in_openvino(name, precision, tmp_path):
    """OpenVINO reads the fp16 (float16 weights, float32 I/O) and the int8 (QDQ) files."""
    model = zoo.create_model(name, input_shape=small_input_shape(name))
    fp32 = export_onnx(model, tmp_path / f"{name}.onnx")
    if precision == "fp16":
        path = quantize_fp16(fp32, tmp_path / f"{name}.fp16.onnx")
        report = verify(OpenVinoRunner(path, inference_precision="f32"), model, precision="fp16")
        assert report.passed, report.format_table()
        return
    calibration = np.concatenate(verify_inputs(model))
    path = quantize_int8(fp32, tmp_path / f"{name}.int8.onnx", calibration)
    runner = OpenVinoRunner(path, inference_precision="f32")
    assert runner.runtime == "openvino-int8@f32"
    # Both runtimes read the same scales and zero points: they agree to one output step.
    report = verify(runner, OnnxRuntimeRunner(path), precision="int8", atol=1 / 255 * 1.01)
    assert report.passed and report.top1_agreement == 1.0, report.format_table()


def verify_inputs(model) -> list[np.ndarray]:
    from convert.gate import generate_inputs

    return generate_inputs(tuple(model.inputs[0].shape[1:]), (16,), (12,))


def test_openvino_refuses_tf2onnx_loop_graphs_in_one_line(tmp_path):
    """Why recurrent models need the fused emitter: tf2onnx's GRU is a `Loop` OpenVINO rejects."""
    from convert.onnx import _tf2onnx_proto

    model = zoo.create_model("gru", units=8)
    proto = _tf2onnx_proto(export_ready_copy(model), 17)
    assert "Loop" in {node.op_type for node in proto.graph.node}
    onnx.save(proto, str(tmp_path / "gru_loop.onnx"))
    with pytest.raises(ValueError, match=r"Received: .*gru_loop.onnx.*Loop") as caught:
        OpenVinoRunner(tmp_path / "gru_loop.onnx")
    assert "\n" not in str(caught.value)
