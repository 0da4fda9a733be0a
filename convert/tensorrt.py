"""TensorRT engines from ONNX files, built and run through NVIDIA's Polygraphy (TensorRT 10.x, 11.x).

Polygraphy (`polygraphy.backend.trt`) parses, configures, builds, deserializes and runs; this
module adds only what it lacks: profiles from our `--batch-sizes`/`--seq-lens`, the CPU
preflight before any GPU work, an atomic write of the engine, the JSON sidecar beside it, and
one-line errors. Networks are strongly typed: the ONNX file decides precision (fp16 casts, Q/DQ
int8), never a builder flag (TensorRT 11 has none). `tensorrt` and `polygraphy` are imported
inside the functions, so this module imports on machines without them.

Example:

```python
from convert.tensorrt import TensorRTRunner, export_tensorrt

engine = export_tensorrt("model.onnx", "model.engine", batch_sizes=(1, 8, 32))
with TensorRTRunner(engine) as runner:
    (probs,) = runner.run(batch)
```
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from convert.preflight import Profiles, derive_profiles, detect_precision, preflight

__all__ = [
    "TensorRTRunner",
    "engine_sidecar",
    "export_tensorrt",
    "is_available",
    "polygraphy_logging",
    "polygraphy_profiles",
]

_INSTALL_HINT = (
    "TensorRT is not installed (pip install kerazoo[tensorrt] on a machine with an NVIDIA GPU "
    "and CUDA)"
)
SIDECAR_FORMAT = "kerazoo-tensorrt-engine/2"


# --------------------------------------------------------------------------- environment


def _import_tensorrt() -> Any:
    """`tensorrt` (10.x or newer) once Polygraphy is importable; a one-line RuntimeError if not."""
    try:
        import polygraphy  # noqa: F401 (the [tensorrt] extra installs both)
        import tensorrt as trt
    except (ImportError, OSError) as exc:  # OSError: the wheel is there, a shared library is not
        raise RuntimeError(f"{_INSTALL_HINT}; import failed: {_first_line(str(exc))}") from None
    if int(str(trt.__version__).split(".")[0]) < 10:
        raise RuntimeError(
            "TensorRT 10.x or 11.x is required (name-based tensor API, strong typing); "
            f"pip install 'tensorrt>=10,<12'. Received: tensorrt {trt.__version__}"
        )
    return trt


def _require_gpu(trt: Any) -> None:
    """Creates (and drops) a TensorRT builder: it fails exactly when no usable CUDA GPU is visible."""
    from polygraphy.backend.trt import get_trt_logger

    with polygraphy_logging() as errors:
        try:
            builder = trt.Builder(get_trt_logger())
        except Exception as exc:  # pybind raises TypeError when the factory returns nullptr
            builder, errors = None, [*errors, _first_line(str(exc))]
    if builder is None:
        raise RuntimeError(
            f"TensorRT {trt.__version__} is installed but cannot create a builder, so no CUDA "
            "GPU is usable here (check the driver and CUDA_VISIBLE_DEVICES): "
            f"{_detail(errors, None)}"
        )


def _gpu_name() -> str:
    """Name of the first visible GPU from nvidia-smi, "unknown" where it cannot say."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "0").split(",")[0].strip() or "0"
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader", "-i", visible],
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.splitlines()[0].strip() if out else "unknown"


def is_available() -> tuple[bool, str]:
    """Whether engines can be built and run here, with the reason in one line.

    Example:

    ```python
    ok, reason = is_available()  # (False, "TensorRT is not installed (pip install kerazoo[...")
    ```
    """
    try:
        trt = _import_tensorrt()
        _require_gpu(trt)
    except RuntimeError as exc:
        return False, str(exc)
    return True, f"TensorRT {trt.__version__} on {_gpu_name()}"


# --------------------------------------------------------------------------- Polygraphy's log


class _ErrorLines(logging.Handler):
    """Keeps the text of Polygraphy's [E] and [!] records, for the one-line error messages."""

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(_first_line(record.getMessage()))


