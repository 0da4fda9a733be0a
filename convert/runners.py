"""One way to run any artefact: `open_artifact(path, runtime=None) -> Runner`.

Every runner takes a float32 numpy batch and returns one numpy array per output
(`run(x) -> list[np.ndarray]`), and names itself in `runtime` (what `zoo bench` prints and the
parity report records). The gate, `zoo bench` and the notebooks all go through this module:

| artefact | runtime (default first) | runner |
|---|---|---|
| `.keras`, run directory | keras (eager / compiled) | `KerasRunner` |
| SavedModel directory | tensorflow | `SavedModelRunner` |
| `.onnx` | onnxruntime, openvino | `OnnxRuntimeRunner`, `OpenVinoRunner` |
| `.xml` (OpenVINO IR) | openvino | `OpenVinoRunner` |
| `.engine` / `.plan` / `.trt` | tensorrt | `convert.tensorrt.TensorRTRunner` |

Example:
    >>> open_artifact("runs/demo/model.onnx").runtime
    'onnxruntime-fp32'
    >>> open_artifact("runs/demo/model.onnx", "openvino", inference_precision="f32").runtime
    'openvino-fp32@f32'
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from convert._common import INFERENCE_PRECISIONS, Runner, check_choice

ENGINE_SUFFIXES = (".engine", ".plan", ".trt")
RUNTIMES = ("keras", "tensorflow", "onnxruntime", "openvino", "tensorrt")
# Which runtimes can run which kind of artefact (the first is the default).
_RUNTIMES_FOR = {
    ".keras": ("keras",),
    "saved_model": ("tensorflow",),
    ".onnx": ("onnxruntime", "openvino"),
    ".xml": ("openvino",),
    **{suffix: ("tensorrt",) for suffix in ENGINE_SUFFIXES},
}
_KERAS_PRECISIONS = {"float32": "f32", "bfloat16": "bf16", "float16": "f16"}

__all__ = [
    "ENGINE_SUFFIXES",
    "RUNTIMES",
    "KerasRunner",
    "OnnxRuntimeRunner",
    "OpenVinoRunner",
    "Runner",
    "SavedModelRunner",
    "onnx_precision",
    "open_artifact",
    "runtimes_for",
]


def onnx_precision(model: Any) -> str:
    """ "int8" for a QDQ/integer graph, "fp16" for float16 weights, else "fp32".

    Example:
        >>> onnx_precision("model.int8.onnx")
        'int8'
    """
    import onnx

    proto = model if hasattr(model, "graph") else onnx.load(str(model), load_external_data=False)
    ops = {node.op_type for node in proto.graph.node}
    if ops & {"QuantizeLinear", "DequantizeLinear", "QLinearConv", "QLinearMatMul"}:
        return "int8"
    if any(init.data_type == onnx.TensorProto.FLOAT16 for init in proto.graph.initializer):
        return "fp16"
    return "fp32"


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else repr(error)


class KerasRunner(Runner):
    """A Keras model: eagerly (`model(x)`) or through a traced function (`compiled=True`)."""

    def __init__(self, model: Any, *, compiled: bool = False):
        self.model = model
        tensor = model.inputs[0]
        self.input_name = getattr(tensor, "name", None) or "input"
        self.input_shape = (None, *tensor.shape[1:])
        self.output_names = list(getattr(model, "output_names", None) or ["output_0"])
        self.runtime = "keras-function" if compiled else "keras-eager"
        compute = getattr(getattr(model, "dtype_policy", None), "compute_dtype", "float32")
        self.inference_precision = _KERAS_PRECISIONS.get(compute, compute)
        self._compiled = compiled

    def run(self, x):
        outputs = (
            self.model.predict_on_batch(x) if self._compiled else self.model(x, training=False)
        )
        outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        return [np.asarray(y, dtype=np.float32) for y in outputs]


class SavedModelRunner(Runner):
    """A SavedModel's `serve` endpoint in TensorFlow (also a TF-TRT converted folder)."""

    runtime = "tensorflow-saved_model"

    def __init__(self, path: str | os.PathLike[str]):
        import tensorflow as tf

        self.loaded = tf.saved_model.load(str(path))
        function = self.loaded.serve
        spec = function.input_signature[0] if function.input_signature else None
        concrete = function.get_concrete_function() if spec is not None else None
        self.input_name = getattr(spec, "name", None) or "input"
        self.input_shape = tuple(spec.shape) if spec is not None else ()
        outputs = concrete.structured_outputs if concrete is not None else {}
        self.output_names = list(outputs) if isinstance(outputs, dict) else ["output_0"]

    def run(self, x):
        outputs = self.loaded.serve(x)
        if isinstance(outputs, dict):
            return [outputs[name].numpy() for name in self.output_names]
        outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        return [y.numpy() for y in outputs]


class OnnxRuntimeRunner(Runner):
    """ONNX Runtime on the CPU (or the providers given); `runtime` is "onnxruntime-<precision>"."""

    def __init__(self, path: str | os.PathLike[str], *, threads: int | None = None, providers=None):
        import onnxruntime as ort

        from convert.preflight import load_onnx

        load_onnx(path)  # garbage files get the same one-line error everywhere
        options = ort.SessionOptions()
        options.log_severity_level = 3
        if threads:
            options.intra_op_num_threads = int(threads)
            options.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(
                str(path), options, providers=providers or ["CPUExecutionProvider"]
            )
        except Exception as error:  # onnxruntime's Fail/InvalidGraph/NotImplemented...
            raise ValueError(
                f"ONNX Runtime cannot load {str(path)!r} (an operator or type it does not "
                f"implement?): {_first_line(error)}"
            ) from None
        self.runtime = f"onnxruntime-{onnx_precision(path)}"
        spec = self.session.get_inputs()[0]
        self.input_name = spec.name
        self.input_shape = tuple(d if isinstance(d, int) else None for d in spec.shape)
        self.output_names = [o.name for o in self.session.get_outputs()]

    def run(self, x):
        return self.session.run(None, {self.input_name: x})


