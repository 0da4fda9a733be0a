"""TensorRT engines through Polygraphy, and TF-TRT.

No stand-in for TensorRT: the CPU tests check our side against the real Polygraphy (profiles,
sidecar, log silencing, the signatures we call) and the one-line errors where TensorRT or a GPU
is missing. The `gpu` tests build and run an engine for every reference model at fp32, fp16 and
int8 and compare it with ONNX Runtime on the same ONNX file; they skip cleanly elsewhere.
"""

from __future__ import annotations

import hashlib
import inspect
import json

import numpy as np
import onnxruntime as ort
import pytest

import zoo
from convert import tensorrt as trt_convert
from convert import tftrt
from convert.lowering import quantize_fp16, quantize_int8
from convert.onnx import export_onnx
from convert.preflight import derive_profiles, preflight
from tests.convert import onnx_graphs as graphs

INSTALL_HINT = "pip install kerazoo[tensorrt]"


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """ONNX exports of zoo models, made once per module: name -> path."""
    folder = tmp_path_factory.mktemp("onnx")
    cache: dict[str, object] = {}

    def get(name: str, **kwargs):
        key = name + "".join(f"_{k}={v}" for k, v in sorted(kwargs.items()))
        if key not in cache:
            model = zoo.create_model(name, weights=None, **kwargs)
            cache[key] = export_onnx(model, folder / f"{key}.onnx")
        return cache[key]

    return get


def _unavailable() -> str:
    ok, reason = trt_convert.is_available()
    if ok:
        pytest.skip(f"TensorRT is available here: {reason}")
    return reason


# --------------------------------------------------------------------------- our side, on CPU


def test_image_model_profiles_become_one_polygraphy_profile(exported):
    onnx_path = exported("cnn")
    profiles = derive_profiles(onnx_path, [32, 1, 8])
    [profile] = trt_convert.polygraphy_profiles(profiles)
    assert list(profile) == ["image"]
    shapes = profile["image"]
    assert (shapes.min, shapes.opt, shapes.max) == ((1, 28, 28, 1), (8, 28, 28, 1), (32, 28, 28, 1))


@pytest.mark.parametrize(
    "name, options, op, count",
    [
        ("lstm", {}, "LSTM", 1),
        ("gru", {}, "GRU", 1),
        ("simple_rnn", {}, "RNN", 1),
        ("lstm", {"masking": True, "bidirectional": True}, "LSTM", 2),
        ("gru", {"masking": True, "num_layers": 2}, "GRU", 2),
    ],
)
def test_sequence_exports_pass_the_preflight_with_batch_and_time_ranged(
    exported, name, options, op, count
):
    onnx_path = exported(name, **options)
    profiles = derive_profiles(onnx_path, [1, 8, 32], [8, 64, 256])
    report = preflight(onnx_path, profiles=profiles)
    assert report.ok, report.format_table()
    assert report.op_counts.get(op) == count  # fused operators (one per direction pair)
    [profile] = trt_convert.polygraphy_profiles(profiles)
    assert list(profile["sequence"]) == [(1, 8, 10), (8, 64, 10), (32, 256, 10)]


def test_sidecar_records_what_polygraphy_does_not(exported, tmp_path):
    onnx_path = exported("cnn")
    fp16 = quantize_fp16(onnx_path, tmp_path / "cnn.fp16.onnx")
    profiles = derive_profiles(fp16, [1, 8, 32])
    meta = trt_convert.engine_sidecar(
        fp16,
        profiles,
        tensorrt_version="10.15.1",
        gpu="NVIDIA H200",
        build_seconds=12.345,
        timing_cache=tmp_path / "trt.cache",
    )
    assert meta["onnx_sha256"] == hashlib.sha256(fp16.read_bytes()).hexdigest()
    assert meta["precision"] == "fp16" and meta["strongly_typed"] is True
    assert (meta["tensorrt_version"], meta["gpu"], meta["build_seconds"]) == (
        "10.15.1",
        "NVIDIA H200",
        12.35,
    )
    assert meta["profiles"] == {
        "image": {"min": [1, 28, 28, 1], "opt": [8, 28, 28, 1], "max": [32, 28, 28, 1]}
    }
    assert meta["timing_cache"].endswith("trt.cache") and meta["built_at"].endswith("+00:00")
    assert json.loads(json.dumps(meta)) == meta
    fp32_meta = trt_convert.engine_sidecar(
        onnx_path, profiles, tensorrt_version="11.0", gpu="x", build_seconds=0
    )
    assert fp32_meta["precision"] == "fp32" and fp32_meta["timing_cache"] is None


