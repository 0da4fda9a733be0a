"""fcn, resnet1d and inception_time with masking=True: ONNX through tf2onnx (Conv, no Loop), the
padded batch still matching each series alone in ONNX Runtime and OpenVINO, and int8 files.

The unmasked defaults are covered by test_onnx_export.py's registry-wide round trip.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest

import zoo
from convert.gate import verify
from convert.lowering import quantize_int8
from convert.onnx import export_onnx
from convert.runners import OpenVinoRunner
from zoo.data import load_arrays

TINY = {
    "fcn": dict(filters=(8, 16, 8)),
    "resnet1d": dict(filters=(8, 16, 16)),
    "inception_time": dict(filters=4, bottleneck=4, kernel_size=8),
}


@pytest.mark.parametrize("name", sorted(TINY))
def test_masked_model_exports_and_keeps_padding_out(name, tmp_path):
    model = zoo.create_model(name, input_shape=(None, 2), num_classes=3, masking=True, **TINY[name])
    path = export_onnx(model, tmp_path / f"{name}.onnx")
    ops = {node.op_type for node in onnx.load(path).graph.node}
    assert "Conv" in ops and not ops & {"Loop", "Scan"}
    x = np.random.default_rng(0).normal(size=(3, 12, 2)).astype("float32")
    x[0, 5:] = 0.0
    x[1, 9:] = 0.0
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {"sequence": x})[0]
    np.testing.assert_allclose(got, np.asarray(model(x)), atol=1e-5)
    alone = session.run(None, {"sequence": x[:1, :5]})[0]
    np.testing.assert_allclose(alone, got[:1], atol=1e-5)
    report = verify(OpenVinoRunner(path, inference_precision="f32"), model, x)
    assert report.passed and report.outputs[0].max_abs < 1e-4, report.format_table()


@pytest.mark.parametrize("name", sorted(TINY))
def test_int8_file_stays_close_on_real_series(name, tmp_path):
    """Calibrated on GunPoint's training series, checked on its test series. An untrained model's
    two softmax outputs sit near 0.5, so top-1 agreement says little: the gate is the element
    error (int8 rounding of a unit-scale output stays well under 0.05)."""
    train = load_arrays("builtin:gunpoint", task="sequence", input_shape=(None, 1), limit=32)
    test = load_arrays(
        "builtin:gunpoint", task="sequence", input_shape=(None, 1), split="test", limit=48
    )
    model = zoo.create_model(name, input_shape=(None, 1), num_classes=2, **TINY[name])
    fp32 = export_onnx(model, tmp_path / f"{name}.onnx")
    path = quantize_int8(fp32, tmp_path / f"{name}.int8.onnx", train.x)
    ops = {node.op_type for node in onnx.load(path).graph.node}
    assert "QuantizeLinear" in ops and "DequantizeLinear" in ops
    report = verify(path, model, test.x, precision="int8", atol=0.05, min_agreement=0.0)
    assert report.passed, report.format_table()
    assert 0 < report.outputs[0].max_abs < 0.05
