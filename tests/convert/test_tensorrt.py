"""TensorRT engine building/running and TF-TRT.

The CPU tests check the clear errors where TensorRT, a GPU or TF-TRT is missing. The `gpu` tests
build real engines from tiny ONNX graphs (fp32, fp16 casts, Q/DQ int8) and compare them with
onnxruntime; they skip cleanly without TensorRT, a CUDA GPU or a device-memory library.
"""

from __future__ import annotations

import enum
import hashlib
import importlib.util
import json
import sys
import types

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from convert import tensorrt as trt_convert
from convert import tftrt
from tests.convert import onnx_graphs as graphs

INSTALL_MESSAGE = "TensorRT is not installed (pip install kerazoo[tensorrt]"


@pytest.fixture
def no_tensorrt(monkeypatch):
    """Makes `import tensorrt` fail even where TensorRT is installed."""
    monkeypatch.setitem(sys.modules, "tensorrt", None)


@pytest.fixture
def fake_tensorrt(monkeypatch):
    """A stand-in `tensorrt` module that has a version and nothing else."""

    def install(version: str = "10.15.1", gpu: dict | None = None) -> None:
        module = types.ModuleType("tensorrt")
        module.__version__ = version
        monkeypatch.setitem(sys.modules, "tensorrt", module)
        monkeypatch.setattr(trt_convert, "_gpu_info", lambda: gpu)

    return install


def test_build_engine_without_tensorrt_raises_install_hint(no_tensorrt, tmp_path):
    onnx_path = graphs.save(graphs.conv_matmul(), tmp_path / "m.onnx")
    with pytest.raises(trt_convert.TensorRTUnavailableError, match="import failed") as info:
        trt_convert.build_engine(onnx_path, tmp_path / "m.engine")
    message = str(info.value)
    assert message.startswith(INSTALL_MESSAGE) and "\n" not in message
    assert isinstance(info.value, RuntimeError)
    assert not (tmp_path / "m.engine").exists()


def test_runner_and_is_available_without_tensorrt(no_tensorrt, tmp_path):
    with pytest.raises(trt_convert.TensorRTUnavailableError, match="pip install kerazoo"):
        trt_convert.TensorRTRunner(tmp_path / "m.engine")
    ok, reason = trt_convert.is_available()
    assert not ok and reason.startswith(INSTALL_MESSAGE)


def test_no_visible_gpu_is_a_clear_error(fake_tensorrt, tmp_path):
    fake_tensorrt(gpu=None)
    onnx_path = graphs.save(graphs.conv_matmul(), tmp_path / "m.onnx")
    with pytest.raises(trt_convert.TensorRTUnavailableError, match="no CUDA GPU is visible"):
        trt_convert.build_engine(onnx_path, tmp_path / "m.engine")
    assert trt_convert.is_available()[0] is False


def test_tensorrt_older_than_10_is_rejected(fake_tensorrt):
    fake_tensorrt(version="8.6.1", gpu={"name": "X", "compute_capability": "8.6"})
    ok, reason = trt_convert.is_available()
    assert not ok and "Received: tensorrt 8.6.1" in reason


def test_preflight_errors_stop_the_build_before_tensorrt_is_used(fake_tensorrt, tmp_path):
    # The fake module has no Builder: reaching the build step would raise AttributeError.
    fake_tensorrt(gpu={"name": "Fake GPU", "compute_capability": "9.0", "source": "test"})
    onnx_path = graphs.save(graphs.with_custom_op(), tmp_path / "custom.onnx")
    with pytest.raises(trt_convert.PreflightError, match="fails the TensorRT 10 preflight") as info:
        trt_convert.build_engine(onnx_path, tmp_path / "custom.engine")
    assert "FancyGelu" in str(info.value)
    assert not info.value.report.ok
    assert not (tmp_path / "custom.engine").exists()


