"""OpenVINO: ONNX -> OpenVINO IR (`model.xml` + `model.bin`), and what this CPU computes in.

`export_openvino(source, path)` reads an ONNX file with `openvino.Core().read_model` (the ONNX
frontend; a Keras model or `.keras` file is exported to ONNX first) and writes the IR with
`openvino.save_model`. That function compresses float weights to fp16 unless told not to, so the
fp32 IR passes `compress_to_fp16=False` and `--precision fp16` is exactly that compression. An int8
IR comes from an int8 QDQ ONNX file: OpenVINO turns each QuantizeLinear/DequantizeLinear pair into
a FakeQuantize and runs the int8 kernels.

Why `read_model` and not `openvino.convert_model`: for an ONNX file both use the same ONNX
frontend, but `convert_model` also starts OpenVINO's usage telemetry (a Google Analytics sender);
`read_model` never does, and this toolkit makes no network calls.

Inference precision: OpenVINO's CPU plugin computes in bf16 by default on CPUs that have bf16
units (`OPTIMIZATION_CAPABILITIES` lists "BF16": AVX512-BF16/AMX Xeons) and in f32 elsewhere; a
bf16 request on a CPU without it silently runs f32. `convert.runners.OpenVinoRunner` reports the
precision the compiled model actually uses.

Example:
    >>> export_openvino("runs/demo/model.onnx", "runs/demo/model.xml")
    PosixPath('runs/demo/model.xml')
    >>> cpu_capabilities()
    ['FP32', 'INT8', 'BIN', 'EXPORT_IMPORT']
"""

from __future__ import annotations

import functools
import os
import tempfile
from pathlib import Path
from typing import Any

from convert._common import DEFAULT_OPSET, INFERENCE_PRECISIONS

# OpenVINO element type names -> the short names used in runtime labels.
_TYPE_NAMES = {"bf16": "bf16", "f32": "f32", "f16": "f16"}
_INT8_TYPES = ("i8", "u8")


def is_available() -> tuple[bool, str]:
    """Whether the `openvino` package imports here, with the reason.

    Example:
        >>> is_available()
        (True, 'OpenVINO 2026.4.1 on CPU')
    """
    try:
        import openvino
    except ImportError as error:
        return False, (
            f"OpenVINO runs .xml files and --to openvino: pip install 'kerazoo[openvino]'. "
            f"Received: {error}"
        )
    return True, f"OpenVINO {openvino.__version__.split('-')[0]} on CPU"


def require() -> None:
    """A one-line RuntimeError when OpenVINO is missing."""
    available, reason = is_available()
    if not available:
        raise RuntimeError(reason)


@functools.cache
def core() -> Any:
    """The process' one `openvino.Core` (creating one loads the device plugins)."""
    require()
    import openvino

    return openvino.Core()


def cpu_capabilities() -> list[str]:
    """The CPU plugin's OPTIMIZATION_CAPABILITIES, e.g. ['FP32', 'BF16', 'INT8', ...]."""
    return [str(item) for item in core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")]


def has_bf16() -> bool:
    """Whether OpenVINO can run bf16 on this CPU (and does so by default)."""
    return "BF16" in cpu_capabilities()


def default_inference_precisions() -> tuple[str, ...]:
    """The inference precisions worth measuring here: ("bf16", "f32") on bf16 CPUs, else ("f32",)."""
    return INFERENCE_PRECISIONS if has_bf16() else ("f32",)


def type_name(element_type: Any) -> str:
    """An OpenVINO element type as "bf16" / "f32" / "f16" (its own short name otherwise)."""
    name = element_type.get_type_name() if hasattr(element_type, "get_type_name") else element_type
    return _TYPE_NAMES.get(str(name), str(name))


def model_precision(model: Any) -> str:
    """Precision of an OpenVINO model: "int8" when quantized, "fp16" for fp16 weights, else "fp32".

    Example:
        >>> model_precision(core().read_model("model.int8.xml"))
        'int8'
    """
    kinds = set()
    for op in model.get_ops():
        kind = op.get_type_name()
        if kind == "FakeQuantize":
            return "int8"
        if kind == "Constant":
            kinds.add(type_name(op.get_output_element_type(0)))
    if kinds & set(_INT8_TYPES):
        return "int8"
    return "fp16" if "f16" in kinds else "fp32"


def error_line(error: BaseException) -> str:
    """The informative line of an OpenVINO exception (they start with source-file locations).

    Example:
        >>> error_line(RuntimeError("Exception from core.cpp:84:\n...\n-- Conversion is failed for: Loop-17"))
        'Conversion is failed for: Loop-17'
    """
    lines = [line.strip(" -") for line in str(error).splitlines() if line.strip()]
    for line in lines:
        if line.startswith("Conversion is failed for"):
            return line
    useful = [line for line in lines if not line.startswith(("Exception from", "Check '"))]
    return (useful or lines or [repr(error)])[-1]


def read(path: str | os.PathLike[str]) -> Any:
    """`core().read_model(path)` with a one-line ValueError for a file OpenVINO cannot read."""
    try:
        return core().read_model(str(path))
    except Exception as error:  # noqa: BLE001 - OpenVINO raises RuntimeError/GeneralFailure
        raise ValueError(
            f"OpenVINO reads ONNX files whose every operator its ONNX frontend converts. "
            f"Received: {str(path)!r} ({error_line(error)})"
        ) from None


def export_openvino(
    source: Any,
    path: str | os.PathLike[str],
    *,
    compress_to_fp16: bool = False,
    opset: int = DEFAULT_OPSET,
    rt_info: dict[str, str] | None = None,
) -> Path:
    """Write the OpenVINO IR of an ONNX file or a Keras model: `path` (.xml) and its `.bin`.

    Args:
        source: an `.onnx` path (fp32, or int8 QDQ for an int8 IR), a `keras.Model` or a
            `.keras` path (exported to ONNX first, in a temporary folder).
        path: the `.xml` file to write; the weights go to the same name with `.bin`.
        compress_to_fp16: store float weights as fp16 (the fp16 IR). Defaults to False.
        opset: the ONNX opset when `source` is a Keras model.
        rt_info: {"a.b": value} entries saved in the IR's rt_info at path ["a", "b"].

    Example:
        >>> export_openvino("model.int8.onnx", "model.int8.xml")
        PosixPath('model.int8.xml')
    """
    out = Path(path)
    if out.suffix != ".xml":
        raise ValueError(f"An OpenVINO IR path should end in .xml. Received: {str(out)!r}")
    require()
    import openvino

    with tempfile.TemporaryDirectory(prefix="kerazoo-openvino-") as scratch:
        onnx_path = source
        if not (isinstance(source, (str, os.PathLike)) and Path(source).suffix == ".onnx"):
            from convert.onnx import export_onnx

            onnx_path = export_onnx(source, Path(scratch) / "model.onnx", opset=opset)
        model = read(onnx_path)
        for key, value in (rt_info or {}).items():  # e.g. the class names (convert.metadata)
            model.set_rt_info(value, key.split("."))
        out.parent.mkdir(parents=True, exist_ok=True)
        openvino.save_model(model, str(out), compress_to_fp16=bool(compress_to_fp16))
    return out