def test_is_available_says_why_not_in_one_line():
    reason = _unavailable()
    assert INSTALL_HINT in reason and "\n" not in reason


def test_export_without_tensorrt_is_one_line_and_writes_nothing(exported, tmp_path):
    _unavailable()
    out = tmp_path / "out"
    with pytest.raises(RuntimeError) as info:
        trt_convert.export_tensorrt(exported("cnn"), out / "cnn.engine", timing_cache=out / "c")
    assert INSTALL_HINT in str(info.value) and "\n" not in str(info.value)
    assert not out.exists() or not list(out.iterdir())


def test_preflight_errors_stop_the_build_before_tensorrt(tmp_path):
    onnx_path = graphs.save(graphs.with_unsupported_op(), tmp_path / "det.onnx")
    with pytest.raises(ValueError) as info:
        trt_convert.export_tensorrt(onnx_path, tmp_path / "det.engine")
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("det.onnx fails the TensorRT 10 preflight with 1 error(s)")
    assert "'Det' is not supported" in message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["det.onnx"]


def test_unranged_dynamic_dim_is_a_preflight_error(tmp_path):
    model = graphs.lstm()
    model.graph.input[0].type.tensor_type.shape.dim[2].dim_param = "features"
    onnx_path = graphs.save(model, tmp_path / "lstm.onnx")
    with pytest.raises(ValueError, match="is dynamic and has no min/opt/max range"):
        trt_convert.export_tensorrt(onnx_path, tmp_path / "lstm.engine", seq_lens=(2, 4))


def test_runner_errors_without_an_engine_or_tensorrt(tmp_path):
    with pytest.raises(ValueError, match="TensorRT engine not found. Received: "):
        trt_convert.TensorRTRunner(tmp_path / "missing.engine")
    _unavailable()
    engine = tmp_path / "m.engine"
    engine.write_bytes(b"not an engine")
    with pytest.raises(RuntimeError, match=r"pip install kerazoo\[tensorrt\]"):
        trt_convert.TensorRTRunner(engine)


def test_polygraphy_log_is_silenced_and_errors_are_kept(capsys):
    from polygraphy.logger import G_LOGGER

    before = (str(G_LOGGER.module_severity), G_LOGGER.use_python_logging_system)
    with trt_convert.polygraphy_logging() as errors:
        G_LOGGER.info("an info line")
        G_LOGGER.warning("a warning line")
        G_LOGGER.error("In node 3 (importLSTM): UNSUPPORTED_NODE\nsecond line")
        with pytest.raises(Exception, match="Could not parse ONNX correctly"):
            G_LOGGER.critical("Could not parse ONNX correctly")
    assert errors == ["In node 3 (importLSTM): UNSUPPORTED_NODE", "Could not parse ONNX correctly"]
    assert capsys.readouterr() == ("", "")
    assert (str(G_LOGGER.module_severity), G_LOGGER.use_python_logging_system) == before

    with trt_convert.polygraphy_logging(verbose=True):
        G_LOGGER.info("shown when verbose")
    assert "[I] shown when verbose" in capsys.readouterr().err


