"""Model conversion (SavedModel, ONNX fp32/fp16/int8, TensorRT, TF-TRT) behind one dispatcher.

Every conversion is verified: the artefact is written under a temp name, run beside the Keras
model by the parity gate (`convert.verify`), and only then moved to its final name.

Example:
    >>> import convert
    >>> result = convert.convert("runs/demo", to="onnx", precision="int8")
    >>> result.artefact, result.passed
    (PosixPath('runs/demo/model.int8.onnx'), True)
    >>> convert.benchmark(["runs/demo/model.onnx"], batch_sizes=[1, 32])[0]["p50_ms"]
    0.42

Imports are lazy (as in `zoo`): `import convert` loads neither TensorFlow nor ONNX.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "export_onnx": "convert.onnx_export",
    "export_ready_copy": "convert.onnx_export",
    "export_saved_model": "convert.saved_model",
    "ParityReport": "convert.verify",
    "verify": "convert.verify",
    "quantize_fp16": "convert.quantize",
    "quantize_int8": "convert.quantize",
    "benchmark": "convert.benchmark",
    "resolve_source": "convert.source",
    "open_artifact": "convert.source",
    "ConvertResult": "convert.pipeline",
    "GateError": "convert.pipeline",
    "convert": "convert.pipeline",
    "run_preflight": "convert.pipeline",
}
__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:  # pragma: no cover
    from convert.benchmark import benchmark  # noqa: F401
    from convert.onnx_export import export_onnx, export_ready_copy  # noqa: F401
    from convert.pipeline import ConvertResult, GateError, convert, run_preflight  # noqa: F401
    from convert.quantize import quantize_fp16, quantize_int8  # noqa: F401
    from convert.saved_model import export_saved_model  # noqa: F401
    from convert.source import open_artifact, resolve_source  # noqa: F401
    from convert.verify import ParityReport, verify  # noqa: F401


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'convert' has no attribute {name!r}")
