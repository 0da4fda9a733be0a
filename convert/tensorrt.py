"""Build and run TensorRT engines from ONNX files (TensorRT 10.x and 11.x, one code path).

Networks are strongly typed: the ONNX file decides precision (FP16 casts, Q/DQ nodes), never a
builder flag. TensorRT 11 removed `BuilderFlag.FP16`/`INT8` and the INT8 calibrators, and makes
every network strongly typed; on 10.x the `STRONGLY_TYPED` creation flag gives the same behaviour.
`tensorrt` (and `cuda-python` or a CUDA build of `torch` for `TensorRTRunner`) is imported only
inside the functions, so this module imports fine on CPU-only machines.

Example:

```python
from convert.tensorrt import TensorRTRunner, build_engine

meta = build_engine("model.onnx", "model.engine", batch_sizes=(1, 8, 32))
runner = TensorRTRunner("model.engine")
outputs = runner.run({runner.input_names[0]: batch})
```
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from convert.preflight import derive_profiles, detect_precision, load_onnx, preflight

_INSTALL_HINT = (
    "TensorRT is not installed (pip install kerazoo[tensorrt] on a machine with an NVIDIA GPU "
    "and CUDA)"
)


class TensorRTUnavailableError(RuntimeError):
    """TensorRT, a CUDA GPU or a device-memory library is missing on this machine."""


class TensorRTBuildError(RuntimeError):
    """The ONNX parser or the engine builder rejected the model."""


class PreflightError(ValueError):
    """The CPU preflight found errors, so no build was attempted; `.report` has the details."""

    def __init__(self, message: str, report: Any):
        super().__init__(message)
        self.report = report


# --------------------------------------------------------------------------- environment


def _import_tensorrt() -> Any:
    try:
        import tensorrt as trt
    except ImportError as exc:
        raise TensorRTUnavailableError(f"{_INSTALL_HINT}; import failed: {exc}") from None
    major = int(str(trt.__version__).split(".")[0])
    if major < 10:
        raise TensorRTUnavailableError(
            "TensorRT 10.x or 11.x is required (name-based tensor API, strong typing); "
            f"pip install 'tensorrt>=10,<12'. Received: tensorrt {trt.__version__}"
        )
    return trt


def _gpu_info() -> dict[str, str] | None:
    """Name and compute capability of GPU 0 via torch, cuda-python or nvidia-smi; None if none."""
    with contextlib.suppress(Exception):
        import torch

        if torch.cuda.is_available():
            major, minor = torch.cuda.get_device_capability(0)
            return {
                "name": torch.cuda.get_device_name(0),
                "compute_capability": f"{major}.{minor}",
                "source": "torch",
            }
    with contextlib.suppress(Exception):
        cudart = _import_cudart()
        err, count = cudart.cudaGetDeviceCount()
        if err == cudart.cudaError_t.cudaSuccess and count > 0:
            err, props = cudart.cudaGetDeviceProperties(0)
            name = props.name.decode() if isinstance(props.name, bytes) else str(props.name)
            return {
                "name": name.rstrip("\x00"),
                "compute_capability": f"{props.major}.{props.minor}",
                "source": "cuda-python",
            }
    if shutil.which("nvidia-smi"):
        with contextlib.suppress(Exception):
            out = subprocess.run(
                ["nvidia-smi", "--query-gpu=name,compute_cap", "--format=csv,noheader"],
                capture_output=True,
                text=True,
                timeout=20,
                check=True,
            ).stdout.strip()
            if out:
                name, cap = (part.strip() for part in out.splitlines()[0].rsplit(",", 1))
                return {"name": name, "compute_capability": cap, "source": "nvidia-smi"}
    return None


def _import_cudart() -> Any:
    try:  # cuda-python >= 12.6 layout
        from cuda.bindings import runtime as cudart
    except ImportError:
        from cuda import cudart
    return cudart


def _require_environment() -> tuple[Any, dict[str, str]]:
    trt = _import_tensorrt()
    gpu = _gpu_info()
    if gpu is None:
        raise TensorRTUnavailableError(
            f"TensorRT {trt.__version__} is installed but no CUDA GPU is visible (checked torch, "
            "cuda-python and nvidia-smi); build and run engines on a machine with an NVIDIA GPU, "
            "and check CUDA_VISIBLE_DEVICES and the driver."
        )
    return trt, gpu


def is_available() -> tuple[bool, str]:
    """Whether engines can be built here, with the reason.

    Example:

    ```python
    ok, reason = is_available()  # (False, "TensorRT is not installed (...)")
    ```
    """
    try:
        trt, gpu = _require_environment()
    except TensorRTUnavailableError as exc:
        return False, str(exc)
    return True, f"TensorRT {trt.__version__} on {gpu['name']} (sm {gpu['compute_capability']})"


# --------------------------------------------------------------------------- build


def build_engine(
    onnx_path: str | os.PathLike,
    engine_path: str | os.PathLike,
    *,
    batch_sizes: Sequence[int] = (1, 8, 32),
    seq_lens: Sequence[int] | None = None,
    workspace_mb: int = 1024,
    timing_cache: str | os.PathLike | None = None,
    progress: bool = True,
    profiles: dict[str, tuple] | None = None,
) -> dict[str, Any]:
    """Builds a strongly typed TensorRT engine from an ONNX file and writes a JSON sidecar.

    Args:
        onnx_path: the ONNX model; its precision (FP32, FP16 casts, Q/DQ INT8) is kept as is.
        engine_path: where to write the serialized engine; `<engine_path>.json` gets the sidecar.
        batch_sizes: batch sizes to serve; the profile spans min..max with opt at the median.
            Defaults to (1, 8, 32).
        seq_lens: sequence lengths for dim 1 of rank-2/3 inputs, when dynamic. Defaults to None.
        workspace_mb: builder workspace limit in MiB. Defaults to 1024.
        timing_cache: a timing-cache file, loaded if present and written back after the build,
            which makes rebuilds on the same GPU and TensorRT version much faster. Defaults to
            None (no file).
        progress: print build phases to stderr. Defaults to True.
        profiles: explicit {input: (min, opt, max)} shapes, for inputs whose dynamic dims
            `derive_profiles` has no rule for (e.g. image height/width). Defaults to None
            (derived from batch_sizes and seq_lens).

    Returns:
        The sidecar dict: TensorRT version, GPU, precision, profiles, I/O tensors, ONNX sha256.

    Example:

    ```python
    meta = build_engine("model.onnx", "model.engine", batch_sizes=(1, 16), timing_cache="trt.cache")
    print(meta["precision"], meta["profiles"])
    ```
    """
    if not isinstance(workspace_mb, int) or workspace_mb <= 0:
        raise ValueError(f"workspace_mb should be a positive int. Received: {workspace_mb!r}")
    onnx_path, engine_path = Path(onnx_path), Path(engine_path)
    model = load_onnx(onnx_path)
    if profiles is None:
        seqs = None if seq_lens is None else list(seq_lens)
        profiles = derive_profiles(model, list(batch_sizes), seqs)

    trt, gpu = _require_environment()
    major = str(trt.__version__).split(".")[0]
    # The bundled operator table covers 10.x and 11.x; a newer TensorRT is checked as 11.x.
    report = preflight(onnx_path, profiles=profiles, trt_version=major if major == "10" else "11")
    if not report.ok:
        raise PreflightError(
            f"{onnx_path} fails the TensorRT {major} preflight with {len(report.errors)} "
            f"error(s); nothing was built. Fix them and retry:\n{report.format_table()}",
            report,
        )

    started = time.monotonic()
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(_network_flags(trt))
    parser = trt.OnnxParser(network, logger)
    # parse_from_file resolves external weight files relative to the model's directory.
    if not parser.parse_from_file(str(onnx_path)):
        errors = [_format_parser_error(parser.get_error(i)) for i in range(parser.num_errors)]
        raise TensorRTBuildError(
            f"TensorRT {trt.__version__}'s ONNX parser rejected {onnx_path} with {len(errors)} "
            "error(s):\n" + "\n".join(f"  - {e}" for e in errors)
        )

    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_mb << 20)
    used_profiles = _add_profile(builder, network, config, profiles)
    cache = _attach_timing_cache(config, timing_cache)
    if progress and hasattr(trt, "IProgressMonitor"):
        monitor = _progress_monitor(trt)
        config.progress_monitor = monitor  # kept referenced until the build returns

    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise TensorRTBuildError(
            f"TensorRT {trt.__version__} could not build an engine from {onnx_path}; the "
            "builder's log above names the failing layer. A larger workspace_mb sometimes helps."
        )
    engine_path.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write(engine_path, bytes(serialized))
    if timing_cache is not None:
        # The builder adds what it timed to the attached cache; save it for the next build.
        attached = config.get_timing_cache() if hasattr(config, "get_timing_cache") else None
        _atomic_write(Path(timing_cache), bytes((attached or cache).serialize()))

    sidecar = {
        "format": "kerazoo-tensorrt-engine/1",
        "engine": engine_path.name,
        "onnx": str(onnx_path),
        "onnx_sha256": _sha256(onnx_path),
        "tensorrt_version": str(trt.__version__),
        "gpu": gpu,
        "precision": detect_precision(model),
        "strongly_typed": True,
        "profiles": {
            name: {"min": list(lo), "opt": list(opt), "max": list(hi)}
            for name, (lo, opt, hi) in used_profiles.items()
        },
        "inputs": [_tensor_meta(network.get_input(i)) for i in range(network.num_inputs)],
        "outputs": [_tensor_meta(network.get_output(i)) for i in range(network.num_outputs)],
        "workspace_mb": workspace_mb,
        "timing_cache": None if timing_cache is None else str(timing_cache),
        "preflight_warnings": len(report.warnings),
        "build_seconds": round(time.monotonic() - started, 2),
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),  # noqa: UP017 (3.10)
    }
    sidecar_path = engine_path.with_name(engine_path.name + ".json")
    _atomic_write(sidecar_path, (json.dumps(sidecar, indent=2) + "\n").encode("utf-8"))
    return sidecar


def _network_flags(trt: Any) -> int:
    # Required for strong typing on 10.x; accepted and ignored on 11.x, where it is always on.
    flag = getattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)
    return 0 if flag is None else 1 << int(flag)


def _format_parser_error(error: Any) -> str:
    parts = [str(error.desc())]
    node_name = getattr(error, "node_name", None)
    node_op = getattr(error, "node_operator", None)
    where = [x() for x in (node_name, node_op) if callable(x)]
    if any(where):
        parts.append(f"(node {' '.join(w for w in where if w)})")
    elif callable(getattr(error, "node", None)) and error.node() >= 0:
        parts.append(f"(node #{error.node()})")
    parts.append(f"[{error.code()}]")
    return " ".join(parts)


def _add_profile(builder: Any, network: Any, config: Any, profiles: dict) -> dict[str, tuple]:
    """One optimization profile covering every input that has a dynamic dim."""
    profile = builder.create_optimization_profile()
    used = {}
    for i in range(network.num_inputs):
        tensor = network.get_input(i)
        if all(d >= 0 for d in tensor.shape):
            continue
        lo, opt, hi = profiles[tensor.name]  # preflight guaranteed a full range
        profile.set_shape(tensor.name, lo, opt, hi)
        used[tensor.name] = (lo, opt, hi)
    if used:
        config.add_optimization_profile(profile)
    return used


def _attach_timing_cache(config: Any, timing_cache: str | os.PathLike | None) -> Any:
    blob = b""
    if timing_cache is not None and Path(timing_cache).is_file():
        blob = Path(timing_cache).read_bytes()
    cache = None
    with contextlib.suppress(Exception):
        cache = config.create_timing_cache(blob)
    # A cache from another TensorRT version or GPU is rejected; start from an empty one then.
    if cache is None or not config.set_timing_cache(cache, False):
        if timing_cache is not None:
            print(f"[tensorrt] ignoring incompatible timing cache {timing_cache}", file=sys.stderr)
        cache = config.create_timing_cache(b"")
        config.set_timing_cache(cache, False)
    return cache


def _progress_monitor(trt: Any) -> Any:
    class _Progress(trt.IProgressMonitor):
        """Prints top-level build phases with their durations."""

        def __init__(self) -> None:
            trt.IProgressMonitor.__init__(self)
            self._started: dict[str, float] = {}

        def phase_start(self, phase_name: str, parent_phase: str | None, num_steps: int) -> None:
            if parent_phase is None:
                self._started[phase_name] = time.monotonic()
                print(f"[tensorrt] {phase_name} ({num_steps} steps)", file=sys.stderr)

        def step_complete(self, phase_name: str, step: int) -> bool:
            return True  # returning False would cancel the build

        def phase_finish(self, phase_name: str) -> None:
            if phase_name in self._started:
                took = time.monotonic() - self._started.pop(phase_name)
                print(f"[tensorrt] {phase_name} done in {took:.1f}s", file=sys.stderr)

    return _Progress()


def _tensor_meta(tensor: Any) -> dict[str, Any]:
    dtype = getattr(tensor.dtype, "name", str(tensor.dtype))
    return {"name": tensor.name, "shape": list(tensor.shape), "dtype": dtype}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _atomic_write(path: Path, data: bytes) -> None:
    """Writes next to `path`, then renames, so readers never see a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


