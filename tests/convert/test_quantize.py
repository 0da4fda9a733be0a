"""fp16 and int8 files of a digits-trained cnn run in ONNX Runtime (CPU) and keep its accuracy."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest

import zoo
from convert.gate import verify
from convert.lowering import quantize_fp16, quantize_int8
from convert.onnx import export_onnx
from convert.runners import onnx_precision
from tests.convert.digits import TRAIN, digits_arrays, trained_cnn_run


@pytest.fixture(scope="module")
def digits_cnn(tmp_path_factory):
    run = trained_cnn_run()
    model = zoo.load_model(run / "model.keras")
    fp32 = export_onnx(model, tmp_path_factory.mktemp("quant") / "cnn.onnx")
    x, y = digits_arrays()
    return model, fp32, (x[:TRAIN], y[:TRAIN]), (x[TRAIN:], y[TRAIN:])


def test_fp16_keeps_float32_io_and_accuracy(digits_cnn, tmp_path):
    model, fp32, _, (x_val, y_val) = digits_cnn
    path = quantize_fp16(fp32, tmp_path / "cnn.fp16.onnx")
    proto = onnx.load(str(path))
    assert onnx_precision(proto) == "fp16"
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].type == "tensor(float)"
    assert session.get_outputs()[0].type == "tensor(float)"
    report = verify(path, model, (x_val, y_val), precision="fp16")
    assert report.passed, report.format_table()
    assert report.outputs[0].max_abs < 1e-2
    assert report.accuracy_reference > 0.9
    assert report.accuracy_reference - report.accuracy_artefact <= 0.01


@pytest.mark.parametrize("method", ["minmax", "entropy", "percentile"])
def test_int8_qdq_keeps_accuracy(digits_cnn, tmp_path, method):
    model, fp32, (x_train, _), (x_val, y_val) = digits_cnn
    path = quantize_int8(fp32, tmp_path / "cnn.int8.onnx", x_train[:256], method)
    ops = {node.op_type for node in onnx.load(str(path)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    report = verify(path, model, (x_val, y_val), precision="int8")
    assert report.passed, report.format_table()
    assert report.top1_agreement >= 0.97
    assert report.accuracy_reference - report.accuracy_artefact <= 0.02


def test_symmetric_int8_has_zero_activation_zero_points(digits_cnn, tmp_path):
    _, fp32, (x_train, _), _ = digits_cnn
    path = quantize_int8(fp32, tmp_path / "sym.onnx", x_train[:64], symmetric=True)
    proto = onnx.load(str(path))
    zero_points = [
        onnx.numpy_helper.to_array(init)
        for init in proto.graph.initializer
        if init.name.endswith("zero_point")
    ]
    assert zero_points and all(not np.any(z) for z in zero_points)


def test_int8_argument_errors(digits_cnn, tmp_path):
    _, fp32, (x_train, _), _ = digits_cnn
    with pytest.raises(ValueError, match="method should be one of"):
        quantize_int8(fp32, tmp_path / "q.onnx", x_train[:8], "kl")
    with pytest.raises(ValueError, match="non-empty batch"):
        quantize_int8(fp32, tmp_path / "q.onnx", x_train[:0])


def test_histogram_methods_take_any_sample_count(digits_cnn, tmp_path):
    # 53 samples (a prime): ONNX Runtime's histogram calibrators failed on a shorter last batch.
    _, fp32, (x_train, _), _ = digits_cnn
    for method in ("entropy", "percentile", "distribution"):
        path = quantize_int8(fp32, tmp_path / f"{method}.onnx", x_train[:53], method)
        ops = {node.op_type for node in onnx.load(str(path)).graph.node}
        assert {"QuantizeLinear", "DequantizeLinear"} <= ops


@pytest.mark.parametrize("bits, largest", [("7", 64), ("8", 127)])  # 7 bits: -64..63
def test_weight_bits_follow_the_target_cpu_setting(
    digits_cnn, tmp_path, monkeypatch, bits, largest
):
    """KERAZOO_INT8_WEIGHT_BITS: the weight width for the CPU the file will run on, whatever
    CPU builds it (7 where ONNX Runtime's kernels saturate without VNNI)."""
    _, fp32, (x_train, _), _ = digits_cnn
    monkeypatch.setenv("KERAZOO_INT8_WEIGHT_BITS", bits)
    proto = onnx.load(str(quantize_int8(fp32, tmp_path / "q.onnx", x_train[:32])))
    weights = [onnx.numpy_helper.to_array(init) for init in proto.graph.initializer
               if init.data_type == onnx.TensorProto.INT8 and init.dims and len(init.dims) > 1]  # fmt: skip
    assert weights and max(int(np.abs(w).max()) for w in weights) == largest
    monkeypatch.setenv("KERAZOO_INT8_WEIGHT_BITS", "6")
    with pytest.raises(ValueError, match="should be 7 .* or 8"):
        quantize_int8(fp32, tmp_path / "bad.onnx", x_train[:8])