def test_the_polygraphy_api_we_call_is_there():
    """Guards the keyword arguments we pass against changes in the installed Polygraphy."""
    from polygraphy.backend.common import BytesFromPath
    from polygraphy.backend.trt import (
        CreateConfig,
        EngineBytesFromNetwork,
        EngineFromBytes,
        NetworkFromOnnxPath,
        TrtRunner,
        get_trt_logger,
    )
    from polygraphy.exception import PolygraphyException

    def params(obj):
        return set(inspect.signature(obj).parameters)

    assert {"path", "strongly_typed"} <= params(NetworkFromOnnxPath)
    with trt_convert.polygraphy_logging():  # CreateConfig logs an [I] line about TF32
        config = CreateConfig(profiles=["p"], load_timing_cache="t.cache")  # **kwargs in 0.53
    assert (config.profiles, config.timing_cache_path) == (["p"], "t.cache")
    assert {"network", "config", "save_timing_cache"} <= params(EngineBytesFromNetwork)
    assert {"serialized_engine"} <= params(EngineFromBytes)
    assert {"engine"} <= params(TrtRunner)
    assert {"feed_dict", "check_inputs"} <= params(TrtRunner.infer)
    assert callable(BytesFromPath) and callable(get_trt_logger)
    assert issubclass(PolygraphyException, Exception)


def test_atomic_write_replaces_without_leftovers(tmp_path):
    target = tmp_path / "model.engine"
    trt_convert._atomic_write(target, b"one")
    trt_convert._atomic_write(target, b"two")
    assert target.read_bytes() == b"two"
    assert [p.name for p in tmp_path.iterdir()] == ["model.engine"]


def test_tftrt_is_unavailable_on_this_tensorflow(tmp_path):
    tf = pytest.importorskip("tensorflow")
    if tf.sysconfig.get_build_info().get("is_tensorrt_build"):
        pytest.skip("this TensorFlow was built with TensorRT")
    ok, reason = tftrt.tftrt_available()
    assert not ok
    assert "TF-TRT was removed after TF 2.17" in reason and "--to tensorrt" in reason
    version = ".".join(tf.__version__.split(".")[:2])
    with pytest.raises(ValueError, match=f"not in this TensorFlow \\({version};"):
        tftrt.convert_tftrt(tmp_path, tmp_path / "out")


def test_tftrt_validates_precision(tmp_path):
    with pytest.raises(ValueError, match="Received: precision='int4'"):
        tftrt.convert_tftrt(tmp_path, tmp_path / "out", precision="int4")
    with pytest.raises(ValueError, match="needs calibration_input_fn"):
        tftrt.convert_tftrt(tmp_path, tmp_path / "out", precision="int8")


# --------------------------------------------------------------------------- GPU

# label -> (zoo model, options): the reference models, plus masked/bidirectional/stacked
# recurrent exports, which feed `sequence_lens` to the fused operators.
REFERENCE_MODELS = {
    "cnn": ("cnn", {}),
    "simple_rnn": ("simple_rnn", {}),
    "lstm": ("lstm", {}),
    "gru": ("gru", {}),
    "vgg16_flatten": ("vgg16_flatten", {"input_shape": (32, 32, 3)}),
    "lstm_masked_bidirectional": ("lstm", {"masking": True, "bidirectional": True}),
    "gru_masked_stacked": ("gru", {"masking": True, "num_layers": 2}),
}
BATCHES, SEQ_LENS = (1, 4, 8), (4, 16, 32)


@pytest.fixture(scope="module")
def tensorrt_gpu():
    ok, reason = trt_convert.is_available()
    if not ok:
        pytest.skip(reason)


