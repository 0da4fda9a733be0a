"""The parity gate and the `convert()` pipeline: good artefacts are published, bad ones never are."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

import convert
import convert.onnx as convert_onnx
import zoo
from convert._common import failed_path, report_path
from convert.gate import generate_inputs, verify
from tests.convert.digits import TRAIN, digits_arrays


def _corrupt(path) -> None:
    """Negate the largest float initializer (a conv/dense kernel) in place."""
    proto = onnx.load(str(path))
    init = max(
        (i for i in proto.graph.initializer if i.data_type == onnx.TensorProto.FLOAT),
        key=lambda i: int(np.prod(i.dims)),
    )
    init.CopyFrom(numpy_helper.from_array(-numpy_helper.to_array(init) * 3.0, init.name))
    onnx.save(proto, str(path))


def test_generate_inputs_cover_every_shape_and_pad_sequences():
    images = generate_inputs((28, 28, 1), (1, 4), (8, 64))
    assert [x.shape for x in images] == [(1, 28, 28, 1), (4, 28, 28, 1)]
    assert min(x.min() for x in images) >= 0.0 and max(x.max() for x in images) <= 255.0
    sequences = generate_inputs((None, 3), (2,), (5, 9), mask_value=0.0)
    assert [x.shape for x in sequences] == [(2, 5, 3), (2, 9, 3)]
    assert any(np.all(x[0, -1] == 0.0) for x in sequences)  # a padded tail to exercise masking


def test_gate_rejects_a_corrupted_artefact(tmp_path):
    model = zoo.create_model("cnn", filters=(8, 16), dense_units=16)
    path = convert_onnx.export_onnx(model, tmp_path / "cnn.onnx")
    assert verify(path, model).passed
    _corrupt(path)
    report = verify(path, model)
    assert not report.passed
    assert "exceeds atol" in report.failures[0]
    assert "FAILED" in report.format_table()


def test_convert_leaves_no_failed_artefact_under_its_final_name(tmp_path, monkeypatch):
    model = zoo.create_model("cnn", filters=(8, 16), dense_units=16)
    model.save(tmp_path / "model.keras")
    real_export = convert_onnx.export_onnx

    def corrupted_export(*args, **kwargs):
        path = real_export(*args, **kwargs)
        _corrupt(path)
        return path

    monkeypatch.setattr(convert_onnx, "export_onnx", corrupted_export)
    with pytest.raises(convert.GateError, match="failed the parity gate") as caught:
        convert.convert(tmp_path / "model.keras", to="onnx")
    final = tmp_path / "model.onnx"
    assert not final.exists()
    assert not report_path(final).exists()
    assert failed_path(final) == tmp_path / "model.failed.onnx"
    assert caught.value.result.artefact == failed_path(final)
    assert failed_path(final).exists()
    saved = json.loads(report_path(failed_path(final)).read_text())
    assert saved["passed"] is False
    # Nothing else (temp files) is left behind.
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "model.failed.onnx",
        "model.failed.onnx.report.json",
        "model.keras",
    ]


def test_convert_to_onnx_publishes_with_a_report(tmp_path):
    model = zoo.create_model("gru", units=8, masking=True)
    model.save(tmp_path / "model.keras")
    result = convert.convert(
        tmp_path / "model.keras", to="onnx", batch_sizes=(1, 4), seq_lens=(3, 11)
    )
    assert result.passed and result.artefact == tmp_path / "model.onnx"
    saved = json.loads((tmp_path / "model.onnx.report.json").read_text())
    assert saved["passed"] is True and saved["outputs"][0]["name"] == "predictions"
    assert saved["outputs"][0]["max_abs"] < 1e-4
    assert [1, 11, 10] in saved["shapes"] and [4, 3, 10] in saved["shapes"]


def test_convert_to_saved_model_is_verified(tmp_path):
    model = zoo.create_model("cnn", filters=(8, 16), dense_units=16)
    model.save(tmp_path / "model.keras")
    result = convert.convert(tmp_path / "model.keras", to="saved_model", batch_sizes=(1, 3))
    assert result.passed, result.report.format_table()
    assert (result.artefact / "saved_model.pb").is_file()
    assert result.report.runtime == "tensorflow-saved_model"
    assert result.report.outputs[0].max_abs < 1e-4


def test_onnx_source_lowers_precision_against_the_fp32_file(tmp_path):
    x, y = digits_arrays()
    model = zoo.create_model("cnn", filters=(8, 16), dense_units=16)
    path = convert_onnx.export_onnx(model, tmp_path / "cnn.onnx")
    result = convert.convert(path, to="onnx", precision="fp16", calib_data=(x[TRAIN:], y[TRAIN:]))
    assert result.artefact == tmp_path / "cnn.fp16.onnx"
    assert result.report.reference == "onnxruntime-fp32"
    assert result.passed


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"to": "pdf"}, "to should be one of"),
        ({"precision": "int4"}, "precision should be one of"),
        ({"precision": "int8"}, "needs --calib-data|calibrates on real inputs"),
        ({"to": "saved_model", "precision": "fp16"}, "writes float32 only"),
    ],
)
def test_convert_argument_errors(tmp_path, kwargs, message):
    zoo.create_model("cnn", filters=(8, 16)).save(tmp_path / "model.keras")
    with pytest.raises(ValueError, match=message):
        convert.convert(tmp_path / "model.keras", **kwargs)


def test_lazy_package_api():
    import importlib
    import sys
    import types

    # Importing every module first must not turn a package attribute into a module.
    for name in ("gate", "bench", "pipeline", "runners", "lowering", "openvino", "onnx"):
        importlib.import_module(f"convert.{name}")
    for name in ("verify", "benchmark", "convert", "quantize_int8", "quantize_fp16",
                 "export_onnx", "export_openvino", "open_artifact", "run_preflight"):  # fmt: skip
        assert isinstance(getattr(convert, name), types.FunctionType), name
    assert convert.export_onnx is convert_onnx.export_onnx
    assert isinstance(convert.ConvertResult, type) and issubclass(convert.GateError, ValueError)
    assert callable(convert.tensorrt.is_available)
    # convert.onnx never shadows the onnx library, inside or outside the package.
    assert sys.modules["onnx"] is onnx and hasattr(onnx, "ModelProto")
    assert convert_onnx.__name__ == "convert.onnx" and sys.modules["convert.onnx"] is not onnx


def test_bf16_compute_is_judged_by_the_bf16_criteria():
    """A bf16-compute reading (here Keras' mixed_bfloat16, same weights) of the digits-trained cnn
    fails fp32's 1e-4 but passes the bf16 row it is judged by: the criteria follow the runner's
    inference precision."""
    import keras

    from convert.gate import criteria
    from convert.runners import KerasRunner
    from tests.convert.digits import trained_cnn_run

    x, y = digits_arrays()
    model = zoo.load_model(trained_cnn_run() / "model.keras")
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        low = zoo.create_model("cnn")
    finally:
        keras.config.set_dtype_policy("float32")
    low.set_weights(model.get_weights())
    runner = KerasRunner(low)
    assert runner.inference_precision == "bf16" and criteria("fp32", "bf16") == "bf16"
    report = verify(runner, model, (x[TRAIN:], y[TRAIN:]), precision="fp32")
    assert report.criteria == "bf16" and report.atol == 5e-2
    assert report.passed, report.format_table()
    assert report.outputs[0].max_abs > 1e-4  # bf16 rounding is real: fp32's row would fail it
    strict = verify(runner, model, (x[TRAIN:], y[TRAIN:]), precision="fp32", atol=1e-4, rtol=1e-3)
    assert not strict.passed


def test_openvino_reports_the_precision_it_computes_in(tmp_path):
    from convert.openvino import has_bf16
    from convert.runners import OpenVinoRunner

    path = convert_onnx.export_onnx(zoo.create_model("cnn", filters=(8,)), tmp_path / "cnn.onnx")
    runner = OpenVinoRunner(path, inference_precision="bf16")
    expected = "bf16" if has_bf16() else "f32"  # OpenVINO silently falls back to f32
    assert runner.runtime == f"openvino-fp32@{expected}"
    assert runner.input_shape == (None, 28, 28, 1)
    for batch in (1, 5):  # the batch axis stays dynamic
        assert runner.run(np.zeros((batch, 28, 28, 1), "float32"))[0].shape == (batch, 10)


def test_a_failed_openvino_ir_is_set_aside_with_its_weights(tmp_path):
    zoo.create_model("cnn", filters=(8,), dense_units=8).save(tmp_path / "model.keras")
    (tmp_path / "model.xml").write_text("an earlier IR")
    with pytest.raises(convert.GateError, match="failed the parity gate"):
        convert.convert(
            tmp_path / "model.keras", to="openvino", atol=1e-12, rtol=0.0, overwrite=True
        )
    assert (tmp_path / "model.xml").read_text() == "an earlier IR"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "model.failed.bin",
        "model.failed.xml",
        "model.failed.xml.report.json",
        "model.keras",
        "model.xml",
    ]
    result = convert.convert(tmp_path / "model.keras", to="openvino", overwrite=True)
    assert result.passed and result.report.runtime == "openvino-fp32@f32"
    assert (tmp_path / "model.bin").stat().st_size > 0