class _FakeTensorRT(types.ModuleType):
    """Just enough of the TensorRT 10/11 build API to drive `build_engine` on a CPU.

    It records what `build_engine` asks for (network flags, workspace, profile shapes) and
    refuses `set_flag`, since precision must come from the ONNX file, never a builder flag.
    """

    def __init__(self, parser_errors: list[str] | None = None):
        super().__init__("tensorrt")
        self.__version__ = "11.0.0"
        self.calls: dict[str, object] = {}
        fake = self

        class Logger:
            WARNING = 2

            def __init__(self, level):
                pass

        class Flag(enum.IntEnum):
            STRONGLY_TYPED = 0

        class Tensor:
            def __init__(self, name, shape, dtype="FLOAT"):
                self.name, self.shape = name, shape
                self.dtype = types.SimpleNamespace(name=dtype)

        class Network:
            def __init__(self):
                self.inputs, self.outputs = [], []
                self.num_inputs = self.num_outputs = 0

            def get_input(self, i):
                return self.inputs[i]

            def get_output(self, i):
                return self.outputs[i]

        class Parser:
            def __init__(self, network, logger):
                self.network = network
                self.num_errors = len(parser_errors or [])

            def parse_from_file(self, path):
                model = onnx.load(path)
                for vi, target in [(i, self.network.inputs) for i in model.graph.input] + [
                    (o, self.network.outputs) for o in model.graph.output
                ]:
                    dims = vi.type.tensor_type.shape.dim
                    shape = [d.dim_value if d.HasField("dim_value") else -1 for d in dims]
                    target.append(Tensor(vi.name, shape))
                self.network.num_inputs = len(self.network.inputs)
                self.network.num_outputs = len(self.network.outputs)
                return not parser_errors

            def get_error(self, i):
                return types.SimpleNamespace(
                    desc=lambda: parser_errors[i],
                    node_name=lambda: f"node{i}",
                    node_operator=lambda: "Op",
                    code=lambda: "UNSUPPORTED_NODE",
                )

        class Cache:
            def __init__(self, blob):
                self.blob = bytes(blob) + b"+"

            def serialize(self):
                return self.blob

        class Config:
            progress_monitor = None

            def set_memory_pool_limit(self, pool, size):
                fake.calls["workspace"] = (pool, size)

            def set_flag(self, flag):
                raise AssertionError(f"builder flag {flag} set; precision belongs in the ONNX")

            def add_optimization_profile(self, profile):
                fake.calls["profile"] = profile.shapes

            def create_timing_cache(self, blob):
                return Cache(blob)

            def set_timing_cache(self, cache, ignore_mismatch):
                fake.calls["timing_cache_in"] = cache.blob
                self.cache = cache
                return True

            def get_timing_cache(self):
                return self.cache

        class Profile:
            def __init__(self):
                self.shapes = {}

            def set_shape(self, name, lo, opt, hi):
                self.shapes[name] = (tuple(lo), tuple(opt), tuple(hi))

        class Builder:
            def __init__(self, logger):
                pass

            def create_network(self, flags):
                fake.calls["network_flags"] = flags
                return Network()

            def create_builder_config(self):
                return Config()

            def create_optimization_profile(self):
                return Profile()

            def build_serialized_network(self, network, config):
                return b"ENGINE"

        self.Logger, self.NetworkDefinitionCreationFlag, self.Builder = Logger, Flag, Builder
        self.OnnxParser = Parser
        self.MemoryPoolType = types.SimpleNamespace(WORKSPACE="workspace")


@pytest.fixture
def fake_build_api(monkeypatch):
    def install(parser_errors: list[str] | None = None) -> _FakeTensorRT:
        module = _FakeTensorRT(parser_errors)
        monkeypatch.setitem(sys.modules, "tensorrt", module)
        gpu = {"name": "Fake GPU", "compute_capability": "9.0", "source": "test"}
        monkeypatch.setattr(trt_convert, "_gpu_info", lambda: gpu)
        return module

    return install


def test_build_engine_drives_the_build_api_as_documented(fake_build_api, tmp_path):
    fake = fake_build_api()
    onnx_path = graphs.save(graphs.fp16_cast(), tmp_path / "m.onnx")
    cache = tmp_path / "timing.cache"
    cache.write_bytes(b"old")
    meta = trt_convert.build_engine(
        onnx_path, tmp_path / "out" / "m.engine", workspace_mb=64, timing_cache=cache
    )
    assert fake.calls["network_flags"] == 1  # 1 << STRONGLY_TYPED
    assert fake.calls["workspace"] == ("workspace", 64 << 20)
    assert fake.calls["profile"] == {"x": ((1, 16), (8, 16), (32, 16))}
    assert fake.calls["timing_cache_in"] == b"old+"  # the fake marks what it loaded with "+"
    assert cache.read_bytes() == b"old+"  # written back after the build
    assert (tmp_path / "out" / "m.engine").read_bytes() == b"ENGINE"
    assert json.loads((tmp_path / "out" / "m.engine.json").read_text()) == meta
    assert meta["precision"] == "fp16" and meta["tensorrt_version"] == "11.0.0"
    assert meta["inputs"] == [{"name": "x", "shape": [-1, 16], "dtype": "FLOAT"}]
    assert meta["profiles"] == {"x": {"min": [1, 16], "opt": [8, 16], "max": [32, 16]}}
    assert meta["onnx_sha256"] == hashlib.sha256(onnx_path.read_bytes()).hexdigest()