def _batch(name: str, shape, batch: int, steps: int, rng) -> np.ndarray:
    """Inputs in each model's range: raw RGB pixels for VGG, unit values otherwise; in
    sequences every other row ends in masked (all-zero) steps."""
    dims = [batch, *(steps if d is None else d for d in shape)]
    high = 255.0 if name.startswith("vgg") else 1.0
    x = rng.uniform(0, high, size=dims).astype(np.float32)
    if shape[0] is None:
        x[1::2, -max(1, steps // 4) :] = 0.0
    return x


def _onnx_for(exported, tmp_path, label: str, precision: str):
    name, options = REFERENCE_MODELS[label]
    shape = options.get("input_shape", zoo.model_info(name).input_shape)
    fp32 = exported(name, **options)
    if precision == "fp32":
        return fp32, shape
    if precision == "fp16":
        return quantize_fp16(fp32, tmp_path / f"{label}.fp16.onnx"), shape
    calib = _batch(name, shape, 64, SEQ_LENS[1], np.random.default_rng(0))
    return quantize_int8(fp32, tmp_path / f"{label}.int8.onnx", calib, symmetric=True), shape


# Probabilities (softmax/sigmoid outputs) of TensorRT and ONNX Runtime on the same ONNX file.
ATOL = {"fp32": 1e-3, "fp16": 2e-2, "int8": 1e-1}


def _top1(y: np.ndarray) -> np.ndarray:
    """Predicted class: argmax, or > 0.5 for a single sigmoid output."""
    return (y[:, 0] > 0.5).astype(int) if y.shape[-1] == 1 else y.argmax(-1)


def _run_both(runner, session, name, shape, rng) -> tuple[np.ndarray, np.ndarray]:
    """Both profile ends and opt (batch and time), then 8 batches at opt: 77 samples."""
    runs = [*zip(BATCHES, SEQ_LENS, strict=True), *[(BATCHES[-1], SEQ_LENS[1])] * 8]
    got, want = [], []
    for batch, steps in runs:
        x = _batch(name, shape, batch, steps, rng)
        got.append(runner.run(x)[0])
        want.append(session.run(None, {runner.input_name: x})[0])
        assert got[-1].shape == want[-1].shape and np.isfinite(got[-1]).all()
    return np.concatenate(got), np.concatenate(want)


@pytest.mark.gpu
@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
@pytest.mark.parametrize("label", list(REFERENCE_MODELS))
def test_engine_matches_onnxruntime(tensorrt_gpu, exported, tmp_path, label, precision):
    onnx_path, shape = _onnx_for(exported, tmp_path, label, precision)
    name = REFERENCE_MODELS[label][0]
    engine = trt_convert.export_tensorrt(
        onnx_path,
        tmp_path / f"{label}.{precision}.engine",
        batch_sizes=BATCHES,
        seq_lens=SEQ_LENS,
        timing_cache=tmp_path / "timing.cache",
    )
    meta = json.loads(engine.with_name(engine.name + ".json").read_text())
    assert meta["precision"] == precision
    assert meta["onnx_sha256"] == hashlib.sha256(onnx_path.read_bytes()).hexdigest()
    assert (tmp_path / "timing.cache").stat().st_size > 0

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(1)
    with trt_convert.TensorRTRunner(engine) as runner:
        assert runner.input_name == session.get_inputs()[0].name
        assert runner.output_names == [o.name for o in session.get_outputs()]
        assert runner.input_shape[0] is None and runner.runtime == "tensorrt"
        got, want = _run_both(runner, session, name, shape, rng)
        with pytest.raises(ValueError, match="within the engine's profile"):
            runner.run(_batch(name, shape, BATCHES[-1] + 1, SEQ_LENS[1], rng))
    if precision == "fp32":
        np.testing.assert_allclose(got, want, rtol=1e-3, atol=ATOL["fp32"])
    else:
        # Untrained models give near-ties, which fp16/int8 rounding may flip: top-1 agreement
        # on at least 90% of 77 samples, and every probability within a loose bound.
        agreement = float(np.mean(_top1(got) == _top1(want)))
        assert agreement >= 0.9, f"top-1 agreement {agreement:.2f}"
        np.testing.assert_allclose(got, want, rtol=0, atol=ATOL[precision])


@pytest.mark.gpu
def test_engine_tensorrt_rejects_is_a_one_line_error(tensorrt_gpu, tmp_path):
    from onnx import TensorProto, helper

    # Passes onnx.checker and the preflight, but a static [2, 3] cannot be reshaped to [7].
    shape = helper.make_tensor("shape", TensorProto.INT64, [1], [7])
    node = helper.make_node("Reshape", ["x", "shape"], ["y"], name="reshape")
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [7])
    onnx_path = graphs.save(graphs._model([node], [x], [y], [shape]), tmp_path / "bad.onnx")
    with pytest.raises((ValueError, RuntimeError), match=r"^TensorRT \S+ could not") as info:
        trt_convert.export_tensorrt(onnx_path, tmp_path / "bad.engine")
    assert "\n" not in str(info.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.onnx"]