# --------------------------------------------------------------------------- runtime


class TensorRTRunner:
    """Runs a serialized engine on numpy inputs with the TensorRT 10+ name-based tensor API.

    `input_names`, `output_names` and `input_shapes` ({name: shape, -1 for dynamic dims})
    describe the engine's I/O.

    Device memory comes from a CUDA build of torch when importable, else from cuda-python
    (installed by `pip install kerazoo[tensorrt]`).

    Example:

    ```python
    runner = TensorRTRunner("model.engine")
    out = runner.run({"input": np.zeros((8, 224, 224, 3), np.float32)})
    probs = out[runner.output_names[0]]
    ```
    """

    def __init__(self, engine_path: str | os.PathLike):
        trt, _ = _require_environment()
        self._trt = trt
        self._memory = _device_memory()
        path = Path(engine_path)
        if not path.is_file():
            raise ValueError(f"TensorRT engine not found: {path}")
        self._logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(self._logger)
        self._engine = self._runtime.deserialize_cuda_engine(path.read_bytes())
        if self._engine is None:
            raise ValueError(
                f"{path} is not an engine this TensorRT ({trt.__version__}) and GPU can load; "
                "engines are tied to the TensorRT version and GPU that built them. Rebuild it "
                "with build_engine."
            )
        self._context = self._engine.create_execution_context()
        names = [self._engine.get_tensor_name(i) for i in range(self._engine.num_io_tensors)]
        is_input = {n: self._engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT for n in names}
        self.input_names = [n for n in names if is_input[n]]
        self.output_names = [n for n in names if not is_input[n]]
        # Engine-level shapes: -1 marks a dim that the optimization profile ranges over.
        self.input_shapes = {
            n: tuple(int(d) for d in self._engine.get_tensor_shape(n)) for n in self.input_names
        }

    def _np_dtype(self, name: str) -> np.dtype:
        trt_dtype = self._engine.get_tensor_dtype(name)
        try:
            return np.dtype(self._trt.nptype(trt_dtype))
        except (TypeError, KeyError):
            raise ValueError(
                f"Tensor '{name}' has type {trt_dtype}, which numpy cannot hold (e.g. bfloat16); "
                "keep the model's inputs and outputs in float32 or float16."
            ) from None

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Runs one batch; returns {output name: numpy array}."""
        missing = [n for n in self.input_names if n not in feeds]
        extra = [n for n in feeds if n not in self.input_names]
        if missing or extra:
            raise ValueError(
                f"feeds should have exactly the inputs {self.input_names}. "
                f"Received: {sorted(feeds)}"
            )
        buffers: list[Any] = []  # device memory, freed after the run whatever happens
        try:
            for name in self.input_names:
                host = np.ascontiguousarray(feeds[name], dtype=self._np_dtype(name))
                if not self._context.set_input_shape(name, host.shape):
                    lo, opt, hi = self._engine.get_tensor_profile_shape(name, 0)
                    raise ValueError(
                        f"Input '{name}' shape should lie within the engine's profile "
                        f"min={tuple(lo)}, max={tuple(hi)} (opt={tuple(opt)}). "
                        f"Received: {host.shape}"
                    )
                buffers.append(self._memory.upload(host))
                self._context.set_tensor_address(name, self._memory.address(buffers[-1]))
            outputs = {}
            for name in self.output_names:
                shape = tuple(self._context.get_tensor_shape(name))
                if any(d < 0 for d in shape):
                    raise RuntimeError(
                        f"Output '{name}' has a data-dependent shape {shape}; TensorRTRunner "
                        "supports outputs whose shape follows from the input shapes only."
                    )
                outputs[name] = self._memory.empty(shape, self._np_dtype(name))
                buffers.append(outputs[name])
                self._context.set_tensor_address(name, self._memory.address(outputs[name]))
            if not self._context.execute_async_v3(self._memory.stream_handle()):
                raise RuntimeError("TensorRT execute_async_v3 failed; see the TensorRT log above.")
            self._memory.synchronize()
            return {name: self._memory.download(buf) for name, buf in outputs.items()}
        finally:
            self._memory.release(buffers)


def _device_memory() -> Any:
    with contextlib.suppress(ImportError):
        import torch

        if torch.cuda.is_available():
            return _TorchMemory(torch)
    try:
        return _CudaPythonMemory(_import_cudart())
    except ImportError:
        raise TensorRTUnavailableError(
            "TensorRTRunner needs device memory from cuda-python (pip install kerazoo[tensorrt] "
            "installs it) or a CUDA build of torch; neither is importable."
        ) from None


class _TorchMemory:
    """Device buffers as torch CUDA tensors, on torch's current stream."""

    def __init__(self, torch: Any):
        self.torch = torch

    def upload(self, host: np.ndarray) -> Any:
        return self.torch.from_numpy(host).to("cuda")

    def empty(self, shape: tuple[int, ...], dtype: np.dtype) -> Any:
        torch_dtype = self.torch.from_numpy(np.empty(0, dtype=dtype)).dtype
        return self.torch.empty(shape, dtype=torch_dtype, device="cuda")

    def address(self, buffer: Any) -> int:
        return buffer.data_ptr()

    def stream_handle(self) -> int:
        return self.torch.cuda.current_stream().cuda_stream

    def synchronize(self) -> None:
        self.torch.cuda.current_stream().synchronize()

    def download(self, buffer: Any) -> np.ndarray:
        return buffer.cpu().numpy()

    def release(self, buffers: list) -> None:
        buffers.clear()