def test_every_parser_error_is_reported(fake_build_api, tmp_path):
    fake_build_api(parser_errors=["first problem", "second problem"])
    onnx_path = graphs.save(graphs.conv_matmul(), tmp_path / "m.onnx")
    with pytest.raises(trt_convert.TensorRTBuildError, match="with 2 error") as info:
        trt_convert.build_engine(onnx_path, tmp_path / "m.engine", progress=False)
    assert "first problem (node node0 Op)" in str(info.value)
    assert "second problem (node node1 Op)" in str(info.value)
    assert not (tmp_path / "m.engine").exists()


class _HostMemory:
    """Numpy stand-in for device memory: an "address" is the id of a host array."""

    def __init__(self):
        self.buffers: dict[int, np.ndarray] = {}

    def upload(self, host):
        buffer = host.copy()
        self.buffers[id(buffer)] = buffer
        return buffer

    def empty(self, shape, dtype):
        return self.upload(np.empty(shape, dtype))

    def address(self, buffer):
        return id(buffer)

    def stream_handle(self):
        return 0

    def synchronize(self):
        pass

    def download(self, buffer):
        return buffer.copy()

    def release(self, buffers):
        for b in buffers:
            self.buffers.pop(id(b))


def _fake_runtime_module(memory: _HostMemory) -> types.ModuleType:
    """An engine with input x[-1, 4] (batch 1..8) and output y = 2 * x."""
    module = types.ModuleType("tensorrt")
    module.__version__ = "10.15.1"
    module.Logger = type("Logger", (), {"WARNING": 2, "__init__": lambda self, level: None})
    module.TensorIOMode = types.SimpleNamespace(INPUT="in", OUTPUT="out")
    module.nptype = {"FLOAT": np.float32}.__getitem__

    class Context:
        def __init__(self):
            self.shape, self.addresses = None, {}

        def set_input_shape(self, name, shape):
            self.shape = tuple(shape)
            return len(shape) == 2 and 1 <= shape[0] <= 8 and shape[1] == 4

        def get_tensor_shape(self, name):
            return self.shape

        def set_tensor_address(self, name, address):
            self.addresses[name] = address

        def execute_async_v3(self, stream):
            x = memory.buffers[self.addresses["x"]]
            memory.buffers[self.addresses["y"]][...] = 2 * x
            return True

    class Engine:
        num_io_tensors = 2

        def get_tensor_name(self, i):
            return ["x", "y"][i]

        def get_tensor_mode(self, name):
            return "in" if name == "x" else "out"

        def get_tensor_dtype(self, name):
            return "FLOAT"

        def get_tensor_shape(self, name):
            return (-1, 4)

        def get_tensor_profile_shape(self, name, profile):
            return [(1, 4), (4, 4), (8, 4)]

        def create_execution_context(self):
            return Context()

    class Runtime:
        def __init__(self, logger):
            pass

        def deserialize_cuda_engine(self, blob):
            return Engine() if blob == b"ENGINE" else None

    module.Runtime = Runtime
    return module