@contextlib.contextmanager
def polygraphy_logging(verbose: bool = False) -> Iterator[list[str]]:
    """Routes Polygraphy's logger (TensorRT's too, via `get_trt_logger`) for one block.

    Quiet by default: [I]/[W] lines are dropped and [E]/[!] lines are only collected into the
    yielded list, from which our one-line errors take their detail (Polygraphy's exception text
    is often just "Could not parse ONNX correctly"). With `verbose=True`, [I] and up also go to
    stderr. The logger's previous settings are restored afterwards.

    Example:

    ```python
    with polygraphy_logging() as errors:
        ...  # Polygraphy calls
    print(errors[:1])
    ```
    """
    from polygraphy.logger import G_LOGGER

    py_logger = logging.getLogger("Polygraphy")  # the name Polygraphy's Logger logs under
    capture = _ErrorLines()
    handlers: list[logging.Handler] = [capture]
    if verbose:
        handlers.append(logging.StreamHandler(sys.stderr))
    saved = (
        G_LOGGER.module_severity,
        G_LOGGER.use_python_logging_system,
        G_LOGGER.colors,
        py_logger.level,
        py_logger.propagate,
    )
    G_LOGGER.module_severity = G_LOGGER.INFO if verbose else G_LOGGER.ERROR
    G_LOGGER.use_python_logging_system = True
    G_LOGGER.colors = False  # no ANSI codes in messages; also skips its "install colored" print
    py_logger.setLevel(1)
    py_logger.propagate = False
    for handler in handlers:
        py_logger.addHandler(handler)
    try:
        yield capture.lines
    finally:
        for handler in handlers:
            py_logger.removeHandler(handler)
        G_LOGGER.module_severity, G_LOGGER.use_python_logging_system, G_LOGGER.colors = saved[:3]
        py_logger.setLevel(saved[3])
        py_logger.propagate = saved[4]


def _first_line(text: str) -> str:
    for line in str(text).splitlines():
        line = line.strip()
        for prefix in ("[E] ", "[!] ", "[W] ", "[I] "):
            line = line.removeprefix(prefix)
        if line:
            return line[:400]
    return ""


def _detail(errors: Sequence[str], exc: BaseException | None) -> str:
    """The first logged error line, else the exception's first line."""
    for line in errors:
        if line:
            return line
    if exc is not None:
        return _first_line(str(exc)) or type(exc).__name__
    return "no error message"


# --------------------------------------------------------------------------- build


def polygraphy_profiles(profiles: Profiles) -> list[Any]:
    """One Polygraphy `Profile` holding every input's (min, opt, max) from `derive_profiles`.

    Example:

    ```python
    polygraphy_profiles({"image": ((1, 28, 28, 1), (8, 28, 28, 1), (32, 28, 28, 1))})
    # [Profile().add('image', min=(1, 28, 28, 1), opt=(8, 28, 28, 1), max=(32, 28, 28, 1))]
    ```
    """
    from polygraphy.backend.trt import Profile

    profile = Profile()
    for name, (lo, opt, hi) in profiles.items():
        profile.add(name, min=tuple(lo), opt=tuple(opt), max=tuple(hi))
    return [profile]