class _CudaPythonMemory:
    """Device buffers from cudaMalloc, copied on one private stream."""

    def __init__(self, cudart: Any):
        self.cudart = cudart
        self.stream = self._check(cudart.cudaStreamCreate())
        self._hosts: list[np.ndarray] = []  # pinned by reference until synchronize()

    def _check(self, result: tuple) -> Any:
        err, *rest = result
        if err != self.cudart.cudaError_t.cudaSuccess:
            raise RuntimeError(f"CUDA runtime error: {self.cudart.cudaGetErrorString(err)[1]}")
        return rest[0] if rest else None

    def upload(self, host: np.ndarray) -> tuple[int, tuple, np.dtype]:
        ptr = int(self._check(self.cudart.cudaMalloc(max(host.nbytes, 1))))
        kind = self.cudart.cudaMemcpyKind.cudaMemcpyHostToDevice
        self._check(
            self.cudart.cudaMemcpyAsync(ptr, host.ctypes.data, host.nbytes, kind, self.stream)
        )
        self._hosts.append(host)
        return ptr, host.shape, host.dtype

    def empty(self, shape: tuple[int, ...], dtype: np.dtype) -> tuple[int, tuple, np.dtype]:
        nbytes = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
        return int(self._check(self.cudart.cudaMalloc(max(nbytes, 1)))), shape, np.dtype(dtype)

    def address(self, buffer: tuple) -> int:
        return buffer[0]

    def stream_handle(self) -> int:
        return int(self.stream)

    def synchronize(self) -> None:
        self._check(self.cudart.cudaStreamSynchronize(self.stream))
        self._hosts.clear()

    def download(self, buffer: tuple) -> np.ndarray:
        ptr, shape, dtype = buffer
        host = np.empty(shape, dtype=dtype)
        kind = self.cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
        self._check(self.cudart.cudaMemcpy(host.ctypes.data, ptr, host.nbytes, kind))
        return host

    def release(self, buffers: list) -> None:
        for ptr, _, _ in buffers:
            self._check(self.cudart.cudaFree(ptr))