def test_runner_binds_tensors_by_name(monkeypatch, tmp_path):
    memory = _HostMemory()
    monkeypatch.setitem(sys.modules, "tensorrt", _fake_runtime_module(memory))
    monkeypatch.setattr(
        trt_convert, "_gpu_info", lambda: {"name": "Fake", "compute_capability": "9.0"}
    )
    monkeypatch.setattr(trt_convert, "_device_memory", lambda: memory)
    engine = tmp_path / "m.engine"
    engine.write_bytes(b"ENGINE")
    runner = trt_convert.TensorRTRunner(engine)
    assert (runner.input_names, runner.output_names) == (["x"], ["y"])
    assert runner.input_shapes == {"x": (-1, 4)}
    x = np.arange(12, dtype=np.float64).reshape(3, 4)  # cast to the engine's float32
    out = runner.run({"x": x})
    assert out["y"].dtype == np.float32
    np.testing.assert_array_equal(out["y"], 2 * x)
    assert memory.buffers == {}  # device buffers released after each run
    with pytest.raises(ValueError, match=r"min=\(1, 4\), max=\(8, 4\).*Received: \(9, 4\)"):
        runner.run({"x": np.zeros((9, 4), np.float32)})
    with pytest.raises(ValueError, match="exactly the inputs"):
        runner.run({"x": x, "extra": x})
    (tmp_path / "bad.engine").write_bytes(b"junk")
    with pytest.raises(ValueError, match="Rebuild it with build_engine"):
        trt_convert.TensorRTRunner(tmp_path / "bad.engine")


def test_workspace_must_be_positive(tmp_path):
    with pytest.raises(ValueError, match="Received: 0"):
        trt_convert.build_engine(tmp_path / "m.onnx", tmp_path / "m.engine", workspace_mb=0)


def test_atomic_write_replaces_without_leftovers(tmp_path):
    target = tmp_path / "sub" / "model.engine"
    trt_convert._atomic_write(target, b"one")
    trt_convert._atomic_write(target, b"two")
    assert target.read_bytes() == b"two"
    assert [p.name for p in target.parent.iterdir()] == ["model.engine"]


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


@pytest.fixture(scope="module")
def tensorrt_gpu():
    pytest.importorskip("tensorrt")
    ok, reason = trt_convert.is_available()
    if not ok:
        pytest.skip(reason)
    if not (importlib.util.find_spec("cuda") or importlib.util.find_spec("torch")):
        pytest.skip("TensorRTRunner needs cuda-python or torch")


def _inputs(model, batch: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    feeds = {}
    for vi in model.graph.input:
        dims = [
            d.dim_value if d.HasField("dim_value") else batch for d in vi.type.tensor_type.shape.dim
        ]
        feeds[vi.name] = rng.uniform(-2, 2, size=dims).astype(np.float32)
    return feeds


@pytest.mark.gpu
@pytest.mark.parametrize(
    "builder, precision, tolerance",
    [
        (graphs.conv_matmul, "fp32", 1e-3),
        (graphs.fp16_cast, "fp16", 2e-2),
        (graphs.qdq_conv, "int8", 5e-2),
    ],
)
def test_engine_matches_onnxruntime(tensorrt_gpu, tmp_path, builder, precision, tolerance):
    model = builder()
    onnx_path = graphs.save(model, tmp_path / f"{precision}.onnx")
    engine_path = tmp_path / f"{precision}.engine"
    cache = tmp_path / "timing.cache"
    meta = trt_convert.build_engine(
        onnx_path, engine_path, batch_sizes=(1, 4, 8), timing_cache=cache, progress=False
    )

    sidecar = json.loads((tmp_path / f"{precision}.engine.json").read_text())
    assert sidecar == meta
    assert meta["precision"] == precision and meta["strongly_typed"] is True
    assert meta["onnx_sha256"] == hashlib.sha256(onnx_path.read_bytes()).hexdigest()
    assert meta["profiles"]["x"]["min"][0] == 1 and meta["profiles"]["x"]["max"][0] == 8
    assert meta["gpu"]["name"] and meta["tensorrt_version"]
    assert engine_path.stat().st_size > 0 and cache.stat().st_size > 0

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    runner = trt_convert.TensorRTRunner(engine_path)
    assert runner.input_names == ["x"] and runner.output_names == ["y"]
    assert runner.input_shapes["x"][0] == -1
    for batch in (1, 4, 8):  # both profile ends and the opt shape
        feeds = _inputs(model, batch)
        expected = session.run(None, feeds)[0]
        got = runner.run(feeds)["y"]
        assert got.shape == expected.shape
        np.testing.assert_allclose(got, expected, rtol=tolerance, atol=tolerance)
    with pytest.raises(ValueError, match="within the engine's profile"):
        runner.run(_inputs(model, 9))