def engine_sidecar(
    onnx_path: str | os.PathLike,
    profiles: Profiles,
    *,
    tensorrt_version: str,
    gpu: str,
    build_seconds: float,
    timing_cache: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """What Polygraphy does not record about an engine: the contents of `<engine>.json`.

    Example:

    ```python
    meta = engine_sidecar("m.onnx", profiles, tensorrt_version="10.15.1", gpu="NVIDIA H200",
                          build_seconds=12.3)
    meta["precision"], meta["onnx_sha256"]
    ```
    """
    onnx_path = Path(onnx_path)
    digest = hashlib.sha256()
    with onnx_path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return {
        "format": SIDECAR_FORMAT,
        "onnx": str(onnx_path),
        "onnx_sha256": digest.hexdigest(),
        "precision": detect_precision(onnx_path),
        "strongly_typed": True,
        "tensorrt_version": str(tensorrt_version),
        "gpu": gpu,
        "profiles": {
            name: {"min": list(lo), "opt": list(opt), "max": list(hi)}
            for name, (lo, opt, hi) in profiles.items()
        },
        "timing_cache": None if timing_cache is None else str(timing_cache),
        "build_seconds": round(float(build_seconds), 2),
        "built_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),  # noqa: UP017
    }


def _checked_profiles(
    onnx_path: Path, batch_sizes: Sequence[int], seq_lens: Sequence[int] | None, major: str
) -> Profiles:
    """Profiles from our sizes, after the CPU preflight passed; a one-line ValueError otherwise."""
    seqs = None if seq_lens is None else list(seq_lens)
    profiles = derive_profiles(onnx_path, list(batch_sizes), seqs)
    report = preflight(onnx_path, profiles=profiles, trt_version=major)
    if not report.ok:
        raise ValueError(
            f"{onnx_path.name} fails the TensorRT {major} preflight with {len(report.errors)} "
            "error(s), so nothing was built: "
            + "; ".join(str(finding) for finding in report.errors)
        )
    return profiles


def _installed_major() -> str:
    """The operator table to check against: the installed TensorRT's major, else 10."""
    with contextlib.suppress(Exception):
        import tensorrt as trt

        return "11" if int(str(trt.__version__).split(".")[0]) >= 11 else "10"
    return "10"


def export_tensorrt(
    onnx_path: str | os.PathLike,
    out_path: str | os.PathLike,
    *,
    batch_sizes: Sequence[int] = (1, 8, 32),
    seq_lens: Sequence[int] | None = (8, 64, 256),
    timing_cache: str | os.PathLike | None = None,
    verbose: bool = False,
) -> Path:
    """Builds a strongly typed engine from an ONNX file; writes it and `<engine>.json` beside it.

    Args:
        onnx_path: the ONNX model; its precision (fp32, fp16 casts, Q/DQ int8) is kept as is.
        out_path: where the engine goes; written under a temporary name, then renamed.
        batch_sizes: batch sizes to serve: profile min/opt/max = min/median/max. Defaults to
            (1, 8, 32).
        seq_lens: lengths for the dynamic time axis of sequence inputs, ranged the same way.
            Defaults to (8, 64, 256).
        timing_cache: a timing-cache file, read if present and extended after the build, which
            makes rebuilds on the same GPU and TensorRT version faster. Defaults to None.
        verbose: show Polygraphy's and TensorRT's log. Defaults to False.

    Returns:
        The engine's path.

    Example:

    ```python
    engine = export_tensorrt("lstm.onnx", "lstm.engine", batch_sizes=(1, 16), seq_lens=(10, 50))
    ```
    """
    onnx_path, out_path = Path(onnx_path), Path(out_path)
    profiles = _checked_profiles(onnx_path, batch_sizes, seq_lens, _installed_major())
    trt = _import_tensorrt()
    _require_gpu(trt)  # a one-line error here rather than a pybind TypeError mid-build
    started = time.monotonic()
    engine = _build(trt, onnx_path, profiles, timing_cache, verbose)
    meta = engine_sidecar(
        onnx_path,
        profiles,
        tensorrt_version=trt.__version__,
        gpu=_gpu_name(),
        build_seconds=time.monotonic() - started,
        timing_cache=timing_cache,
    )
    _atomic_write(out_path, engine)
    try:
        _atomic_write(_sidecar_path(out_path), (json.dumps(meta, indent=2) + "\n").encode())
    except BaseException:
        out_path.unlink(missing_ok=True)  # an engine without its sidecar is not published
        raise
    return out_path


def _build(
    trt: Any, onnx_path: Path, profiles: Profiles, timing_cache: Any, verbose: bool
) -> bytes:
    """Parse, configure and build through Polygraphy; one-line errors naming the failing step."""
    from polygraphy.backend.trt import (
        CreateConfig,
        engine_bytes_from_network,
        network_from_onnx_path,
    )

    # TensorRT 11 makes every network strongly typed; only ask for the flag where it exists.
    strongly_typed = hasattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED")
    cache = None if timing_cache is None else str(timing_cache)
    with polygraphy_logging(verbose) as errors:
        try:  # PolygraphyException for what it checks, pybind errors for what TensorRT raises
            network = network_from_onnx_path(str(onnx_path), strongly_typed=strongly_typed)
        except Exception as exc:
            raise ValueError(
                f"TensorRT {trt.__version__} could not parse {onnx_path}: {_detail(errors, exc)}"
            ) from exc
        config = CreateConfig(profiles=polygraphy_profiles(profiles), load_timing_cache=cache)
        try:
            engine = engine_bytes_from_network(network, config=config, save_timing_cache=cache)
        except Exception as exc:
            raise RuntimeError(
                f"TensorRT {trt.__version__} could not build an engine from {onnx_path}: "
                f"{_detail(errors, exc)}"
            ) from exc
    return bytes(engine)


def _sidecar_path(engine_path: Path) -> Path:
    return engine_path.with_name(engine_path.name + ".json")


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


def _numpy_dtype(trt_dtype: Any) -> np.dtype:
    from polygraphy.datatype import DataType

    return np.dtype(DataType.to_dtype(DataType.from_dtype(trt_dtype, "tensorrt"), "numpy"))


class TensorRTRunner:
    """Runs a serialized engine on numpy batches through Polygraphy's `TrtRunner`.

    The runner interface of `convert` (`convert._common.Runner`): `runtime`, `inference_precision`,
    `input_name`, `input_shape` (None for dynamic dims), `output_names`, and `run(x)` returning
    the outputs in `output_names` order. The engine
    is loaded and activated once; `close()` (or leaving a `with` block) frees the GPU memory.

    Example:

    ```python
    with TensorRTRunner("model.engine") as runner:
        (probs,) = runner.run(np.zeros((8, 28, 28, 1), np.float32))
    ```
    """

    runtime = "tensorrt"
    inference_precision = "native"  # strongly typed: the engine computes in the ONNX file's types

    def __init__(self, engine_path: str | os.PathLike, *, verbose: bool = False):
        self.path = Path(engine_path)
        self._verbose = verbose
        self._runner: Any = None
        if not self.path.is_file():
            raise ValueError(f"TensorRT engine not found. Received: {str(self.path)!r}")
        trt = _import_tensorrt()
        _require_gpu(trt)
        self._runner = self._activate(trt)
        engine = self._runner.engine
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self.output_names = [n for n in names if n not in inputs]
        if len(inputs) != 1:
            self.close()
            raise ValueError(f"TensorRTRunner runs single-input engines. Received: {inputs}")
        self.input_name = inputs[0]
        shape = tuple(int(d) for d in engine.get_tensor_shape(self.input_name))
        self.input_shape = tuple(None if d < 0 else d for d in shape)
        self._dtype = _numpy_dtype(engine.get_tensor_dtype(self.input_name))
        self._range = (shape, shape)
        if None in self.input_shape:  # profile 0, the only one export_tensorrt builds
            lo, _, hi = engine.get_tensor_profile_shape(self.input_name, 0)
            self._range = (tuple(int(d) for d in lo), tuple(int(d) for d in hi))

    def _activate(self, trt: Any) -> Any:
        from polygraphy.backend.common import BytesFromPath
        from polygraphy.backend.trt import EngineFromBytes, TrtRunner

        runner = TrtRunner(EngineFromBytes(BytesFromPath(str(self.path))))
        with polygraphy_logging(self._verbose) as errors:
            try:
                runner.activate()
            except Exception as exc:  # PolygraphyException, or pybind errors from TensorRT
                raise ValueError(
                    f"TensorRT {trt.__version__} could not load {self.path}: "
                    f"{_detail(errors, exc)}. An engine runs only on the TensorRT version and "
                    "GPU that built it; rebuild it with export_tensorrt."
                ) from exc
        return runner

    def run(self, x: np.ndarray) -> list[np.ndarray]:
        """Runs one batch; returns the outputs (host copies) in `output_names` order."""
        feed = np.ascontiguousarray(x, dtype=self._dtype)
        lo, hi = self._range
        inside = feed.ndim == len(lo) and all(
            a <= d <= b for a, d, b in zip(lo, feed.shape, hi, strict=True)
        )
        if not inside:
            raise ValueError(
                f"Input '{self.input_name}' shape should lie within the engine's profile "
                f"min={lo}, max={hi}. Received: {tuple(feed.shape)}"
            )
        with polygraphy_logging(self._verbose) as errors:
            try:
                # Our own check above replaces Polygraphy's per-call metadata check.
                outputs = self._runner.infer({self.input_name: feed}, check_inputs=False)
            except Exception as exc:  # PolygraphyException, or pybind errors from TensorRT
                raise RuntimeError(
                    f"TensorRT could not run {self.path} on shape {tuple(feed.shape)}: "
                    f"{_detail(errors, exc)}"
                ) from exc
        # Polygraphy reuses its output buffers on the next call, so hand out copies.
        return [np.array(outputs[name], copy=True) for name in self.output_names]

    def close(self) -> None:
        """Frees the execution context and GPU buffers; safe to call twice."""
        runner, self._runner = self._runner, None
        if runner is not None and runner.is_active:
            with polygraphy_logging(self._verbose):
                runner.deactivate()

    def __enter__(self) -> TensorRTRunner:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __del__(self) -> None:
        # Polygraphy prints a leak warning for a runner never deactivated; close it quietly.
        with contextlib.suppress(Exception):
            self.close()
