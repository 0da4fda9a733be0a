"""`zoo convert` and `zoo bench` through click's CliRunner: one-line errors, valid JSON, no timings."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from convert.openvino import default_inference_precisions
from tests.convert.digits import trained_cnn_run
from zoo.cli import main

RECORD_KEYS = {
    "artifact",
    "runtime",
    "inference_precision",
    "batch_size",
    "p50_ms",
    "p90_ms",
    "p99_ms",
    "throughput_per_s",
}


def _invoke(*args: str):
    return CliRunner().invoke(main, list(args))


@pytest.fixture(scope="module")
def run_dir():
    return trained_cnn_run()


def _one_line_error(result, text: str) -> None:
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    error_lines = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(error_lines) == 1 and text in error_lines[0], result.output


def test_tf_trt_gives_its_clear_error(run_dir):
    from convert.tftrt import tftrt_available

    if tftrt_available()[0]:
        pytest.skip("this TensorFlow has TF-TRT")
    _one_line_error(_invoke("convert", str(run_dir), "--to", "tf-trt"), "TF-TRT")


def test_tensorrt_gives_its_clear_error(run_dir):
    from convert.tensorrt import is_available

    if is_available()[0]:
        pytest.skip("TensorRT is available here")
    result = _invoke("convert", str(run_dir), "--to", "tensorrt")
    _one_line_error(result, "--to tensorrt needs TensorRT")
    assert not list(run_dir.glob("*.engine"))


def test_preflight_only_checks_the_graph(run_dir):
    result = _invoke("convert", str(run_dir / "model.keras"), "--preflight", "--quiet")
    assert result.exit_code == 0, result.output
    assert "preflight" in result.output


def test_int8_from_a_run_dir_uses_its_data_and_reports_json(run_dir, tmp_path):
    out = tmp_path / "cnn.int8.onnx"
    result = _invoke(
        "convert",
        str(run_dir),
        "--precision",
        "int8",
        "--calib-data",
        str(run_dir / "data.npz"),
        "--out",
        str(out),
        "--json",
        "--quiet",
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["passed"] and report["artefact"] == str(out)
    assert report["top1_agreement"] >= 0.97
    assert report["accuracy_reference"] - report["accuracy_artefact"] <= 0.02
    assert "speedup" not in report["extra"]  # speed is `zoo bench`'s job, not the converter's
    assert json.loads((tmp_path / "cnn.int8.onnx.report.json").read_text())["passed"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--precision", "int8"], "calibrates on real inputs"),
        (["--to", "saved_model", "--precision", "fp16"], "writes float32 only"),
    ],
)
def test_usage_errors_are_one_line(run_dir, args, message):
    _one_line_error(_invoke("convert", str(run_dir / "model.keras"), *args), message)


def test_bad_list_option_is_a_usage_error(run_dir):
    result = _invoke("convert", str(run_dir), "--batch-sizes", "1,x")
    assert result.exit_code == 2 and "comma-separated positive ints" in result.output


def test_bench_json_has_the_record_keys(run_dir, tmp_path):
    onnx_path = tmp_path / "cnn.onnx"
    assert (
        _invoke(
            "convert", str(run_dir / "model.keras"), "--out", str(onnx_path), "--quiet"
        ).exit_code
        == 0
    )
    plot = tmp_path / "bench.png"
    result = _invoke(
        "bench",
        str(run_dir / "model.keras"),
        str(onnx_path),
        "--batch-sizes",
        "1,2",
        "--warmup",
        "1",
        "--runs",
        "3",
        "--json",
        "--quiet",
        "--plot",
        str(plot),
    )
    assert result.exit_code == 0, result.output
    records = json.loads(result.stdout)
    # An .onnx file runs in ONNX Runtime and in OpenVINO at every precision this CPU computes in.
    ov_runtimes = {f"openvino-fp32@{p}" for p in default_inference_precisions()}
    expected = {"keras-eager", "keras-function", "onnxruntime-fp32"} | ov_runtimes
    assert {r["runtime"] for r in records} == expected
    assert len(records) == len(expected) * 2
    for record in records:
        assert record.keys() >= RECORD_KEYS
        assert record["p50_ms"] <= record["p90_ms"] <= record["p99_ms"]
        if record["runtime"].startswith("openvino"):
            assert record["runtime"].endswith("@" + record["inference_precision"])
    assert plot.stat().st_size > 0


def test_openvino_ir_is_gated_and_benched_in_openvino(run_dir, tmp_path):
    out = tmp_path / "cnn.int8.xml"
    args = ["convert", str(run_dir), "--to", "openvino", "--precision", "int8"]
    args += ["--calib-data", str(run_dir / "data.npz"), "--out", str(out), "--json", "--quiet"]
    result = _invoke(*args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["runtime"] == "openvino-int8@f32" and report["passed"]
    assert report["accuracy_reference"] - report["accuracy_artefact"] <= 0.02
    assert out.is_file() and out.with_suffix(".bin").stat().st_size > 0
    bench = _invoke(
        "bench", str(out), "--runtime", "openvino", "--ov-precision", "f32",
        "--batch-sizes", "2", "--runs", "2", "--warmup", "0", "--json", "--quiet",
    )  # fmt: skip
    assert bench.exit_code == 0, bench.output
    (record,) = json.loads(bench.stdout)
    assert (record["runtime"], record["inference_precision"]) == ("openvino-int8@f32", "f32")


def test_bench_runtime_choice_and_bf16_where_missing(run_dir, tmp_path):
    onnx_path = tmp_path / "cnn.onnx"
    assert _invoke("convert", str(run_dir), "--out", str(onnx_path), "--quiet").exit_code == 0
    timing = ("--batch-sizes", "1", "--runs", "1", "--warmup", "0", "--json", "--quiet")
    result = _invoke("bench", str(onnx_path), "--runtime", "onnxruntime", *timing)
    assert [r["runtime"] for r in json.loads(result.stdout)] == ["onnxruntime-fp32"]
    bad = _invoke("bench", str(onnx_path), "--runtime", "tvm", *timing)
    assert bad.exit_code == 2 and "onnxruntime, openvino" in bad.output
    if "bf16" not in default_inference_precisions():
        _one_line_error(
            _invoke("bench", str(onnx_path), "--ov-precision", "bf16", *timing),
            "--ov-precision bf16 needs a CPU with bf16",
        )


def test_calibration_data_with_other_classes_is_refused(run_dir, tmp_path):
    out = tmp_path / "cnn.int8.onnx"
    result = _invoke(
        "convert", str(run_dir), "--precision", "int8", "--calib-data",
        "builtin:digits?classes=0-3", "--out", str(out), "--quiet",
    )  # fmt: skip
    _one_line_error(result, "--calib-data builtin:digits?classes=0-3 has 4 classes but the model")
    assert not list(tmp_path.iterdir())


def test_bench_missing_tensorrt_is_a_clear_error(tmp_path):
    from convert.tensorrt import is_available

    if is_available()[0]:
        pytest.skip("TensorRT is available here")
    engine = tmp_path / "model.engine"
    engine.write_bytes(b"not an engine")
    _one_line_error(_invoke("bench", str(engine), "--quiet"), "TensorRT")