class OpenVinoRunner(Runner):
    """An `.onnx` or IR `.xml` file compiled by OpenVINO for the CPU.

    `inference_precision` asks for "bf16" or "f32" compute (None: OpenVINO's default, bf16 on
    CPUs that have it); the runner reports what the compiled model really uses, so on a CPU
    without bf16 a "bf16" request reads `openvino-fp32@f32`. Batch and time axes stay dynamic.

    Example:
        >>> OpenVinoRunner("model.int8.xml", inference_precision="bf16").runtime
        'openvino-int8@bf16'
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        inference_precision: str | None = None,
        threads: int | None = None,
    ):
        from convert import openvino as ov_convert

        if inference_precision is not None:
            check_choice("inference_precision", inference_precision, INFERENCE_PRECISIONS)
        if Path(path).suffix == ".onnx":
            from convert.preflight import load_onnx

            load_onnx(path)  # the same one-line error as ONNX Runtime for a garbage file
        model = ov_convert.read(path)
        config: dict[str, Any] = {}
        if inference_precision is not None:
            config["INFERENCE_PRECISION_HINT"] = inference_precision
        if threads:
            config["INFERENCE_NUM_THREADS"] = int(threads)
        try:
            self.compiled = ov_convert.core().compile_model(model, "CPU", config)
        except Exception as error:  # noqa: BLE001 - an op the CPU plugin does not implement
            raise ValueError(
                f"OpenVINO compiles graphs its CPU plugin implements. Received: {str(path)!r} "
                f"({ov_convert.error_line(error)})"
            ) from None
        self.inference_precision = ov_convert.type_name(
            self.compiled.get_property("INFERENCE_PRECISION_HINT")
        )
        self.runtime = f"openvino-{ov_convert.model_precision(model)}@{self.inference_precision}"
        port = self.compiled.inputs[0]
        self.input_name = port.get_any_name()
        self.input_shape = tuple(
            None if dim.is_dynamic else dim.get_length() for dim in port.get_partial_shape()
        )
        self.output_names = [output.get_any_name() for output in self.compiled.outputs]
        self._request = self.compiled.create_infer_request()

    def run(self, x):
        self._request.infer({0: np.ascontiguousarray(x, dtype=np.float32)})
        # The request reuses its output buffers: copy before the next call overwrites them.
        return [
            np.array(self._request.get_output_tensor(i).data, copy=True)
            for i in range(len(self.compiled.outputs))
        ]


def _tensorrt_runner(path: Path) -> Runner:
    from convert import tensorrt

    available, reason = tensorrt.is_available()
    if not available:
        raise RuntimeError(f"Cannot run {str(path)!r} in TensorRT: {reason}.")
    return tensorrt.TensorRTRunner(path)


def _kind(path: Path) -> str:
    if path.is_dir() and (path / "saved_model.pb").is_file():
        return "saved_model"
    return path.suffix


def runtimes_for(path: str | os.PathLike[str]) -> tuple[str, ...]:
    """The runtimes that can run `path`, the default first (() for an unknown kind)."""
    path = Path(path)
    if path.is_dir() and (path / "model.keras").is_file():
        return _RUNTIMES_FOR[".keras"]
    return _RUNTIMES_FOR.get(_kind(path), ())


def open_artifact(
    path: str | os.PathLike[str],
    runtime: str | None = None,
    *,
    threads: int | None = None,
    compiled: bool = False,
    inference_precision: str | None = None,
    safe_mode: bool = True,
) -> Runner:
    """A `Runner` for `path` in `runtime` (None: the artefact's default runtime, table above).

    Args:
        path: a `.keras` file or run directory, SavedModel directory, `.onnx`, `.xml` or engine.
        runtime: one of `RUNTIMES` that can run this kind of file.
        threads: intra-op threads (ONNX Runtime, OpenVINO).
        compiled: Keras only: call the traced function instead of the eager model.
        inference_precision: OpenVINO only: "bf16" or "f32" (None: OpenVINO's default).
        safe_mode: False lets a `.keras` file run code stored in it; trusted files only.

    Example:
        >>> open_artifact("model.keras", compiled=True).runtime
        'keras-function'
    """
    path = Path(path)
    if not path.exists():
        raise ValueError(f"Artifact {str(path)!r} does not exist.")
    if path.is_dir() and (path / "model.keras").is_file():
        path = path / "model.keras"
    valid = runtimes_for(path)
    if not valid:
        raise ValueError(
            f"Artifacts should be .keras, .onnx, .xml, {', '.join(ENGINE_SUFFIXES)} files, a "
            f"SavedModel directory or a run directory. Received: {str(path)!r}"
        )
    runtime = runtime or valid[0]
    if runtime not in valid:
        raise ValueError(
            f"{path.name} runs in {', '.join(valid)}: runtime should be one of those. "
            f"Received: runtime={runtime!r}"
        )
    if runtime == "keras":
        import zoo

        return KerasRunner(zoo.load_model(path, safe_mode=safe_mode), compiled=compiled)
    if runtime == "tensorflow":
        return SavedModelRunner(path)
    if runtime == "onnxruntime":
        return OnnxRuntimeRunner(path, threads=threads)
    if runtime == "openvino":
        return OpenVinoRunner(path, inference_precision=inference_precision, threads=threads)
    return _tensorrt_runner(path)
